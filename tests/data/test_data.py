"""Data: discovery, reading (EXIF, channel conversion), preprocessing modes, datasets, sampler."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import HORSE2ZEBRA, needs_horse2zebra, write_images
from cyclegan.data import EpochBatchSampler, Preprocess, UnalignedDataset, find_images, read_image, to_float, to_uint8
from cyclegan.data.files import ImageReadError
from cyclegan.errors import UserError


def test_find_images_is_recursive_sorted_and_filters(tmp_path):
    write_images(tmp_path / "b", 2, ext=".jpg")
    write_images(tmp_path / "a" / "deep", 1, ext=".webp")
    (tmp_path / "notes.txt").write_text("x")
    files = find_images(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "a/deep/img_000.webp",
        "b/img_000.jpg",
        "b/img_001.jpg",
    ]


def test_find_images_follows_symlinked_folders_once_and_skips_hidden_ones(tmp_path):
    write_images(tmp_path / "elsewhere", 2)
    write_images(tmp_path / "data" / ".ipynb_checkpoints", 1)
    (tmp_path / "data" / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere" / "loop").symlink_to(tmp_path / "data", target_is_directory=True)
    files = find_images(tmp_path / "data")
    assert [f.relative_to(tmp_path / "data").as_posix() for f in files] == ["linked/img_000.png", "linked/img_001.png"]


def test_find_images_errors_name_the_folder(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        find_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"no images found in .*empty \(looked for .jpg"):
        find_images(tmp_path / "empty")


def test_channel_conversion_warns_once(tmp_path, monkeypatch):
    from cyclegan.data import files

    monkeypatch.setattr(files, "_warner", files.ChannelWarner())  # once per process: earlier tests may have warned
    paths = write_images(tmp_path, 3, mode="L") + write_images(tmp_path / "rgba", 1, mode="RGBA")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        grey = [read_image(p, 3) for p in paths[:3]]
        rgba = read_image(paths[3], 3)
        assert read_image(paths[3], 4).shape[0] == 4
    assert all(g.shape[0] == 3 and torch.equal(g[0], g[1]) for g in grey)
    assert rgba.shape[0] == 3
    messages = [str(x.message) for x in w]
    assert sum("L image converted" in m for m in messages) == 1
    assert sum("RGBA image converted" in m for m in messages) == 1


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((10, 20, 3), np.uint8)  # 20 wide, 10 high
    a[:, :5] = 255
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 on display
    im.save(tmp_path / "r.jpg", exif=exif)
    t = read_image(tmp_path / "r.jpg", 3)
    assert t.shape == (3, 20, 10)


def test_npy_multispectral(tmp_path):
    np.save(tmp_path / "x.npy", np.random.rand(8, 9, 6).astype(np.float32))
    t = read_image(tmp_path / "x.npy", 6)
    assert t.shape == (6, 8, 9) and t.dtype == torch.uint8
    with pytest.raises(UserError, match="does not have 4 channels"):
        read_image(tmp_path / "x.npy", 4)


def test_corrupt_file_is_a_read_error(tmp_path):
    p = write_images(tmp_path, 1, ext=".jpg")[0]
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(ImageReadError, match="img_000.jpg"):
        read_image(p, 3)


@pytest.mark.parametrize(
    "mode,size,expected",
    [
        ("resize_and_crop", (300, 200), (256, 256)),
        ("crop", (300, 260), (256, 256)),
        ("scale_width", (572, 400), (256, 286)),
        ("scale_width", (400, 572), (408, 286)),
        ("scale_width_and_crop", (572, 400), (256, 256)),
        ("none", (301, 217), (216, 300)),
    ],
)
def test_preprocess_output_sizes(mode, size, expected):
    pre = Preprocess(mode, 286, 256, flip=True)
    image = torch.randint(0, 256, (3, size[1], size[0]), dtype=torch.uint8)
    out = pre(image, torch.Generator().manual_seed(0))
    assert out.shape[1:] == expected and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1


def test_crop_and_flip_follow_the_generator():
    pre = Preprocess("crop", 0, 4, flip=True)
    image = torch.arange(64, dtype=torch.uint8).view(1, 8, 8)
    outs = {tuple(pre(image, torch.Generator().manual_seed(s)).flatten().tolist()) for s in range(40)}
    assert len(outs) > 10  # different crops/flips
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(pre(image, g1), pre(image, g2))
    top, left, flip = pre.params(8, 8, torch.Generator().manual_seed(1))
    manual = image[:, top : top + 4, left : left + 4]
    manual = manual.flip(-1) if flip else manual
    assert torch.equal(pre(image, None, (top, left, flip)), to_float(manual))


def test_small_image_for_crop_is_named():
    with pytest.raises(UserError, match="tiny.png: image is 100x80, smaller than the crop 256x256"):
        Preprocess("crop", 286, 256).check_size(100, 80, "tiny.png")


def test_uint8_round_trip():
    x = torch.arange(256, dtype=torch.uint8).view(1, 16, 16)
    assert torch.equal(to_uint8(to_float(x)), x)


def test_unaligned_dataset_keys_are_deterministic(image_root):
    files_a, files_b = find_images(image_root / "trainA"), find_images(image_root / "trainB")
    ds = UnalignedDataset(files_a, files_b, Preprocess("resize_and_crop", 36, 32), seed=3)
    assert len(ds) == 6
    x, y = ds[(2, 4)], ds[(2, 4)]
    assert torch.equal(x["A"], y["A"]) and torch.equal(x["B"], y["B"])
    assert not torch.equal(ds[(3, 4)]["B"], x["B"]) or not torch.equal(ds[(3, 4)]["A"], x["A"])
    serial = UnalignedDataset(files_a, files_b, Preprocess("none", 0, 0, flip=False), seed=0, serial=True)
    assert torch.equal(serial[(0, 5)]["B"], to_float(read_image(files_b[0], 3)[:, :36, :40]))


def test_corrupt_image_mid_epoch_is_skipped_and_counted(image_root):
    files_a = find_images(image_root / "trainA")
    files_a[2].write_bytes(b"not an image")
    ds = UnalignedDataset(files_a, find_images(image_root / "trainB"), Preprocess("resize_and_crop", 36, 32))
    with pytest.warns(UserWarning, match="skipping corrupt image.*img_002"):
        item = ds[(0, 2)]
    assert item["skipped"] == 1 and item["A"].shape == (3, 32, 32)


def test_sampler_shards_without_overlap_and_resumes():
    full = EpochBatchSampler(10, 2, seed=1)
    full.set_epoch(3)
    batches = list(full)
    full.set_epoch(3, start_batch=2)
    assert list(full) == batches[2:]
    shards = []
    for rank in range(2):
        s = EpochBatchSampler(10, 1, seed=1, rank=rank, world_size=2)
        s.set_epoch(3)
        shards.append({i for b in s for _, i in b})
    assert shards[0].isdisjoint(shards[1]) and len(shards[0] | shards[1]) == 10
    assert {i for b in batches for _, i in b} == set(range(10))
    with pytest.raises(UserError, match="only 3 samples"):
        EpochBatchSampler(3, 2, world_size=2)


@needs_horse2zebra
def test_real_horse2zebra_has_grayscale_zebras_converted():
    files = find_images(HORSE2ZEBRA / "trainB")
    assert len(files) == 1334
    ds = UnalignedDataset(find_images(HORSE2ZEBRA / "trainA")[:5], files, Preprocess())
    item = ds[(0, 0)]
    assert item["A"].shape == (3, 256, 256) and item["B"].shape == (3, 256, 256)


@pytest.mark.parametrize("make", ["png16", "tif16", "tif_float", "tif_int32"])
def test_high_bit_depth_grey_images_are_scaled_not_clipped(tmp_path, make):
    """Pillow's own conversion turns a 16-bit grey image white (it clips at 255): scale instead."""
    ramp = np.linspace(0, 1, 64 * 48).reshape(48, 64)
    path = tmp_path / ("a.png" if make == "png16" else "a.tif")
    if make in ("png16", "tif16"):
        Image.fromarray(np.rint(ramp * 65535).astype(np.uint16)).save(path)
    elif make == "tif_float":
        Image.fromarray(ramp.astype(np.float32)).save(path)
    else:
        Image.fromarray(np.rint(ramp * 65535).astype(np.int32)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grey, rgb = read_image(path, 1), read_image(path, 3)
    expected = torch.from_numpy(np.rint(ramp * 255).astype(np.uint8))
    assert grey.shape == (1, 48, 64) and int((grey[0].int() - expected.int()).abs().max()) <= 1
    assert rgb.shape == (3, 48, 64) and torch.equal(rgb[0], grey[0]) and torch.equal(rgb[2], grey[0])


def test_every_unusable_training_image_is_named_at_once(tmp_path):
    from cyclegan.config import DataConfig
    from cyclegan.data import build_unaligned

    write_images(tmp_path / "trainA", 3, size=(40, 40))
    write_images(tmp_path / "trainB", 2, size=(40, 40))
    (tmp_path / "trainA" / "garbage.png").write_bytes(b"not an image")
    (tmp_path / "trainA" / "zero.jpg").write_bytes(b"")
    write_images(tmp_path / "trainA" / "small", 1, size=(20, 20))
    cfg = DataConfig(root=str(tmp_path), load_size=40, crop_size=32, preprocess="crop", workers=0)
    with pytest.raises(UserError) as e:
        build_unaligned(cfg, 0)
    msg = str(e.value)
    assert "domain A: 3 of 6 images cannot be used" in msg and "\n" not in msg
    assert "garbage.png" in msg and "zero.jpg" in msg and "img_000.png: image is 20x20" in msg
    assert "remove or replace the unreadable ones" in msg and "lower data.crop_size" in msg


def test_batches_of_images_that_keep_their_size_need_one_size(tmp_path):
    from cyclegan.config import DataConfig
    from cyclegan.data import build_unaligned

    write_images(tmp_path / "trainA", 2, size=(40, 40))
    write_images(tmp_path / "trainA" / "wide", 1, size=(64, 40))
    write_images(tmp_path / "trainB", 2, size=(40, 40))
    cfg = DataConfig(root=str(tmp_path), preprocess="none", workers=0)
    assert len(build_unaligned(cfg, 0, batch_size=1)) == 3
    with pytest.raises(UserError, match=r"keeps each image's size.*64x40.*--batch-size 1"):
        build_unaligned(cfg, 0, batch_size=2)


def test_float_images_outside_0_to_1_are_clipped_with_a_warning(tmp_path):
    Image.fromarray(np.full((4, 4), 200.0, np.float32)).save(tmp_path / "f.tif")
    with pytest.warns(UserWarning, match=r"f.tif: values from 200 to 200; float images are read as 0..1"):
        assert int(read_image(tmp_path / "f.tif", 1).min()) == 255
