"""Write MNIST (domain A) and USPS (domain B) as 32x32 grayscale PNG folders for `cyclegan train`.

The shared data holds only the official MNIST *test* set (10,000 images), so it is split in two
disjoint halves: the first 5,000 images (in file order) become `trainA/` (CycleGAN training, labels
never used) and the last 5,000 become `testA/` (evaluation only). USPS keeps its own split:
`trainB/` = USPS train (7,291), `testB/` = USPS test (2,007). Every folder gets a `labels.csv`
(`file,label`); image files are named `<index>.png` in the source order.

`val/testA` and `val/testB` repeat the first 1,000 images of trainA and trainB: a validation split for
in-training evaluation (`train.eval_root`), so that the best snapshot is chosen with the *source* labels
(which domain adaptation may use) and never on test images.

Both domains are resized to 32x32 with bicubic antialiased resampling: MNIST from 28x28 (digit in a
20x20 box with a 4-pixel margin), USPS from 16x16 (digit filling the frame), so the domains also
differ in digit scale and stroke, which the translation has to learn.

    python experiments/mnist_usps/prepare.py --data ../shared/data/mnist_usps --out runs/mnist_usps/data
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 32
MNIST_TRAIN = 5000  # first half of MNIST test -> trainA, second half -> testA
VAL = 1000  # val/testA, val/testB: the first images of trainA, trainB


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format, gzip-compressed) as a uint8 array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_folder(folder: Path, images: np.ndarray, labels: np.ndarray, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file,label"]
    for i, (img, label) in enumerate(zip(images, labels)):
        name = f"{i:05d}.png"
        Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC).save(folder / name)
        lines.append(f"{name},{int(label)}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder with t10k-*-idx*-ubyte.gz and usps.npz")
    p.add_argument("--out", type=Path, required=True, help="output folder (trainA, testA, trainB, testB, val/)")
    p.add_argument("--size", type=int, default=SIZE, help="image side in pixels (default 32)")
    args = p.parse_args(argv)
    mnist_x = read_idx(args.data / "t10k-images-idx3-ubyte.gz")
    mnist_y = read_idx(args.data / "t10k-labels-idx1-ubyte.gz")
    usps = np.load(args.data / "usps.npz")
    splits = {
        "trainA": (mnist_x[:MNIST_TRAIN], mnist_y[:MNIST_TRAIN]),
        "testA": (mnist_x[MNIST_TRAIN:], mnist_y[MNIST_TRAIN:]),
        "trainB": (usps["train_images"], usps["train_labels"]),
        "testB": (usps["test_images"], usps["test_labels"]),
        "val/testA": (mnist_x[:VAL], mnist_y[:VAL]),
        "val/testB": (usps["train_images"][:VAL], usps["train_labels"][:VAL]),
    }
    for name, (x, y) in splits.items():
        write_folder(args.out / name, x, y, args.size)
        print(f"{args.out / name}: {len(x)} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
