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
