"""Evaluate a translation model on a test split: translate every image both ways, score, and show it.

For each direction X->Y (AtoB: testA -> B, BtoA: testB -> A) every test image x is translated, y' = G(x),
and reconstructed, x'' = F(G(x)). Scorers see each batch (inputs, translations, reconstructions) as uint8
tensors, so the same code serves `cyclegan evaluate` (all images, files and a gallery written) and the
in-training evaluation hook (a subset, in memory). The metric maths lives in `cyclegan.metrics` and
`cyclegan.content`; this module only feeds them.

Outputs of `evaluate` in `out_dir`: `metrics.json`, `metrics.md` (a markdown table), `index.html` (the
table and links), and per direction `<dir>/fake/`, `<dir>/rec/` and `<dir>/index.html` (input |
translation | reconstruction, one row per image, all images).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from .. import checkpoint as ckpt
from ..data.files import ImageReadError, read_image
from ..errors import UserError
from ..metric_catalog import HEADLINE
from ..plots import add_curves, run_of
from ..runtime import reuse_freed_memory
from ..translate import Translator, load_translator, save_image, seeded, write_gallery
from .report import content_tables, markdown_table, summary_line, write_index
from .scorers import InceptionScorer, Scorer, build_scorers
from .setup import DIRECTIONS, OPPOSITE, EvalSetup, check_setup


def iter_batches(
    files: list[Path], in_ch: int, batch_size: int, size: int = 0
) -> Iterator[tuple[list[Path], torch.Tensor]]:
    """Consecutive same-size images as (files, (B, C, H, W) uint8), resized to size x size when size > 0
    (bicubic, antialiased); unreadable files are an error here, since a metric over a silently shrunken
    test set would mislead."""
    group: list[tuple[Path, torch.Tensor]] = []
    for f in files:
        try:
            image = read_image(f, in_ch)
        except ImageReadError as e:
            raise UserError(f"cannot evaluate: {e}") from None
        if size and tuple(image.shape[-2:]) != (size, size):
            image = TF.resize(image, [size, size], interpolation=InterpolationMode.BICUBIC, antialias=True)
        if group and (image.shape != group[0][1].shape or len(group) == batch_size):
            yield [g[0] for g in group], torch.stack([g[1] for g in group])
            group = []
        group.append((f, image))
    if group:
        yield [g[0] for g in group], torch.stack([g[1] for g in group])


def run_direction(
    fwd: Translator,
    back: Translator | None,
    files: list[Path],
    scorers: list[Scorer],
    *,
    batch_size: int,
    out_dir: Path | None = None,
    progress: bool = False,
    size: int = 0,
) -> list[tuple[Path, Path, Path | None]]:
    """Translate (and reconstruct) `files`, feed the scorers, and write PNGs into out_dir/fake, out_dir/rec.

    Returns [(input, translation file, reconstruction file)] when out_dir is given, else [].
    """
    from ..progress import progress_bar

    written = []
    bar = progress_bar(total=len(files), unit="img", disable=not progress, leave=False)
    # train-mode networks (dropout): the same scores every run; on a CPU freed activations stay for the next batch
    with seeded(0, fwd.device), reuse_freed_memory(fwd.device):
        for names, inputs in iter_batches(files, fwd.in_ch, batch_size, size):
            fakes = fwd(inputs).cpu()
            recs = back(fakes).cpu() if back is not None else None
            for s in scorers:
                s.update(names, inputs, fakes, recs)
            if out_dir is not None:
                for i, f in enumerate(names):
                    fake_path = out_dir / "fake" / f"{f.stem}.png"
                    save_image(fakes[i], fake_path)
                    rec_path = None
                    if recs is not None:
                        rec_path = out_dir / "rec" / f"{f.stem}.png"
                        save_image(recs[i], rec_path)
                    written.append((f, fake_path, rec_path))
            bar.update(len(names))
    bar.close()
    return written


ACCEPTED = (
    "a run directory of `cyclegan train`, its .model.safetensors / .state.safetensors files, or a "
    "reference-implementation generator .pth (e.g. latest_net_G_A.pth)"
)
REFERENCE_SUFFIXES = (".pth", ".pt")


def checkpoint_meta(path: Path) -> dict:
    """The JSON metadata of a model/state checkpoint, without reading its tensors."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {}).get("cyclegan", "{}"))
    except (SafetensorError, OSError, ValueError) as e:  # ValueError: JSONDecodeError of damaged metadata
        raise UserError(f"{path}: not a readable safetensors checkpoint ({e}); evaluate takes {ACCEPTED}") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: its cyclegan metadata is not a JSON object; evaluate takes {ACCEPTED}")
    meta.pop("tree", None)
    return meta


def reference_direction(path: Path, only: str | None) -> str:
    """The one direction a reference generator .pth translates: --direction, else its file name
    (the reference saves G_A, which maps A to B, as *_net_G_A.pth and G_B as *_net_G_B.pth)."""
    if only is not None:
        return only
    stem = path.stem
    if stem.endswith("G_A"):
        return "AtoB"
    if stem.endswith("G_B"):
        return "BtoA"
    raise UserError(
        f"{path}: a reference generator translates one way, and its name does not say which (*_net_G_A.pth "
        "maps A to B, *_net_G_B.pth B to A); pass --direction AtoB or --direction BtoA"
    )


def default_out_dir(checkpoint: str | Path) -> Path:
    """RUN/eval/latest for a run directory; RUN/eval/<tag> for RUN/checkpoints/<tag>.model.safetensors."""
    p = Path(checkpoint)
    if p.is_dir():
        return p / "eval" / "latest"
    tag = p.name.split(".")[0]
    run = p.parent.parent if p.parent.name == "checkpoints" else p.parent
    return run / "eval" / tag


def evaluate(
    checkpoint: str | Path,
    setup: EvalSetup,
    out_dir: str | Path,
    *,
    train_mode: bool | None = None,
    gallery: bool = True,
    progress: bool = True,
    only: str | None = None,
) -> dict:
    """Translate both test folders completely, compute `setup.metrics`, write results into out_dir.

    only: "AtoB" or "BtoA" scores that direction alone (the other network still reconstructs).
    Returns the dict written to metrics.json: {"metrics": {direction: {name: value}}, "images": ..., ...}.
    """
    t0 = time.time()
    out_dir = Path(out_dir)
    notes: list[str] = []
    single = Path(checkpoint).suffix in REFERENCE_SUFFIXES
    if single:
        # one reference generator (as `translate -c latest_net_G_A.pth`): one direction, no reconstruction
        path = Path(checkpoint)
        if not path.is_file():
            raise UserError(f"checkpoint {path} not found")
        meta = {"method": "reference"}
        generator = load_translator(
            path, "AtoB", setup.device, train_mode=train_mode
        )  # the file first: is it a generator?
        available = [reference_direction(path, only)]
    else:
        path = ckpt.resolve_checkpoint(checkpoint, "model")
        meta = checkpoint_meta(path)
        available = [d for d in DIRECTIONS if d in meta.get("directions", {})]
        if not available:
            raise UserError(f"{path}: records no translation directions; is it a `cyclegan train` checkpoint?")
    if "cycle" in setup.metrics and len(available) < 2:  # a reference generator, or pix2pix: one network, one way
        why = (
            f"{path.name} "
            + ("is one generator" if single else f"translates {available[0]} only")
            + ", with no inverse to reconstruct with"
        )
        if set(setup.metrics) == {"cycle"}:
            raise UserError(
                f"--metrics cycle: {why}; "
                + (
                    "evaluate a run directory or its .model.safetensors for the cycle error"
                    if single
                    else "choose other --metrics (seg, fid, kid, content)"
                )
            )
        notes.append(f"cycle: not computed: {why}")
    if only is not None and only not in available:
        raise UserError(f"{path}: has no {only} direction (it has {', '.join(available)})")
    directions = [only] if only else available
    check_setup(setup, directions)
    if single:
        translators = {available[0]: generator}
    else:
        translators = {d: load_translator(path, d, setup.device, train_mode=train_mode) for d in available}
    inception = None
    if any(m in setup.metrics for m in ("fid", "kid", "fid_clean")):
        from ..metrics.features import InceptionLoader

        inception = InceptionLoader(setup.inception_weights, setup.device)
    # every scorer before any translation: classifiers, ground truth and reference features (from the
    # cache, else computed now) load here, so their errors come before the translating, not after it
    all_scorers = {
        d: build_scorers(setup, d, has_reconstruction=translators.get(OPPOSITE[d]) is not None, inception=inception)
        for d in directions
    }
    for s in (s for group in all_scorers.values() for s in group):
        if isinstance(s, InceptionScorer):
            s.real_features()
    results: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    galleries: dict[str, Path] = {}
    details: dict[str, dict] = {}
    for d in directions:
        files = setup.files(d)
        back = translators.get(OPPOSITE[d])
        scorers = all_scorers[d]
        if progress:
            print(f"{d}: translating {len(files)} images from {setup.folder(d[0])}", flush=True)
        written = run_direction(
            translators[d],
            back,
            files,
            scorers,
            batch_size=setup.batch_size,
            out_dir=out_dir / d if gallery else None,
            progress=progress,
            size=setup.size,
        )
        values: dict[str, float] = {}
        for s in scorers:
            values.update(s.result())
            extra = s.details()
            if extra:
                details.setdefault(d, {}).update(extra)
            notes += [f"{d}: {n}" for n in s.notes()]
        results[d], counts[d] = values, len(files)
        if gallery:
            galleries[d] = out_dir / d / "index.html"
            has_rec = back is not None
            write_gallery(
                galleries[d],
                [(src, fake) for src, fake, _ in written],
                title=f"{d}: {translators[d].description}",
                columns=("input", "translation") + (("reconstruction",) if has_rec else ()),
                extra=[[rec] for _, _, rec in written] if has_rec else None,
            )
    report = {
        "checkpoint": str(path),
        "method": meta.get("method"),
        "step": meta.get("step"),
        "epoch": meta.get("epoch"),
        "best": meta.get("best"),
        "test_a": str(setup.test_a),
        "test_b": str(setup.test_b),
        "images": counts,
        "size": setup.size or None,
        "metrics_requested": list(setup.metrics),
        "metrics": results,
        "details": details,
        "notes": list(dict.fromkeys(notes)),  # fid and fid_clean share their small-set note
        "seconds": round(time.time() - t0, 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_table(results)
    note_lines = "".join(f"\nnote: {n}\n" for n in report["notes"])
    (out_dir / "metrics.md").write_text(f"{summary_line(report)}\n\n{table}\n{content_tables(details)}{note_lines}")
    if gallery:
        write_index(out_dir / "index.html", report, galleries)
        add_curves(out_dir / "index.html", None if single else run_of(path))  # the run's curves (cyclegan.plots)
    return report


@dataclass
class LiveResult:
    """Values of one in-training evaluation: {direction: {name: value}} and the headline number."""

    values: dict[str, dict[str, float]] = field(default_factory=dict)
    headline: float = float("nan")


def headline_value(metric: str, values: dict[str, dict[str, float]]) -> float:
    """One number for `metric`: the mean over directions that report it (seg: its one direction)."""
    key = HEADLINE[metric]
    found = [v[key] for v in values.values() if key in v]
    if not found:
        raise UserError(f"metric {metric} produced no value (directions: {', '.join(values)})")
    return float(np.mean(found))


def evaluate_translators(
    translators: dict[str, Translator], setup: EvalSetup, metric: str, inception=None
) -> LiveResult:
    """Score in-memory translators (both directions when present) on `setup`'s files, writing nothing."""
    result = LiveResult()
    for d, fwd in translators.items():
        back = translators.get(OPPOSITE[d])
        scorers = build_scorers(setup, d, has_reconstruction=back is not None, inception=inception)
        if not scorers:
            continue
        run_direction(fwd, back, setup.files(d), scorers, batch_size=setup.batch_size, size=setup.size)
        values: dict[str, float] = {}
        for s in scorers:
            values.update(s.result())
        result.values[d] = values
    result.headline = headline_value(metric, result.values)
    return result
