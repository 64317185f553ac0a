"""Photo->labels scores on hand-made label maps, palette mapping, and the real facades palette."""

from __future__ import annotations

import numpy as np
import pytest

from cyclegan.metrics.segmentation import (
    FACADES_CLASSES,
    FACADES_PALETTE,
    colors_to_labels,
    confusion_matrix,
    estimate_palette,
    labels_to_colors,
    majority_baseline,
    scores_from_confusion,
    segmentation_scores,
)

from .conftest import SHARED_DATA

FACADES = SHARED_DATA / "facades"
needs_facades = pytest.mark.skipif(
    not (FACADES / "test").is_dir(), reason=f"facades data not found at {FACADES} (set CYCLEGAN_DATA)"
)

TRUTH = np.array([[0, 0, 1], [1, 2, 2]])
PRED = np.array([[0, 1, 1], [1, 2, 0]])


def test_confusion_matrix_counts():
    expected = np.zeros((4, 4), int)
    expected[0, 0] = expected[0, 1] = 1  # truth 0: one right, one called 1
    expected[1, 1] = 2
    expected[2, 2] = expected[2, 0] = 1
    np.testing.assert_array_equal(confusion_matrix(TRUTH, PRED, 4), expected)


def test_scores_on_hand_made_maps():
    s = segmentation_scores([TRUTH], [PRED], num_classes=4)
    assert s.pixel_accuracy == pytest.approx(4 / 6)
    # per class: 1/2, 2/2, 1/2; class 3 is absent from the truth and not averaged
    assert s.class_accuracy == pytest.approx(2 / 3)
    # IoU: class 0: 1 / (2 + 2 - 1); class 1: 2 / (2 + 3 - 2); class 2: 1 / (2 + 1 - 1)
    assert s.class_iou == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert np.isnan(s.per_class_accuracy[3]) and np.isnan(s.per_class_iou[3])
    assert s.to_dict() == {
        "per_pixel_acc": s.pixel_accuracy,
        "per_class_acc": s.class_accuracy,
        "class_iou": s.class_iou,
    }


def test_perfect_and_all_wrong():
    perfect = segmentation_scores([TRUTH], [TRUTH], 3)
    assert (perfect.pixel_accuracy, perfect.class_accuracy, perfect.class_iou) == (1.0, 1.0, 1.0)
    wrong = segmentation_scores([TRUTH], [(TRUTH + 1) % 3], 3)
    assert (wrong.pixel_accuracy, wrong.class_accuracy, wrong.class_iou) == (0.0, 0.0, 0.0)


def test_false_positives_of_an_absent_class_lower_iou_of_present_ones():
    truth = np.zeros((2, 2), int)
    pred = np.array([[0, 0], [0, 1]])  # class 1 never in the truth
    s = segmentation_scores([truth], [pred], 2)
    assert s.pixel_accuracy == pytest.approx(3 / 4)
    assert s.class_accuracy == pytest.approx(3 / 4)  # only class 0 averaged
    assert s.class_iou == pytest.approx(3 / 4)


def test_whole_set_accumulates_one_confusion_matrix():
    # Scores over two images are not the mean of per-image scores: pixels are pooled.
    t2, p2 = np.zeros((1, 4), int), np.array([[0, 0, 0, 2]])
    pooled = segmentation_scores([TRUTH, t2], [PRED, p2], 3)
    assert pooled.pixel_accuracy == pytest.approx((4 + 3) / 10)
    cat = scores_from_confusion(
        confusion_matrix(np.concatenate([TRUTH.ravel(), t2.ravel()]), np.concatenate([PRED.ravel(), p2.ravel()]), 3)
    )
    assert cat.class_iou == pytest.approx(pooled.class_iou)


def test_ignored_truth_ids_and_bad_predictions():
    truth = np.array([[0, 255], [1, 1]])
    pred = np.array([[0, 1], [1, 0]])
    assert confusion_matrix(truth, pred, 2).sum() == 3  # the 255 pixel is not counted
    with pytest.raises(ValueError):
        confusion_matrix(truth, np.array([[0, 5], [1, 0]]), 2)
    with pytest.raises(ValueError):
        confusion_matrix(truth, pred[:1], 2)


def test_majority_baseline():
    truth = np.array([[0, 0, 0], [1, 2, 0]])
    s = majority_baseline([truth], 3)
    assert s.pixel_accuracy == pytest.approx(4 / 6)
    assert s.class_accuracy == pytest.approx(1 / 3)  # 1, 0, 0
    assert s.class_iou == pytest.approx((4 / 6) / 3)


def test_colors_to_labels_nearest_colour():
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    img = np.array([[[0, 0, 0], [250, 10, 5], [10, 0, 200]], [[100, 0, 0], [160, 0, 0], [0, 0, 130]]], np.uint8)
    np.testing.assert_array_equal(colors_to_labels(img, palette), [[0, 1, 2], [0, 1, 2]])
    labels = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(colors_to_labels(labels_to_colors(labels, FACADES_PALETTE), FACADES_PALETTE), labels)
    with pytest.raises(ValueError):
        colors_to_labels(np.zeros((4, 4)), palette)


def test_facades_palette_shape():
    assert FACADES_PALETTE.shape == (12, 3) and len(FACADES_CLASSES) == 12
    assert len({tuple(c) for c in FACADES_PALETTE}) == 12


def _label_halves(folder, n):
    from PIL import Image

    files = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem))[:n]
    return [np.asarray(Image.open(f).convert("RGB"))[:, 256:] for f in files]


@needs_facades
def test_real_facades_labels_map_onto_the_palette():
    from numpy.lib.stride_tricks import sliding_window_view

    halves = _label_halves(FACADES / "test", 8)
    seen = np.zeros(12, int)
    interior_close, overall_close = [], []
    for img in halves:
        assert img.shape == (256, 256, 3)
        labels = colors_to_labels(img, FACADES_PALETTE)
        dist = np.sqrt(((img.astype(int) - FACADES_PALETTE[labels].astype(int)) ** 2).sum(-1))
        win = sliding_window_view(labels, (5, 5))
        interior = np.zeros_like(labels, bool)
        interior[2:-2, 2:-2] = win.min(axis=(-1, -2)) == win.max(axis=(-1, -2))
        interior_close.append((dist[interior] <= 30).mean())
        overall_close.append(np.median(dist))
        seen += np.bincount(labels.ravel(), minlength=12) > 0.002 * labels.size
    # every class shows up; away from class edges (where JPEG's subsampled chroma mixes colours)
    # almost every pixel is within 30 RGB levels of its palette colour
    assert (seen > 0).sum() == 12
    assert min(interior_close) > 0.97
    assert max(overall_close) < 8


@needs_facades
def test_palette_rederived_from_real_label_images():
    found = estimate_palette(_label_halves(FACADES / "val", 10))
    assert len(found) == 12
    dist = np.abs(found[:, None].astype(int) - FACADES_PALETTE[None].astype(int)).max(-1)  # (found, palette)
    assert sorted(dist.argmin(1)) == list(range(12))  # one-to-one
    assert dist.min(1).max() <= 3
