"""`cyclegan export --out X.pth`: a generator as the reference implementation saves it, read back by it and by us."""

from __future__ import annotations

import torch

from cyclegan.checkpoint import load_model
from cyclegan.cli import main
from cyclegan.config import build_config
from cyclegan.train import train
from cyclegan.translate import load_translator


def test_export_reference_pth_round_trip(image_root, tiny_overrides, tmp_path, capsys):
    run = tmp_path / "run"
    train(build_config([], [], tiny_overrides + [f"data.root={image_root}", "train.max_steps=2"]), run)
    out = tmp_path / "latest_net_G_B.pth"
    assert main(["export", "-c", str(run), "--direction", "BtoA", "--out", str(out)]) == 0
    assert "reference state dict; read back and checked" in capsys.readouterr().out
    saved = torch.load(out, weights_only=True)  # what the reference's loader does, minus the unpickling of code
    g_b = load_model(run / "checkpoints" / "latest.model.safetensors")[0]["G_B"]
    assert saved.keys() == g_b.keys() and all(torch.equal(saved[k], g_b[k]) for k in saved)
    images = torch.randint(0, 256, (2, 3, 36, 44), dtype=torch.uint8)
    assert torch.equal(load_translator(out, device="cpu")(images), load_translator(run, "BtoA", device="cpu")(images))
    # refused: any existing file (the checkpoint being exported, another model's weights); a folder
    before = out.read_bytes()
    assert main(["export", "-c", str(out), "--out", str(out)]) == 2
    assert "exists; export writes a new .pth file, never over one" in capsys.readouterr().err
    assert out.read_bytes() == before
    (tmp_path / "folder.pth").mkdir()
    assert main(["export", "-c", str(run), "--out", str(tmp_path / "folder.pth")]) == 2
    assert "is a folder; give the .pth file to write" in capsys.readouterr().err
