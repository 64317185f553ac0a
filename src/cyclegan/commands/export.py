"""`cyclegan export`: a generator as ONNX (dynamic batch/height/width), checked with onnxruntime."""

from __future__ import annotations

NAME = "export"
HELP = "export a generator to ONNX for deployment (or a reference .pth)"


def add_parser(sub):
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Export one direction's generator to ONNX with dynamic batch, height and width: the "
        "graph takes float32 (B, C, H, W) in [-1, 1] of any size, pads it to the network's size "
        "multiple and crops the output back, as `cyclegan translate` does. The result is checked "
        "against PyTorch with onnxruntime; OUT.json records channels, normalisation and the multiple.",
    )
    p.add_argument("--checkpoint", "-c", required=True, help="run directory, .model.safetensors file or reference .pth")
    p.add_argument(
        "--direction",
        help="AtoB (G_A) or BtoA (G_B): which generator to export (default AtoB; a one-way model's own, e.g. "
        "pix2pix's; a reference .pth holds one generator)",
    )
    p.add_argument(
        "--out",
        "-o",
        required=True,
        help="output .onnx file (metadata goes to OUT.json), or a .pth file: the generator's state dict as the "
        "reference implementation saves it (e.g. latest_net_G_A.pth), for its test.py and the tools "
        "that read its checkpoints",
    )
    p.add_argument(
        "--opset",
        type=int,
        default=17,
        help="ONNX opset version of the graph (default 17; 11 up to the newest the installed torch exporter writes); "
        "lower it for older runtimes",
    )
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    return p


def run(args) -> int:
    from ..errors import UserError
    from ..export import export_onnx, export_reference

    if args.out.lower().endswith((".pth", ".pt")):
        err = export_reference(args.checkpoint, args.out, args.direction)
        if err > 1e-6:
            raise UserError(f"{args.out}: read back, the generator differs by {err:.2e}; please report this")
        print(f"wrote {args.out} (reference state dict; read back and checked)")
        return 0

    meta = export_onnx(args.checkpoint, args.out, args.direction, args.opset, check=not args.no_check)
    err = meta.get("check_max_abs_error")
    if err is not None:
        print(f"onnxruntime vs PyTorch: max abs difference {err:.2e} (outputs in [-1, 1])")
        if err > 1e-3:
            raise UserError(f"{args.out}: the exported graph differs from PyTorch by {err:.2e}; please report this")
    print(f"wrote {args.out} and {args.out}.json")
    return 0
