"""`cyclegan.load(PATH).translate(...)`: the short form in Python, and a cheap `import cyclegan`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import cyclegan
    from conftest import TINY, write_images
    from cyclegan.config import build_config

    tmp = tmp_path_factory.mktemp("load")
    for folder, n, seed in (("trainA", 3, 1), ("trainB", 3, 2)):
        write_images(tmp / "data" / folder, n, seed=seed)
    overrides = TINY + [f"data.root={tmp / 'data'}", "train.max_steps=2", "train.threads=1"]
    cyclegan.train(build_config([], [], overrides), tmp / "run")
    return tmp / "run"


def test_import_cyclegan_stays_cheap():
    code = "import sys, cyclegan; assert 'torch' not in sys.modules, 'torch imported'; print(callable(cyclegan.load))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT / "src")}
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_readme_load_example_runs(run, tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(import cyclegan\n\nmodel = cyclegan\.load.*?)```", readme, re.S).group(1)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (41, 57, 3), dtype=np.uint8)).save(tmp_path / "horse.jpg")
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace('"runs/api"', repr(str(run))), "README.md", "exec"), {})
    zebra = Image.open(tmp_path / "zebra.png")
    assert zebra.size == (57, 41) and np.asarray(zebra).std() > 0


def test_translate_takes_pil_images_paths_and_arrays_alike(run, tmp_path):
    import cyclegan
    from cyclegan.translate import load_translator

    model = cyclegan.load(run, device="cpu")
    assert model.directions == ("AtoB", "BtoA")
    array = np.random.default_rng(3).integers(0, 256, (23, 35, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "x.png")
    from_pil = model.translate(Image.fromarray(array), direction="BtoA")
    from_path = model.translate(tmp_path / "x.png", direction="BtoA")
    from_array = model.translate(array, direction="BtoA")
    assert from_pil.size == (35, 23) and isinstance(from_array, np.ndarray) and from_array.shape == (23, 35, 3)
    expected = load_translator(run, "BtoA", device="cpu")(torch.from_numpy(array).permute(2, 0, 1)[None])[0]
    for out in (np.asarray(from_pil), np.asarray(from_path), from_array):
        assert np.array_equal(out, expected.permute(1, 2, 0).numpy())
    with pytest.warns(UserWarning, match="L image converted to 3 channel"):
        grey = model.translate(array[:, :, 0])  # converted to the generator's 3 channels, as files are
    assert grey.shape == (23, 35, 3)


def test_load_takes_a_reference_pth_and_says_what_is_wrong(run, tmp_path):
    import cyclegan
    from cyclegan.nets import create_generator

    torch.manual_seed(0)
    generator = create_generator("resnet_6blocks", in_ch=3, out_ch=3, ngf=4)
    torch.save(generator.state_dict(), tmp_path / "latest_net_G_B.pth")
    ref = cyclegan.load(tmp_path / "latest_net_G_B.pth", device="cpu")
    assert ref.directions == ("BtoA",)
    assert ref.translate(np.zeros((10, 12, 3), np.uint8), direction="BtoA").shape == (10, 12, 3)
    with pytest.raises(UserError, match="translates BtoA, not 'AtoB'"):
        ref.translate(np.zeros((10, 12, 3), np.uint8))
    with pytest.raises(UserError, match="not found"):
        cyclegan.load(tmp_path / "missing")
    with pytest.raises(UserError, match="uint8"):
        cyclegan.load(run).translate(np.zeros((10, 12, 3), np.float32))
    (tmp_path / "notes.txt").write_text("no image")
    with pytest.raises(UserError, match="not a readable image"):
        cyclegan.load(run).translate(tmp_path / "notes.txt")
