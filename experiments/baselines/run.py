"""The paper's baseline comparison (CycleGAN Sec. 5.1.2, Tables 2-3) on facades labels <-> photo.

One command trains every method, evaluates it on the 106 facades test images, and prints one table in
the layout of the paper's Tables 2 and 3:

    rows:    CoGAN, BiGAN/ALI, SimGAN, Feature loss + GAN, CycleGAN (ours), pix2pix (paired)
    columns: photo->labels per-pixel accuracy, per-class accuracy, class IoU; labels->photo FID

The paper scores labels->photo with the FCN-score (a Cityscapes segmenter), which has no facades
counterpart here; FID on the translated photos takes its place (lower is better).

Data, domains and scoring are the ablation experiment's (experiments/ablations/run.py, whose helpers
this script imports so both tables are measured the same way): A = photos, B = label maps, unpaired
trainA/trainB folders split from the side-by-side files under --work; photo->labels is AtoB; outputs are
mapped to classes by nearest facades palette colour, scored over one confusion matrix for the test set;
FID compares the 106 labels->photo outputs with the 106 real test photos (biased upward at 106 images:
read it relative to the reference rows). pix2pix trains once per direction on the paired files and is
evaluated in train mode, as the reference's test.py.

CPU-friendly scale (the defaults): 64x64 crops from 72x72, ResNet-6 generators, ngf 16, ndf 32, 200
training images, 2 + 2 epochs (800 steps at batch 1), identity loss off, one thread. CoGAN is a
mini-batch GAN from noise (and uses batch norm): it trains with batch --latent-batch (4) for as many
optimisation steps as the others (epochs multiplied by the batch size); its translations search z with
--latent-steps (100; model.latent_steps is 200 elsewhere) Adam steps per image. `--paper-scale` is
256x256 with the paper's networks and 100 + 100 epochs, for a GPU. Finished runs and evaluations are reused;
unfinished runs resume.

    python experiments/baselines/run.py --data ../shared/data/facades --work /tmp/baselines
    python experiments/baselines/run.py --data ../shared/data/facades --work /data/baselines --paper-scale
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from cyclegan.config import build_config
from cyclegan.data.aligned import split_aligned_folder
from cyclegan.train import train
from cyclegan.translate import load_translator, translate_files


def _load_ablations():
    """experiments/ablations/run.py as a module (data split, palette scoring, FID helpers)."""
    path = Path(__file__).resolve().parents[1] / "ablations" / "run.py"
    spec = importlib.util.spec_from_file_location("ablations_run", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


abl = _load_ablations()
BOTH = ("AtoB", "BtoA")


@dataclass(frozen=True)
class Variant:
    name: str  # run folder and results key
    label: str  # row label (the paper's wording)
    presets: tuple  # config presets
    directions: tuple  # AtoB = photo->labels, BtoA = labels->photo
    paired: bool = False
    latent: bool = False  # a mini-batch GAN from noise (CoGAN / vector BiGAN): --latent-batch, equal steps


VARIANTS = [
    Variant("cogan", "CoGAN", ("cogan",), BOTH, latent=True),
    Variant("bigan", "BiGAN/ALI", ("bigan",), BOTH),
    Variant("simgan", "SimGAN", ("simgan",), BOTH),
    Variant("feature_gan", "Feature loss + GAN", ("feature_gan",), BOTH),
    Variant("cyclegan", "CycleGAN (ours)", ("paper",), BOTH),
    Variant("pix2pix_AtoB", "pix2pix (paired)", ("pix2pix",), ("AtoB",), paired=True),
    Variant("pix2pix_BtoA", "pix2pix (paired)", ("pix2pix",), ("BtoA",), paired=True),
    # Not in the paper's table; run it with --variants ...,bigan_latent
    Variant("bigan_latent", "BiGAN, vector latent per domain", ("bigan_latent",), BOTH, latent=True),
]
DEFAULT = [v.name for v in VARIANTS if v.name != "bigan_latent"]
ROWS = ["cogan", "bigan", "bigan_latent", "simgan", "feature_gan", "cyclegan", "pix2pix"]
BASELINES = ["cogan", "bigan", "simgan", "feature_gan"]
METRICS = {"per_pixel_acc": 1, "per_class_acc": 1, "class_iou": 1, "fid": -1}  # +1: higher is better


def overrides_for(v: Variant, args, data_root: Path) -> list[str]:
    common, unpaired_extra = abl.scale_overrides(args)
    if v.paired:
        out = common + [f"data.root={args.data}", f"data.direction={v.directions[0]}"]
    else:
        out = common + unpaired_extra + [f"data.root={data_root}"]
    if v.latent and not args.paper_scale:
        b = args.latent_batch
        out += [
            f"train.batch_size={b}",
            f"optim.n_epochs={args.epochs * b}",
            f"optim.n_epochs_decay={args.epochs_decay * b}",
            f"model.latent_steps={args.latent_steps}",
        ]
    return out + [
        "train.progress=false",
        "train.sample_every=0",
        "train.save_every_epochs=0",
        f"train.log_every={args.log_every}",
        f"train.seed={args.seed}",
    ]


def train_variant(v: Variant, args, data_root: Path, work: Path) -> float:
    """Train (or resume, or reuse) one method; returns training seconds (0 when reused)."""
    run_dir = work / "runs" / v.name
    if abl.finished(run_dir):
        return 0.0
    cfg = build_config(list(v.presets), [], overrides_for(v, args, data_root))
    resume = (run_dir / "checkpoints" / "latest.state.safetensors").is_file()
    print(
        f"[{v.name}] training ({'resuming' if resume else 'new'}): presets {','.join(v.presets)}, "
        f"batch {cfg.train.batch_size}, {cfg.optim.n_epochs}+{cfg.optim.n_epochs_decay} epochs",
        flush=True,
    )
    result = train(cfg, run_dir, resume=resume)
    print(f"[{v.name}] trained {result.state.step} steps in {result.seconds / 60:.1f} min", flush=True)
    return result.seconds


def evaluate_variant(v: Variant, args, work: Path, test: dict) -> dict:
    """Translate the test inputs both ways (as the ablation experiment) and score them."""
    run_dir = work / "runs" / v.name
    out: dict = {}
    s = args.size
    for direction in v.directions:
        torch.manual_seed(args.seed)  # pix2pix's test-time dropout
        translator = load_translator(run_dir, direction, args.device)  # the method's default test mode
        key = "photo2labels" if direction == "AtoB" else "labels2photo"
        dst = work / "eval" / v.name / key
        src = test["photos"] if direction == "AtoB" else test["labels"]
        # batch 1 (as the ablations; pix2pix's train-mode batch norm needs it); latent searches are per
        # image (Adam on each z independently), so batching them only saves time
        batch = 16 if v.latent else 1
        translate_files(translator, [str(src)], dst, size=f"{s}x{s}", batch_size=batch, gallery=True, progress=False)
        if direction == "AtoB":
            out.update(abl.seg_scores(test["truths"], abl.predicted_labels(dst)))
        else:
            out["fid"] = test["fid"](dst)
    return out


def table(results: dict, references: dict) -> str:
    fmt = abl.fmt
    head = (
        "| Method | photo→labels per-pixel acc. | per-class acc. | class IoU | labels→photo FID ↓ | train min |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: |\n"
    )
    labels = {v.name: v.label for v in VARIANTS} | {"pix2pix": "pix2pix (paired)"}
    rows = []
    for name in ROWS:
        r = results.get(name)
        if r is not None:
            rows.append(
                f"| {labels[name]} | {fmt(r.get('per_pixel_acc'))} | {fmt(r.get('per_class_acc'))} | "
                f"{fmt(r.get('class_iou'))} | {fmt(r.get('fid'), 1)} | {fmt(r.get('train_seconds', 0) / 60, 1)} |"
            )
    for label, r in references.items():
        rows.append(
            f"| *{label}* | {fmt(r.get('per_pixel_acc'))} | {fmt(r.get('per_class_acc'))} | "
            f"{fmt(r.get('class_iou'))} | {fmt(r.get('fid'), 1)} | |"
        )
    return head + "\n".join(rows) + "\n"


def findings(results: dict) -> list[str]:
    """The paper's claim, CycleGAN ahead of all four baselines, checked metric by metric."""
    full = results.get("cyclegan")
    if not full:
        return []
    lines, all_lead = [], True
    for name in BASELINES:
        r = results.get(name)
        if not r:
            all_lead = False
            continue
        wins = [m for m, sign in METRICS.items() if sign * (full[m] - r[m]) > 0]
        all_lead &= len(wins) == len(METRICS)
        lines.append(f"CycleGAN vs {name}: CycleGAN better on {len(wins)}/4 ({', '.join(wins) or 'none'})")
    lines.append(f"CycleGAN ahead of all four baselines on all four scores: {'yes' if all_lead else 'no'}")
    p = results.get("pix2pix")
    if p and all(m in p for m in METRICS):
        wins = [m for m, sign in METRICS.items() if sign * (p[m] - full[m]) > 0]
        lines.append(f"pix2pix (paired) vs CycleGAN: pix2pix better on {len(wins)}/4 ({', '.join(wins) or 'none'})")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument(
        "--data", type=Path, required=True, help="the facades folder (train/, test/, val/ of side-by-side files)"
    )
    p.add_argument("--work", type=Path, required=True, help="working folder: split data, runs, translations, results")
    p.add_argument(
        "--paper-scale",
        action="store_true",
        help="256x256, ngf 64, the paper's networks, 400 images, 100+100 epochs (GPU)",
    )
    p.add_argument(
        "--variants",
        default=",".join(DEFAULT),
        help="comma-separated subset of the methods (default: %(default)s; also: bigan_latent)",
    )
    p.add_argument("--size", type=int, default=64, help="training crop and evaluation size (reduced scale; default 64)")
    p.add_argument("--ngf", type=int, default=16, help="generator width (reduced scale; default 16)")
    p.add_argument("--ndf", type=int, default=32, help="discriminator width (reduced scale; default 32)")
    p.add_argument("--images", type=int, default=200, help="training images (reduced scale; default 200)")
    p.add_argument("--epochs", type=int, default=2, help="epochs at the initial lr (reduced scale; default 2)")
    p.add_argument("--epochs-decay", type=int, default=2, help="epochs of linear decay (reduced scale; default 2)")
    p.add_argument(
        "--latent-batch", type=int, default=4, help="batch size of CoGAN / vector BiGAN (reduced scale; default 4)"
    )
    p.add_argument(
        "--latent-steps",
        type=int,
        default=100,
        help="CoGAN's latent-search steps per image (reduced scale; default 100)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: the machine is shared)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--reevaluate", action="store_true", help="evaluate again even where results exist")
    args = p.parse_args(argv)
    if args.paper_scale:
        args.size = 256
    torch.set_num_threads(args.threads)
    t0 = time.time()
    work = args.work.resolve()
    names = [n for n in args.variants.split(",") if n]
    unknown = set(names) - {v.name for v in VARIANTS}
    if unknown:
        p.error(f"unknown methods {sorted(unknown)}; choose from {[v.name for v in VARIANTS]}")
    if not (args.data / "train").is_dir() or not (args.data / "test").is_dir():
        p.error(f"{args.data} has no train/ and test/ folders of side-by-side facades images")

    data_root = abl.prepare_data(args.data, work)
    s = args.size
    real_photos = abl.resize_folder(data_root / "testA", work / "data" / f"test_photos_{s}", s)
    real_labels = abl.resize_folder(data_root / "testB", work / "data" / f"test_labels_{s}", s)
    test = {
        "photos": data_root / "testA",
        "labels": data_root / "testB",
        "truths": abl.ground_truth_labels(data_root / "testB", s),
        "fid": abl.FID(real_photos, work / "cache", args.device),
    }

    results_path = work / "results.json"
    saved = json.loads(results_path.read_text()) if results_path.is_file() else {}
    results = saved.get("variants", {})
    for v in VARIANTS:
        if v.name not in names:
            continue
        seconds = train_variant(v, args, data_root, work)
        prev = results.get(v.name, {})
        if prev and not args.reevaluate and seconds == 0.0:
            print(f"[{v.name}] reusing results", flush=True)
            continue
        t = time.time()
        scores = evaluate_variant(v, args, work, test)
        results[v.name] = {
            **scores,
            "train_seconds": seconds or prev.get("train_seconds", 0.0),
            "eval_seconds": time.time() - t,
        }
        print(
            f"[{v.name}] {json.dumps({k: round(x, 4) for k, x in scores.items()})} "
            f"(evaluated in {time.time() - t:.0f} s)",
            flush=True,
        )
        saved["variants"] = results
        results_path.write_text(json.dumps(saved, indent=2) + "\n")

    merged = dict(results)  # pix2pix is one row: photo->labels from its AtoB model, FID from its BtoA model
    if "pix2pix_AtoB" in results or "pix2pix_BtoA" in results:
        a, b = results.get("pix2pix_AtoB", {}), results.get("pix2pix_BtoA", {})
        merged["pix2pix"] = {
            **{k: a[k] for k in ("per_pixel_acc", "per_class_acc", "class_iou") if k in a},
            **({"fid": b["fid"]} if "fid" in b else {}),
            "train_seconds": a.get("train_seconds", 0) + b.get("train_seconds", 0),
        }
    references = saved.get("references")
    if references is None or args.reevaluate:
        truths = test["truths"]
        split_aligned_folder(
            args.data / "val", work / "data" / "facades_val" / "A", work / "data" / "facades_val" / "B"
        )
        val_photos = abl.resize_folder(work / "data" / "facades_val" / "A", work / "data" / f"val_photos_{s}", s)
        references = {
            "real val photos (FID floor at this size and count)": {"fid": test["fid"](val_photos, use_cache=True)},
            "no translation (input as output)": {
                **abl.seg_scores(truths, abl.predicted_labels(real_photos)),
                "fid": test["fid"](real_labels, use_cache=True),
            },
            "all pixels the majority class": abl.majority_baseline(
                [truths[n] for n in sorted(truths)], abl.NUM_CLASSES
            ).to_dict(),
        }
        saved = {**saved, "variants": results, "references": references}
        results_path.write_text(json.dumps(saved, indent=2) + "\n")
    setting = (
        "paper scale: 256x256, ngf 64, 400 images, 100+100 epochs"
        if args.paper_scale
        else f"{s}x{s} crops, ngf {args.ngf}, ndf {args.ndf}, {args.images} images, {args.epochs}+{args.epochs_decay} "
        f"epochs (CoGAN: batch {args.latent_batch}, same number of steps), {args.threads} thread(s)"
    )
    report = (
        f"facades, {setting}; evaluated on the 106 test images at {s}x{s}\n\n{table(merged, references)}\n"
        + "\n".join(f"- {line}" for line in findings(merged))
        + f"\n\ntotal wall time of this command: {(time.time() - t0) / 60:.1f} min\n"
    )
    (work / "table.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
