"""`cyclegan serve`: a local web page to translate images with a model (pip install 'cyclegan[serve]')."""

from __future__ import annotations

NAME = "serve"
HELP = "a local web page to try a model: drop a photo, see and download its translation"


def add_parser(sub):
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Serve a page on this machine (127.0.0.1 unless --host says otherwise): upload or "
        "drag a photo, pick the direction, see input and translation side by side, download "
        "the result. Large photos are translated in tiles. Needs pip install "
        "'cyclegan[serve]'.",
    )
    p.add_argument(
        "--checkpoint",
        "-c",
        required=True,
        help="a run directory, package folder (cyclegan package), .model.safetensors file or reference .pth",
    )
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 shows the page to your network)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    return p


def run(args) -> int:
    from ..errors import UserError
    from ..serve import serve

    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: give a port between 1 and 65535")
    serve(args.checkpoint, host=args.host, port=args.port, device=args.device)
    return 0
