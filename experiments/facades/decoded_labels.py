"""Check the colour-to-class decoding of facades label maps on the ground truth itself.

For every test pair, the label map (right half, a JPEG) is decoded to class ids by nearest palette colour,
as `cyclegan evaluate --metrics seg` decodes both the ground truth and a translation. Reported:

- the seg scorer run with the ground-truth images as the "translations": must be 1.0 on all three scores,
  at the files' own 256x256 and at evaluate's `--size 128` (a label map resized nearest, as evaluate resizes
  ground truth);
- how far label pixels are from their nearest palette colour (JPEG blurs borders): the share of pixels
  beyond 40 RGB units, where the decoding is a guess;
- the class frequencies of the decoded test maps (the majority class is the all-majority baseline);
- with --figure, a picture: label map as stored | decoded map repainted in palette colours | pixels beyond
  40 units in white, for the first few test images.

    python experiments/facades/decoded_labels.py --data ../shared/data/facades --figure
    docs/images/facades_decoded_labels.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cyclegan.evaluate import SegScorer
from cyclegan.metrics import FACADES_CLASSES, FACADES_PALETTE, colors_to_labels
from cyclegan.metrics.segmentation import labels_to_colors

FAR = 40  # RGB distance beyond which a pixel's class is a guess


def label_halves(facades: Path, out: Path, limit: int = 0, size: int = 0) -> Path:
    """The label maps (right halves) of facades test pairs as PNGs named like their pairs, optionally resized
    nearest to size x size; returns the folder."""
    out.mkdir(parents=True, exist_ok=True)
    files = sorted((facades / "test").glob("*.jpg"), key=lambda p: int(p.stem))
    for f in files[:limit] if limit else files:
        ab = Image.open(f).convert("RGB")
        half = ab.crop((ab.width // 2, 0, ab.width, ab.height))
        (half.resize((size, size), Image.NEAREST) if size else half).save(out / f"{f.stem}.png")
    return out


def self_scores(folder: Path, resize_to: int = 0) -> dict[str, float]:
    """The seg scorer with the ground truth as the translations (resized nearest to resize_to when > 0)."""
    scorer = SegScorer(folder, FACADES_PALETTE, resize=bool(resize_to))
    for f in sorted(folder.glob("*.png")):
        image = Image.open(f).convert("RGB")
        if resize_to:
            image = image.resize((resize_to, resize_to), Image.NEAREST)
        scorer.update([f], None, torch.from_numpy(np.array(image)).permute(2, 0, 1)[None], None)
    return scorer.result()


def decoding_stats(folder: Path) -> dict:
    """Share of pixels farther than FAR from their nearest palette colour, and decoded class frequencies."""
    counts, far, total = np.zeros(len(FACADES_PALETTE), np.int64), 0, 0
    pal = FACADES_PALETTE.astype(np.int32)
    for f in sorted(folder.glob("*.png")):
        image = np.array(Image.open(f).convert("RGB"))
        labels = colors_to_labels(image, FACADES_PALETTE)
        dist = np.sqrt(((image.astype(np.int32) - pal[labels]) ** 2).sum(-1))
        far += int((dist > FAR).sum())
        total += labels.size
        counts += np.bincount(labels.ravel(), minlength=len(FACADES_PALETTE))
    return {"far_share": far / total, "class_share": dict(zip(FACADES_CLASSES, (counts / total).round(4).tolist()))}


def figure(folder: Path, path: Path, n: int = 2) -> None:
    rows = []
    pal = FACADES_PALETTE.astype(np.int32)
    for f in sorted(folder.glob("*.png"), key=lambda p: int(p.stem))[:n]:
        image = np.array(Image.open(f).convert("RGB"))
        labels = colors_to_labels(image, FACADES_PALETTE)
        far = np.sqrt(((image.astype(np.int32) - pal[labels]) ** 2).sum(-1)) > FAR
        rows.append(
            np.concatenate(
                [image, labels_to_colors(labels, FACADES_PALETTE), np.repeat(far[..., None] * np.uint8(255), 3, 2)], 1
            )
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(path)


def main(argv=None) -> int:
    import json
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the facades folder (with test/)")
    ap.add_argument("--figure", type=Path, help="write the label | decoded | uncertain picture here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        full = label_halves(args.data, Path(tmp) / "full")
        print("ground truth as translations, 256x256:", json.dumps(self_scores(full)))
        print("ground truth as translations, --size 128:", json.dumps(self_scores(full, 128)))
        print("decoding:", json.dumps(decoding_stats(full)))
        if args.figure:
            figure(full, args.figure)
            print(f"written: {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
