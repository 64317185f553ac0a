"""`cyclegan study make | score`: the paper's real-vs-fake perceptual study, run offline in a browser."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "study"
HELP = "real-vs-fake perceptual study: make the browser page, score the answers"


def add_parser(sub):
    p = sub.add_parser(
        NAME,
        help=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The paper's 'real vs fake' study (CycleGAN Sec. 5.1.1): each trial shows a real image and a\n"
        "translation side by side for 1 s, then asks which was real; 10 practice trials with feedback,\n"
        "then 40 scored ones. `make` writes a folder to open from disk (no server, no network); each\n"
        "participant enters a number, and the page downloads their answers as JSON. `score` turns the\n"
        "answer files into the paper's table. docs/evaluation.md says how to run it with people.\n\n"
        "examples:\n"
        "  cyclegan study make --real photos/ --fake cyclegan=runs/f/eval/latest/BtoA/fake --out study/\n"
        "  cyclegan study score answers-*.json --study study/",
    )
    ops = p.add_subparsers(dest="study_command", metavar="make|score", required=True)
    m = ops.add_parser("make", help="write a study folder (index.html, images, trials)")
    m.add_argument("--real", required=True, type=Path, help="folder of real target-domain images")
    m.add_argument(
        "--fake",
        required=True,
        action="append",
        metavar="NAME=DIR",
        help="a method's translations (repeat for several methods); a translation is paired with the "
        "real image of the same file name when there is one, else with a random real image",
    )
    m.add_argument("--out", "-o", required=True, type=Path, help="the study folder to write (new or empty)")
    m.add_argument(
        "--participants",
        type=int,
        default=50,
        help="numbered sequences to prepare; participant p tests method (p-1) mod #methods (default 50: "
        "25 per method for two methods, as the paper)",
    )
    m.add_argument("--practice", type=int, default=10, help="practice trials with feedback (default 10)")
    m.add_argument("--trials", type=int, default=40, help="scored trials without feedback (default 40)")
    m.add_argument("--show-ms", type=int, default=1000, help="how long each pair is shown, ms (default 1000)")
    m.add_argument("--feedback-ms", type=int, default=1000, help="how long practice feedback stays, ms (default 1000)")
    m.add_argument(
        "--size",
        type=int,
        default=0,
        help="resize every image to SIZExSIZE (bicubic) so resolution gives nothing away (default 0: keep)",
    )
    m.add_argument("--display", type=int, default=256, help="on-screen size of each image, CSS pixels (default 256)")
    m.add_argument("--seed", type=int, default=0, help="seed of the sequences (default 0)")
    s = ops.add_parser("score", help="score answer files: %% of trials in which the translation was taken for real")
    s.add_argument("answers", nargs="+", type=Path, help="answer files downloaded by the study page")
    s.add_argument("--study", type=Path, help="the study folder: check each file against its participant's sequence")
    s.add_argument("--json", type=Path, help="also write the scores as JSON here")
    return p


def _fakes(items: list[str]) -> dict[str, Path]:
    from ..errors import UserError

    out: dict[str, Path] = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise UserError(f"--fake {item!r}: expected NAME=DIR, e.g. --fake cyclegan=runs/x/eval/latest/BtoA/fake")
        if name in out:
            raise UserError(f"--fake: method {name!r} given twice")
        out[name] = Path(folder)
    return out


def run(args) -> int:
    import json

    from ..study import make_study, read_answers, score_answers, score_table

    if args.study_command == "make":
        index = make_study(
            args.real,
            _fakes(args.fake),
            args.out,
            participants=args.participants,
            practice=args.practice,
            trials=args.trials,
            show_ms=args.show_ms,
            feedback_ms=args.feedback_ms,
            size=args.size,
            display=args.display,
            seed=args.seed,
        )
        print(
            f"written: {index} (open it in a browser; participants 1-{args.participants}, e.g. "
            f"{index.as_uri()}?participant=1)"
        )
        return 0
    rows = score_answers(read_answers(args.answers, args.study))
    print(score_table(rows))
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in rows], indent=1) + "\n")
        print(f"written: {args.json}")
    return 0
