"""Image limits as policy: one pixel limit (data/limits.py) refuses an oversized image from its header, and every
reader (train, translate, evaluate, fid) says so in the same one line naming the file; `translate` on a folder
translates every readable image and lists the ones it skipped (exit 3)."""

import shutil

import pytest
from PIL import Image

from conftest import needs_horse2zebra
from cyclegan.cli import main
from cyclegan.data import limits
from cyclegan.data.files import ImageReadError, image_size, read_image
from cyclegan.errors import UserError

from .helpers import cli, one_line_error, real_data, tiny_sets

pytestmark = needs_horse2zebra

BOMB = (14000, 13000)  # 182 million pixels: above twice Pillow's limit, where Pillow itself raises


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny model trained on real images, a 22 KB PNG claiming 182 million pixels, and a corrupt 'photo'."""
    root = tmp_path_factory.mktemp("images")
    data = real_data(root / "data", test=3)
    assert (
        main(
            ["train", str(data), "--run-dir", str(root / "run"), "--preset", "quick", *tiny_sets(), "--max-steps", "1"]
        )
        == 0
    )
    Image.new("1", BOMB).save(root / "bomb.png")  # all black, 1 bit per pixel: compresses to almost nothing
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root, data


def _limit_line(path) -> str:
    return f"{path}: image too large (14000x13000 = 182,000,000 pixels, above the limit of 89,478,485"


def test_translate_a_folder_translates_the_rest_and_lists_what_it_skipped(setup, tmp_path):
    root, data = setup
    inputs = tmp_path / "in"
    shutil.copytree(data / "testA", inputs, symlinks=True)
    shutil.copy(root / "bomb.png", inputs / "bomb.png")
    shutil.copy(root / "corrupt.jpg", inputs / "corrupt.jpg")
    out = cli("translate", "-c", root / "run", inputs, "--out", tmp_path / "out")
    assert out.returncode == 3, out.stdout + out.stderr
    assert "3 images written" in out.stdout and "Traceback" not in out.stderr
    lines = out.stderr.splitlines()
    lines = lines[lines.index("skipped 2 of 5 input image(s):") :]  # after the progress bar
    assert lines[1].strip().startswith(_limit_line(inputs / "bomb.png"))
    assert lines[2].strip().startswith(f"{inputs / 'corrupt.jpg'}: cannot read image") and len(lines) == 3
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


def test_train_refuses_an_oversized_training_image_in_one_line(setup, tmp_path):
    root, _ = setup
    train = real_data(tmp_path / "data")
    shutil.copy(root / "bomb.png", train / "trainB" / "bomb.png")
    out = cli("train", train, "--run-dir", tmp_path / "run", "--preset", "quick", *tiny_sets())
    assert out.returncode == 2
    line = one_line_error(out)
    assert "domain B" in line and "1 of 4 images cannot be used" in line
    assert _limit_line(train / "trainB" / "bomb.png") in line


def test_evaluate_and_fid_readers_say_the_same(setup, tmp_path):
    root, data = setup
    test = tmp_path / "test"
    shutil.copytree(data, test, symlinks=True)
    shutil.copy(root / "bomb.png", test / "testA" / "bomb.png")
    out = cli("evaluate", root / "run", "--data", test, "--metrics", "cycle", "--out", tmp_path / "eval")
    assert out.returncode == 2
    assert _limit_line(test / "testA" / "bomb.png") in one_line_error(out)

    from cyclegan.metrics.features import load_image  # what `cyclegan fid` and the FID scorers read with

    with pytest.raises(UserError, match="image too large"):
        load_image(test / "testA" / "bomb.png")


def test_the_limit_is_one_setting(setup, monkeypatch):
    root, data = setup
    photo = min((data / "trainA").iterdir())  # 256 x 256 = 65,536 pixels
    assert image_size(photo) == (256, 256) and limits.max_pixels() == limits.DEFAULT_MAX_PIXELS
    monkeypatch.setenv(limits.ENV, "60000")
    for read in (read_image, image_size):
        with pytest.raises(
            ImageReadError,
            match=r"256x256 = 65,536 pixels, above the limit of 60,000; to accept it "
            r"set CYCLEGAN_MAX_PIXELS=65536",
        ):
            read(photo)
    monkeypatch.setenv(limits.ENV, "0")  # no limit: Pillow's own check is set aside as well
    assert image_size(root / "bomb.png") == BOMB
    monkeypatch.setenv(limits.ENV, "lots")
    with pytest.raises(UserError, match="CYCLEGAN_MAX_PIXELS='lots': expected a number of pixels"):
        read_image(photo)
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow's own setting is left as it was


def test_a_large_allowed_image_translates_in_tiles_without_being_asked(setup, monkeypatch):
    """Above tiled.AUTO_TILE_PIXELS (16 Mpx; here lowered to 100x100 so a real 256x256 photo counts) translation runs
    in tiles, with whole-image statistics: the same image to rounding, in a fraction of the memory."""
    from cyclegan import tiled
    from cyclegan.translate import load_translator

    root, data = setup
    photo = read_image(min((data / "testA").iterdir()), 3)[None]
    translator = load_translator(root / "run", "AtoB", "cpu")
    whole = translator(photo)
    calls = []
    real = tiled.tiled_forward
    monkeypatch.setattr(
        "cyclegan.translate.translator.tiled_forward", lambda net, x, tile: calls.append(tile) or real(net, x, tile)
    )
    monkeypatch.setattr(tiled, "AUTO_TILE_PIXELS", 100 * 100)
    monkeypatch.setattr(tiled, "AUTO_TILE", 64)
    tiles = translator(photo)
    assert calls == [64]
    assert (whole.int() - tiles.int()).abs().max() <= 1
