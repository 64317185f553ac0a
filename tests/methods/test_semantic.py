"""CyCADA's semantic consistency loss, an option of the cyclegan method (loss.lambda_semantic)."""

import json
import math

import pytest
import torch

from conftest import flat_tensors
from cyclegan import losses as L
from cyclegan.checkpoint import load_tree
from cyclegan.cli import main
from cyclegan.config import build_config
from cyclegan.content import Classifier, DigitCNN, save_classifier
from cyclegan.data.transforms import to_float
from cyclegan.errors import UserError
from cyclegan.methods import create_method, validate
from cyclegan.train import train


def _classifier_file(path, channels=3, size=8, classes=3, seed=0):
    """A random DigitCNN made decisive (last layer scaled up), so its labels are clear-cut, as a trained one's."""
    torch.manual_seed(seed)
    kwargs = {"in_ch": channels, "num_classes": classes, "width": 4, "size": size}
    net = DigitCNN(**kwargs)
    with torch.no_grad():
        net.head[-1].weight.mul_(100)
    save_classifier(path, net, size, channels, [str(i) for i in range(classes)], kwargs=kwargs)
    return path


def test_semantic_loss_is_cross_entropy_against_the_source_argmax():
    mapped = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], requires_grad=True)
    source = torch.tensor([[0.0, 5.0, 1.0], [0.0, 1.0, 3.0]], requires_grad=True)  # classes 1 and 2
    loss = L.semantic_loss(mapped, source)
    by_hand = (math.log(math.e**2 + 2) + math.log(2 + math.e)) / 2  # -log softmax at the source's class
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)
    loss.backward()
    assert source.grad is None and mapped.grad.abs().sum() > 0  # the source only labels
    same = torch.tensor([[9.0, 0.0, 0.0]])
    assert L.semantic_loss(same, same).item() < 1e-3


def test_classifier_logits_agree_with_predict_and_are_differentiable():
    torch.manual_seed(0)
    net = DigitCNN(in_ch=1, num_classes=3, width=4, size=8)
    clf = Classifier(net, 8, 1, ["a", "b", "c"])
    grey = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    assert torch.equal(clf.logits(to_float(grey)).argmax(1), clf.predict(grey))
    rgb = grey.expand(-1, 3, -1, -1)  # equal channels: their mean is the grey image exactly
    assert torch.allclose(clf.logits(to_float(rgb)), clf.logits(to_float(grey)), atol=1e-6)
    big = to_float(torch.randint(0, 256, (2, 1, 16, 16), dtype=torch.uint8)).requires_grad_(True)
    out = clf.logits(big)  # resized to the classifier's 8x8 on the way
    assert out.shape == (2, 3)
    out.sum().backward()
    assert big.grad.abs().sum() > 0


def _config(image_root, tiny, clf, *extra):
    return build_config(
        [],
        [],
        tiny
        + [
            f"data.root={image_root}",
            "loss.lambda_identity=0",
            "loss.pool_size=3",
            "loss.lambda_semantic=2",
            f"loss.semantic_classifier={clf}",
            *extra,
        ],
    )


def test_generator_terms_and_gradients(image_root, tiny_overrides, tmp_path):
    clf_path = _classifier_file(tmp_path / "clf.safetensors")
    cfg = _config(
        image_root,
        tiny_overrides,
        clf_path,
        "loss.lambda_gan_a=0",
        "loss.lambda_gan_b=0",
        "loss.lambda_a=0",
        "loss.lambda_b=0",
    )
    method = create_method(validate(cfg))
    torch.manual_seed(0)
    nets = method.build_networks()
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    terms, fakes = method.generator_loss(nets, batch)
    assert set(terms) == {"sem_A", "sem_B"} and fakes == {}  # no discriminator to feed
    f = method.extras.terms[0].fn.classifier(torch.device("cpu"))
    with torch.no_grad():
        want_a = 2 * L.semantic_loss(f.logits(nets["G_A"](batch["A"])), f.logits(batch["A"]))
        want_b = 2 * L.semantic_loss(f.logits(nets["G_B"](batch["B"])), f.logits(batch["B"]))
    assert terms["sem_A"].item() == pytest.approx(want_a.item(), rel=1e-6)
    assert terms["sem_B"].item() == pytest.approx(want_b.item(), rel=1e-6)
    terms["sem_A"].backward()  # G(x)'s term trains G only; the classifier stays fixed
    assert all(p.grad is None for p in nets["G_B"].parameters())
    assert sum(p.grad.abs().sum() for p in nets["G_A"].parameters()) > 0
    assert all(not p.requires_grad and p.grad is None for p in f.net.parameters())
    assert not f.net.training  # eval mode: no dropout in the labels or the loss


def test_semantic_loss_alone_teaches_the_generators_to_keep_the_class(image_root, tiny_overrides, tmp_path):
    clf_path = _classifier_file(tmp_path / "clf.safetensors")
    cfg = _config(
        image_root,
        tiny_overrides,
        clf_path,
        "loss.lambda_gan_a=0",
        "loss.lambda_gan_b=0",
        "loss.lambda_a=0",
        "loss.lambda_b=0",
        "train.log_every=1",
        "train.max_steps=60",
        "optim.lr=0.002",
        "optim.n_epochs=20",
    )
    train(cfg, tmp_path / "run")
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines() if '"sem_A"' in line]
    first, last = log[:5], log[-5:]
    for key in ("sem_A", "sem_B"):
        assert sum(r[key] for r in last) < 0.9 * sum(r[key] for r in first), key  # measured: 0.82 and 0.82


def test_resume_with_the_semantic_loss_is_bit_identical(image_root, tiny_overrides, tmp_path):
    clf_path = _classifier_file(tmp_path / "clf.safetensors")
    straight = train(_config(image_root, tiny_overrides, clf_path, "train.max_steps=7"), tmp_path / "straight")
    train(_config(image_root, tiny_overrides, clf_path, "train.max_steps=3"), tmp_path / "resumed")
    resumed = train(
        _config(image_root, tiny_overrides, clf_path, "train.max_steps=7"), tmp_path / "resumed", resume=True
    )
    assert straight.state.step == resumed.state.step == 7
    a, _ = load_tree(tmp_path / "straight" / "checkpoints" / "latest.state.safetensors")
    b, _ = load_tree(tmp_path / "resumed" / "checkpoints" / "latest.state.safetensors")
    ta, tb = dict(flat_tensors(a)), dict(flat_tensors(b))
    assert ta.keys() == tb.keys() and not any("classifier" in k or "features." in k for k in ta)  # f is not saved
    assert all(torch.equal(ta[k], tb[k]) for k in ta if "/rng/" not in k)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["loss.semantic_classifier="], "needs a classifier"),
        (["loss.semantic_classifier=nowhere.safetensors"], "nowhere.safetensors not found"),
        (["model.method=pix2pix"], "term of the cyclegan method"),
        (["loss.lambda_semantic=-1"], "must be 0 (off) or positive"),
    ],
)
def test_bad_settings_are_named(image_root, tiny_overrides, tmp_path, extra, message):
    clf_path = _classifier_file(tmp_path / "clf.safetensors")
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(_config(image_root, tiny_overrides, clf_path, *extra))


def test_cli_keeps_the_classifier_path_absolute(image_root, tiny_overrides, tmp_path, monkeypatch, capsys):
    _classifier_file(tmp_path / "clf.safetensors")
    monkeypatch.chdir(tmp_path)
    sets = [a for o in tiny_overrides for a in ("--set", o)]
    assert (
        main(
            [
                "train",
                str(image_root),
                "--run-dir",
                "run",
                "--max-steps",
                "2",
                *sets,
                "--set",
                "loss.lambda_semantic=1",
                "--set",
                "loss.semantic_classifier=clf.safetensors",
            ]
        )
        == 0
    )
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["loss"]
    assert saved["semantic_classifier"] == str(tmp_path / "clf.safetensors") and saved["lambda_semantic"] == 1.0
    log = (tmp_path / "run" / "log.jsonl").read_text()
    assert '"sem_A"' in log and '"sem_B"' in log
