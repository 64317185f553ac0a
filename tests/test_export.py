"""ONNX export: dynamic sizes, same outputs as PyTorch (and as `translate`) under onnxruntime."""

import json

import pytest
import torch

from cyclegan.cli import main
from cyclegan.export import PadToMultiple, supported_opsets
from cyclegan.nets import create_generator
from cyclegan.translate import Translator, load_translator

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'cyclegan[export]')")


@pytest.mark.parametrize(
    "name,kw", [("resnet_6blocks", dict(ngf=4, out_ch=1)), ("unet_128", dict(ngf=4, norm="batch"))]
)
def test_export_matches_pytorch_at_other_sizes(tmp_path, capsys, name, kw):
    torch.manual_seed(0)  # the same weights and images whatever ran before
    net = create_generator(name, **kw)
    if kw.get("norm") == "batch":  # non-trivial running statistics, used in eval mode
        net.train()
        with torch.no_grad():
            net(torch.randn(2, 3, 128, 128))
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    out = tmp_path / "g.onnx"
    assert main(["export", "-c", str(tmp_path / "latest_net_G.pth"), "--out", str(out)]) == 0
    meta = json.loads((tmp_path / "g.onnx.json").read_text())
    assert meta["check_max_abs_error"] < 1e-4 and meta["out_channels"] == kw.get("out_ch", 3) and meta["any_size"]
    assert meta["network_mode"].startswith("eval")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    m = meta["size_multiple"]
    x = torch.rand(3, 3, 2 * m, 3 * m) * 2 - 1
    with torch.no_grad():
        expected = net.eval()(x).numpy()
    assert abs(session.run(None, {"image": x.numpy()})[0] - expected).max() < 1e-4
    assert "max abs difference" in capsys.readouterr().out
    # sizes that are not multiples: the graph pads and crops as translate does, batch > 1 included
    translator = load_translator(tmp_path / "latest_net_G.pth", device="cpu", train_mode=False)
    for shape in [(1, 3, 301, 257), (3, 3, 2 * m + 1, m + 3), (2, 3, 3, 5)]:
        x = torch.rand(*shape) * 2 - 1
        got = session.run(None, {"image": x.numpy()})[0]
        expected = translator.translate_float(x).numpy()
        assert got.shape == expected.shape == (shape[0], kw.get("out_ch", 3), *shape[2:])
        assert abs(got - expected).max() < 1e-4, shape


@pytest.mark.parametrize("name,multiple", [("resnet_6blocks", 4), ("unet_128", 128)])
def test_graph_padding_equals_translate_padding(name, multiple):
    """The traceable padding gathers exactly the pixels F.pad gives (reflect, or replicate for tiny images)."""
    net = create_generator(name, ngf=2).eval()
    translator = Translator(net, 3, 3, multiple, torch.device("cpu"))
    graph = PadToMultiple(net, multiple, translator.min_size)
    for shape in [(2, 3, 13, 6), (1, 3, 1, 1), (1, 3, 4, 4), (1, 3, 5, 9), (1, 3, 2, 30), (1, 3, 8, 12)]:
        x = torch.rand(*shape) * 2 - 1
        with torch.no_grad():
            assert torch.equal(graph(x), translator.translate_float(x)), shape


def test_export_bad_out_and_opset_are_one_line_errors(tmp_path, capsys):
    torch.save(create_generator("resnet_6blocks", ngf=2).state_dict(), tmp_path / "g.pth")
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    lo, hi = supported_opsets()
    for extra, message in [
        (["--out", str(tmp_path / "folder")], "is a folder; give the .onnx file to write"),
        (["--out", str(tmp_path / "file" / "g.onnx")], "file is a file, not a folder"),
        (
            ["--out", str(tmp_path / "g.onnx"), "--opset", "99"],
            f"--opset 99: this export writes ONNX opsets {lo} to {hi}",
        ),
        (["--out", str(tmp_path / "g.onnx"), "--opset", "7"], "--opset 7: this export writes"),
    ]:
        code = main(["export", "-c", str(tmp_path / "g.pth"), *extra])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "g.onnx").exists() and list((tmp_path / "folder").iterdir()) == []
    for existing, message in (
        (tmp_path / "g.pth", "exists; export writes a new .pth file, never over one"),
        (tmp_path / "file", "exists and is not an .onnx file"),
    ):  # the checkpoint itself; any file
        assert main(["export", "-c", str(tmp_path / "g.pth"), "--out", str(existing)]) == 2
        assert message in capsys.readouterr().err
    assert torch.load(tmp_path / "g.pth", weights_only=True)  # still the checkpoint


def test_export_lowest_opset_works(tmp_path):
    torch.manual_seed(0)  # ngf = 2: with some draws two-channel instance norms amplify float differences past 1e-4
    torch.save(create_generator("resnet_6blocks", ngf=2).state_dict(), tmp_path / "g.pth")
    assert (
        main(
            [
                "export",
                "-c",
                str(tmp_path / "g.pth"),
                "--out",
                str(tmp_path / "g.onnx"),
                "--opset",
                str(supported_opsets()[0]),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "g.onnx.json").read_text())["check_max_abs_error"] < 1e-4


def test_export_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "which generator to export" in text and "ONNX opset version" in text and "of any size" in text
