"""A figure comparing models on one digit: the MNIST evaluation images of that digit that the first model's
translation gets wrong (per the judge), one row per model under the inputs.

    python experiments/mnist_usps/figure.py --data WORK/data/testA --judge WORK/usps_cnn.safetensors --digit 1 \
        --out ones.png RUN1/checkpoints/latest.state.safetensors RUN2/checkpoints/latest.model.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image
from train_classifier import load_folder  # the sibling script (this folder is on sys.path when run)

from cyclegan.content import load_classifier
from cyclegan.translate import load_translator


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", help="models to compare (run directories or checkpoint files)")
    p.add_argument("--data", type=Path, required=True, help="folder of MNIST images with labels.csv (testA)")
    p.add_argument("--judge", type=Path, required=True, help="the USPS classifier (train_classifier.py)")
    p.add_argument("--digit", type=int, default=1)
    p.add_argument("--count", type=int, default=20, help="columns: the first COUNT failures of the first model")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    x, y = load_folder(args.data)
    x = x[y == args.digit]
    judge = load_classifier(args.judge)
    outputs, right = [], []
    for checkpoint in args.checkpoints:
        g = load_translator(checkpoint, "AtoB", device="cpu")
        translated = torch.cat([g(x[i : i + 256]) for i in range(0, len(x), 256)])
        outputs.append(translated)
        right.append(judge.predict(translated) == args.digit)
        print(f"{checkpoint}: {right[-1].float().mean():.1%} of {len(x)} {args.digit}s read right")
    picked = (~right[0]).nonzero().flatten()[: args.count].tolist()
    for checkpoint, ok in zip(args.checkpoints[1:], right[1:]):
        print(f"{checkpoint}: right on {int(ok[picked].sum())} of the {len(picked)} pictured")
    side = x.shape[-1] + 2
    canvas = Image.new("L", (len(picked) * side, (1 + len(outputs)) * side), 255)
    for col, i in enumerate(picked):
        for row, images in enumerate([x, *outputs]):
            canvas.paste(Image.fromarray(images[i, 0].numpy()), (col * side + 1, row * side + 1))
    canvas.resize((canvas.width * 2, canvas.height * 2), Image.NEAREST).save(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
