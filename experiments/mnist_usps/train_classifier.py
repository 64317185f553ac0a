"""Train a digit classifier: by default the content-preservation judge, a small CNN on USPS *train* only.

`--domain B` (default, the judge): trains on trainB (USPS train); reports its accuracy on USPS test (how
good the judge is) and on the untranslated MNIST evaluation half, testA ("no translation": the domain gap
the CycleGAN must close). Writes a classifier file for `cyclegan evaluate --metrics content --classifier FILE`.

`--domain A`: trains on trainA (the MNIST training half, with its labels) for the semantic consistency loss
(`--set loss.semantic_classifier=FILE`, CyCADA's source classifier); reports its accuracy on testA and on
untranslated USPS test (its "source only" score). It never sees testA's labels or USPS labels in training.

    python experiments/mnist_usps/train_classifier.py --data runs/mnist_usps/data --out
    runs/mnist_usps/usps_cnn.safetensors
    python experiments/mnist_usps/train_classifier.py --domain A --data runs/mnist_usps/data --out
    runs/mnist_usps/mnist_cnn.safetensors
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cyclegan.content import Classifier, DigitCNN, accuracy, read_labels, save_classifier
from cyclegan.data.files import find_images, read_image


def load_folder(folder: Path, channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, H, W) uint8 images and (N,) labels from a folder with labels.csv."""
    labels = read_labels(folder / "labels.csv")
    files = find_images(folder, str(folder))
    x = torch.stack([read_image(f, channels) for f in files])
    y = torch.tensor([labels[f.stem] for f in files])
    return x, y


def random_affine(
    x: torch.Tensor,
    gen: torch.Generator,
    degrees: float = 10.0,
    shift: float = 0.1,
    scale: tuple[float, float] = (0.9, 1.1),
) -> torch.Tensor:
    """Per-image random rotation, shift (fraction of the side) and scale of (B, C, H, W) floats in [-1, 1]."""
    b = x.shape[0]
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(b, generator=gen)  # noqa: E731
    angle = u(-degrees, degrees) * torch.pi / 180
    s = u(*scale)
    tx, ty = u(-2 * shift, 2 * shift), u(-2 * shift, 2 * shift)  # grid units: the image spans [-1, 1]
    theta = torch.stack(
        [
            torch.stack([torch.cos(angle) / s, -torch.sin(angle) / s, tx], 1),
            torch.stack([torch.sin(angle) / s, torch.cos(angle) / s, ty], 1),
        ],
        1,
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # pad with the background value (-1, black) rather than zeros (mid-grey)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder from prepare.py (trainA, testA, trainB, testB)")
    p.add_argument(
        "--domain",
        choices=["A", "B"],
        default="B",
        help="B (default): train on USPS train, the judge | A: train on the MNIST training half, "
        "the semantic loss's classifier",
    )
    p.add_argument("--out", type=Path, required=True, help="classifier file to write (.safetensors)")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--augment",
        choices=["none", "affine"],
        default="none",
        help="none (default, the judge of docs/evaluation.md) | affine: random rotation +-10 deg, "
        "shift +-10%%, scale (--scale) per image (a judge so robust that untranslated MNIST scores 94%%)",
    )
    p.add_argument(
        "--scale",
        type=float,
        nargs=2,
        default=(0.9, 1.1),
        metavar=("MIN", "MAX"),
        help="scale range of --augment affine (default 0.9 1.1)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine may be shared)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    other = "A" if args.domain == "B" else "B"
    x_train, y_train = load_folder(args.data / f"train{args.domain}")
    x_test, y_test = load_folder(args.data / f"test{args.domain}")
    x_other, y_other = load_folder(args.data / f"test{other}")
    size = x_train.shape[-1]
    kwargs = {"in_ch": 1, "num_classes": 10, "width": 32, "size": size}
    net = DigitCNN(**kwargs)
    clf = Classifier(net, size, 1, [str(i) for i in range(10)])
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(order), args.batch_size):
            idx = order[i : i + args.batch_size]
            inputs = clf.prepare(x_train[idx])
            if args.augment == "affine":
                inputs = random_affine(inputs, gen, scale=tuple(args.scale))
            loss = F.cross_entropy(net(inputs), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        net.eval()
        print(
            f"epoch {epoch + 1}/{args.epochs}: loss {total / len(order):.4f}, "
            f"test{args.domain} acc {accuracy(clf.predict(x_test), y_test):.4f}",
            flush=True,
        )
    train_name, test_name = {"A": "mnist", "B": "usps"}, {"A": "mnist_eval", "B": "usps_test"}
    results = {
        "domain": args.domain,
        f"{test_name[args.domain]}_accuracy": accuracy(clf.predict(x_test), y_test),
        f"{test_name[other]}_no_translation_accuracy": accuracy(clf.predict(x_other), y_other),
        f"{train_name[args.domain]}_train_images": len(x_train),
        f"{test_name[args.domain]}_images": len(x_test),
        f"{test_name[other]}_images": len(x_other),
        "epochs": args.epochs,
        "augment": args.augment,
        **({"scale": list(args.scale)} if args.augment == "affine" else {}),
        "seconds": round(time.time() - t0, 1),
    }
    save_classifier(args.out, net, size, 1, clf.classes, kwargs=kwargs, info=results)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
