"""clean-fid's image protocol (Parmar, Zhang and Zhu, "On Aliased Resizing and Surprising Subtleties in GAN
Evaluation", CVPR 2022), feeding the same TF-Inception (2015-12-05) pool3 network as the legacy protocol.

Two things differ from pytorch-fid's legacy protocol (`features.preprocess`), and only these:

- quantisation: images are 8-bit first (as saved files are; generated images in [0, 1] are rounded to
  0..255), and nothing is re-quantised after resizing;
- resizing: to 299x299 with PIL's bicubic filter on each channel as a float32 image (mode "F"), which
  antialiases when it shrinks, clipped to [0, 255] (clean-fid `make_resizer("PIL", False, "bicubic")`),
  instead of `F.interpolate` bilinear without antialiasing;
- scaling: the TF graph's own `(x - 128) / 128` (clean-fid's `InceptionV3W`), where pytorch-fid uses
  `2 x / 255 - 1`.

FID itself (`frechet.py`) is unchanged: the same Frechet distance of the fitted Gaussians.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .inception import INPUT_SIZE

CLEAN_PROTOCOL = "tf-inception-2015-12-05/pool3/clean-fid-v1"


def clean_resize(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) float32 in [0, 255]: PIL bicubic per channel in float, clipped."""
    channels = [
        np.asarray(
            Image.fromarray(image[:, :, c].astype(np.float32), mode="F").resize((size, size), resample=Image.BICUBIC)
        )
        for c in range(image.shape[2])
    ]
    return np.stack(channels, axis=2).clip(0, 255).astype(np.float32)


def clean_preprocess(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) uint8 -> (3, 299, 299) float32 network input: clean resize, then (x - 128) / 128."""
    resized = clean_resize(image.permute(1, 2, 0).numpy())
    return (torch.from_numpy(resized).permute(2, 0, 1) - 128) / 128


def quantize(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> uint8 0..255, rounded (what saving the images as PNG would keep)."""
    return (images.float() * 255).round().clamp(0, 255).to(torch.uint8)


__all__ = ["CLEAN_PROTOCOL", "clean_preprocess", "clean_resize", "quantize"]
