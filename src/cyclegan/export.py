"""Export a trained generator for deployment: ONNX with dynamic batch, height and width.

The exported graph takes float32 (B, C_in, H, W) in [-1, 1], any H and W, and returns (B, C_out, H, W)
in [-1, 1]. Like `translate`, it pads the image inside the graph to the network's size multiple (4 for
ResNet generators; reflection, or replication where a pad is not smaller than its side) and crops the
result back, so it computes what `cyclegan translate` does. A JSON file next to it records channels,
multiple and normalisation. The export is checked with onnxruntime against `translate`'s PyTorch path
on a batch at sizes other than the traced one, aligned and not.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from .checkpoint import atomic_write
from .errors import UserError, first_line
from .translate import Translator, check_parents, load_translator

MIN_OPSET = 11  # the padding's index arithmetic needs Range (opset 11)


def supported_opsets() -> tuple[int, int]:
    """The ONNX opsets this export can write: from MIN_OPSET to the installed TorchScript exporter's maximum."""
    from torch.onnx import _constants

    top = getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", None) or getattr(_constants, "ONNX_MAX_OPSET", 17)
    return MIN_OPSET, int(top)


class PadToMultiple(torch.nn.Module):
    """`net` for any H, W: pads as `translate.pad_amounts` does, runs net, crops back; traceable with dynamic sizes.

    The padding gathers rows and columns by index (computed from the input's shape as tensors) instead of
    calling F.pad, because the pad widths and the reflect/replicate choice depend on the size, which a traced
    F.pad would freeze at the traced size.
    """

    def __init__(self, net: torch.nn.Module, multiple: int, min_size: int):
        super().__init__()
        self.net, self.multiple, self.min_size = net, multiple, min_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C_out, H, W)
        shape = torch._shape_as_tensor(x)  # a Shape node when traced, so sizes stay dynamic
        h, w = shape[2], shape[3]
        ph = _max(torch.remainder(-h, self.multiple), self.min_size - h)
        pw = _max(torch.remainder(-w, self.multiple), self.min_size - w)
        reflect = (ph < h) & (pw < w)
        top, left = torch.div(ph, 2, rounding_mode="floor"), torch.div(pw, 2, rounding_mode="floor")
        rows, cols = _source_index(h, ph, top, reflect, x.device), _source_index(w, pw, left, reflect, x.device)
        y = self.net(x.index_select(2, rows).index_select(3, cols))
        return y.index_select(2, torch.arange(h, device=y.device) + top).index_select(
            3, torch.arange(w, device=y.device) + left
        )


def _source_index(
    n: torch.Tensor, pad: torch.Tensor, before: torch.Tensor, reflect: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """For each of the n + pad padded positions, the source position: reflected (edge not repeated, as F.pad's
    "reflect") or replicated; both clamped into [0, n) so the unused one is always a valid index."""
    i = torch.arange(n + pad, device=device) - before
    last = n - 1
    mirrored = last - (last - i.abs()).abs()
    clamp = lambda v: _min(_max(v, torch.zeros_like(v)), last)  # noqa: E731
    return torch.where(reflect, clamp(mirrored), clamp(i))


# torch.maximum/minimum export as Max/Min, which take integers only from opset 12
def _max(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(a > b, a, b)


def _min(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(a < b, a, b)


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    direction: str | None = "AtoB",
    opset: int = 17,
    *,
    trace_size: int = 64,
    check: bool = True,
) -> dict:
    """Write `out` (.onnx) and `out`.json; return the metadata including the check's max error."""
    out = Path(out)
    lo, hi = supported_opsets()
    if not lo <= opset <= hi:
        raise UserError(
            f"--opset {opset}: this export writes ONNX opsets {lo} to {hi} (with torch {torch.__version__}); default 17"
        )
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give the .onnx file to write, e.g. {out / 'generator.onnx'}")
    check_parents(out)
    if out.exists() and out.suffix.lower() != ".onnx":  # a checkpoint, an image: never overwritten
        raise UserError(f"--out {out} exists and is not an .onnx file; export writes only .onnx files (and OUT.json)")
    t = load_translator(checkpoint, direction, device="cpu", train_mode=False)
    direction, net = t.direction or direction, t.fn
    if not isinstance(net, torch.nn.Module):
        raise UserError(
            f"{checkpoint}: this method translates {direction} with a procedure (not one network); ONNX export "
            f"needs a feed-forward generator"
        )
    net.eval()
    graph = PadToMultiple(net, t.multiple, t.min_size).eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    size = max(trace_size, t.min_size) // t.multiple * t.multiple or t.multiple
    x = torch.rand(1, t.in_ch, size, size) * 2 - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        try:
            torch.onnx.export(
                graph,
                (x,),
                str(out),
                input_names=["image"],
                output_names=["translated"],
                opset_version=opset,
                dynamic_axes={
                    "image": {0: "batch", 2: "height", 3: "width"},
                    "translated": {0: "batch", 2: "height", 3: "width"},
                },
                dynamo=False,
            )
        except OSError as e:
            raise UserError(f"cannot write {out}: {e}") from None
        except (
            Exception
        ) as e:  # the exporter's own refusals (an operator this opset lacks...): one line, not a traceback
            raise UserError(f"ONNX export at opset {opset} failed: {first_line(e)}") from e
    meta = {
        "source": str(checkpoint),
        "direction": direction,
        "in_channels": t.in_ch,
        "out_channels": t.out_ch,
        "size_multiple": t.multiple,
        "min_size": t.min_size,
        "any_size": True,
        "padding": "inside the graph: to a multiple of size_multiple (and at least min_size), reflection "
        "(replication where a pad is not smaller than its side), cropped back; as cyclegan translate",
        "network_mode": "eval: no dropout, norm layers' running statistics where kept (as `cyclegan translate "
        "--eval-mode`; pix2pix's default test mode, dropout on, is random and not exported)",
        "input_range": [-1, 1],
        "normalisation": "x = pixel / 127.5 - 1; pixel = (y + 1) * 127.5",
        "opset": opset,
        "description": t.description,
    }
    if check:
        meta["check_max_abs_error"] = check_onnx(out, t)
    out.with_suffix(out.suffix + ".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def export_reference(checkpoint: str | Path, out: str | Path, direction: str | None = "AtoB") -> float:
    """Write one direction's generator as the reference implementation saves it (`torch.save(net.state_dict())`,
    keys as its models/networks.py), for its test.py and the tools that read its checkpoints; read back with
    `weights_only=True` and compared with the original on a random image. Returns the max difference (0.0)."""
    from .nets.generators import ResnetGenerator, UnetGenerator
    from .reference import load_reference_generator

    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give the .pth file to write, e.g. {out / 'latest_net_G_A.pth'}")
    check_parents(out)
    if out.exists():  # a .pth may be any checkpoint, this model's own included: never overwritten
        raise UserError(
            f"--out {out} exists; export writes a new .pth file, never over one (choose another name, "
            "or delete it first)"
        )
    t = load_translator(checkpoint, direction, device="cpu", train_mode=False)
    net = t.fn
    if not isinstance(net, (ResnetGenerator, UnetGenerator)):
        raise UserError(
            f"{checkpoint}: {t.direction} is not translated by a ResNet or U-Net generator, so it has no "
            "reference-implementation layout; export it as .onnx"
        )
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    atomic_write(out, lambda tmp: torch.save(state, tmp))
    back = load_reference_generator(out).eval()  # dropout layers hold no weights; off in eval mode either way
    net.eval()
    x = torch.rand(1, t.in_ch, 4 * t.multiple, 4 * t.multiple) * 2 - 1
    with torch.no_grad():
        return float((back(x) - net(x)).abs().max())


def check_onnx(path: Path, translator: Translator) -> float:
    """Max |onnxruntime - translate's PyTorch path| on a batch of 2 at a size that needs padding (unevenly on
    each side), one aligned to the multiple, and a tiny one (padded by replication)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError(
            "checking the export needs onnxruntime: pip install 'cyclegan[export]' (or pass --no-check)"
        ) from None
    m = translator.multiple
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception types
        raise UserError(
            f"{path}: onnxruntime cannot load the exported graph ({first_line(e)}); try another --opset, "
            f"or pass --no-check"
        ) from None
    err = 0.0
    for h, w in [(3 * m + 1, 5 * m - 3), (2 * m, 3 * m), (3, 5)]:
        x = torch.rand(2, translator.in_ch, h, w) * 2 - 1
        expected = translator.translate_float(x).numpy()
        got = session.run(None, {"image": x.numpy()})[0]
        if got.shape != expected.shape:
            return float("inf")
        err = max(err, float(abs(got - expected).max()))
    return err
