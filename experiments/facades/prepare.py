"""Split the facades files into unpaired CycleGAN folders at a reduced size.

Domains: A = photos (left halves), B = colour-coded label maps (right halves), as in the ablation
experiment (experiments/ablations) and pix2pix's facades. The halves are first written at 256x256 by
`cyclegan.data.aligned.split_aligned_folder` (under OUT/full/), then resized to SIZExSIZE: photos
bicubic, label maps nearest-neighbour (so they keep the palette's flat colours and resizing invents no
in-between classes). trainA/trainB come from facades train (400), testA/testB from facades test (106);
test pairs keep the same file names, which is how `cyclegan evaluate --metrics seg` finds the ground truth.
CycleGAN training never sees which photo goes with which label map.

`--clean-labels` also snaps every label-map pixel to its nearest facades palette colour (the JPEG
files blur colours at class borders and add ringing; the labels are categorical). Scoring maps colours to
classes by the same nearest-colour rule, so the ground truth is unchanged by it; only the training
target domain becomes flat-coloured.

    python experiments/facades/prepare.py --data ../shared/data/facades --out runs/facades/data --size 72
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan.data.aligned import split_aligned_folder
from cyclegan.data.files import find_images
from cyclegan.metrics import FACADES_PALETTE, colors_to_labels


def resize_folder(src: Path, dst: Path, size: int, resample, clean: bool = False) -> int:
    dst.mkdir(parents=True, exist_ok=True)
    files = find_images(src, str(src))
    for f in files:
        target = dst / f.name
        if not target.is_file():
            with Image.open(f) as img:
                img = img.convert("RGB").resize((size, size), resample)
            if clean:
                img = Image.fromarray(FACADES_PALETTE[colors_to_labels(np.asarray(img), FACADES_PALETTE)])
            img.save(target)
    return len(files)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="the facades folder (train/, test/ of side-by-side files)")
    p.add_argument("--out", type=Path, required=True, help="output folder (full/, trainA, trainB, testA, testB)")
    p.add_argument("--size", type=int, default=72, help="image side after resizing (default 72)")
    p.add_argument("--clean-labels", action="store_true", help="snap label maps to exact palette colours")
    args = p.parse_args(argv)
    for phase in ("train", "test"):
        full_a, full_b = args.out / "full" / f"{phase}A", args.out / "full" / f"{phase}B"
        split_aligned_folder(args.data / phase, full_a, full_b)
        n = resize_folder(full_a, args.out / f"{phase}A", args.size, Image.Resampling.BICUBIC)
        resize_folder(full_b, args.out / f"{phase}B", args.size, Image.Resampling.NEAREST, args.clean_labels)
        print(f"{phase}: {n} photo/label pairs at {args.size}x{args.size} in {args.out}/{phase}A, {phase}B")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
