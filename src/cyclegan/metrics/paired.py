"""Paired-image metrics for tasks with a ground-truth target (pix2pix, any paired test split): PSNR, SSIM
and LPIPS between a translation and the real target of the same input. Pure math over uint8 images, plus
the LPIPS network, whose weights are only ever read from local files.

- PSNR = 10 log10(R^2 / MSE) with R = 255, over all pixels and channels of one image.
- SSIM (Wang, Bovik, Sheikh and Simoncelli 2004, eq. 13) with their settings: an 11x11 Gaussian window of
  sigma 1.5, K1 = 0.01, K2 = 0.03, population (co)variances, per channel then averaged, over the positions
  where the window lies inside the image; the same as `skimage.metrics.structural_similarity(x, y,
  channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`.
- LPIPS (Zhang, Isola, Efros, Shechtman and Wang 2018, eq. 1, version 0.1, AlexNet): features at the five
  ReLUs, unit-normalised over channels, squared differences weighted per channel by learned 1x1 layers,
  averaged over space and summed over layers. Needs torchvision's ImageNet AlexNet weights and the `lpips`
  package's linear layers, both read from disk (`load_lpips`), never downloaded.

Scores over a test set are means of per-image values, as pix2pix-style tables report them.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError

DATA_RANGE = 255.0
SSIM_SIGMA, SSIM_RADIUS, SSIM_K1, SSIM_K2 = 1.5, 5, 0.01, 0.03  # radius: int(3.5 sigma + 0.5), scipy's truncation


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR in dB of two same-size uint8 images (C, H, W); inf when they are equal."""
    mse = float(((x.double() - y.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(DATA_RANGE**2 / mse)


def _gaussian_window() -> torch.Tensor:
    r = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (r / SSIM_SIGMA) ** 2)
    return w / w.sum()


def ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean SSIM of two same-size uint8 images (C, H, W), each at least 11x11 (Wang et al. 2004, eq. 13)."""
    if min(x.shape[-2:]) < 2 * SSIM_RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least {2 * SSIM_RADIUS + 1}x{2 * SSIM_RADIUS + 1}")
    c1, c2 = (SSIM_K1 * DATA_RANGE) ** 2, (SSIM_K2 * DATA_RANGE) ** 2
    w = _gaussian_window()
    a, b = x.double()[:, None], y.double()[:, None]  # (C, 1, H, W): channels as a batch

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable Gaussian, valid positions only
        return F.conv2d(F.conv2d(t, w.view(1, 1, -1, 1)), w.view(1, 1, 1, -1))

    mx, my = blur(a), blur(b)
    vx, vy, cxy = blur(a * a) - mx * mx, blur(b * b) - my * my, blur(a * b) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean(dim=(1, 2, 3)).mean())


# ----------------------------------------------------------------------------------------------- LPIPS

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's ImageNet AlexNet, as torch.hub caches it
ALEXNET_URL = "https://download.pytorch.org/models/" + ALEXNET_FILE
_RELUS = (1, 4, 7, 9, 11)  # indices of AlexNet's feature ReLUs
_CHANNELS = (64, 192, 384, 256, 256)


class LPIPS(nn.Module):
    """LPIPS v0.1 over AlexNet: (B, 3, H, W) in [-1, 1] pairs -> (B,) distances."""

    def __init__(self):
        super().__init__()
        from torchvision.models import alexnet

        self.features = alexnet(weights=None).features[: _RELUS[-1] + 1]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, h = [], (x - self.shift) / self.scale
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in _RELUS:
                out.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))  # unit length over channels
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = 0
        for lin, fx, fy in zip(self.lins, self._taps(x), self._taps(y)):
            total = total + lin((fx - fy) ** 2).mean(dim=(2, 3))
        return total[:, 0]


def default_alexnet_path() -> Path:
    """Where torch.hub keeps torchvision's AlexNet weights once downloaded ($TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def packaged_lpips_linear() -> Path | None:
    """The `lpips` package's v0.1 AlexNet linear layers (shipped inside its wheel), if installed."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / "alex.pth"
    return path if path.is_file() else None


def lpips_missing(alexnet: str | Path | None = None) -> str | None:
    """Why LPIPS cannot be computed from local files (a one-line message), or None when it can."""
    path = Path(alexnet) if alexnet else default_alexnet_path()
    if not path.is_file():
        return (
            f"lpips needs torchvision's ImageNet AlexNet weights, not found at {path}; nothing is downloaded at "
            f"run time: fetch {ALEXNET_URL} once and pass --lpips-weights PATH"
        )
    if packaged_lpips_linear() is None:
        return (
            "lpips needs the linear layers of Zhang et al.'s release: pip install lpips (its weights are in the wheel)"
        )
    return None


def load_lpips(
    alexnet: str | Path | None = None, linear: str | Path | None = None, device: str | torch.device = "cpu"
) -> LPIPS:
    """LPIPS from local files: `alexnet` a torchvision AlexNet state dict (default: the torch.hub cache),
    `linear` the lpips v0.1 `alex.pth` (default: from the installed `lpips` package). UserError if missing."""
    why = lpips_missing(alexnet) if linear is None else None
    if why:
        raise UserError(why)
    net = LPIPS()
    backbone = torch.load(str(alexnet or default_alexnet_path()), map_location="cpu", weights_only=True)
    try:
        net.features.load_state_dict(
            {
                k[len("features.") :]: v
                for k, v in backbone.items()
                if k.startswith("features.") and int(k.split(".")[1]) <= _RELUS[-1]
            }
        )
    except (RuntimeError, ValueError) as e:
        raise UserError(f"{alexnet}: not torchvision AlexNet weights ({str(e).splitlines()[0]})") from None
    lin = torch.load(str(linear or packaged_lpips_linear()), map_location="cpu", weights_only=True)
    for i, layer in enumerate(net.lins):
        layer.weight.data.copy_(lin[f"lin{i}.model.1.weight"])
    return net.eval().to(device)


@torch.no_grad()
def lpips_distances(net: LPIPS, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """(B,) LPIPS distances of two (B, 3, H, W) uint8 batches."""
    device = net.shift.device
    return net(x.to(device).float() / 127.5 - 1, y.to(device).float() / 127.5 - 1).cpu().numpy()


__all__ = [
    "ALEXNET_URL",
    "LPIPS",
    "default_alexnet_path",
    "load_lpips",
    "lpips_distances",
    "lpips_missing",
    "packaged_lpips_linear",
    "psnr",
    "ssim",
]
