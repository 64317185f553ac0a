"""Content preservation: does a translation keep what the image shows?

The spirit of the paper's FCN-score (Sec. 5.1.1), measurable on a CPU: a classifier trained on the
*target* domain only labels translated images, and its accuracy against the *source* images' labels is
the score. For MNIST->USPS: a small CNN trained on USPS, applied to G(MNIST), scored with the MNIST
labels. The same classifier on the untranslated source images is the "no translation" baseline.

A classifier file is safetensors weights plus JSON metadata (architecture kwargs, input size, channels,
class names), like the model checkpoints: no pickled objects.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import load_weights, save_weights
from .data.transforms import to_float
from .errors import UserError

FORMAT_CLASSIFIER = "cyclegan-classifier/1"


class DigitCNN(nn.Module):
    """A small VGG-style classifier for small grey images: two conv pairs, then two linear layers.

    (B, in_ch, size, size) in [-1, 1] -> (B, num_classes) logits; `size` must be divisible by 4.
    """

    def __init__(self, in_ch: int = 1, num_classes: int = 10, width: int = 32, size: int = 32):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_ch, w, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(w, w, 3, padding=1),
            nn.ReLU(True),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.ReLU(True),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(2 * w * (size // 4) ** 2, 128),
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Classifier:
    """A loaded classifier: takes uint8 images of any size and channel count, returns class ids."""

    def __init__(self, net: DigitCNN, size: int, channels: int, classes: list[str]):
        self.net, self.size, self.channels, self.classes = net.eval(), size, channels, classes

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) uint8 -> (B, channels, size, size) float in [-1, 1] (grey <-> RGB, resized)."""
        x = images
        if x.shape[1] != self.channels:
            if self.channels == 1:
                x = x[:, :3].float().mean(1, keepdim=True).round().to(torch.uint8)
            else:
                x = x[:, :1].expand(-1, self.channels, -1, -1)
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = (
                F.interpolate(
                    x.float(), size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
                )
                .round()
                .clamp(0, 255)
                .to(torch.uint8)
            )
        return to_float(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) floats in [-1, 1] -> (B, classes) logits, differentiable in x (for training losses).

        Same conversions as `prepare` (grey <-> RGB, antialiased bilinear resize), without rounding to 8 bits.
        """
        if x.shape[1] != self.channels:
            x = x[:, :3].mean(1, keepdim=True) if self.channels == 1 else x[:, :1].expand(-1, self.channels, -1, -1)
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return self.net(x)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """(B, C, H, W) uint8 -> (B,) int64 predicted class ids."""
        out = [
            self.net(self.prepare(images[i : i + batch_size]).to(self.device)).argmax(1).cpu()
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def save_classifier(
    path: str | Path,
    net: DigitCNN,
    size: int,
    channels: int,
    classes: list[str],
    *,
    kwargs: dict,
    info: dict | None = None,
) -> None:
    """Weights + metadata (architecture kwargs, input size/channels, class names, free-form info)."""
    save_weights(
        path,
        net,
        {
            "format": FORMAT_CLASSIFIER,
            "arch": "digit_cnn",
            "kwargs": kwargs,
            "size": size,
            "channels": channels,
            "classes": classes,
            "info": info or {},
        },
    )


def load_classifier(path: str | Path, device="cpu") -> Classifier:
    """A classifier written by `save_classifier`."""
    net, meta = load_weights(
        path,
        FORMAT_CLASSIFIER,
        "classifier",
        "train one, e.g. experiments/mnist_usps/train_classifier.py",
        lambda m: DigitCNN(**m["kwargs"]),
    )
    return Classifier(net.to(device), meta["size"], meta["channels"], list(meta["classes"]))


def read_labels(path: str | Path) -> dict[str, int]:
    """A `file,label` CSV (header optional) -> {file stem: integer label}."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"labels file {path} not found (expected a CSV of file,label rows)")
    labels: dict[str, int] = {}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row or row[0] == "file":
                continue
            try:
                labels[Path(row[0]).stem] = int(row[1])
            except (IndexError, ValueError):
                raise UserError(f"{path}: bad row {row!r}; expected file,label with an integer label") from None
    return labels


def accuracy(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Fraction of equal entries."""
    if len(truth) == 0:
        raise ValueError("no labels to score")
    return float((pred.cpu() == truth.cpu()).float().mean())
