"""Benchmark inference: images/s and peak memory of the real translation path at several sizes.

A freshly initialised model of the chosen generator is saved as a model snapshot and loaded back with
`cyclegan.translate.load_translator` (weights do not change the speed), then `Translator.__call__`
(uint8 in, padding, the network, uint8 out) is timed on random images. Variants are interleaved per
round as in train_step.py: fp32 (what `cyclegan translate` runs by default) and, on request, the translators
that `--precision bf16|fp16|auto` build (autocast, and channels_last where translate picks it), a forced layout
(`cl`, `nchw`) or tiles, with the largest output difference against fp32 in 8-bit levels.

    python benchmarks/translate.py --sizes 256 1024
    python benchmarks/translate.py --sizes 256 1024 --variants bf16 bf16+nchw --json runs/bench/translate.json
    python benchmarks/translate.py --sizes 2048 --variants tile512 --rounds 1 --iters 1   # translate --tile 512
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MB, PeakMemory, machine, print_table, summarize, sync, write_json  # noqa: E402

from cyclegan import checkpoint as ckpt  # noqa: E402
from cyclegan.config import build_config  # noqa: E402
from cyclegan.errors import UserError  # noqa: E402
from cyclegan.methods import create_method  # noqa: E402
from cyclegan.nets.winograd import use_winograd  # noqa: E402
from cyclegan.runtime import PRECISIONS, resolve_device  # noqa: E402
from cyclegan.train.checkpointing import model_meta  # noqa: E402
from cyclegan.translate import load_translator  # noqa: E402


def save_snapshot(generator: str, folder: Path) -> Path:
    """A freshly initialised model of `generator`, saved as a model snapshot (weights do not change the speed)."""
    cfg = build_config([], [], [f"model.generator={generator}"])
    torch.manual_seed(0)
    method = create_method(cfg)
    nets = method.build_networks()
    meta = model_meta(SimpleNamespace(method=method, cfg=cfg, step=0, epoch=0))
    path = folder / "bench.model.safetensors"
    ckpt.save_model(path, {k: nets[k] for k in method.inference_nets()}, meta)
    return path


def variant_translator(path: Path, device: torch.device, spec: str):
    """The translator `cyclegan translate` builds for a variant: a precision (fp32 | bf16 | fp16 | auto, with the
    memory layout translate picks for it), `cl` / `nchw` to force the layout, `tileN` for `--tile N`, `fresh` to
    transform Winograd's filters at every call instead of once per translator (as before session 22)."""
    tokens = spec.split("+")
    precision = next((t for t in tokens if t in PRECISIONS), "fp32")
    tile = next((int(t[4:]) for t in tokens if t.startswith("tile")), 0)
    translator = load_translator(path, "AtoB", device, precision=precision, tile=tile)
    if "cl" in tokens or "nchw" in tokens:
        translator.channels_last = "cl" in tokens
        layout = torch.channels_last if translator.channels_last else torch.contiguous_format
        translator.nets.to(memory_format=layout)
    if "fresh" in tokens:
        use_winograd(translator.nets, keep_filters=False)  # swaps nothing new: only its Winograd layers forget
    return translator


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--generator", default="resnet_9blocks")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument(
        "--variants",
        nargs="*",
        default=[],
        help="besides fp32: auto, bf16, fp16, bf16+nchw, fp32+cl, tile512, bf16+tile512, auto+fresh (a precision gets "
        "the layout `cyclegan translate` picks for it; cl / nchw force one; fresh: Winograd's filters transformed "
        "at every call)",
    )
    p.add_argument("--iters", type=int, default=2, help="timed calls per variant per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="write results as JSON to this file ('-' for stdout)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except UserError as e:
        p.error(str(e))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    info = machine(device)
    specs = ["fp32"] + [v for v in args.variants if v != "fp32"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = save_snapshot(args.generator, Path(tmp))
        translators = {spec: variant_translator(path, device, spec) for spec in specs}
        for size in args.sizes:
            g = torch.Generator().manual_seed(size)
            images = torch.randint(
                0, 256, (args.batch_size, translators["fp32"].in_ch, size, size), dtype=torch.uint8, generator=g
            )
            runs = {}
            for spec, translator in translators.items():
                runs[spec] = {"times": [], "extra": 0, "absolute": 0}
                print(f"{size}x{size} {spec}: warm-up", flush=True)
                runs[spec]["output"] = translator(images).cpu()
            for r in range(args.rounds):
                for spec in specs[r % len(specs) :] + specs[: r % len(specs)]:
                    run, translator = runs[spec], translators[spec]
                    with PeakMemory(device) as mem:
                        for _ in range(args.iters):
                            sync(device)
                            t = time.perf_counter()
                            translator(images)
                            sync(device)
                            run["times"].append(time.perf_counter() - t)
                    run["extra"] = max(run["extra"], mem.extra)
                    run["absolute"] = max(run["absolute"], mem.absolute)
                    run["method"] = mem.method
                print(
                    f"{size}x{size} round {r + 1}/{args.rounds}: "
                    + ", ".join(f"{s} {statistics.median(runs[s]['times']):.3f}s" for s in specs),
                    flush=True,
                )
            base = statistics.median(runs["fp32"]["times"])
            for spec in specs:
                run, s = runs[spec], summarize(runs[spec]["times"])
                diff = (run["output"].int() - runs["fp32"]["output"].int()).abs()
                rows.append(
                    {
                        "size": size,
                        "variant": spec,
                        "channels_last": translators[spec].channels_last,
                        "s_per_batch_median": s["median"],
                        "s_min": s["min"],
                        "s_max": s["max"],
                        "images_per_s": args.batch_size / s["median"],
                        "speedup": base / s["median"],
                        "peak_mb": run["absolute"] / MB,
                        "peak_above_start_mb": run["extra"] / MB,
                        "max_abs_diff_levels": int(diff.max()),
                        "mean_abs_diff_levels": float(diff.float().mean()),
                        "memory_method": run["method"],
                    }
                )
    print()
    print(
        f"{args.generator}, batch {args.batch_size}, device {info['device']} ({info.get('gpu') or info['cpu']}), "
        f"{info['threads']} threads, "
        f"load average {info['load_average'][0]:.1f}"
        if info.get("load_average")
        else ""
    )
    print_table(
        rows,
        [
            ("size", "size"),
            ("variant", "variant"),
            ("channels_last", "NHWC"),
            ("s_per_batch_median", "s/batch"),
            ("s_min", "min"),
            ("s_max", "max"),
            ("images_per_s", "img/s"),
            ("speedup", "speedup"),
            ("peak_mb", "peak MB"),
            ("peak_above_start_mb", "above start MB"),
            ("max_abs_diff_levels", "max diff (of 255)"),
        ],
    )
    whole = (
        "tensors the caching allocator handed out (model included, CUDA context not)"
        if device.type == "cuda"
        else "the whole process (torch runtime and model included)"
    )
    print(f"memory: {rows[0]['memory_method'] if rows else ''}; 'peak MB' is {whole}")
    out = {"config": vars(args), "machine": info, "results": rows}
    write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
