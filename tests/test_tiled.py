"""translate --tile: tiles with whole-image instance-norm statistics give the one-piece result."""

from __future__ import annotations

import pytest
import torch

from cyclegan import tiled
from cyclegan.nets import create_generator


def _net(name="resnet_6blocks", **kw):
    torch.manual_seed(0)
    return create_generator(name, **{"in_ch": 3, "out_ch": 3, "ngf": 8, "norm": "instance", **kw}).eval()


@pytest.mark.parametrize("shape, tile", [((1, 3, 100, 132), 32), ((2, 3, 64, 36), 20), ((1, 3, 40, 40), 64)])
def test_tiles_equal_the_one_piece_forward(shape, tile):
    net = _net()
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        whole = net(x)
    torch.testing.assert_close(tiled.tiled_forward(net, x, tile), whole, atol=2e-5, rtol=0)


# the GPU case runs where there is one (benchmarks/gpu_check.sh selects it by the cuda mark)
DEVICES = ["cpu"] + ([pytest.param("cuda", marks=pytest.mark.cuda)] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_tiles_equal_the_one_piece_forward_in_float32_and_bf16(device, monkeypatch):
    """In float32 (TF32 off on a GPU: its rounding would differ between tile and whole-image convolutions), and under
    bf16 autocast (translate --tile --precision bf16), where tiles must stray from float32 no more than bf16 does."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    net = _net(ngf=16).to(device)
    x = torch.rand(1, 3, 264, 200, generator=torch.Generator().manual_seed(1)).to(device) * 2 - 1
    with torch.no_grad():
        whole = net(x)
        torch.testing.assert_close(tiled.tiled_forward(net, x, 64), whole, atol=1e-4, rtol=0)
        with torch.autocast(device, dtype=torch.bfloat16):
            bf16_whole, bf16_tiles = net(x).float(), tiled.tiled_forward(net, x, 64).float()
    own = float((bf16_whole - whole).abs().mean())  # on the CPU: 0.0059, tiles 0.0061
    assert own > 0 and float((bf16_tiles - whole).abs().mean()) <= 1.5 * own + 1e-3


def test_the_context_border_and_the_whole_image_statistics_are_both_needed(monkeypatch):
    net, x = _net(), torch.rand(1, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        whole = net(x)
    monkeypatch.setattr(tiled, "HEAD_HALO", 0)  # tiles cut without context: wrong near the cuts
    assert (tiled.tiled_forward(net, x, 32) - whole).abs().max() > 1e-2
    monkeypatch.undo()
    per_tile = torch.cat([torch.cat([net(x[:, :, i : i + 48, j : j + 48]) for j in (0, 48)], 3) for i in (0, 48)], 2)
    assert (per_tile - whole).abs().max() > 1e-2  # per-tile statistics: colours shift from tile to tile


def test_which_generators_can_tile():
    assert tiled.tiling_problem(_net()) is None
    assert "not a ResNet generator" in tiled.tiling_problem(_net("unet_128", norm="batch"))
    assert "batch norm" in tiled.tiling_problem(_net(norm="batch"))
    assert "dropout is on" in tiled.tiling_problem(_net(dropout=True).train())
    with pytest.raises(ValueError, match="multiple of 4"):
        tiled.tiled_forward(_net(), torch.zeros(1, 3, 8, 8), 30)


def test_translate_cli_with_tiles_writes_the_one_piece_image(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from conftest import write_images
    from cyclegan.cli import main

    torch.save(_net().state_dict(), tmp_path / "latest_net_G_A.pth")
    write_images(tmp_path / "in", 2, size=(150, 98))
    for tile in ("0", "48"):
        assert (
            main(
                [
                    "translate",
                    "-c",
                    str(tmp_path / "latest_net_G_A.pth"),
                    str(tmp_path / "in"),
                    "--out",
                    str(tmp_path / f"out{tile}"),
                    "--tile",
                    tile,
                    "--no-gallery",
                ]
            )
            == 0
        )
    for name in ("img_000.png", "img_001.png"):
        a, b = (np.asarray(Image.open(tmp_path / f"out{t}" / name), dtype=np.int16) for t in ("0", "48"))
        assert a.shape == (98, 150, 3) and np.abs(a - b).max() <= 1
    torch.save(_net("unet_128", norm="batch").state_dict(), tmp_path / "unet.pth")
    for checkpoint, tile, message in [
        ("latest_net_G_A.pth", "30", "--tile 30: give a positive multiple of 4"),
        ("unet.pth", "64", "cannot be translated in tiles: UnetGenerator is not a ResNet"),
    ]:
        assert (
            main(
                [
                    "translate",
                    "-c",
                    str(tmp_path / checkpoint),
                    str(tmp_path / "in"),
                    "--out",
                    str(tmp_path / "x"),
                    "--tile",
                    tile,
                ]
            )
            == 2
        )
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_translate_out_of_memory_suggests_tiles(tmp_path, capsys, monkeypatch):
    """A batch that does not fit is named, with what to try; what was written before stays."""
    from conftest import write_images
    from cyclegan import translate
    from cyclegan.cli import main

    torch.save(_net().state_dict(), tmp_path / "latest_net_G_A.pth")
    write_images(tmp_path / "in", 2, size=(48, 40))
    real_call = translate.Translator.translate_float
    calls = []

    def flaky(self, x):
        calls.append(1)
        if len(calls) == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_call(self, x)

    monkeypatch.setattr(translate.Translator, "translate_float", flaky)
    assert (
        main(
            [
                "translate",
                "-c",
                str(tmp_path / "latest_net_G_A.pth"),
                str(tmp_path / "in"),
                "--out",
                str(tmp_path / "out"),
                "--batch-size",
                "1",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "out of memory translating" in err and "img_001.png (48x40, 1 image(s) at once): CUDA out of memory" in err
    assert "try --tile 512 (the same result in about a third of the memory), or --precision bf16" in err
    assert (tmp_path / "out" / "img_000.png").is_file()  # the first image was written before
