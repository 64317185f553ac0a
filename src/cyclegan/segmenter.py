"""Segmenters for the FCN-score: label the pixels of (translated) photos.

The paper scores labels->photo translations "by FCN-score" (Sec. 5.1.1, after pix2pix): a semantic
segmentation network trained on real photos of the target domain labels the generated photos, and
per-pixel accuracy, per-class accuracy and class IoU against the label maps they were generated from
say how much of the input's layout a translation kept. The paper's FCN-8s was trained on Cityscapes;
here any domain can have its segmenter (experiments/facades/train_segmenter.py trains one for facades).

A segmenter file is safetensors weights plus JSON metadata (architecture, channels, class names,
palette), like the classifiers of cyclegan.content: no pickled objects.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import load_weights, save_weights
from .data.transforms import pad_amounts, to_float

FORMAT_SEGMENTER = "cyclegan-segmenter/1"


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
    )


class SegNet(nn.Module):
    """A small U-Net (Ronneberger et al. 2015): `depth` 2x poolings, width doubling per level, skip connections.

    (B, in_ch, H, W) in [-1, 1], H and W multiples of 2**depth -> (B, num_classes, H, W) logits.
    """

    def __init__(self, in_ch: int = 3, num_classes: int = 12, width: int = 32, depth: int = 3):
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            [_double_conv(in_ch, widths[0])] + [_double_conv(widths[i], widths[i + 1]) for i in range(depth)]
        )
        self.up = nn.ModuleList(
            [nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth))]
        )
        self.merge = nn.ModuleList([_double_conv(2 * widths[i], widths[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.multiple = 2**depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([up(x), skip], 1))
        return self.head(x)


class Segmenter:
    """A loaded segmenter: uint8 images of any size -> class ids per pixel."""

    def __init__(self, net: SegNet, channels: int, classes: list[str], palette: str):
        self.net, self.channels, self.classes, self.palette = net.eval(), channels, classes, palette

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) uint8 -> (B, H, W) int64 class ids: grey <-> RGB as the classifiers, reflection-padded to
        the network's multiple and cropped back."""

        x = images
        if x.shape[1] != self.channels:
            x = (
                x[:, :3].float().mean(1, keepdim=True).round().to(torch.uint8)
                if self.channels == 1
                else x[:, :1].expand(-1, self.channels, -1, -1)
            )
        h, w = x.shape[-2:]
        top, bottom, left, right, mode = pad_amounts(h, w, self.net.multiple, self.net.multiple)
        x = F.pad(to_float(x.to(self.device)), (left, right, top, bottom), mode=mode)
        return self.net(x)[..., top : top + h, left : left + w].argmax(1).cpu()


def save_segmenter(
    path: str | Path,
    net: SegNet,
    channels: int,
    classes: list[str],
    palette: str,
    *,
    kwargs: dict,
    info: dict | None = None,
) -> None:
    """Weights + metadata (architecture kwargs, channels, class names, the palette of the label maps it scores)."""
    save_weights(
        path,
        net,
        {
            "format": FORMAT_SEGMENTER,
            "arch": "segnet",
            "kwargs": kwargs,
            "channels": channels,
            "classes": classes,
            "palette": palette,
            "info": info or {},
        },
    )


def load_segmenter(path: str | Path, device="cpu") -> Segmenter:
    """A segmenter written by `save_segmenter`."""
    net, meta = load_weights(
        path,
        FORMAT_SEGMENTER,
        "segmenter",
        "train one, e.g. experiments/facades/train_segmenter.py",
        lambda m: SegNet(**m["kwargs"]),
    )
    return Segmenter(net.to(device), meta["channels"], list(meta["classes"]), meta["palette"])
