"""ONNX export: dynamic sizes, same outputs as PyTorch under onnxruntime."""

import json

import pytest
import torch

from cyclegan.cli import main
from cyclegan.nets import create_generator

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'cyclegan[export]')")


@pytest.mark.parametrize("name,kw", [("resnet_6blocks", dict(ngf=4, out_ch=1)), ("unet_128", dict(ngf=4, norm="batch"))])
def test_export_matches_pytorch_at_other_sizes(tmp_path, capsys, name, kw):
    net = create_generator(name, **kw)
    if kw.get("norm") == "batch":  # non-trivial running statistics, used in eval mode
        net.train()
        with torch.no_grad():
            net(torch.randn(2, 3, 128, 128))
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    out = tmp_path / "g.onnx"
    assert main(["export", "-c", str(tmp_path / "latest_net_G.pth"), "--out", str(out)]) == 0
    meta = json.loads((tmp_path / "g.onnx.json").read_text())
    assert meta["check_max_abs_error"] < 1e-4 and meta["out_channels"] == kw.get("out_ch", 3)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    m = meta["size_multiple"]
    x = torch.rand(3, 3, 2 * m, 3 * m) * 2 - 1
    with torch.no_grad():
        expected = net.eval()(x).numpy()
    assert abs(session.run(None, {"image": x.numpy()})[0] - expected).max() < 1e-4
    assert "max abs difference" in capsys.readouterr().out
