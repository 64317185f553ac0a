"""`cyclegan translate`: translate files, folders or globs with a trained (or reference) generator."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_network_mode

NAME = "translate"
HELP = "translate images with a trained model"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Translate images at their own size (padded to the network's multiple and cropped back).\n\n"
        "examples:\n"
        "  cyclegan translate --checkpoint runs/h2z --direction AtoB data/horse2zebra/testA --out out/h2z\n"
        "  cyclegan translate --checkpoint latest_net_G_A.pth photo.jpg --out out/   # reference weights\n"
        "  cyclegan translate --checkpoint runs/h2z 'photos/*.jpg' --size 512 --out out/",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively) or glob patterns"
    )
    p.add_argument(
        "--checkpoint",
        "-c",
        required=True,
        help="run directory, .model.safetensors file, or a reference .pth state dict",
    )
    p.add_argument("--direction", help="AtoB (G_A) or BtoA (G_B) (default AtoB; a one-way model's own, e.g. pix2pix's)")
    p.add_argument(
        "--out",
        "-o",
        required=True,
        help="output folder (same relative names as the inputs; images already under it are not inputs), or an "
        "image file name (out/x.png) for a single input. An output that would overwrite an input, or two "
        "inputs with the same output name, is refused before anything is written",
    )
    p.add_argument(
        "--size", help="resize first: N (shorter side) or WxH, in pixels; default keeps each image's own size"
    )
    p.add_argument("--batch-size", type=int, default=4, help="images per forward pass (same-size images are batched)")
    p.add_argument("--keep-format", action="store_true", help="keep each input's file format instead of writing PNG")
    p.add_argument("--no-gallery", action="store_true", help="do not write OUT/index.html")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (auto: cuda when available)")
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16", "auto"],
        default="fp32",
        help="autocast precision of the forward pass (auto: bf16 where the device runs it natively, else on a "
        "CPU float32 with Winograd residual convolutions as training's auto, 1.7x fp32 on AVX2 within 1 level; "
        "fp16: CUDA), in channels_last where that pays. bf16 measured 4.4-4.6x faster than fp32 on an AMX CPU "
        "(1.5-2x with AVX512-BF16) and moves pixels by about 1 of 255 levels on average (docs/performance.md); "
        "default fp32, the reference's outputs",
    )
    p.add_argument(
        "--tile",
        type=int,
        default=0,
        metavar="N",
        help="translate images larger than N x N pixels in tiles of N (a multiple of 4, e.g. 512), for photos too "
        "large to translate in one piece: the instance norms keep whole-image statistics, so the result is "
        "the one-piece result (to float rounding) in a fraction of the memory, for ~1.5x the time; "
        "ResNet generators",
    )
    add_network_mode(p)
    ref = p.add_argument_group("reference .pth checkpoints (inferred from the weights when omitted)")
    ref.add_argument("--netG", help="resnet_9blocks | resnet_6blocks | unet_256 | unet_128")
    ref.add_argument("--ngf", type=int)
    ref.add_argument("--norm", choices=["instance", "batch", "none"])
    ref.add_argument("--dropout", action="store_true", default=None)
    return p


def run(args) -> int:
    from ..errors import UserError
    from ..translate import load_translator, parse_size, translate_files

    parse_size(args.size)  # cheap checks before the checkpoint is read
    translator = load_translator(
        args.checkpoint,
        args.direction,
        args.device,
        train_mode=args.train_mode,
        netG=args.netG,
        precision=args.precision,
        tile=args.tile,
        ngf=args.ngf,
        norm=args.norm,
        dropout=args.dropout,
    )
    result = translate_files(
        translator,
        args.inputs,
        args.out,
        size=args.size,
        batch_size=args.batch_size,
        keep_format=args.keep_format,
        gallery=not args.no_gallery,
    )
    written, failed = result["written"], result["failed"]
    if not written:
        first = failed[0][1] if failed else None
        raise UserError(
            f"none of the {len(failed)} input image(s) could be read (first: {first}); "
            f"nothing was written to {args.out}"
        )
    where = written[0][1] if Path(args.out).is_file() else args.out  # --out named the output file
    print(
        f"{len(written)} image{'s' if len(written) != 1 else ''} written to {where}"
        + (f" (gallery: {result['gallery']})" if result["gallery"] else "")
    )
    return report_skipped(failed, len(written) + len(failed))


SKIPPED = 3  # exit status when some inputs could not be read (the others were translated): scripts notice


def report_skipped(failed: list, total: int) -> int:
    """The inputs that could not be read, listed on stderr after the rest was translated: SKIPPED if any, else 0."""
    import sys

    if not failed:
        return 0
    print(f"skipped {len(failed)} of {total} input image(s):", file=sys.stderr)
    for _, reason in failed:
        print(f"  {reason}", file=sys.stderr)
    return SKIPPED
