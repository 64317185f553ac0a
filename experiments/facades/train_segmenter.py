"""Train the facades segmenter for the FCN-score: a small U-Net on the *real* training photos and their label maps.

The paper's labels->photo score (Sec. 5.1.1): a segmenter of real photos labels the generated photos, scored
against the label maps they came from. This trains that judge on facades train (trainA photos, trainB label maps
of the same names, from prepare.py), with random crops and flips, and reports how well it labels the real test
photos: the ceiling of any translation's FCN-score (the paper's "ground truth" row). Writes a segmenter file for
`cyclegan evaluate --metrics fcn --segmenter FILE`.

    python experiments/facades/train_segmenter.py --data runs/facades/data --out runs/facades/segmenter.safetensors
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cyclegan.data.files import find_images, read_image
from cyclegan.data.transforms import to_float
from cyclegan.metrics import FACADES_PALETTE, colors_to_labels, confusion_matrix, scores_from_confusion
from cyclegan.metrics.segmentation import FACADES_CLASSES
from cyclegan.segmenter import Segmenter, SegNet, save_segmenter


def load_pairs(photos: Path, labels: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, H, W) uint8 photos and (N, H, W) int64 class ids of the label maps with the same file names."""
    files = find_images(photos, str(photos))
    maps = {p.stem: p for p in find_images(labels, str(labels))}
    missing = [f.name for f in files if f.stem not in maps]
    if missing:
        raise SystemExit(f"{labels}: no label map for {missing[0]} (paired file names needed; see prepare.py)")
    x = torch.stack([read_image(f, 3) for f in files])
    y = torch.stack(
        [
            torch.from_numpy(colors_to_labels(read_image(maps[f.stem], 3).permute(1, 2, 0).numpy(), FACADES_PALETTE))
            for f in files
        ]
    )
    return x, y


def score(segmenter: Segmenter, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    k = len(segmenter.classes)
    conf = np.zeros((k, k), np.int64)
    for i in range(0, len(x), 32):
        conf += confusion_matrix(y[i : i + 32].numpy(), segmenter.predict(x[i : i + 32]).numpy(), k)
    return scores_from_confusion(conf).to_dict()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder from prepare.py (trainA, trainB, testA, testB)")
    p.add_argument("--out", type=Path, required=True, help="segmenter file to write (.safetensors)")
    p.add_argument("--crop", type=int, default=64, help="random training crop (a multiple of 8; the images are larger)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x, y = load_pairs(args.data / "trainA", args.data / "trainB")
    tx, ty = load_pairs(args.data / "testA", args.data / "testB")
    n, h, w = y.shape
    kwargs = {"in_ch": 3, "num_classes": len(FACADES_CLASSES), "width": args.width, "depth": 3}
    net = SegNet(**kwargs)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps = args.epochs * ((n + args.batch_size - 1) // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    t0 = time.time()
    for epoch in range(args.epochs):
        net.train()
        order, total = torch.randperm(n, generator=gen), 0.0
        for i in range(0, n, args.batch_size):
            idx = order[i : i + args.batch_size]
            top = int(torch.randint(0, h - args.crop + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - args.crop + 1, (1,), generator=gen))
            xb = to_float(x[idx, :, top : top + args.crop, left : left + args.crop])
            yb = y[idx, top : top + args.crop, left : left + args.crop]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb[flip], yb[flip] = xb[flip].flip(-1), yb[flip].flip(-1)
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if (epoch + 1) % 10 == 0 or epoch + 1 == args.epochs:
            s = score(Segmenter(net, 3, list(FACADES_CLASSES), "facades"), tx, ty)
            print(
                f"epoch {epoch + 1}: loss {total / n:.3f}, real test photos: per-pixel {s['per_pixel_acc']:.3f}, "
                f"per-class {s['per_class_acc']:.3f}, IoU {s['class_iou']:.3f} ({(time.time() - t0) / 60:.1f} min)",
                flush=True,
            )
            net.train()
    net.eval()
    segmenter = Segmenter(net, 3, list(FACADES_CLASSES), "facades")
    info = {
        "train": str(args.data / "trainA"),
        "images": n,
        "size": [h, w],
        "args": {k: str(v) for k, v in vars(args).items()},
        "real_test_photos": score(segmenter, tx, ty),
        "train_photos": score(segmenter, x, y),
        "minutes": (time.time() - t0) / 60,
    }
    save_segmenter(args.out, net, 3, list(FACADES_CLASSES), "facades", kwargs=kwargs, info=info)
    print(json.dumps({k: info[k] for k in ("real_test_photos", "train_photos", "minutes")}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
