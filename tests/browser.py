"""Headless Chromium for browser tests: Chromium from the system's packages, driven by Playwright for Python.

Playwright's own browser download cannot work offline, so it is pointed at the system's executable; where
either is missing the test skips with a message that says how to get them (`.ci/run` installs both when
it can).
"""

from __future__ import annotations

import contextlib
import os
import shutil

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_executable() -> str | None:
    """The system Chromium's path ($CHROMIUM wins), or None."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


@contextlib.contextmanager
def chromium_page():
    """A Playwright page in headless system Chromium; skips the calling test where none can be had."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser test: Playwright for Python is not installed (pip install playwright)")
    exe = chromium_executable()
    if exe is None:
        pytest.skip("browser test: no Chromium found (apt-get install -y chromium, or set CHROMIUM=/path)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            yield page
        finally:
            browser.close()
