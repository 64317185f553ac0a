"""The colour-to-class decoding of facades label maps, checked on the ground truth itself: read as translations,
the ground-truth label images must score 1.0, also after evaluate's --size resize."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from conftest import FACADES, needs_facades
from cyclegan.evaluate import SegScorer
from cyclegan.metrics import FACADES_PALETTE, colors_to_labels
from cyclegan.metrics.segmentation import labels_to_colors

N = 12  # test pairs


def _label_maps(out, size=0, snap=False):
    """Right halves of the first N facades test pairs: as stored (JPEG colours), or as experiments/facades/prepare.py
    writes them (PIL nearest to size x size, snapped to the palette with --clean-labels)."""
    out.mkdir(parents=True)
    for i in range(1, N + 1):
        ab = Image.open(FACADES / "test" / f"{i}.jpg").convert("RGB")
        half = ab.crop((ab.width // 2, 0, ab.width, ab.height))
        if size:
            half = half.resize((size, size), Image.NEAREST)
        a = np.array(half)
        if snap:
            a = labels_to_colors(colors_to_labels(a, FACADES_PALETTE), FACADES_PALETTE)
        Image.fromarray(a).save(out / f"{i}.png")
    return out


def _score(truth_dir, translations, resize):
    scorer = SegScorer(truth_dir, FACADES_PALETTE, resize=resize)
    for f, fake in translations:
        scorer.update([f], None, fake[None], None)
    return scorer.result()


def _u8(path):
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)


@needs_facades
def test_ground_truth_label_maps_score_one_as_stored(tmp_path):
    truth = _label_maps(tmp_path / "raw")
    r = _score(truth, [(f, _u8(f)) for f in sorted(truth.glob("*.png"))], resize=False)
    assert r["per_pixel_acc"] == r["per_class_acc"] == r["class_iou"] == 1.0
    assert 0.25 < r["majority_per_pixel_acc"] < 0.45  # facade, the majority class: 0.349 on all 106 test maps


@needs_facades
def test_ground_truth_scores_one_at_evaluate_size_when_aligned_like_the_photo(tmp_path):
    """evaluate --size resizes the photo (bicubic, centre-aligned) and the ground truth; a perfect translation is
    the label map resized in the photo's alignment (PIL nearest, as prepare.py resized the pairs). Before the fix
    the ground truth was resized with torch's legacy 'nearest' (shifted by up to a source pixel): this perfect
    translation then scored 0.876 per-pixel on all 106 test maps at 143 -> 128."""
    truth = _label_maps(tmp_path / "prepared", size=143, snap=True)
    fakes = [
        (f, torch.from_numpy(np.array(Image.open(f).convert("RGB").resize((128, 128), Image.NEAREST))).permute(2, 0, 1))
        for f in sorted(truth.glob("*.png"))
    ]
    r = _score(truth, fakes, resize=True)
    assert r["per_pixel_acc"] == r["per_class_acc"] == r["class_iou"] == 1.0


def test_nearest_exact_keeps_the_alignment_of_the_bicubic_photo_resize():
    """A vertical edge, resized 143 -> 128: the photo's bicubic resize puts it where NEAREST_EXACT does, while the
    legacy NEAREST moves it (why the seg ground truth is resized with NEAREST_EXACT)."""
    x = torch.zeros(3, 143, 143, dtype=torch.uint8)
    x[:, :, 72:] = 255

    def edge(img):  # the first bright column of row 64
        return int((img[0, 64].float() > 127).nonzero()[0])

    photo = TF.resize(x, [128, 128], interpolation=InterpolationMode.BICUBIC, antialias=True)
    exact = TF.resize(x, [128, 128], interpolation=InterpolationMode.NEAREST_EXACT)
    legacy = TF.resize(x, [128, 128], interpolation=InterpolationMode.NEAREST)
    assert edge(photo) == edge(exact) == 64 and edge(legacy) == 65


REFERENCE = FACADES.parents[1] / "reference" / "upstream-2a7afba"


@needs_facades
# the reference's own get_current_losses calls float() on a tensor that requires grad
@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True to a scalar:UserWarning")
def test_reference_training_script_writes_a_generator_that_evaluate_scores(tmp_path, monkeypatch):
    """experiments/facades/reference_train.py drives the reference implementation's own model and data loader on
    a prepared folder; `cyclegan evaluate` scores its G_A with the same seg scorer as our runs."""
    import pytest

    if not (REFERENCE / "models" / "cycle_gan_model.py").is_file():
        pytest.skip(f"the reference implementation is not at {REFERENCE}")
    from cyclegan.cli import main
    from test_experiments import load_script

    data = tmp_path / "data"
    for i in range(1, 5):
        ab = Image.open(FACADES / "test" / f"{i}.jpg").convert("RGB")
        w = ab.width // 2
        for split, box, resample in (
            ("A", (0, 0, w, ab.height), Image.BICUBIC),
            ("B", (w, 0, 2 * w, ab.height), Image.NEAREST),
        ):
            for phase in ("train", "test"):
                (data / f"{phase}{split}").mkdir(parents=True, exist_ok=True)
                ab.crop(box).resize((36, 36), resample).save(data / f"{phase}{split}" / f"{i}.png")
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts the reference's folder first; undone after
    script = load_script("facades/reference_train.py")
    assert (
        script.main(
            [
                "--data",
                str(data),
                "--out",
                str(tmp_path / "ref"),
                "--reference",
                str(REFERENCE),
                "--load-size",
                "36",
                "--crop-size",
                "32",
                "--ngf",
                "4",
                "--ndf",
                "4",
                "--max-steps",
                "2",
            ]
        )
        == 0
    )
    generator = tmp_path / "ref" / "latest_net_G_A.pth"
    assert generator.is_file()
    assert (
        main(
            [
                "evaluate",
                str(generator),
                "--data",
                str(data),
                "--size",
                "32",
                "--metrics",
                "seg",
                "--out",
                str(tmp_path / "eval"),
                "--quiet",
                "--no-gallery",
            ]
        )
        == 0
    )
    import json

    values = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]["AtoB"]
    assert 0 <= values["per_pixel_acc"] <= 1 and values["majority_per_pixel_acc"] > 0
