"""`cyclegan serve`: the page in a real browser (headless Chromium), the HTTP answers, the command's defaults."""

from __future__ import annotations

import io
import json
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from browser import chromium_page
from conftest import HORSE2ZEBRA, needs_horse2zebra
from cyclegan.cli import build_parser, main
from cyclegan.errors import UserError

pytest.importorskip("starlette", reason="cyclegan serve needs pip install 'cyclegan[serve]'")
pytest.importorskip("uvicorn", reason="cyclegan serve needs pip install 'cyclegan[serve]'")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny CycleGAN run (3 steps): enough for a translation that is not blank."""
    from conftest import TINY, write_images
    from cyclegan.config import build_config
    from cyclegan.train import train

    tmp = tmp_path_factory.mktemp("serve")
    for folder, n, seed in (("trainA", 3, 1), ("trainB", 3, 2)):
        write_images(tmp / "data" / folder, n, seed=seed)
    overrides = TINY + [f"data.root={tmp / 'data'}", "train.max_steps=3", "train.threads=1"]
    train(build_config([], [], overrides), tmp / "run")
    return tmp / "run"


@pytest.fixture(scope="module")
def server(model):
    from cyclegan.serve import Service, create_app, running

    service = Service(model, device="cpu")
    with running(create_app(service)) as url:
        yield url, service


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _post(url: str, data: bytes):
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status, r.headers["content-type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["content-type"], e.read()


@needs_horse2zebra
def test_the_page_translates_a_horse_and_explains_a_bad_file(server, tmp_path):
    url, _ = server
    horse = sorted((HORSE2ZEBRA / "testA").glob("*.jpg"))[0]
    width, height = Image.open(horse).size
    with chromium_page() as page:
        page.goto(url)
        assert page.locator("#direction option").all_inner_texts() == ["A → B", "B → A"]
        page.set_input_files("#file", str(horse))
        page.wait_for_function("document.getElementById('output').naturalWidth > 0", timeout=120_000)
        shown = page.evaluate("""() => {
            const img = document.getElementById('output');
            const c = document.createElement('canvas');
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
            const d = ctx.getImageData(0, 0, c.width, c.height).data;
            let sum = 0, sq = 0, n = 0;
            for (let i = 0; i < d.length; i += 4) {
                for (let k = 0; k < 3; k++) { sum += d[i + k]; sq += d[i + k] ** 2; n++; }
            }
            const mean = sum / n;
            return {w: img.naturalWidth, h: img.naturalHeight, std: Math.sqrt(sq / n - mean * mean),
                    download: document.getElementById('download').getAttribute('download'),
                    error: document.getElementById('error').textContent};
        }""")
        assert (shown["w"], shown["h"]) == (width, height)  # the input's size
        assert shown["std"] > 5  # a picture, not a blank
        assert shown["download"] == f"{horse.stem}_AtoB.png" and shown["error"] == ""
        note = tmp_path / "notes.txt"
        note.write_text("not a photo")
        page.set_input_files("#file", str(note))
        page.wait_for_function("document.getElementById('error').textContent.length > 0", timeout=60_000)
        error = page.locator("#error").inner_text()
        assert error == "this file is not an image that can be read (try a JPEG or PNG photo)"
        assert page.evaluate("document.getElementById('output').getAttribute('src')") is None


def test_http_answers(server):
    url, service = server
    rng = np.random.default_rng(0)
    photo = _png(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    status, kind, body = _post(url + "translate?direction=BtoA", photo)
    assert (status, kind) == (200, "image/png") and Image.open(io.BytesIO(body)).size == (53, 37)
    grey = rng.integers(0, 256, (20, 24), dtype=np.uint8)
    assert Image.open(io.BytesIO(_post(url + "translate", _png(grey))[2])).size == (24, 20)  # converted as files are
    for data, query, message in (
        (b"GIF89a broken", "", "not an image"),
        (b"", "", "empty"),
        (_png(grey), "?direction=sideways", "not 'sideways'"),
    ):
        status, kind, body = _post(url + "translate" + query, data)
        assert status == 400 and kind == "application/json" and message in json.loads(body)["error"]
    with urllib.request.urlopen(url + "health", timeout=30) as r:
        health = json.loads(r.read())
    assert health["directions"] == ["AtoB", "BtoA"] and "cyclegan AtoB" in health["model"]
    assert service.translators["AtoB"].tile == 512  # large photos take the tiled path


def test_huge_images_are_refused_before_decoding(monkeypatch):
    from cyclegan import serve

    monkeypatch.setattr(serve, "MAX_PIXELS", 100)
    with pytest.raises(UserError, match="at most 0 megapixels"):
        serve.decode_image(_png(np.zeros((11, 10, 3), np.uint8)))


def test_the_command_binds_to_this_machine_and_needs_its_extra(model, monkeypatch, capsys):
    args = build_parser().parse_args(["serve", "-c", str(model)])
    assert (args.host, args.port) == ("127.0.0.1", 7860)
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve", "-c", str(model)]) == 2
    assert "pip install 'cyclegan[serve]'" in capsys.readouterr().err


def test_cyclegan_serve_runs_the_page_on_127_0_0_1(model, tmp_path):
    import os
    import socket
    import subprocess
    import time
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = Path(__file__).resolve().parents[1] / "src"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyclegan", "serve", "-c", str(model), "--port", str(port), "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline, page = time.time() + 240, None
        while page is None and time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                    page = r.read().decode()
            except OSError:
                time.sleep(0.5)
        assert page is not None, proc.stdout.read() if proc.poll() is not None else "no answer"
        assert '<input type="file" id="file" accept="image/*">' in page and "step 3" in page
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert f"serving {model} on http://127.0.0.1:{port}" in out
