"""`cyclegan demo`: the whole job on a built-in dataset, in a few CPU minutes.

Generates a small synthetic day/night dataset, trains the `quick` preset on it, translates both test
sets, and writes a results page (OUT/index.html) linking everything.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

from ..errors import UserError

NAME = "demo"
HELP = "train + translate + results page on a built-in synthetic dataset (a few CPU minutes)"


def add_parser(sub):
    p = sub.add_parser(NAME, help=HELP)
    p.add_argument("--out", default="runs/demo", help="where data, run and results go (default runs/demo)")
    p.add_argument("--epochs", type=int, default=4, help="epochs at constant lr, then as many decaying (default 4)")
    p.add_argument("--images", type=int, default=200, help="training images per domain (default 200)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto: a GPU if there is one)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads (default 1: on 2 idle cores, 0 = one per core is about 20%% faster, but on cores that "
        "another job shares it was 30x slower)",
    )
    p.add_argument(
        "--fresh", action="store_true", help="start over: delete the demo's data, run and results in OUT first"
    )
    return p


def run(args) -> int:
    from .. import checkpoint as ckpt
    from ..config import build_config
    from ..demo import make_demo_dataset
    from ..runtime import resolve_device
    from ..train import train
    from ..translate import load_translator, translate_files

    out = Path(args.out)
    resolve_device(args.device)  # before anything is written
    prepare_out(out, {"images": args.images, "epochs": args.epochs}, args.fresh)
    data = make_demo_dataset(out / "data", n_train=args.images, n_test=16)
    run_dir = out / "run"
    print(f"1/3 data: {data} (synthetic day/night scenes, {args.images} per domain)")
    cfg = build_config(
        ["quick"],
        [],
        [
            f"data.root={data}",
            f"optim.n_epochs={args.epochs}",
            f"optim.n_epochs_decay={args.epochs}",
            f"train.device={args.device}",
            f"train.threads={args.threads}",
            "train.sample_every=0",
            "train.compile=false",
        ],
    )  # minutes of compiling would double the demo
    state_file = run_dir / "checkpoints" / "latest.state.safetensors"
    resume = state_file.is_file()
    start = ckpt.read_meta(state_file).get("step", 0) if resume else 0
    print(f"2/3 training the 'quick' preset in {run_dir}" + (f" (resuming at step {start})" if resume else ""))
    result = train(cfg, run_dir, resume=resume)
    if result.state.step == start:
        print(f"    already trained ({start} steps); add --fresh to train again")
    else:
        print(f"    {result.state.step - start} steps in {result.seconds / 60:.1f} min")
    print("3/3 translating the test images")
    sections = []
    for direction, folder in (("AtoB", "testA"), ("BtoA", "testB")):
        t = load_translator(run_dir, direction, args.device)
        res = translate_files(t, [str(data / folder)], out / "translations" / direction, progress=False)
        sections.append((direction, folder, len(res["written"])))
    write_results_page(out, run_dir, sections)
    print(f"results page: {out / 'index.html'}")
    return 0


MARKER = ".cyclegan-demo"  # in OUT: the demo made this folder, with these settings
PRODUCTS = ("data", "run", "translations", "index.html")


def prepare_out(out: Path, settings: dict, fresh: bool) -> None:
    """Make OUT the demo's folder. Only a folder the demo made (it holds MARKER) is ever written into
    again or cleared, and --fresh deletes only the demo's own products in it."""
    if settings["images"] < 1 or settings["epochs"] < 1:
        raise UserError(f"--images and --epochs must be at least 1 (got {settings['images']} and {settings['epochs']})")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the demo's data, run and results page")
    marker = out / MARKER
    entries = {p.name for p in out.iterdir()} if out.is_dir() else set()
    if entries and (not marker.is_file() or entries - {MARKER, *PRODUCTS}):  # something the demo did not make
        raise UserError(f"--out {out} holds files that `cyclegan demo` did not make; choose a new or empty folder")
    if entries:
        try:
            saved = json.loads(marker.read_text())
        except json.JSONDecodeError:
            raise UserError(f"{marker} is damaged; delete {out} yourself or choose another --out") from None
        if fresh:
            for name in PRODUCTS:
                path = out / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        elif saved != settings:
            raise UserError(
                f"{out} holds a demo run made with --images {saved.get('images')} --epochs {saved.get('epochs')}; "
                f"add --fresh to start over with the new settings, or choose another --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(settings) + "\n")


def write_results_page(out: Path, run_dir: Path, sections) -> None:
    """Summary page: final losses, the last sample grid, links to both translation galleries."""
    from ..plots import add_curves

    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    last = next((r for r in reversed(log) if "epoch_end" in r), {})
    losses = "".join(
        f"<tr><td>{html.escape(k.split('/', 1)[1])}</td><td>{v:.3f}</td></tr>"
        for k, v in last.items()
        if k.startswith("epoch/")
    )
    grids = sorted((run_dir / "samples").glob("*.png"))
    grid = f'<img src="{grids[-1].relative_to(out).as_posix()}">' if grids else ""
    links = "".join(
        f'<li><a href="translations/{d}/index.html">{d}</a>: {n} images from {f}</li>' for d, f, n in sections
    )
    (out / "index.html").write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>cyclegan demo</title>
<style>body{{font-family:sans-serif;margin:1em;max-width:60em}}
img{{image-rendering:pixelated;width:100%}}</style></head><body>
<h1>cyclegan demo: day &harr; night</h1>
<p>A CycleGAN trained for {last.get("epoch_end", "?")} epochs ({last.get("step", "?")} steps) on synthetic unpaired
scenes.
Checkpoint: <code>{html.escape(str(run_dir / "checkpoints" / "latest.model.safetensors"))}</code></p>
<h2>Translations of the test sets</h2><ul>{links}</ul>
<h2>Samples after the last epoch</h2><p>Rows: A, G_A(A), G_B(G_A(A)) then B, G_B(B), G_A(G_B(B)).</p>{grid}
<h2>Losses (mean over the last epoch)</h2><table>{losses}</table>
<p>Loss curves: <code>tensorboard --logdir {html.escape(str(run_dir / "tensorboard"))}</code> or
{html.escape(str(run_dir / "log.jsonl"))}.</p>
</body></html>
""")
    add_curves(out / "index.html", run_dir)  # loss curves (PNG, cyclegan.plots)
