"""Score real-vs-fake answer files as the paper's Table 1 ("% Turkers labeled real"): per method, the share
of scored trials in which the participant took the translation for the real image (the "fooled" rate),
averaged over participants, with its standard error and a 95% Student-t interval across participants
(each participant one observation, since trials of one person are not independent)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

FORMAT = "cyclegan-study-answers/1"
TRIAL_FIELDS = ("index", "practice", "method", "real", "fake", "real_side", "answer")

# Two-sided 95% quantiles t_{0.975, df} of Student's t; between listed df the next lower df is used
# (a slightly wider, conservative interval). df > 120 uses the normal 1.960.
_T975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    11: 2.201,
    12: 2.179,
    13: 2.160,
    14: 2.145,
    15: 2.131,
    16: 2.120,
    17: 2.110,
    18: 2.101,
    19: 2.093,
    20: 2.086,
    21: 2.080,
    22: 2.074,
    23: 2.069,
    24: 2.064,
    25: 2.060,
    26: 2.056,
    27: 2.052,
    28: 2.048,
    29: 2.045,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}


def t975(df: int) -> float:
    """t_{0.975, df}: the 95% two-sided Student-t quantile (table above; conservative between entries)."""
    if df < 1:
        raise ValueError("df must be at least 1")
    return 1.960 if df > 120 else _T975[max(k for k in _T975 if k <= df)]


@dataclass(frozen=True)
class MethodScore:
    """One row of the table: a method's fooled rate over participants."""

    method: str
    participants: int
    trials: int  # scored (non-practice) trials over all its participants
    fooled: float  # mean over participants of their share of fooled trials
    stderr: float  # sd over participants / sqrt(n); NaN with one participant
    ci95: tuple[float, float] | None  # mean -+ t_{0.975, n-1} stderr; None with one participant
    per_participant: dict[int, float]

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "participants": self.participants,
            "trials": self.trials,
            "fooled": self.fooled,
            "stderr": None if math.isnan(self.stderr) else self.stderr,
            "ci95": list(self.ci95) if self.ci95 else None,
            "per_participant": {str(k): v for k, v in self.per_participant.items()},
        }


def _check(answers: dict, path: Path) -> None:
    if not isinstance(answers, dict) or answers.get("format") != FORMAT:
        raise UserError(f"{path}: not a study answers file (format {FORMAT!r} expected)")
    trials = answers.get("trials")
    if not isinstance(trials, list) or not trials:
        raise UserError(f"{path}: holds no trials (was the session finished?)")
    for t in trials:
        missing = [k for k in TRIAL_FIELDS if k not in t]
        if missing:
            raise UserError(f"{path}: trial {t.get('index', '?')} lacks {', '.join(missing)}")
        if t["answer"] not in ("left", "right") or t["real_side"] not in ("left", "right"):
            raise UserError(f"{path}: trial {t['index']}: sides must be 'left' or 'right'")


def read_answers(paths, study: str | Path | None = None) -> list[dict]:
    """Answer files (JSON downloaded by the study page), checked; with `study` (the study folder), each file's
    trials must be the ones its participant number was given there (no edited or mixed-up files)."""
    expected = None
    if study is not None:
        manifest = Path(study) / "study.json"
        if not manifest.is_file():
            raise UserError(f"--study {study}: no study.json there (the folder `cyclegan study make` wrote)")
        expected = json.loads(manifest.read_text())
    out, seen = [], {}
    for path in map(Path, paths):
        try:
            answers = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: cannot read answers ({e})") from None
        _check(answers, path)
        key = (answers.get("study"), answers.get("participant"))
        if key in seen:
            raise UserError(f"{path} and {seen[key]}: the same participant {key[1]} of study {key[0]} twice")
        seen[key] = path
        if expected is not None:
            _check_against(answers, expected, path)
        out.append(answers)
    studies = {a.get("study") for a in out}
    if len(studies) > 1:
        raise UserError(f"answers of different studies ({', '.join(map(str, sorted(studies)))}); score each apart")
    return out


def _check_against(answers: dict, expected: dict, path: Path) -> None:
    if answers["study"] != expected["study"]:
        raise UserError(f"{path}: answers to study {answers['study']}, not {expected['study']}")
    seq = expected["participants"].get(str(answers["participant"]))
    fields = ("index", "practice", "method", "real", "fake", "real_side")
    if seq is None or [[t[k] for k in fields] for t in answers["trials"]] != [
        [t[k] for k in fields] for t in seq["trials"]
    ]:
        raise UserError(f"{path}: its trials differ from participant {answers['participant']}'s sequence in the study")


def score_answers(answers: list[dict]) -> list[MethodScore]:
    """Per method (in first-seen order): fooled rate per participant over scored trials, its mean, the
    standard error and the 95% t-interval across participants."""
    by_method: dict[str, dict[int, list[bool]]] = {}
    for a in answers:
        for t in a["trials"]:
            if not t["practice"]:
                by_method.setdefault(t["method"], {}).setdefault(int(a["participant"]), []).append(
                    t["answer"] != t["real_side"]
                )
    rows = []
    for method, people in by_method.items():
        rates = {p: float(np.mean(f)) for p, f in sorted(people.items())}
        x = np.array(list(rates.values()))
        mean = float(x.mean())
        if len(x) > 1:
            se = float(x.std(ddof=1) / math.sqrt(len(x)))
            half = t975(len(x) - 1) * se
            ci = (max(0.0, mean - half), min(1.0, mean + half))
        else:
            se, ci = float("nan"), None
        rows.append(MethodScore(method, len(x), sum(len(f) for f in people.values()), mean, se, ci, rates))
    if not rows:
        raise UserError("the answers hold no scored (non-practice) trials")
    return rows


def score_table(rows: list[MethodScore]) -> str:
    """The paper's table, as markdown: % of scored trials in which the translation was labelled real."""
    lines = [
        "| method | participants | scored trials | labelled real | +- s.e. | 95% CI |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        se = "-" if math.isnan(r.stderr) else f"{100 * r.stderr:.1f}%"
        ci = f"{100 * r.ci95[0]:.1f}% - {100 * r.ci95[1]:.1f}%" if r.ci95 else "- (one participant)"
        lines.append(f"| {r.method} | {r.participants} | {r.trials} | {100 * r.fooled:.1f}% | {se} | {ci} |")
    return "\n".join(lines)


__all__ = ["FORMAT", "MethodScore", "read_answers", "score_answers", "score_table", "t975"]
