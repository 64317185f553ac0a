"""Training-time preprocessing (the reference's `--preprocess` modes) with explicit randomness.

Random crop offsets and flips are drawn from a `torch.Generator` passed in by the caller, so a
sample depends only on (seed, epoch, index): identical across worker counts, ranks and resumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..errors import UserError

PREPROCESS = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
CROPPING = ("resize_and_crop", "crop", "scale_width_and_crop")  # the modes that end in a crop_size x crop_size crop


@dataclass(frozen=True)
class Preprocess:
    mode: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    multiple: int = 4  # for "none": sizes rounded to this multiple

    def __post_init__(self):
        if self.mode not in PREPROCESS:
            raise UserError(f"unknown preprocess {self.mode!r}; choose one of: {', '.join(PREPROCESS)}")

    @property
    def crops(self) -> bool:
        return self.mode in CROPPING

    def resized_size(self, w: int, h: int) -> tuple[int, int]:
        """(width, height) after the resize step, before any crop."""
        if self.mode == "resize_and_crop":
            return self.load_size, self.load_size
        if self.mode in ("scale_width", "scale_width_and_crop"):
            if w == self.load_size and h >= self.crop_size:
                return w, h
            return self.load_size, int(max(self.load_size * h / w, self.crop_size))
        if self.mode == "none":
            m = self.multiple
            return max(m, round(w / m) * m), max(m, round(h / m) * m)
        return w, h  # crop

    SIZE_FIX = "lower data.crop_size or use data.preprocess=resize_and_crop"

    def size_problem(self, w: int, h: int, path) -> str | None:
        """Why an image of w x h cannot be cropped (naming the file), or None."""
        rw, rh = self.resized_size(w, h)
        if self.crops and (rw < self.crop_size or rh < self.crop_size):
            return (
                f"{path}: image is {w}x{h}, smaller than the crop {self.crop_size}x{self.crop_size} after '{self.mode}'"
            )
        return None

    def check_size(self, w: int, h: int, path) -> None:
        """Fail early, naming the file, when an image is too small for the crop."""
        problem = self.size_problem(w, h, path)
        if problem:
            raise UserError(f"{problem}; {self.SIZE_FIX}")

    def params(self, w: int, h: int, generator: torch.Generator) -> tuple[int, int, bool]:
        """Draw (top, left, flip) for an image whose resized size is (w, h)."""
        top = left = 0
        if self.crops:
            top = int(torch.randint(0, h - self.crop_size + 1, (), generator=generator))
            left = int(torch.randint(0, w - self.crop_size + 1, (), generator=generator))
        flip = self.flip and bool(torch.rand((), generator=generator) < 0.5)
        return top, left, flip

    def __call__(self, image: torch.Tensor, generator: torch.Generator, params=None) -> torch.Tensor:
        """(C, H, W) uint8 -> (C, h, w) float32 in [-1, 1]. Pass `params` to repeat another image's draw."""
        h, w = image.shape[-2:]
        rw, rh = self.resized_size(w, h)
        if (rw, rh) != (w, h):
            image = TF.resize(image, [rh, rw], interpolation=InterpolationMode.BICUBIC, antialias=True)
        top, left, flip = params if params is not None else self.params(rw, rh, generator)
        if self.crops:
            image = image[..., top : top + self.crop_size, left : left + self.crop_size]
        if flip:
            image = image.flip(-1)
        return to_float(image)


def to_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1] (the reference's Normalize(0.5, 0.5))."""
    return image.float().div(127.5).sub(1.0)


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounded."""
    return image.detach().float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def pad_amounts(h: int, w: int, multiple: int, min_size: int) -> tuple[int, int, int, int, str]:
    """(top, bottom, left, right, mode) that pad an h x w image to a multiple of `multiple`, at least min_size a
    side; the odd pixel goes to the bottom/right. Reflection needs every pad smaller than its side, so tiny images
    are padded by replication instead (export.PadToMultiple computes the same inside an ONNX graph)."""
    ph, pw = max((-h) % multiple, min_size - h), max((-w) % multiple, min_size - w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return ph // 2, ph - ph // 2, pw // 2, pw - pw // 2, mode
