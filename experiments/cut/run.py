"""CycleGAN vs CUT vs FastCUT at an equal wall-clock budget on the CPU (issue 27, docs/cut.md).

Two tasks, the same protocol for all three methods:

- horse2zebra at 128x128 (143 -> random 128 crops with flips, batch 1, the paper's networks by default:
  ResNet-9, 70x70 PatchGAN, ngf = ndf = 64). Scored on the whole test split, horse -> zebra only (CUT and
  FastCUT learn one direction): FID and KID of the 120 translated test horses against the 140 test zebras,
  test images resized to 128 (as the reference's test.py feeds the training size).
- MNIST -> USPS content preservation (experiments/mnist_usps: 32x32 grey, ResNet-6 ngf 32, PatchGAN ndf 16,
  batch 8, CycleGAN's cycle weight 3 as in that experiment): accuracy of a classifier trained on USPS only
  on the 5,000 translated MNIST test digits, against their MNIST labels.

Equal budget: each method first runs --calibrate steps to measure its seconds per iteration on this machine;
its run is then given budget / (s/iter) steps, with a schedule sized to them (half the epochs at the base lr,
half of linear decay; the run stops at its step count, where the lr is near zero). The training time each
run really took is reported next to the budget. Peak memory is the training process's peak resident set
(one process: data.workers=0; on a GPU use torch.cuda.max_memory_allocated instead). One thread per run
(OMP_NUM_THREADS=1, train.threads=1) unless --threads says otherwise; runs go one after another,
all eager (train.compile=false: a calibration run is too short to compile, and the timed run must match it).

Nothing here changes with the outcome: the protocol is fixed before the numbers exist. Finished runs
(train.json) and evaluations (run/eval/metrics.json) are reused; pass a new --work for a new measurement.

    python experiments/cut/run.py --h2z ../shared/data/horse2zebra --mnist ../shared/data/mnist_usps \\
        --work /tmp/cut_compare --budget-min 180                     # the comparison (hours)
    python experiments/cut/run.py --h2z ../shared/data/horse2zebra --mnist ../shared/data/mnist_usps \\
        --work /tmp/cut_smoke --smoke                                # a few minutes: proves the pipeline
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
METHODS = ("cyclegan", "cut", "fastcut")
PRESET = {"cyclegan": "paper", "cut": "cut", "fastcut": "fastcut"}


def task_settings(task: str, smoke: bool) -> dict:
    """Config overrides per task (all methods), the test folders and the epoch length in steps."""
    if task == "h2z":
        sets = ["data.load_size=143", "data.crop_size=128", "model.generator=resnet_9blocks"]
        if smoke:  # small networks and few images: the pipeline, not the comparison
            sets = [
                "data.load_size=72",
                "data.crop_size=64",
                "model.generator=resnet_6blocks",
                "model.ngf=16",
                "model.ndf=16",
                "data.max_images=200",
            ]
        return {"sets": sets, "epoch_steps": 200 if smoke else 1334, "size": 64 if smoke else 128}
    sets = [
        "data.channels_a=1",
        "data.channels_b=1",
        "data.preprocess=none",
        "data.load_size=32",
        "data.crop_size=32",
        "data.flip=false",
        "data.max_images=5000",
        "model.generator=resnet_6blocks",
        "model.ngf=32",
        "model.ndf=16",
        "train.batch_size=8",
        "loss.lambda_identity=0",
        "loss.lambda_a=3",
        "loss.lambda_b=3",
    ]
    if smoke:
        sets += ["model.ngf=8", "data.max_images=400"]
    return {"sets": sets, "epoch_steps": 50 if smoke else 625, "size": 32}


def sh(cmd: list[str], log: Path) -> tuple[float, int]:
    """Run cmd with its output to `log`; return (wall seconds, peak resident set in MiB of that process)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n  see {log}")
    return time.monotonic() - t0, usage.ru_maxrss // 1024


def train_cmd(method: str, data: Path, run: Path, sets: list[str], threads: int, *extra: str) -> list[str]:
    flags = [
        a
        for s in sets
        + [
            f"train.threads={threads}",
            "data.workers=0",
            "train.save_every_epochs=0",
            "train.sample_every=0",
            "train.log_every=10",
            # the calibration run is too short to compile; the timed run must run the same code to keep the budget
            "train.compile=false",
        ]
        for a in ("--set", s)
    ]
    return [
        sys.executable,
        "-m",
        "cyclegan",
        "train",
        str(data),
        "--method",
        method,
        "--preset",
        PRESET[method],
        "--run-dir",
        str(run),
        "--no-progress",
        *flags,
        *extra,
    ]


def seconds_per_iter(run: Path, skip: int) -> float:
    """Median s/iter over the log records after the first `skip` steps (start-up excluded)."""
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    rates = [r["it_per_s"] for r in records if "it_per_s" in r and r["step"] > skip]
    return 1.0 / statistics.median(rates)


def run_method(task: str, method: str, data: Path, work: Path, args, settings: dict) -> dict:
    out = work / task / method
    train_file = out / "train.json"
    if not train_file.is_file():
        sets = settings["sets"]
        calib = out / "calibrate"
        if not (calib / "log.jsonl").is_file():
            sh(
                train_cmd(method, data, calib, sets, args.threads, "--max-steps", str(args.calibrate)),
                out / "calibrate.log",
            )
        spi = seconds_per_iter(calib, skip=min(10, args.calibrate // 2))
        steps = max(2, int(args.budget_min * 60 / spi))
        epochs = max(2, math.ceil(steps / settings["epoch_steps"]))
        schedule = [f"optim.n_epochs={epochs // 2}", f"optim.n_epochs_decay={epochs - epochs // 2}"]
        wall, peak = sh(
            train_cmd(method, data, out / "run", sets + schedule, args.threads, "--max-steps", str(steps)),
            out / "train.log",
        )
        record = {
            "method": method,
            "task": task,
            "budget_s": args.budget_min * 60,
            "steps": steps,
            "calibrated_s_per_iter": spi,
            "s_per_iter": seconds_per_iter(out / "run", skip=10),
            "train_wall_s": wall,
            "peak_rss_mib": peak,
            "epochs": epochs,
        }
        train_file.write_text(json.dumps(record, indent=2) + "\n")
    result = json.loads(train_file.read_text())
    result.update(evaluate(task, out / "run", work, args, settings))
    return result


def evaluate(task: str, run: Path, work: Path, args, settings: dict) -> dict:
    """The run's final model scored on the test split, one direction (AtoB); an earlier evaluation is reused."""
    ev = run / "eval"
    if task == "h2z":
        cmd = ["--data", str(args.h2z), "--metrics", "fid,kid", "--size", str(settings["size"])]
    else:
        cmd = [
            "--data",
            str(work / "mnist" / "data"),
            "--metrics",
            "content",
            "--classifier-b",
            str(work / "mnist" / "usps_cnn.safetensors"),
        ]
    if not (ev / "metrics.json").is_file():
        sh(
            [sys.executable, "-m", "cyclegan", "evaluate", str(run), *cmd, "--direction", "AtoB", "--out", str(ev)],
            run.parent / "eval.log",
        )
    values = json.loads((ev / "metrics.json").read_text())["metrics"]["AtoB"]
    keep = ("fid", "kid", "kid_std") if task == "h2z" else ("content_acc", "content_untranslated")
    return {k: values.get(k) for k in keep}


def prepare_mnist(args, work: Path) -> None:
    d = work / "mnist"
    if not (d / "data" / "trainA").is_dir():
        sh(
            [
                sys.executable,
                str(HERE.parent / "mnist_usps" / "prepare.py"),
                "--data",
                str(args.mnist),
                "--out",
                str(d / "data"),
            ],
            d / "prepare.log",
        )
    if not (d / "usps_cnn.safetensors").is_file():
        epochs = ["--epochs", "2"] if args.smoke else []
        sh(
            [
                sys.executable,
                str(HERE.parent / "mnist_usps" / "train_classifier.py"),
                "--data",
                str(d / "data"),
                "--out",
                str(d / "usps_cnn.safetensors"),
                "--augment",
                "none",
                *epochs,
            ],
            d / "classifier.log",
        )


def sample_grid(work: Path, args, settings: dict, out: Path, n: int = 4) -> None:
    """Rows: n test horses; columns: input, CycleGAN, CUT, FastCUT (translated at the evaluation size)."""
    from PIL import Image

    from cyclegan.translate import load_translator

    files = sorted((args.h2z / "testA").iterdir())[:n]
    size = settings["size"]
    translators = [load_translator(work / "h2z" / m / "run", "AtoB", device="cpu") for m in METHODS]
    grid = Image.new("RGB", (size * (1 + len(METHODS)), size * n), "white")
    for row, f in enumerate(files):
        image = Image.open(f).convert("RGB").resize((size, size), Image.BICUBIC)
        for col, im in enumerate([image] + [t.image(image) for t in translators]):
            grid.paste(im, (col * size, row * size))
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)


def table(results: list[dict]) -> str:
    lines = [
        "| task | method | steps | s/iter | train time (s) | peak RSS (MiB) | FID | KID x 1000 | content acc. |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        fid = f"{r['fid']:.1f}" if r.get("fid") is not None else ""
        kid = f"{1000 * r['kid']:.1f} +- {1000 * (r.get('kid_std') or 0):.1f}" if r.get("kid") is not None else ""
        acc = f"{100 * r['content_acc']:.1f}%" if r.get("content_acc") is not None else ""
        lines.append(
            f"| {r['task']} | {r['method']} | {r['steps']} | {r['s_per_iter']:.3f} | "
            f"{r['train_wall_s']:.0f} | "
            f"{r['peak_rss_mib']} | {fid} | {kid} | {acc} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--h2z", type=Path, help="horse2zebra folder (trainA, trainB, testA, testB); omit to skip the task")
    p.add_argument("--mnist", type=Path, help="mnist_usps folder (t10k-*.gz, usps.npz); omit to skip the task")
    p.add_argument("--work", type=Path, required=True, help="output folder (runs, evaluations, results.json, table.md)")
    p.add_argument("--budget-min", type=float, default=180.0, help="training wall-clock minutes per method and task")
    p.add_argument("--calibrate", type=int, default=40, help="steps of the timing run that sizes each budget")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per run (train.threads)")
    p.add_argument("--grid", type=Path, help="write the horse2zebra sample grid here (PNG)")
    p.add_argument("--smoke", action="store_true", help="tiny networks, data and budget (set --budget-min too)")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    results = []
    for task, data in (("h2z", args.h2z), ("mnist", args.mnist)):
        if data is None:
            continue
        settings = task_settings(task, args.smoke)
        if task == "mnist":
            prepare_mnist(args, args.work)
            data = args.work / "mnist" / "data"
        for method in METHODS:
            results.append(run_method(task, method, data, args.work, args, settings))
            print(json.dumps(results[-1]), flush=True)
        if task == "h2z" and args.grid:
            sample_grid(args.work, args, settings, args.grid)
    (args.work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    text = table(results)
    (args.work / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
