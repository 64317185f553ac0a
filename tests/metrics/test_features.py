"""Image folders -> features: loading, preprocessing, the feature cache, and the `fid` command.

A stub network stands in for Inception here, so these run without weights and in milliseconds.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.cli import main as cyclegan
from cyclegan.data.files import find_images, read_image
from cyclegan.errors import UserError
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


def test_list_images_finds_what_training_finds(tmp_path):
    """fid/evaluate and train see the same images in a folder: recursive, training's extensions."""
    for name in ["b.PNG", "a.jpg", "notes.txt", "c.webp", "e.npy", "f.pgm", "g.ppm", ".hidden.png"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.png").write_bytes(b"x")
    got = [p.relative_to(tmp_path).as_posix() for p in FT.list_images(tmp_path)]
    assert got == ["a.jpg", "b.PNG", "c.webp", "e.npy", "sub/d.png"]
    assert FT.list_images(tmp_path) == find_images(tmp_path)


def test_list_images_errors_name_the_problem(tmp_path):
    with pytest.raises(UserError, match=r"no images found in .*\(looked for .*\.jpg"):
        FT.list_images(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        FT.list_images(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(UserError, match="not a folder"):
        FT.list_images(tmp_path / "file.png")


@pytest.mark.filterwarnings("ignore:.*converted to 3 channel")  # training's decoder says so, once per kind
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
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(tmp_path / "004.png")  # another size, black
    _write(tmp_path / "x", 1, seed=1)  # subfolders count, as in training: x/000.png comes last
    feats = FT.folder_features(tmp_path, Stub(), batch_size=2, use_cache=False)
    assert feats.shape == (5, 6) and feats.dtype == np.float32
    np.testing.assert_allclose(feats[3], [-1, -1, -1, 0, 0, 0], atol=1e-6)


def test_folder_features_decode_as_training_does(tmp_path):
    """The images training reads (a 3-channel .npy, an EXIF-rotated JPEG) are read the same way here."""
    rng = np.random.default_rng(7)
    np.save(tmp_path / "a.npy", rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees for display
    Image.fromarray(rng.integers(0, 256, (8, 16, 3), dtype=np.uint8)).save(tmp_path / "b.jpg", exif=exif)
    (tmp_path / "c.pgm").write_bytes(b"P5 2 2 255\n" + bytes(4))  # not a training format: ignored
    files = find_images(tmp_path)
    assert [f.name for f in files] == ["a.npy", "b.jpg"] and read_image(files[1], 3).shape == (3, 16, 8)  # rotated
    stub = Stub()
    feats = FT.folder_features(tmp_path, stub, use_cache=False)
    with torch.no_grad():
        want = torch.cat([stub(FT.preprocess(read_image(f, 3)[None] / 255.0)) for f in files]).numpy()
    np.testing.assert_allclose(feats, want, rtol=1e-5, atol=1e-6)


def test_unreadable_images_are_named(tmp_path):
    _write(tmp_path / "imgs", 2, seed=8)
    (tmp_path / "imgs" / "garbage.png").write_bytes(b"not an image at all")
    for workers in (0, 1):  # a worker process's failure reaches the caller as the same one line
        with pytest.raises(UserError, match=r"garbage\.png: cannot read image .*remove or replace it") as e:
            FT.folder_features(tmp_path / "imgs", Stub(), use_cache=False, num_workers=workers)
        assert "\n" not in str(e.value)
    with pytest.raises(UserError, match=r"garbage\.png"):
        FT.load_image(tmp_path / "imgs" / "garbage.png")


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
    # files in subfolders count (discovery is recursive), and so does a change to one of them
    _write(folder / "sub", 1, seed=9)
    assert FT.folder_features(folder, stub, cache=cache).shape == (6, 6) and stub.calls == 5
    os.utime(folder / "sub" / "000.png", ns=(2, 2))
    FT.folder_features(folder, stub, cache=cache)
    assert stub.calls == 6


def test_cache_key_tells_apart_same_names_in_different_subfolders(tmp_path):
    folder = tmp_path / "f"
    _write(folder / "x", 2, seed=1)
    key = FT.folder_key(folder, FT.list_images(folder))
    (folder / "y").mkdir()
    (folder / "x" / "000.png").rename(folder / "y" / "000.png")  # same name, size and mtime, other subfolder
    assert FT.folder_key(folder, FT.list_images(folder)) != key


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
    assert cyclegan(["fid", str(a), str(b), "--kid", "--quiet", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    fa, fb = FT.folder_features(a, stub_inception), FT.folder_features(b, stub_inception)
    assert out[0] == f"FID: {frechet_distance_from_features(fa, fb)}"
    assert float(out[0].split()[1]) == pytest.approx(frechet_distance(*feature_statistics(fa), *feature_statistics(fb)))
    mean, std = kid(fa, fb)
    assert out[1] == f"KID: {mean} +- {std}"
    # the library entry points agree with the command
    assert FT.fid_from_folders(a, b) == float(out[0].split()[1])
    assert FT.kid_from_folders(a, b) == (mean, std)


def test_fid_command_notes_small_sets_and_identical_kid_subsets(tmp_path, stub_inception, capsys):
    a, b = _write(tmp_path / "a", 5, seed=4), _write(tmp_path / "b", 5, seed=5)
    assert cyclegan(["fid", str(a), str(b), "--kid", "--quiet"]) == 0
    captured = capsys.readouterr()
    out, err = captured.out.splitlines(), captured.err.splitlines()
    assert out[0].startswith("FID: ")  # pytorch-fid's first line, unchanged
    assert out[1].startswith("KID: ") and out[1].endswith(" +- nan")  # 5 vs 5: every subset is the whole set
    assert float(out[1].split()[1]) == pytest.approx(kid(FT.folder_features(a), FT.folder_features(b))[0])
    assert len(err) == 2 and "5 and 5 images is biased upward" in err[0] and "2048" in err[0]
    assert "KID std not available" in err[1]
    # unequal sets: the larger one is resampled, so the std is a real spread and has no note
    _write(tmp_path / "c", 6, seed=6)
    assert cyclegan(["fid", str(a), str(tmp_path / "c"), "--kid", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert not captured.out.splitlines()[1].endswith("nan") and "KID std" not in captured.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--kid-subset-size", "1"], "--kid-subset-size must be at least 2"),
        (["--kid-subsets", "0"], "--kid-subsets must be at least 1"),
    ],
)
def test_fid_command_refuses_bad_kid_options(tmp_path, stub_inception, capsys, argv, message):
    a, b = _write(tmp_path / "a", 3, seed=1), _write(tmp_path / "b", 5, seed=2)
    assert cyclegan(["fid", str(a), str(b), "--kid", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert stub_inception.calls == 0


def test_fid_command_names_a_folder_of_one_image(tmp_path, stub_inception, capsys):
    one, b = _write(tmp_path / "one", 1, seed=1), _write(tmp_path / "b", 3, seed=2)
    assert cyclegan(["fid", str(one), str(b), "--kid"]) == 2
    err = capsys.readouterr().err
    assert f"{one}: 1 image;" in err and "at least 2 images" in err
    assert stub_inception.calls == 0  # refused before any feature was computed
    with pytest.raises(UserError, match="1 image"):
        FT.fid_from_folders(one, b)
    with pytest.raises(UserError, match="1 image"):
        FT.kid_from_folders(b, one)


def test_fid_command_names_an_unreadable_file(tmp_path, stub_inception, capsys):
    a, b = _write(tmp_path / "a", 3, seed=1), _write(tmp_path / "b", 3, seed=2)
    (a / "garbage.png").write_bytes(b"\x89PNG garbage")
    assert cyclegan(["fid", str(a), str(b), "--quiet"]) == 2
    assert "garbage.png: cannot read image" in capsys.readouterr().err


def test_fid_command_errors(tmp_path, stub_inception, capsys):
    assert cyclegan(["fid", str(tmp_path / "missing"), str(tmp_path)]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    _write(tmp_path / "a", 2, seed=6)
    assert cyclegan(["fid", str(tmp_path / "empty"), str(tmp_path / "a"), "--quiet"]) == 2
    assert "no images found" in capsys.readouterr().err
    np.savez(tmp_path / "s.npz", mu=np.zeros(6), sigma=np.eye(6))
    assert cyclegan(["fid", str(tmp_path / "s.npz"), str(tmp_path / "a"), "--kid"]) == 2
    assert "KID needs image folders" in capsys.readouterr().err


def test_tensor_features_for_in_memory_images():
    stub = Stub()
    x = torch.rand(5, 3, 16, 16)
    feats = FT.tensor_features(stub, x, batch_size=2)
    assert feats.shape == (5, 6) and stub.calls == 3
    np.testing.assert_allclose(feats[:, :3], (2 * x - 1).mean((2, 3)).numpy(), atol=1e-3)
