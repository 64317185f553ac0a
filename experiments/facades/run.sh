#!/usr/bin/env bash
# CycleGAN labels <-> photo on facades, unpaired, at reduced scale for a CPU; scored photo->labels with the
# paper's Table 3 protocol (per-pixel accuracy, per-class accuracy, class IoU) next to the all-majority-class
# baseline, plus labels->photo FID/KID. docs/evaluation.md has the measured numbers.
#
# A = photos, B = label maps (facades train 400 / test 106), resized to 72x72 (photos bicubic, labels
# nearest). ResNet-6 ngf 32, PatchGAN ndf 32, batch 1, LSGAN, lambda 10, no identity loss (the paper uses
# it only for paintings), random 64x64 crops of the 72x72 images with flips, 10 + 10 epochs, one thread.
# In-training seg score on the 106 test images every 2 epochs keeps checkpoints/best (best-over-training).
# Paper scale (GPU): prepare with --size 256 and train with --preset paper (286 -> 256 crops, ResNet-9,
# ngf 64, 100 + 100 epochs), then evaluate the same way.
#
#   experiments/facades/run.sh [DATA] [WORK]     # defaults: ../shared/data/facades runs/facades
set -euo pipefail
DATA=${1:-../shared/data/facades}
WORK=${2:-runs/facades}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

python "$(dirname "$0")/prepare.py" --data "$DATA" --out "$WORK/data" --size 72
cyclegan train "$WORK/data" --preset paper --run-dir "$WORK/cyclegan" \
  --set data.load_size=72 --set data.crop_size=64 --set data.workers=0 \
  --set model.generator=resnet_6blocks --set model.ngf=32 --set model.ndf=32 --set loss.lambda_identity=0 \
  --epochs 10 --epochs-decay 10 --set train.save_every_epochs=5 --set train.sample_every=400 \
  --set train.eval_every_epochs=2 --set train.eval_metric=seg --set train.eval_images=106 --no-progress
# whole test split at the 72x72 training scale (photo->labels is AtoB)
cyclegan evaluate "$WORK/cyclegan" --data "$WORK/data" --metrics seg,fid,kid,cycle --seg-direction AtoB \
  --out "$WORK/cyclegan/eval/latest"
cyclegan evaluate "$WORK/cyclegan/checkpoints/best.model.safetensors" --data "$WORK/data" --metrics seg,cycle \
  --out "$WORK/cyclegan/eval/best"
