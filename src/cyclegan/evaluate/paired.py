"""Paired scores for `cyclegan evaluate`: PSNR, SSIM and LPIPS of each translation against the real target
of the same file name in the target domain's test folder (pix2pix, or any paired test split such as facades
A = labels, B = photos). The maths is in `cyclegan.metrics.paired`; this module feeds it, registered in the
scorer registry as psnr, ssim and lpips (one scorer for all three)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..data.files import find_images, read_image
from ..errors import UserError
from .scorers import SCORERS, Scorer

PAIRED_METRICS = ("psnr", "ssim", "lpips")


class PairedScorer(Scorer):
    """Mean per-image PSNR (dB), SSIM and LPIPS of translations against their paired real targets."""

    def __init__(
        self,
        truth_folder: Path,
        which: tuple[str, ...],
        *,
        lpips_weights: str | None = None,
        device=None,
        resize: bool = False,
    ):
        from ..metrics.paired import load_lpips

        self.which, self.resize, self.truth_folder = which, resize, Path(truth_folder)
        self.truth = {p.stem: p for p in find_images(truth_folder, "paired target images")}
        self.lpips = load_lpips(lpips_weights, device=device or "cpu") if "lpips" in which else None
        self.values: dict[str, list[float]] = {m: [] for m in which}

    def update(self, files, inputs, fakes, recs) -> None:
        from ..metrics.paired import lpips_distances, psnr, ssim

        truths = []
        for f, fake in zip(files, fakes):
            if f.stem not in self.truth:
                raise UserError(
                    f"{'/'.join(self.which)}: no paired target for {f.name} in {self.truth_folder} "
                    "(paired file names needed)"
                )
            truth = read_image(self.truth[f.stem], 3)
            if self.resize and truth.shape[-2:] != fake.shape[-2:]:
                truth = TF.resize(truth, list(fake.shape[-2:]), interpolation=InterpolationMode.BICUBIC, antialias=True)
            if truth.shape[-2:] != fake.shape[-2:]:
                raise UserError(
                    f"{self.truth[f.stem]} is {tuple(truth.shape[-2:])}, its translation "
                    f"{tuple(fake.shape[-2:])}; paired images must have the same size (or use --size)"
                )
            fake = fake.repeat(3, 1, 1) if fake.shape[0] == 1 else fake[:3]
            truths.append(truth)
            if "psnr" in self.which:
                self.values["psnr"].append(psnr(fake, truth))
            if "ssim" in self.which:
                self.values["ssim"].append(ssim(fake, truth))
        if self.lpips is not None:
            x = fakes.repeat(1, 3, 1, 1) if fakes.shape[1] == 1 else fakes[:, :3]
            self.values["lpips"] += lpips_distances(self.lpips, x, torch.stack(truths)).tolist()

    def result(self) -> dict[str, float]:
        return {m: float(np.mean(v)) for m, v in self.values.items() if v}


@SCORERS.register("psnr")
@SCORERS.register("ssim")
@SCORERS.register("lpips")
def paired_scorer(setup, direction: str, *, has_reconstruction: bool, inception=None) -> Scorer:
    """One scorer for the paired metrics chosen (psnr, ssim, lpips) of `direction`."""
    which = tuple(m for m in PAIRED_METRICS if m in setup.metrics)
    return PairedScorer(
        setup.folder(direction[-1]),
        which,
        lpips_weights=setup.lpips_weights,
        device=setup.device,
        resize=bool(setup.size),
    )


def check_paired(setup) -> None:
    """Refuse lpips before any translation when its weights are not on this machine (nothing downloads)."""
    if "lpips" in setup.metrics:
        from ..metrics.paired import lpips_missing

        why = lpips_missing(setup.lpips_weights)
        if why:
            raise UserError(why)


__all__ = ["PAIRED_METRICS", "PairedScorer", "check_paired", "paired_scorer"]
