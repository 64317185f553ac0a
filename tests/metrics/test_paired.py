"""PSNR and SSIM against scikit-image, LPIPS against the `lpips` package, on real facades images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.errors import UserError
from cyclegan.metrics.paired import LPIPS, load_lpips, lpips_distances, lpips_missing, psnr, ssim

from .conftest import SHARED_DATA

FACADES = SHARED_DATA / "facades"
needs_facades = pytest.mark.skipif(not (FACADES / "test").is_dir(), reason=f"facades not found at {FACADES}")


def _pairs(n=3):
    """(photo, a degraded copy) pairs from facades test photos, 256x256 uint8 (3, H, W); random images without data."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(1, n + 1):
        if (FACADES / "test").is_dir():
            photo = np.array(Image.open(FACADES / "test" / f"{i}.jpg").convert("RGB"))[:, :256]
        else:
            photo = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
        noisy = np.clip(photo.astype(int) + rng.integers(-30 * i, 30 * i + 1, photo.shape), 0, 255).astype(np.uint8)
        out.append((torch.from_numpy(photo).permute(2, 0, 1), torch.from_numpy(noisy).permute(2, 0, 1)))
    return out


def test_psnr_and_ssim_match_scikit_image():
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image not installed (pip install scikit-image)")
    for x, y in _pairs():
        a, b = x.permute(1, 2, 0).numpy(), y.permute(1, 2, 0).numpy()
        assert psnr(x, y) == pytest.approx(metrics.peak_signal_noise_ratio(a, b, data_range=255), abs=1e-4)
        ref = metrics.structural_similarity(
            a, b, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        assert abs(ssim(x, y) - ref) < 1e-4 and 0.05 < ref < 0.99  # a real, non-trivial value
    x = _pairs(1)[0][0][:, :37, :23]  # odd, small sizes
    a = x.permute(1, 2, 0).numpy()
    b = a[::-1].copy()
    ref = metrics.structural_similarity(
        a, b, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert abs(ssim(x, torch.from_numpy(b).permute(2, 0, 1)) - ref) < 1e-4


def test_identical_images():
    x = _pairs(1)[0][0]
    assert psnr(x, x) == float("inf") and ssim(x, x) == pytest.approx(1.0)


# the lpips package builds torchvision's AlexNet with the deprecated `pretrained` argument
@pytest.mark.filterwarnings("ignore::UserWarning:torchvision.models._utils")
def test_lpips_matches_the_lpips_package_with_the_same_weights(tmp_path):
    """The backbone weights here are lpips' own random AlexNet (pnet_rand: no download); its linear layers are
    the released ones. Our network loads both from files and must give lpips' distances."""
    lpips = pytest.importorskip("lpips", reason="lpips not installed (pip install lpips)")
    ref = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()
    backbone = {}
    for k, v in ref.net.state_dict().items():  # slice<k>.<index>.<param> -> features.<index>.<param>
        _, index, param = k.split(".")
        backbone[f"features.{index}.{param}"] = v
    torch.save(backbone, tmp_path / "alexnet.pth")
    ours = load_lpips(tmp_path / "alexnet.pth")
    pairs = _pairs(3)
    x, y = torch.stack([p[0] for p in pairs])[:, :, :128, :128], torch.stack([p[1] for p in pairs])[:, :, :128, :128]
    with torch.no_grad():
        theirs = ref(x.float() / 127.5 - 1, y.float() / 127.5 - 1).flatten().numpy()
    mine = lpips_distances(ours, x, y)
    assert np.allclose(mine, theirs, rtol=1e-5, atol=1e-7) and (np.diff(theirs) > 0).all()  # more noise, farther


def test_lpips_without_local_weights_is_a_clear_message(tmp_path):
    why = lpips_missing(tmp_path / "nothing.pth")
    assert why.startswith("lpips needs torchvision's ImageNet AlexNet weights") and "--lpips-weights" in why
    with pytest.raises(UserError, match="nothing is downloaded at run time"):
        load_lpips(tmp_path / "nothing.pth")
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    if lpips_missing(tmp_path / "bad.pth") is None:
        with pytest.raises(UserError, match="not torchvision AlexNet weights"):
            load_lpips(tmp_path / "bad.pth")
    assert isinstance(LPIPS(), torch.nn.Module)
