"""The README's "From Python" example, run as written (with a tiny dataset and network)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(image_root, tmp_path, monkeypatch):
    code = re.search(r"## From Python.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    tiny = ", ".join(repr(o) for o in TINY if not o.startswith("optim."))
    assert '"train.max_steps=200"' in code and "DATA" in code
    code = code.replace("DATA", str(image_root)).replace('"train.max_steps=200"', f'"train.max_steps=3", {tiny}')
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (38, 50, 3), dtype=np.uint8)).save(tmp_path / "horse.jpg")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {})
    assert (tmp_path / "runs" / "api" / "checkpoints" / "latest.model.safetensors").is_file()
    zebra = Image.open(tmp_path / "zebra.png")
    assert zebra.size == (50, 38) and zebra.mode == "RGB"
    assert np.asarray(zebra).std() > 0  # a picture, not a constant


def test_translator_image_converts_like_files_and_keeps_the_size(tmp_path, monkeypatch):
    import torch

    from cyclegan.data import files
    from cyclegan.nets import create_generator
    from cyclegan.translate import load_translator

    torch.manual_seed(0)
    torch.save(create_generator("resnet_6blocks", in_ch=3, out_ch=1, ngf=4).state_dict(), tmp_path / "g.pth")
    t = load_translator(tmp_path / "g.pth", device="cpu")
    grey = Image.fromarray(np.random.default_rng(1).integers(0, 256, (21, 30), dtype=np.uint8), "L")
    monkeypatch.setattr(files._warner, "seen", set())  # it warns once per process and kind
    with pytest.warns(UserWarning, match="L image converted to 3 channel"):
        out = t.image(grey)
    assert out.size == (30, 21) and out.mode == "L"
    rgb = torch.from_numpy(np.array(grey.convert("RGB"))).permute(2, 0, 1)[None]
    assert np.array_equal(np.asarray(out), t(rgb)[0, 0].numpy())
