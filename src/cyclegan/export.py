"""Export a trained generator for deployment: ONNX with dynamic batch, height and width.

The exported graph takes float32 (B, C_in, H, W) in [-1, 1], H and W multiples of the network's
size multiple (4 for ResNet generators), and returns (B, C_out, H, W) in [-1, 1]; a JSON file next to
it records channels, multiple and normalisation. The export is checked with onnxruntime against
PyTorch at a size other than the traced one.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from .errors import UserError
from .translate import load_translator


def export_onnx(checkpoint: str | Path, out: str | Path, direction: str = "AtoB", opset: int = 17,
                trace_size: int = 64, check: bool = True) -> dict:
    """Write `out` (.onnx) and `out`.json; return the metadata including the check's max error."""
    t = load_translator(checkpoint, direction, device="cpu", train_mode=False)
    net = t.fn
    if not isinstance(net, torch.nn.Module):
        raise UserError(f"{checkpoint}: this method translates {direction} with a procedure (not one network); ONNX export needs a feed-forward generator")
    net.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    size = max(trace_size, t.min_size) // t.multiple * t.multiple or t.multiple
    x = torch.rand(1, t.in_ch, size, size) * 2 - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(net, (x,), str(out), input_names=["image"], output_names=["translated"], opset_version=opset,
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                        "translated": {0: "batch", 2: "height", 3: "width"}}, dynamo=False)
    meta = {"source": str(checkpoint), "direction": direction, "in_channels": t.in_ch, "out_channels": t.out_ch,
            "size_multiple": t.multiple, "min_size": t.min_size, "input_range": [-1, 1],
            "normalisation": "x = pixel / 127.5 - 1; pixel = (y + 1) * 127.5", "opset": opset, "description": t.description}
    if check:
        meta["check_max_abs_error"] = check_onnx(out, net, t.in_ch, t.multiple)
    out.with_suffix(out.suffix + ".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def check_onnx(path: Path, net: torch.nn.Module, in_ch: int, multiple: int) -> float:
    """Max |onnxruntime - PyTorch| on a batch of 2 at a non-square size other than the traced one."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("checking the export needs onnxruntime: pip install 'cyclegan[export]' (or pass --no-check)") from None
    h, w = 3 * multiple * 4, 5 * multiple * 3
    x = torch.rand(2, in_ch, h, w) * 2 - 1
    with torch.no_grad():
        expected = net(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    return float(abs(got - expected).max())
