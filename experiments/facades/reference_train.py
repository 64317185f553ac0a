"""Train the reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix) on the same prepared facades
folders and for the same number of iterations as experiments/facades/run.sh, so that `cyclegan evaluate`
can score both with one scorer (the reference's G_A is photo->labels: A = photos, B = label maps).

Its own model, networks, data loader, image pool and schedule run unchanged: `CycleGANModel.setup`,
`set_input` + `optimize_parameters` per iteration, `update_learning_rate` per epoch, as its `train.py`
does (which is not vendored), and `save_networks("latest")` writes `latest_net_G_A.pth`. Settings mirror
run.sh: load 143 / crop 128 with flips, ResNet-6, ngf = ndf = 32, lambda 10, no identity loss, LSGAN, pool
50, Adam 2e-4 / 0.5, linear decay over the second half. Then, for example:

    python experiments/facades/reference_train.py --data runs/facades/data --out runs/facades/reference \\
        --epochs 8 --epochs-decay 8
    cyclegan evaluate runs/facades/reference/latest_net_G_A.pth --data runs/facades/data --size 128 \\
        --metrics seg --seg-direction AtoB --out runs/facades/reference/eval

`--max-steps` stops early (a short check that the set-up works; the schedule keeps its epoch lengths).
"""

from __future__ import annotations

import argparse
import sys
import time
from argparse import Namespace
from pathlib import Path

import torch

DEFAULT_REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "upstream-2a7afba"


def options(args) -> Namespace:
    """The fields the reference's model, networks and dataset read, with run.sh's values."""
    return Namespace(
        isTrain=True,
        checkpoints_dir=str(args.out.parent),
        name=args.out.name,
        device=torch.device("cpu"),
        gpu_ids=[],
        dataroot=str(args.data),
        phase="train",
        max_dataset_size=float("inf"),
        direction="AtoB",
        input_nc=3,
        output_nc=3,
        preprocess="resize_and_crop",
        load_size=args.load_size,
        crop_size=args.crop_size,
        no_flip=False,
        serial_batches=False,
        ngf=args.ngf,
        ndf=args.ndf,
        netG=args.netG,
        netD="basic",
        n_layers_D=3,
        norm="instance",
        no_dropout=True,
        init_type="normal",
        init_gain=0.02,
        lambda_identity=0.0,
        lambda_A=10.0,
        lambda_B=10.0,
        pool_size=50,
        gan_mode="lsgan",
        lr=2e-4,
        beta1=0.5,
        lr_policy="linear",
        lr_decay_iters=50,
        epoch_count=1,
        n_epochs=args.epochs,
        n_epochs_decay=args.epochs_decay,
        continue_train=False,
        load_iter=0,
        epoch="latest",
        verbose=False,
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="prepared folder with trainA (photos), trainB (labels)")
    ap.add_argument("--out", type=Path, required=True, help="where latest_net_G_A.pth etc. are written")
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="the reference's source folder")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--epochs-decay", type=int, default=8)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many iterations (0: all epochs)")
    ap.add_argument("--load-size", type=int, default=143)
    ap.add_argument("--crop-size", type=int, default=128)
    ap.add_argument("--netG", default="resnet_6blocks")
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--ndf", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(args.reference))
    from data.unaligned_dataset import UnalignedDataset
    from models.cycle_gan_model import CycleGANModel

    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    opt = options(args)
    loader = torch.utils.data.DataLoader(UnalignedDataset(opt), batch_size=1, shuffle=True, num_workers=0)
    model = CycleGANModel(opt)
    model.setup(opt)
    steps, t0 = 0, time.time()
    for epoch in range(1, args.epochs + args.epochs_decay + 1):
        for batch in loader:
            model.set_input(batch)
            model.optimize_parameters()
            steps += 1
            if args.max_steps and steps >= args.max_steps:
                break
        model.update_learning_rate()
        losses = ", ".join(f"{k} {v:.3f}" for k, v in model.get_current_losses().items())
        print(f"epoch {epoch}: {steps} steps, {time.time() - t0:.0f} s; {losses}", flush=True)
        if args.max_steps and steps >= args.max_steps:
            break
    model.save_networks("latest")
    print(f"written: {args.out / 'latest_net_G_A.pth'} ({steps} steps, {time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
