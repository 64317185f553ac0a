"""A trained model as a self-describing folder that can be passed around (and pushed to the Hugging Face hub).

The layout follows the hub's convention for models saved with `save_pretrained` (PyTorchModelHubMixin):

    model.safetensors   the inference generators' weights, with the metadata that rebuilds them (method, network
                        specs, directions, the training config): cyclegan's model-snapshot format, so every loader
                        of the package reads it (`load_translator(DIR)`, `cyclegan translate -c DIR`, `cyclegan.load`)
    config.json         the same metadata as plain JSON, for people and the hub's config viewer
    README.md           the model card: YAML metadata (license, library_name, tags, pipeline_tag) and what the
                        model is, what it was trained on, how long, how good, and how to load it
    samples.png         a few test images translated by this model

Loading needs the folder alone: no run directory, no network, no huggingface_hub. `huggingface_hub.upload_folder`
pushes it as is (`cyclegan package ... --push USER/NAME` does that when huggingface_hub is installed).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import machine
from .data.files import find_images
from .errors import UserError

WEIGHTS, CONFIG, CARD, SAMPLES = "model.safetensors", "config.json", "README.md", "samples.png"
PACKAGE_FORMAT = "cyclegan-package/1"
FIGURE_KEYS = (
    "fid",
    "kid",
    "kid_std",
    "fcn_per_pixel_acc",
    "fcn_per_class_acc",
    "fcn_class_iou",
    "content_acc",
    "content_untranslated",
    "per_pixel_acc",
    "per_class_acc",
    "class_iou",
    "cycle_l1",
)


def package_model(
    source: str | Path, out: str | Path, *, license: str = "other", name: str = "", sample_images: int = 4
) -> Path:
    """Write the package folder `out` for a run directory or a `.model/.state.safetensors` checkpoint; returns out.

    license: the card's licence identifier (the hub's list: mit, apache-2.0, cc-by-4.0, other...); the weights'
    terms follow the training data's, so it is the packager's call. name: the model's title (default: the run's).
    """
    path = ckpt.resolve_checkpoint(source, "model")
    if path.name == WEIGHTS and (path.parent / CONFIG).is_file():
        raise UserError(f"{source} is already a package folder; copy it instead")
    tree, meta = ckpt.load_model(path)
    meta = {k: v for k, v in meta.items() if k != "format"}
    tree = {k: tree[k] for k in meta["specs"]}  # the inference networks only (a resume state holds all of them)
    run = run_directory(path)
    out = Path(out)
    ours = (WEIGHTS, CONFIG, CARD, SAMPLES)
    if out.exists() and (not out.is_dir() or any(p.name not in ours for p in out.iterdir())):
        raise UserError(f"--out {out} exists and holds other files; give a new folder (or an earlier package's)")
    out.mkdir(parents=True, exist_ok=True)
    ckpt.save_tree(out / WEIGHTS, tree, {"format": ckpt.FORMAT_MODEL, **meta})
    info = describe(meta, run, path)
    config = {"format": PACKAGE_FORMAT, "library_name": "cyclegan", **meta, "training": info}
    (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    samples = write_samples(out, meta, n=sample_images) or copy_run_samples(run, out / SAMPLES)
    (out / CARD).write_text(
        model_card(
            meta, info, license=license, name=name or (run.name if run else path.stem), samples=samples is not None
        )
    )
    return out


def run_directory(checkpoint: Path) -> Path | None:
    """The run a checkpoint file lies in (RUN/checkpoints/X.safetensors), when it has the run's files."""
    run = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    return run if (run / "config.json").is_file() or (run / "log.jsonl").is_file() else None


def _count(folder: Path) -> int | None:
    try:
        return len(find_images(folder))
    except UserError:  # moved, deleted or empty since training
        return None


def data_folders(cfg: dict) -> dict[str, dict]:
    """{role: {"folder": name, "images": count or None}} of the training (and test) data the config names."""
    d = cfg["data"]
    root = Path(d["root"]) if d["root"] else None
    folders = {}
    if d["dir_a"] or d["dir_b"] or (root and (root / "trainA").is_dir()) or not (root and (root / "train").is_dir()):
        candidates = {
            "train A": Path(d["dir_a"]) if d["dir_a"] else root and root / "trainA",
            "train B": Path(d["dir_b"]) if d["dir_b"] else root and root / "trainB",
            "test A": root and root / "testA",
            "test B": root and root / "testB",
        }
    else:  # paired data (pix2pix): root/train holds A|B side by side
        candidates = {"train (pairs)": root / "train", "test (pairs)": root / "test"}
    for role, folder in candidates.items():
        if folder is not None and (role.startswith("train") or folder.is_dir()):
            folders[role] = {"folder": f"{folder.parent.name}/{folder.name}", "images": _count(folder)}
    if d["max_images"]:
        for role, found in folders.items():
            if role.startswith("train") and found["images"]:
                found["images"] = min(found["images"], d["max_images"])
    return folders


def describe(meta: dict, run: Path | None, checkpoint: Path) -> dict:
    """Data, length and figures of the run that made this checkpoint (what the model card reports)."""
    from .plots import read_log

    records = read_log(run / "log.jsonl") if run else []
    wall = [r["wall_s"] for r in records if isinstance(r.get("wall_s"), (int, float)) and r["step"] <= meta["step"]]
    return {
        "data": data_folders(meta["config"]),
        "steps": meta.get("step"),
        "epochs": meta.get("epoch"),
        "wall_seconds": round(wall[-1], 1) if wall else None,
        "evaluations": evaluations(run, meta, checkpoint) if run else [],
        "machines": [r for r in machine.read(run) if r.get("step", 0) < max(meta["step"], 1)] if run else [],
        "packaged": time.strftime("%Y-%m-%d"),
    }


def evaluations(run: Path, meta: dict, checkpoint: Path) -> list[dict]:
    """The figures the run has for this model: `cyclegan evaluate` reports (RUN/eval/*/metrics.json) of this
    checkpoint's step, and the in-training evaluation's last values."""
    found = []
    for report_file in sorted((run / "eval").glob("*/metrics.json")):
        try:
            report = json.loads(report_file.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if report.get("step") != meta.get("step") or not report.get("metrics"):
            continue
        command = (
            f"cyclegan evaluate {report['checkpoint']} --test-a {report['test_a']} --test-b {report['test_b']} "
            f"--metrics {','.join(report.get('metrics_requested', []))}"
            + (f" --size {report['size']}" if report.get("size") else "")
        )
        found.append(
            {
                "source": f"{report_file.parent.relative_to(run).as_posix()}/metrics.json",
                "command": command,
                "images": report.get("images"),
                "values": {
                    d: {k: v for k, v in vals.items() if k in FIGURE_KEYS} for d, vals in report["metrics"].items()
                },
            }
        )
    from .plots import metric_series, read_log

    live = metric_series([r for r in read_log(run / "log.jsonl") if r["step"] <= meta["step"]])
    if live:
        cfg = meta["config"]["train"]
        values: dict[str, dict[str, float]] = {}
        for name, by_direction in live.items():
            for d, (_steps, vals) in by_direction.items():
                values.setdefault(d, {})[name] = vals[-1]
        found.append(
            {
                "source": "log.jsonl (in-training evaluation)",
                "images": cfg["eval_images"],
                "values": values,
                "command": f"cyclegan train ... --set train.eval_every_epochs={cfg['eval_every_epochs']} "
                f"--set train.eval_metric={cfg['eval_metric']} "
                f"--set train.eval_images={cfg['eval_images']}",
                "step": max(s for by in live.values() for steps, _ in by.values() for s in steps),
            }
        )
    return found


@torch.no_grad()
def write_samples(out: Path, meta: dict, *, n: int, size: int = 128) -> Path | None:
    """samples.png: up to n test images per direction (testA for AtoB, testB for BtoA) and their translations by
    the packaged model, side by side; None when the config's data root has no such test folders."""
    from torchvision.transforms.v2 import functional as TF
    from torchvision.utils import make_grid, save_image

    from .data.files import read_image
    from .translate import load_translator

    root = meta["config"]["data"]["root"]
    rows = []
    for direction, folder in (("AtoB", "testA"), ("BtoA", "testB")):
        test = Path(root) / folder if root else None
        if direction not in meta["directions"] or not test or not test.is_dir():
            continue
        files = [f for f in find_images(test)[:n]]
        t = load_translator(out, direction, device="cpu")
        for f in files:
            image = TF.center_crop(TF.resize(read_image(f, t.in_ch), size, antialias=True), [size, size])
            pair = [image, t(image[None])[0]]
            rows += [(p.expand(3, -1, -1) if p.shape[0] == 1 else p[:3]).float() / 255 for p in pair]
    if not rows:
        return None
    save_image(make_grid(torch.stack(rows), nrow=2, padding=2, pad_value=1.0), out / SAMPLES)
    return out / SAMPLES


def copy_run_samples(run: Path | None, target: Path) -> Path | None:
    """The run's last sample grid, where no test images were found to translate afresh."""
    grids = sorted((run / "samples").glob("*.png")) if run else []
    if not grids:
        return None
    shutil.copyfile(grids[-1], target)
    return target


def _fmt(v) -> str:
    if not isinstance(v, float):
        return "-" if v is None else str(v)
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.2f}"


def model_card(meta: dict, info: dict, *, license: str, name: str, samples: bool) -> str:
    """README.md: the hub's YAML metadata block, then what the model is and how to use it."""
    cfg = meta["config"]
    m, loss, optim, data_cfg = cfg["model"], cfg["loss"], cfg["optim"], cfg["data"]
    specs = meta["specs"]
    nets = ", ".join(f"{k}: {s['name']}" for k, s in specs.items())
    directions = ", ".join(f"{d} ({net})" for d, net in meta["directions"].items())
    data = "\n".join(
        f"| {role} | `{v['folder']}` | {'?' if v['images'] is None else v['images']} |"
        for role, v in info["data"].items()
    )
    wall = info["wall_seconds"]
    length = (
        f"{info['steps']} steps ({info['epochs']} full epochs), batch size {cfg['train']['batch_size']}, "
        f"{cfg['data']['crop_size']}x{cfg['data']['crop_size']} crops"
        + (f"; {wall / 60:.1f} minutes of training" if wall is not None else "; wall time not recorded")
    )
    figures = []
    for ev in info["evaluations"]:
        dirs = list(ev["values"])
        names = list(dict.fromkeys(k for d in dirs for k in ev["values"][d]))
        images = ev["images"]
        images = (
            ", ".join(f"{d}: {n} test images" for d, n in images.items())
            if isinstance(images, dict)
            else f"the first {images} test images per direction"
        )
        figures += [
            f"From `{ev['source']}` ({images}" + (f", at step {ev['step']}" if "step" in ev else "") + "):",
            "",
            f"| metric | {' | '.join(dirs)} |",
            "| --- |" + " ---: |" * len(dirs),
        ]
        figures += [f"| {n} | " + " | ".join(_fmt(ev["values"][d].get(n)) for d in dirs) + " |" for n in names]
        figures += ["", f"Command: `{ev['command']}`", ""]
    figures_text = (
        "\n".join(figures)
        if figures
        else (
            "No evaluation figures: the run was not evaluated at this step "
            "(`cyclegan evaluate RUN` writes RUN/eval/latest/metrics.json, "
            "which a new package reports)."
        )
    )
    weights = (
        f", cycle weights lambda_A {loss['lambda_a']}, lambda_B {loss['lambda_b']}, identity {loss['lambda_identity']}"
        if meta["method"] == "cyclegan"
        else ""
    )
    samples_text = (
        "![test images and their translations](samples.png)\n\nLeft: a test image (128x128 centre "
        "crop); right: its translation by this model."
        if samples
        else "No test images were available to translate when this package was made."
    )
    t = cfg["train"]
    how = f"precision `{t['precision']}`" + (", channels_last" if t.get("channels_last") == "true" else "")
    how += ", Winograd F(4x4, 3x3) residual convolutions" if t.get("winograd") == "true" else ""
    computed = f"Computed in {how}" + (
        ", on:\n\n" + "\n".join(f"- from step {r.get('step', '?')}: {machine.describe(r)}" for r in info["machines"])
        if info["machines"]
        else " (the machine was not recorded: a run from before RUN/environment.jsonl existed)."
    )
    tags = ["cyclegan", "image-to-image", "pytorch", "unpaired-image-translation", m["method"]]
    front = ["---", f"license: {license}", "library_name: cyclegan", "pipeline_tag: image-to-image", "tags:"]
    front += [f"- {t}" for t in dict.fromkeys(tags)] + ["---", ""]
    body = f"""# {name}

A **{meta["method"]}** model trained with [cyclegan](https://pypi.org/project/cyclegan/): translates {directions}.

## Model

- Method: `{meta["method"]}` (GAN loss `{loss["gan_mode"]}`{weights})
- Networks: {nets}; generator width ngf {m["ngf"]}, normalisation `{m["norm"]}`, dropout {str(m["dropout"]).lower()}
- Images: domain A {data_cfg["channels_a"]} channel(s), domain B {data_cfg["channels_b"]} channel(s), in [-1, 1]; \
any size (padded to the generator's size multiple and cropped back)

## Training data

| part | folder | images |
| --- | --- | ---: |
{data}

## Training

{length}; Adam lr {optim["lr"]}, betas ({optim["beta1"]}, {optim["beta2"]}), `{optim["lr_policy"]}` schedule \
over {optim["n_epochs"]} + {optim["n_epochs_decay"]} epochs, seed {cfg["train"]["seed"]}. The whole configuration \
is in `config.json` (`config`).

{computed}

## Evaluation

{figures_text}

## Samples

{samples_text}

## How to use

```bash
pip install cyclegan
cyclegan translate -c THIS_FOLDER photo.jpg --out translated/ --direction {next(iter(meta["directions"]))}
cyclegan serve -c THIS_FOLDER          # a page in the browser: drop a photo, see the translation
```

```python
import cyclegan

model = cyclegan.load("THIS_FOLDER")   # offline; the folder alone is enough
out = model.translate("photo.jpg", direction="{next(iter(meta["directions"]))}")   # a PIL image of the input's size
```

From the hub: `huggingface_hub.snapshot_download("USER/NAME")` returns the folder to load.

## Licence

`{license}` (the licence of the weights; check the terms of the training data too).
"""
    return "\n".join(front) + body


def push(folder: str | Path, repo_id: str, *, private: bool = False) -> str:
    """Upload a package folder to the Hugging Face hub (needs huggingface_hub and a login); returns the repo URL."""
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise UserError("--push needs huggingface_hub: pip install 'cyclegan[hub]'") from None
    api = HfApi()
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="cyclegan package")
    return str(url)
