"""FID of two image folders three ways: our legacy (pytorch-fid) protocol, our clean protocol, and the
`clean-fid` package's own pipeline (its loader, resizer and InceptionV3W) run offline over the same weights.

    python experiments/clean_fid/compare.py ../shared/data/horse2zebra/testA ../shared/data/horse2zebra/testB

clean-fid's distance is its own `frechet_distance` (scipy sqrtm on the covariances, as clean-fid computes it);
ours is `cyclegan.metrics.frechet_distance_from_features`. Prints one line per value and the relative gap.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from importlib.metadata import version

import numpy as np

from cyclegan.metrics import features as FT
from cyclegan.metrics.cleanfid_reference import cleanfid_extractor, cleanfid_folder_features
from cyclegan.metrics.frechet import frechet_distance_from_features


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir1")
    ap.add_argument("dir2")
    ap.add_argument("--batch-size", type=int, default=20)
    args = ap.parse_args()
    from cleanfid.fid import frechet_distance as cleanfid_distance

    net = FT.InceptionLoader()
    t0 = time.perf_counter()
    legacy = [FT.folder_features(d, net, batch_size=args.batch_size, use_cache=False) for d in (args.dir1, args.dir2)]
    clean = [
        FT.folder_features(d, net, batch_size=args.batch_size, use_cache=False, protocol="clean")
        for d in (args.dir1, args.dir2)
    ]
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        extractor = cleanfid_extractor(tmp)
        theirs = [cleanfid_folder_features(d, extractor, batch_size=args.batch_size) for d in (args.dir1, args.dir2)]
    t2 = time.perf_counter()
    stats = [(f.mean(0).astype(np.float64), np.cov(f, rowvar=False)) for f in theirs]  # as clean-fid's compare_folders
    fid_pkg = float(cleanfid_distance(*stats[0], *stats[1]))
    fid_legacy, fid_clean = frechet_distance_from_features(*legacy), frechet_distance_from_features(*clean)
    print(f"images: {len(clean[0])} vs {len(clean[1])}; clean-fid {version('clean-fid')}")
    print(f"legacy FID (ours, pytorch-fid protocol): {fid_legacy:.4f}")
    print(f"clean FID (ours):                        {fid_clean:.4f}")
    print(f"clean FID (clean-fid package pipeline):  {fid_pkg:.4f}")
    print(
        f"relative gap ours vs package: {abs(fid_clean - fid_pkg) / fid_pkg:.2e}; "
        f"max feature difference {max(np.abs(a - b).max() for a, b in zip(clean, theirs)):.2e}"
    )
    print(f"({t1 - t0:.0f} s ours, both protocols; {t2 - t1:.0f} s clean-fid features)")


if __name__ == "__main__":
    main()
