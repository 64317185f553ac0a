"""Checkpoints: nested trees round-trip exactly, writes are atomic, nothing is unpickled."""

import pytest
import torch

from cyclegan import checkpoint as ckpt
from cyclegan.errors import UserError


def test_tree_round_trip(tmp_path):
    opt_state = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(4)}},
        "param_groups": [{"lr": 0.1, "params": [0]}],
    }
    tree = {
        "a": torch.arange(5),
        "nested": {"opt": opt_state, "none": None, "list": [1, 2.5, "x", True]},
        "scalar": torch.tensor(7),
    }
    ckpt.save_tree(tmp_path / "t.safetensors", tree, {"format": "test", "info": {"k": 1}})
    back, meta = ckpt.load_tree(tmp_path / "t.safetensors")
    assert meta == {"format": "test", "info": {"k": 1}}
    assert torch.equal(back["a"], tree["a"]) and back["scalar"].item() == 7
    assert list(back["nested"]["opt"]["state"]) == [0]  # int keys survive
    assert torch.equal(back["nested"]["opt"]["state"][0]["exp_avg"], opt_state["state"][0]["exp_avg"])
    assert back["nested"]["list"] == [1, 2.5, "x", True] and back["nested"]["none"] is None


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "c.safetensors"
    ckpt.save_tree(path, {"x": torch.ones(2)}, {"format": "test"})

    def boom(tmp):
        open(tmp, "wb").write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        ckpt.atomic_write(path, boom)
    back, _ = ckpt.load_tree(path)
    assert torch.equal(back["x"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temp files left


def test_unreadable_checkpoints_are_user_errors(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 20)
    with pytest.raises(UserError, match="bad.safetensors: not a readable"):
        ckpt.load_tree(bad)
    with pytest.raises(UserError, match="not found"):
        ckpt.load_tree(tmp_path / "missing.safetensors")
    with pytest.raises(UserError, match="no checkpoints/latest.model"):
        ckpt.resolve_checkpoint(tmp_path)


@pytest.mark.parametrize("content", [b"", b"abc", bytes(range(256)) * 4, "truncated"])
def test_unreadable_files_are_named(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    if content == "truncated":
        ckpt.save_tree(path, {"w": torch.zeros(1000)}, {})
        content = path.read_bytes()[:-100]
    path.write_bytes(content)
    with pytest.raises(UserError, match=r"bad.safetensors: not a readable safetensors checkpoint"):
        ckpt.load_tree(path)
