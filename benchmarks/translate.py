"""Benchmark inference: images/s and peak memory of the real translation path at several sizes.

A freshly initialised model of the chosen generator is saved as a model snapshot and loaded back with
`cyclegan.translate.load_translator` (weights do not change the speed), then `Translator.__call__`
(uint8 in, padding, the network, uint8 out) is timed on random images. Variants are interleaved per
round as in train_step.py: fp32 (what `cyclegan translate` runs) and, on request, bfloat16/float16
autocast (the translator's own `precision` switch) and channels_last around the same network, with the largest output
difference against fp32
in 8-bit levels.

    python benchmarks/translate.py --sizes 256 1024
    python benchmarks/translate.py --sizes 256 1024 --variants bf16 --json runs/bench/translate.json
    python benchmarks/translate.py --sizes 2048 --variants tile512 --rounds 1 --iters 1   # translate --tile 512
"""

from __future__ import annotations

import argparse
import contextlib
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
from cyclegan.runtime import AUTOCAST, resolve_device  # noqa: E402
from cyclegan.train.checkpointing import model_meta  # noqa: E402
from cyclegan.translate import load_translator  # noqa: E402


def build_translator(generator: str, device: torch.device, folder: Path):
    cfg = build_config([], [], [f"model.generator={generator}"])
    torch.manual_seed(0)
    method = create_method(cfg)
    nets = method.build_networks()
    meta = model_meta(SimpleNamespace(method=method, cfg=cfg, step=0, epoch=0))
    path = folder / "bench.model.safetensors"
    ckpt.save_model(path, {k: nets[k] for k in method.inference_nets()}, meta)
    return load_translator(path, "AtoB", device)


def variant_fn(translator, spec: str):
    """The network call, autocast dtype and tile size of a variant: 'bf16' (what `translate --precision bf16`
    runs), 'fp32+cl' (channels_last inputs), 'tile512' (`translate --tile 512`), ..."""
    tokens = spec.split("+")
    dtype = next((AUTOCAST[t] for t in tokens if t in AUTOCAST), None)
    tile = next((int(t[4:]) for t in tokens if t.startswith("tile")), 0)
    net = translator.fn
    if "cl" not in tokens:
        return net, dtype, tile
    return (lambda x: net(x.contiguous(memory_format=torch.channels_last))), dtype, tile


@contextlib.contextmanager
def as_variant(translator, fn, dtype, tile):
    """Run the translator with this network call, autocast dtype and tile size, then restore it."""
    saved = translator.fn, translator.autocast, translator.tile
    translator.fn, translator.autocast, translator.tile = fn, dtype, tile
    try:
        yield translator
    finally:
        translator.fn, translator.autocast, translator.tile = saved


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--generator", default="resnet_9blocks")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument(
        "--variants", nargs="*", default=[], help="besides fp32: bf16, fp16, fp32+cl, bf16+cl, tile512, bf16+tile512"
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
        translator = build_translator(args.generator, device, Path(tmp))
        for size in args.sizes:
            g = torch.Generator().manual_seed(size)
            images = torch.randint(
                0, 256, (args.batch_size, translator.in_ch, size, size), dtype=torch.uint8, generator=g
            )
            runs = {}
            for spec in specs:
                fn, dtype, tile = variant_fn(translator, spec)
                runs[spec] = {"fn": fn, "dtype": dtype, "tile": tile, "times": [], "extra": 0, "absolute": 0}
                print(f"{size}x{size} {spec}: warm-up", flush=True)
                with as_variant(translator, fn, dtype, tile):
                    runs[spec]["output"] = translator(images).cpu()
            for r in range(args.rounds):
                for spec in specs[r % len(specs) :] + specs[: r % len(specs)]:
                    run = runs[spec]
                    with as_variant(translator, run["fn"], run["dtype"], run["tile"]), PeakMemory(device) as mem:
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
