"""The paper's photo->labels scores (CycleGAN Table 3, the FCN-score protocol of pix2pix).

Predicted and ground-truth label maps are compared through one confusion matrix accumulated over the
whole test set (as pix2pix's `fast_hist` / `get_scores`): with C[g, p] = number of pixels of true class g
predicted as p,

    per-pixel accuracy = sum_c C[c, c] / sum C
    per-class accuracy = mean_c  C[c, c] / sum_p C[c, p]
    class IoU          = mean_c  C[c, c] / (sum_p C[c, p] + sum_g C[g, c] - C[c, c])

where both means run over the classes present in the ground truth (a class never seen in the ground truth
has no defined accuracy; pix2pix's 1e-12 guard would count it as 0 instead).

Colour-coded label images (the facades right halves, a generator's photo->labels output) become class
ids by nearest palette colour (`colors_to_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

FACADES_CLASSES = (
    "background",
    "facade",
    "window",
    "door",
    "cornice",
    "sill",
    "balcony",
    "blind",
    "deco",
    "molding",
    "pillar",
    "shop",
)

# Colours of the 12 CMP facade classes in pix2pix's facades set, in CMP label-id order (1..12 -> 0..11).
# Measured, not guessed: `estimate_palette` over the label halves of all 606 files (train, val and test
# each gave the same 12 medians within 1 level). Pixels count when their 5x5 neighbourhood spans <= 12
# levels per channel (away from JPEG-blurred edges); the modes of their 32-level histogram are refined to
# the median colour within +-1 bin. The colours run along a jet colour map in class-id order, and the
# classes' positions check out (door and shop at the bottom, molding and cornice above windows).
FACADES_PALETTE = np.array(
    [
        (0, 0, 222),  # background
        (0, 48, 255),  # facade
        (0, 128, 255),  # window
        (0, 207, 255),  # door
        (32, 255, 224),  # cornice
        (112, 255, 142),  # sill
        (192, 255, 63),  # balcony
        (255, 240, 0),  # blind
        (255, 159, 0),  # deco
        (255, 80, 0),  # molding
        (255, 0, 0),  # pillar
        (174, 0, 0),  # shop
    ],
    dtype=np.uint8,
)

PALETTES = {"facades": FACADES_PALETTE}  # by name: `cyclegan evaluate --palette`, `loss.cycle_palette_a/b`


def colors_to_labels(image: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 colours -> (H, W) int64 index of the nearest palette colour (Euclidean RGB)."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) colour image, got shape {img.shape}")
    pal = np.asarray(palette, np.int32)  # (K, 3)
    flat = img.reshape(-1, 3).astype(np.int32)
    # ||x - p||^2 = ||x||^2 - 2 x.p + ||p||^2; ||x||^2 is the same for every p, so drop it.
    score = (pal * pal).sum(1)[None, :] - 2 * flat @ pal.T  # (H*W, K)
    return score.argmin(1).reshape(img.shape[:2]).astype(np.int64)


def labels_to_colors(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 palette colours (the inverse of `colors_to_labels`)."""
    return np.asarray(palette, np.uint8)[np.asarray(labels)]


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts C[g, p] over pixels; pixels whose true id is outside [0, K) are ignored."""
    t, p = np.asarray(truth).ravel().astype(np.int64), np.asarray(pred).ravel().astype(np.int64)
    if t.shape != p.shape:
        raise ValueError(f"label maps differ in size: {np.shape(truth)} vs {np.shape(pred)}")
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"predicted ids must lie in [0, {num_classes})")
    keep = (t >= 0) & (t < num_classes)
    return np.bincount(num_classes * t[keep] + p[keep], minlength=num_classes**2).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class SegmentationScores:
    """Table 3 scores; the per-class arrays hold NaN for classes absent from the ground truth."""

    pixel_accuracy: float
    class_accuracy: float  # mean per-class accuracy over classes present in the ground truth
    class_iou: float  # mean IoU over the same classes
    per_class_accuracy: np.ndarray
    per_class_iou: np.ndarray

    def to_dict(self) -> dict[str, float]:
        return {"per_pixel_acc": self.pixel_accuracy, "per_class_acc": self.class_accuracy, "class_iou": self.class_iou}


def scores_from_confusion(conf: np.ndarray) -> SegmentationScores:
    """Per-pixel accuracy, mean per-class accuracy and mean class IoU from C[g, p] (module doc)."""
    c = np.asarray(conf, np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.sum() == 0:
        raise ValueError("need a square confusion matrix with at least one counted pixel")
    tp, true_n, pred_n = np.diag(c), c.sum(1), c.sum(0)
    present = true_n > 0
    acc = np.full(len(c), np.nan)
    iou = np.full(len(c), np.nan)
    acc[present] = tp[present] / true_n[present]
    iou[present] = tp[present] / (true_n + pred_n - tp)[present]
    return SegmentationScores(
        float(tp.sum() / c.sum()), float(acc[present].mean()), float(iou[present].mean()), acc, iou
    )


def segmentation_scores(
    truths: Iterable[np.ndarray], preds: Iterable[np.ndarray], num_classes: int
) -> SegmentationScores:
    """Scores over a whole set: one confusion matrix summed over all (truth, prediction) pairs."""
    conf = np.zeros((num_classes, num_classes), np.int64)
    n = 0
    for t, p in zip(truths, preds, strict=True):
        conf += confusion_matrix(t, p, num_classes)
        n += 1
    if n == 0:
        raise ValueError("no label maps to score")
    return scores_from_confusion(conf)


def majority_baseline(truths: Iterable[np.ndarray], num_classes: int) -> SegmentationScores:
    """Scores of the trivial predictor that labels every pixel with the most frequent true class."""
    truths = [np.asarray(t) for t in truths]
    counts = sum(np.bincount(t[(t >= 0) & (t < num_classes)].ravel(), minlength=num_classes) for t in truths)
    top = int(np.argmax(counts))
    return segmentation_scores(truths, [np.full(t.shape, top) for t in truths], num_classes)


def estimate_palette(
    images: Iterable[np.ndarray], max_range: int = 12, bins: int = 32, min_fraction: float = 1e-4
) -> np.ndarray:
    """The flat colours of colour-coded label images, as used to derive `FACADES_PALETTE`.

    Keeps pixels whose 5x5 neighbourhood spans at most `max_range` levels in every channel (JPEG edges
    are not), histograms them into `bins` levels per channel, takes histogram peaks holding at least
    `min_fraction` of those pixels (ignoring bins within 3 of a stronger peak), and returns each peak's
    median colour within +-1 bin, strongest first: an (K, 3) uint8 array.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    clean = []
    for img in images:
        a = np.asarray(img).astype(np.int16)
        win = sliding_window_view(a, (5, 5), axis=(0, 1))  # (H-4, W-4, 3, 5, 5)
        spread = (win.max(axis=(-1, -2)) - win.min(axis=(-1, -2))).max(-1)
        clean.append(a[2:-2, 2:-2][spread <= max_range])
    px = np.concatenate(clean)
    q = (px.astype(np.int64) * bins) // 256
    counts = np.bincount((q[:, 0] * bins + q[:, 1]) * bins + q[:, 2], minlength=bins**3)
    peaks: list[np.ndarray] = []
    for key in np.argsort(counts)[::-1]:
        if counts[key] < min_fraction * len(px):
            break
        cell = np.array([key // (bins * bins), key // bins % bins, key % bins])
        if all(np.abs(cell - p).max() > 3 for p in peaks):
            peaks.append(cell)
    return np.array([np.median(px[np.abs(q - p).max(1) <= 1], axis=0) for p in peaks]).round().astype(np.uint8)
