"""Image folders -> features: loading, preprocessing, the feature cache, and the `fid` command.

A stub network stands in for Inception here, so these run without weights and in milliseconds.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.errors import UserError
from cyclegan.metrics import cli_fid
from cyclegan.metrics import features as FT
from cyclegan.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_from_features
from cyclegan.metrics.kid import kid


class Stub(torch.nn.Module):
    """(B, 3, H, W) -> (B, 6): per-channel mean and std; counts its calls."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1) * self.scale


def _write(folder, n, seed, size=(40, 32), mode="RGB"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(arr).convert(mode).save(folder / f"{i:03d}.png")
    return folder


def test_list_images_filters_and_sorts(tmp_path):
    for name in ["b.PNG", "a.jpg", "notes.txt", "c.webp"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.png").write_bytes(b"x")
    assert [p.name for p in FT.list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.webp"]


def test_list_images_errors_name_the_problem(tmp_path):
    with pytest.raises(UserError, match=r"no images found in .*\(looked for .*\.jpg"):
        FT.list_images(tmp_path)
    with pytest.raises(UserError, match="not a folder"):
        FT.list_images(tmp_path / "missing")


def test_grayscale_and_rgba_files_become_rgb(tmp_path):
    Image.fromarray(np.full((5, 7), 77, np.uint8), "L").save(tmp_path / "g.png")
    Image.fromarray(np.full((5, 7, 4), 200, np.uint8), "RGBA").save(tmp_path / "a.png")
    g, a = FT.load_image(tmp_path / "g.png"), FT.load_image(tmp_path / "a.png")
    assert g.shape == a.shape == (3, 5, 7) and g.dtype == torch.uint8
    assert (g == 77).all() and (a == 200).all()


def test_preprocess_is_pytorch_fid_resize_then_2x_minus_1():
    x = torch.rand(2, 3, 64, 80)
    expected = 2 * torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
    assert torch.equal(FT.preprocess(x), expected)
    flat = FT.preprocess(torch.cat([torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)]))
    assert torch.allclose(flat[0], torch.tensor(-1.0)) and torch.allclose(flat[1], torch.tensor(1.0))


def test_folder_features_handle_mixed_sizes_in_order(tmp_path):
    _write(tmp_path, 3, seed=0, size=(40, 32))
    _write(tmp_path / "x", 1, seed=1)  # subfolders are ignored
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(tmp_path / "004.png")  # another size, black
    feats = FT.folder_features(tmp_path, Stub(), batch_size=2, use_cache=False)
    assert feats.shape == (4, 6) and feats.dtype == np.float32
    np.testing.assert_allclose(feats[3], [-1, -1, -1, 0, 0, 0], atol=1e-6)


def test_feature_cache_hits_and_invalidation(tmp_path):
    folder, cache = _write(tmp_path / "imgs", 4, seed=2), tmp_path / "cache"
    stub = Stub()
    first = FT.folder_features(folder, stub, cache=cache)
    assert stub.calls == 1 and len(list((cache / "features").glob("imgs-*.npz"))) == 1

    def no_model():
        raise AssertionError("cache miss")

    np.testing.assert_array_equal(FT.folder_features(folder, no_model, cache=cache), first)
    # a changed file (new mtime) or an added file is a different folder
    os.utime(folder / "001.png", ns=(1, 1))
    FT.folder_features(folder, stub, cache=cache)
    _write(tmp_path / "imgs", 5, seed=3)
    assert FT.folder_features(folder, stub, cache=cache).shape == (5, 6)
    assert stub.calls == 3
    FT.folder_features(folder, stub, cache=tmp_path / "other", use_cache=False)
    assert not (tmp_path / "other").exists()


def test_folder_statistics_reads_pytorch_fid_npz(tmp_path):
    mu, sigma = np.arange(3.0), np.eye(3)
    np.savez(tmp_path / "ref.npz", mu=mu, sigma=sigma)
    got = FT.folder_statistics(tmp_path / "ref.npz")
    np.testing.assert_array_equal(got[0], mu)
    np.testing.assert_array_equal(got[1], sigma)
    np.savez(tmp_path / "bad.npz", features=mu)
    with pytest.raises(UserError, match="mu"):
        FT.folder_statistics(tmp_path / "bad.npz")


@pytest.fixture
def stub_inception(monkeypatch):
    stub = Stub()
    monkeypatch.setattr(FT, "load_fid_inception", lambda weights=None, cache=None: stub)
    return stub


def test_fid_command_prints_fid_and_kid(tmp_path, stub_inception, capsys):
    a, b = _write(tmp_path / "a", 6, seed=4), _write(tmp_path / "b", 5, seed=5, size=(30, 30))
    assert cli_fid.main([str(a), str(b), "--kid", "--quiet", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    fa, fb = FT.folder_features(a, stub_inception), FT.folder_features(b, stub_inception)
    assert out[0] == f"FID: {frechet_distance_from_features(fa, fb)}"
    assert float(out[0].split()[1]) == pytest.approx(frechet_distance(*feature_statistics(fa), *feature_statistics(fb)))
    mean, std = kid(fa, fb)
    assert out[1] == f"KID: {mean} +- {std}"
    # the library entry points agree with the command
    assert FT.fid_from_folders(a, b) == float(out[0].split()[1])
    assert FT.kid_from_folders(a, b) == (mean, std)


def test_fid_command_errors(tmp_path, stub_inception, capsys):
    assert cli_fid.main([str(tmp_path / "missing"), str(tmp_path)]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    _write(tmp_path / "a", 2, seed=6)
    assert cli_fid.main([str(tmp_path / "empty"), str(tmp_path / "a"), "--quiet"]) == 2
    assert "no images found" in capsys.readouterr().err
    np.savez(tmp_path / "s.npz", mu=np.zeros(6), sigma=np.eye(6))
    assert cli_fid.main([str(tmp_path / "s.npz"), str(tmp_path / "a"), "--kid"]) == 2
    assert "KID needs image folders" in capsys.readouterr().err


def test_tensor_features_for_in_memory_images():
    stub = Stub()
    x = torch.rand(5, 3, 16, 16)
    feats = FT.tensor_features(stub, x, batch_size=2)
    assert feats.shape == (5, 6) and stub.calls == 3
    np.testing.assert_allclose(feats[:, :3], (2 * x - 1).mean((2, 3)).numpy(), atol=1e-3)
