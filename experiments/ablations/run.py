"""The paper's ablation table (CycleGAN Sec. 5.1.4, Tables 4-5) plus pix2pix, on facades labels <-> photo.

One command trains every variant, evaluates it on the 106 test images, and prints one table:

    rows:    CycleGAN (full), GAN alone, Cycle alone, GAN + forward cycle, GAN + backward cycle, pix2pix
    columns: photo->labels per-pixel accuracy, per-class accuracy, class IoU; labels->photo FID

Domains: A = photos (left halves of the facades files), B = label maps (right halves). CycleGAN variants
train one model on unpaired trainA/trainB folders split from the facades files (written under --work,
never into the repository); "forward cycle" is F(G(x)) ~ x with x a photo. pix2pix trains on the paired
files, once per direction (photo->labels is AtoB, labels->photo is BtoA), and is evaluated in train mode
(dropout on, batch statistics), as the reference's test.py does.

Evaluation (`--size S`): test inputs are resized to SxS (bicubic); photo->labels outputs are mapped to
class ids by nearest facades palette colour and compared with the ground-truth label maps (class ids at
256x256, nearest-neighbour resized to SxS), over one confusion matrix for the whole test set; FID compares
the 106 labels->photo outputs with the 106 real test photos resized to SxS (TF-Inception pool3 features,
pytorch-fid protocol; very biased upward at 106 images, so read it only relative to the reference rows).

The default scale fits a shared CPU in under an hour: 64x64 crops (from 72x72), ResNet-6 generators with
ngf 16 (ndf 32), 200 training images, 4 + 4 epochs (1,600 steps at batch 1), identity loss off for every CycleGAN
variant (the paper's
ablations do not use it), one intra-op thread. `--paper-scale` is the paper's setting for a GPU: 256x256
crops from 286, ResNet-9 (CycleGAN) and the pix2pix preset's U-Net 256, ngf 64, all 400 images,
100 + 100 epochs. Finished runs and evaluations are reused, so the command can be re-run after an
interruption (unfinished runs resume).

    python experiments/ablations/run.py --data ../shared/data/facades --work /tmp/ablations
    python experiments/ablations/run.py --data ../shared/data/facades --work /data/ablations --paper-scale
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from cyclegan import checkpoint as ckpt
from cyclegan.config import build_config
from cyclegan.data.aligned import split_aligned_folder
from cyclegan.data.files import find_images, read_image
from cyclegan.metrics import (
    FACADES_PALETTE,
    colors_to_labels,
    feature_statistics,
    folder_features,
    frechet_distance,
    segmentation_scores,
)
from cyclegan.metrics.features import InceptionLoader
from cyclegan.metrics.segmentation import majority_baseline
from cyclegan.train import train
from cyclegan.translate import load_translator, save_image, translate_files

NUM_CLASSES = len(FACADES_PALETTE)


@dataclass(frozen=True)
class Variant:
    name: str  # run folder and results key
    label: str  # row label (the paper's wording)
    presets: tuple  # config presets
    directions: tuple  # which of photo2labels (AtoB) / labels2photo (BtoA) this run serves
    paired: bool = False


CYCLEGAN_BOTH = ("AtoB", "BtoA")
VARIANTS = [
    Variant("cyclegan", "CycleGAN (full)", ("paper",), CYCLEGAN_BOTH),
    Variant("gan_only", "GAN alone", ("paper", "gan_only"), CYCLEGAN_BOTH),
    Variant("cycle_only", "Cycle alone", ("paper", "cycle_only"), CYCLEGAN_BOTH),
    Variant("gan_forward", "GAN + forward cycle", ("paper", "gan_forward"), CYCLEGAN_BOTH),
    Variant("gan_backward", "GAN + backward cycle", ("paper", "gan_backward"), CYCLEGAN_BOTH),
    Variant("pix2pix_AtoB", "pix2pix (paired)", ("pix2pix",), ("AtoB",), paired=True),
    Variant("pix2pix_BtoA", "pix2pix (paired)", ("pix2pix",), ("BtoA",), paired=True),
]


def scale_overrides(args) -> tuple[list[str], list[str]]:
    """(overrides for every run, extra overrides for CycleGAN runs)."""
    if args.paper_scale:
        common = [
            "data.load_size=286",
            "data.crop_size=256",
            "model.ngf=64",
            "model.ndf=64",
            "optim.n_epochs=100",
            "optim.n_epochs_decay=100",
            f"train.device={args.device}",
        ]
        return common, ["model.generator=resnet_9blocks", "loss.lambda_identity=0"]
    load = round(args.size * 286 / 256)
    common = [
        f"data.load_size={load}",
        f"data.crop_size={args.size}",
        f"model.ngf={args.ngf}",
        f"model.ndf={args.ndf}",
        f"data.max_images={args.images}",
        f"optim.n_epochs={args.epochs}",
        f"optim.n_epochs_decay={args.epochs_decay}",
        # U-Nets need sides that are multiples of 2^levels; at small sizes both methods use ResNet-6
        "model.generator=resnet_6blocks",
        "data.workers=0",
        f"train.device={args.device}",
    ]
    return common, ["loss.lambda_identity=0"]


def prepare_data(facades: Path, work: Path) -> Path:
    """Split the side-by-side files into unpaired trainA/trainB/testA/testB folders (photos | labels)."""
    root = work / "data" / "facades_unpaired"
    for phase in ("train", "test"):
        split_aligned_folder(facades / phase, root / f"{phase}A", root / f"{phase}B")
    return root


def resize_folder(src: Path, dst: Path, size: int) -> Path:
    """Every image of src resized to size x size (bicubic, antialiased: as `translate --size`) as PNG."""
    for f in find_images(src):
        target = dst / f.relative_to(src).with_suffix(".png")
        if not target.is_file():
            image = TF.resize(read_image(f, 3), [size, size], interpolation=InterpolationMode.BICUBIC, antialias=True)
            save_image(image, target)
    return dst


def ground_truth_labels(label_dir: Path, size: int) -> dict[str, np.ndarray]:
    """name -> (size, size) class ids: palette ids at full resolution, nearest-neighbour resized."""
    truths = {}
    for f in find_images(label_dir):
        ids = torch.from_numpy(colors_to_labels(read_image(f, 3).permute(1, 2, 0).numpy(), FACADES_PALETTE))
        if ids.shape != (size, size):
            ids = F.interpolate(ids[None, None].float(), size=(size, size), mode="nearest")[0, 0].long()
        truths[f.stem] = ids.numpy()
    return truths


def predicted_labels(folder: Path) -> dict[str, np.ndarray]:
    return {
        f.stem: colors_to_labels(read_image(f, 3).permute(1, 2, 0).numpy(), FACADES_PALETTE)
        for f in find_images(folder)
    }


def seg_scores(truths: dict[str, np.ndarray], preds: dict[str, np.ndarray]) -> dict[str, float]:
    names = sorted(truths)
    missing = [n for n in names if n not in preds]
    assert not missing, f"no prediction for {missing[:3]}"
    return segmentation_scores([truths[n] for n in names], [preds[n] for n in names], NUM_CLASSES).to_dict()


class FID:
    """FID of image folders against one real folder; the Inception network is loaded once."""

    def __init__(self, real: Path, cache: Path, device: str):
        self.model = InceptionLoader(None, None if device == "auto" else device, cache)
        self.cache = cache
        self.real = feature_statistics(folder_features(real, self.model, cache=cache))

    def __call__(self, folder: Path, use_cache: bool = False) -> float:
        feats = folder_features(folder, self.model, cache=self.cache, use_cache=use_cache)
        return float(frechet_distance(*feature_statistics(feats), *self.real))


def finished(run_dir: Path) -> bool:
    path = run_dir / "checkpoints" / "latest.model.safetensors"
    if not path.is_file():
        return False
    _, meta = ckpt.load_model(path, "cpu")
    cfg = meta["config"]["optim"]
    return meta.get("epoch", 0) >= cfg["n_epochs"] + cfg["n_epochs_decay"]


def train_variant(v: Variant, args, data_root: Path, work: Path) -> float:
    """Train (or resume, or reuse) one variant; returns training seconds (0 when reused)."""
    run_dir = work / "runs" / v.name
    if finished(run_dir):
        return 0.0
    common, cyclegan_extra = scale_overrides(args)
    if v.paired:
        overrides = common + [f"data.root={args.data}", f"data.direction={v.directions[0]}"]
    else:
        overrides = common + cyclegan_extra + [f"data.root={data_root}"]
    overrides += [
        "train.progress=false",
        "train.sample_every=0",
        "train.save_every_epochs=0",
        f"train.log_every={args.log_every}",
        f"train.seed={args.seed}",
    ]
    cfg = build_config(list(v.presets), [], overrides)
    resume = (run_dir / "checkpoints" / "latest.state.safetensors").is_file()
    print(f"[{v.name}] training ({'resuming' if resume else 'new'}): presets {','.join(v.presets)}", flush=True)
    result = train(cfg, run_dir, resume=resume)
    print(f"[{v.name}] trained {result.state.step} steps in {result.seconds / 60:.1f} min", flush=True)
    return result.seconds


def evaluate_variant(v: Variant, args, work: Path, test: dict) -> dict:
    """Translate the test inputs with the variant's model(s) and score them."""
    run_dir = work / "runs" / v.name
    out: dict = {}
    size = str(args.eval_size)
    for direction in v.directions:
        torch.manual_seed(args.seed)  # pix2pix's test-time dropout
        translator = load_translator(run_dir, direction, args.device)  # the method's default test mode
        key = "photo2labels" if direction == "AtoB" else "labels2photo"
        dst = work / "eval" / v.name / key
        src = test["photos"] if direction == "AtoB" else test["labels"]
        translate_files(translator, [str(src)], dst, size=f"{size}x{size}", batch_size=1, gallery=True, progress=False)
        if direction == "AtoB":
            out.update(seg_scores(test["truths"], predicted_labels(dst)))
        else:
            out["fid"] = test["fid"](dst)
    return out


def fmt(x, digits=3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def table(results: dict, references: dict) -> str:
    head = (
        "| Loss | photo→labels per-pixel acc. | per-class acc. | class IoU | labels→photo FID ↓ | train min |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: |\n"
    )
    rows = []
    order = ["cycle_only", "gan_only", "gan_forward", "gan_backward", "cyclegan", "pix2pix"]
    labels = {v.name: v.label for v in VARIANTS} | {"pix2pix": "pix2pix (paired)"}
    for name in order:
        r = results.get(name)
        if r is None:
            continue
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
    """The paper's two claims, checked on this run's numbers (higher acc/IoU better, lower FID better)."""
    lines = []
    full = results.get("cyclegan")
    better = {"per_pixel_acc": 1, "per_class_acc": 1, "class_iou": 1, "fid": -1}
    if full:
        for name in ("gan_only", "cycle_only", "gan_forward", "gan_backward"):
            r = results.get(name)
            if r:
                wins = [m for m, s in better.items() if s * (full[m] - r[m]) > 0]
                lines.append(f"full vs {name}: full better on {len(wins)}/4 ({', '.join(wins) or 'none'})")
        p = results.get("pix2pix")
        if p and all(m in p for m in better):
            wins = [m for m, s in better.items() if s * (p[m] - full[m]) > 0]
            lines.append(f"pix2pix vs full: pix2pix better on {len(wins)}/4 ({', '.join(wins) or 'none'})")
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
        help="256x256, ngf 64, ResNet-9 / U-Net 256, 400 images, 100+100 epochs (GPU)",
    )
    p.add_argument(
        "--variants", default=",".join(v.name for v in VARIANTS), help="comma-separated subset of: %(default)s"
    )
    p.add_argument("--size", type=int, default=64, help="training crop (reduced scale; default 64)")
    p.add_argument("--ngf", type=int, default=16, help="generator width (reduced scale; default 16)")
    p.add_argument("--ndf", type=int, default=32, help="discriminator width (reduced scale; default 32)")
    p.add_argument("--images", type=int, default=200, help="training images (reduced scale; default 200)")
    p.add_argument("--epochs", type=int, default=4, help="epochs at the initial lr (reduced scale; default 4)")
    p.add_argument("--epochs-decay", type=int, default=4, help="epochs of linear decay (reduced scale; default 4)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: the machine is shared)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--reevaluate", action="store_true", help="evaluate again even where results exist")
    args = p.parse_args(argv)
    if args.paper_scale:
        args.size = 256
    args.eval_size = args.size
    torch.set_num_threads(args.threads)
    t0 = time.time()
    work = args.work.resolve()
    names = [n for n in args.variants.split(",") if n]
    unknown = set(names) - {v.name for v in VARIANTS}
    if unknown:
        p.error(f"unknown variants {sorted(unknown)}; choose from {[v.name for v in VARIANTS]}")
    if not (args.data / "train").is_dir() or not (args.data / "test").is_dir():
        p.error(f"{args.data} has no train/ and test/ folders of side-by-side facades images")

    data_root = prepare_data(args.data, work)
    s = args.eval_size
    real_photos = resize_folder(data_root / "testA", work / "data" / f"test_photos_{s}", s)
    real_labels = resize_folder(data_root / "testB", work / "data" / f"test_labels_{s}", s)
    cache = work / "cache"
    test = {
        "photos": data_root / "testA",
        "labels": data_root / "testB",
        "truths": ground_truth_labels(data_root / "testB", s),
        "fid": FID(real_photos, cache, args.device),
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
        print(f"[{v.name}] {json.dumps({k: round(x, 4) for k, x in scores.items()})}", flush=True)
        results_path.write_text(json.dumps({**saved, "variants": results}, indent=2) + "\n")

    # pix2pix is one row: photo->labels from the AtoB model, FID from the BtoA model
    merged = dict(results)
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
        names_sorted = sorted(truths)
        split_aligned_folder(
            args.data / "val", work / "data" / "facades_val" / "A", work / "data" / "facades_val" / "B"
        )
        val_photos = resize_folder(work / "data" / "facades_val" / "A", work / "data" / f"val_photos_{s}", s)
        references = {
            "real val photos (FID floor at this size and count)": {"fid": test["fid"](val_photos, use_cache=True)},
            "no translation (input as output)": {
                **seg_scores(truths, predicted_labels(real_photos)),
                "fid": test["fid"](real_labels, use_cache=True),
            },
            "all pixels the majority class": majority_baseline(
                [truths[n] for n in names_sorted], NUM_CLASSES
            ).to_dict(),
        }
        saved = {**saved, "variants": results, "references": references}
        results_path.write_text(json.dumps(saved, indent=2) + "\n")
    text = table(merged, references)
    setting = (
        "paper scale: 256x256, ngf 64, 400 images, 100+100 epochs"
        if args.paper_scale
        else f"{args.size}x{args.size} crops, ngf {args.ngf}, ndf {args.ndf}, {args.images} images, "
        f"{args.epochs}+{args.epochs_decay} epochs, {args.threads} thread(s)"
    )
    report = (
        f"facades, {setting}; evaluated on the 106 test images at {s}x{s}\n\n{text}\n"
        + "\n".join(f"- {line}" for line in findings(merged))
        + f"\n\ntotal wall time of this command: {(time.time() - t0) / 60:.1f} min\n"
    )
    (work / "table.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
