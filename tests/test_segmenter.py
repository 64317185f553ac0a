"""Segmenters (cyclegan.segmenter) and the FCN-score scorer on hand-made label maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.errors import UserError
from cyclegan.evaluate import FcnScorer
from cyclegan.metrics import FACADES_PALETTE, colors_to_labels
from cyclegan.metrics.segmentation import FACADES_CLASSES
from cyclegan.segmenter import SegNet, load_segmenter, save_segmenter

KW = {"in_ch": 3, "num_classes": 12, "width": 4, "depth": 2}


def _save(path: Path, **kw) -> Path:
    torch.manual_seed(0)
    kwargs = {**KW, **kw}
    save_segmenter(path, SegNet(**kwargs), 3, list(FACADES_CLASSES)[: kwargs["num_classes"]], "facades", kwargs=kwargs)
    return path


def test_segnet_and_predict_at_any_size(tmp_path):
    assert SegNet(**KW)(torch.zeros(2, 3, 16, 24)).shape == (2, 12, 16, 24)
    seg = load_segmenter(_save(tmp_path / "s.safetensors"))
    images = torch.randint(0, 256, (2, 3, 21, 30), dtype=torch.uint8)
    pred = seg.predict(images)
    assert pred.shape == (2, 21, 30) and pred.dtype == torch.int64 and 0 <= int(pred.min()) <= int(pred.max()) < 12
    assert torch.equal(seg.predict(images[:, :1]), seg.predict(images[:, :1].expand(-1, 3, -1, -1)))  # grey as RGB
    again = load_segmenter(tmp_path / "s.safetensors")
    assert torch.equal(again.predict(images), pred)
    assert again.classes == list(FACADES_CLASSES) and again.palette == "facades"


def test_not_a_segmenter_file_is_named(tmp_path):
    from cyclegan.content import DigitCNN, save_classifier

    save_classifier(
        tmp_path / "clf.safetensors",
        DigitCNN(3, 2, 4, 16),
        16,
        3,
        ["a", "b"],
        kwargs={"in_ch": 3, "num_classes": 2, "width": 4, "size": 16},
    )
    with pytest.raises(UserError, match="not a segmenter file .*cyclegan-classifier/1"):
        load_segmenter(tmp_path / "clf.safetensors")
    with pytest.raises(UserError, match="segmenter .*missing.safetensors not found .*train_segmenter.py"):
        load_segmenter(tmp_path / "missing.safetensors")


def test_fcn_scorer_known_values(tmp_path, monkeypatch):
    """An oracle segmenter that reads palette colours: translations equal to their label maps score 1; all-class-0
    translations of half-0, half-1 maps score per-pixel 0.5, per-class (1 + 0) / 2, IoU (1/2 + 0) / 2."""
    half = np.zeros((8, 8), np.int64)
    half[4:] = 1
    maps = torch.from_numpy(FACADES_PALETTE[np.stack([half, half])]).permute(0, 3, 1, 2).contiguous()
    real = tmp_path / "real"
    real.mkdir()
    Image.fromarray(FACADES_PALETTE[half]).save(real / "a.png")  # the paired "photo" of a.png: the oracle reads it
    scorer = FcnScorer(_save(tmp_path / "s.safetensors"), FACADES_PALETTE, real, "cpu")
    monkeypatch.setattr(
        scorer.segmenter,
        "predict",
        lambda x: torch.from_numpy(
            np.stack([colors_to_labels(i.permute(1, 2, 0).numpy(), FACADES_PALETTE) for i in x])
        ),
    )
    (tmp_path / "maps").mkdir()
    files = [tmp_path / "maps" / "a.png", tmp_path / "maps" / "b.png"]  # the label maps as stored: the truth
    for f in files:
        Image.fromarray(FACADES_PALETTE[half]).save(f)
    scorer.update(files, maps, maps, None)
    assert scorer.result() == {
        "fcn_per_pixel_acc": 1.0,
        "fcn_per_class_acc": 1.0,
        "fcn_class_iou": 1.0,
        "real_fcn_per_pixel_acc": 1.0,
        "real_fcn_per_class_acc": 1.0,
        "real_fcn_class_iou": 1.0,
        # every pixel class 0 (the first of two equally frequent classes); one real photo: no pairs
        "majority_fcn_per_pixel_acc": 0.5,
        "majority_fcn_per_class_acc": 0.5,
        "majority_fcn_class_iou": 0.25,
    }
    scorer = FcnScorer(tmp_path / "s.safetensors", FACADES_PALETTE, tmp_path / "none", "cpu")
    monkeypatch.setattr(scorer.segmenter, "predict", lambda x: torch.zeros(len(x), 8, 8, dtype=torch.int64))
    scorer.update(files, maps, maps, None)
    assert {k: v for k, v in scorer.result().items() if k.startswith("fcn")} == pytest.approx(
        {"fcn_per_pixel_acc": 0.5, "fcn_per_class_acc": 0.5, "fcn_class_iou": 0.25}
    )


def test_fcn_unaligned_baseline_scores_each_map_against_the_next_real_photo(tmp_path, monkeypatch):
    """Maps all class 0, all class 1, all class 0; the oracle reads each real photo as its own map. Map i against the
    real photo of map i+1 (the last against the first's): 0 vs 1, 1 vs 0, 0 vs 0: one pair of three right."""
    maps_dir, real = tmp_path / "maps", tmp_path / "real"
    maps_dir.mkdir(), real.mkdir()
    files = []
    for name, c in (("a", 0), ("b", 1), ("c", 0)):
        for folder in (maps_dir, real):
            Image.fromarray(FACADES_PALETTE[np.full((4, 4), c)]).save(folder / f"{name}.png")
        files.append(maps_dir / f"{name}.png")
    scorer = FcnScorer(_save(tmp_path / "s.safetensors"), FACADES_PALETTE, real, "cpu")
    monkeypatch.setattr(
        scorer.segmenter,
        "predict",
        lambda x: torch.from_numpy(
            np.stack([colors_to_labels(i.permute(1, 2, 0).numpy(), FACADES_PALETTE) for i in x])
        ),
    )
    maps = torch.stack([torch.from_numpy(np.array(Image.open(f))).permute(2, 0, 1) for f in files])
    scorer.update(files, maps, maps, None)
    result = scorer.result()
    assert result["unaligned_fcn_per_pixel_acc"] == pytest.approx(1 / 3)
    assert result["majority_fcn_per_pixel_acc"] == pytest.approx(2 / 3) and result["real_fcn_per_pixel_acc"] == 1.0


def test_fcn_scorer_refuses_a_segmenter_of_other_classes(tmp_path):
    with pytest.raises(UserError, match="knows 2 classes, the palette 12 colours"):
        FcnScorer(_save(tmp_path / "s2.safetensors", num_classes=2), FACADES_PALETTE, tmp_path, "cpu")
