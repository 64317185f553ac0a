#!/usr/bin/env bash
# CycleGAN labels <-> photo on facades, unpaired, at reduced scale for a CPU; scored photo->labels with the
# paper's Table 3 protocol (per-pixel accuracy, per-class accuracy, class IoU) next to the all-majority-class
# baseline, plus labels->photo FID/KID. docs/evaluation.md has the measured numbers (about 1 h of training on
# one CPU thread with bfloat16).
#
# A = photos, B = label maps (facades train 400 / test 106), resized to 143x143 (photos bicubic, labels
# nearest and snapped to the palette), random 128x128 crops with flips as in the paper's 128x128 setting.
# ResNet-6 ngf 32, PatchGAN ndf 32, batch 1, LSGAN, lambda 10, no identity loss (the paper uses it only for
# paintings), 8 + 8 epochs (6,400 steps), bfloat16 autocast where the CPU runs it natively (--precision auto).
# In-training seg score on the 106 test images (at 128x128) every 2 epochs keeps checkpoints/best
# (best-over-training). Paper scale (GPU): prepare with --size 286 and train with --preset paper (256 crops,
# ResNet-9, ngf = ndf = 64, 100 + 100 epochs), then evaluate the same way with --size 256.
#
#   experiments/facades/run.sh [DATA] [WORK]     # defaults: ../shared/data/facades runs/facades
#   SIZE=64 REFERENCE=1 experiments/facades/run.sh ...   # 64x64 crops of 72x72 images; then the reference, same steps
#   SIZE=64 EPOCHS=32 experiments/facades/run.sh ...     # a 4x budget: 32 + 32 epochs (25,600 steps)
#   SIZE=64 WIDTH=64 experiments/facades/run.sh ...      # the paper's network width (ngf = ndf = 64; default 32)
set -euo pipefail
DATA=${1:-../shared/data/facades}
WORK=${2:-runs/facades}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
SIZE=${SIZE:-128}                        # the crop size; images are resized to the paper's 286/256 of it first
LOAD=$(((SIZE * 286 + 128) / 256))       # 143 for 128, 72 for 64
EPOCHS=${EPOCHS:-8}                      # epochs at constant lr, then as many decaying to zero (400 steps each)
WIDTH=${WIDTH:-32}                       # ngf = ndf (the paper's 64 costs about 3x the step time)

python "$(dirname "$0")/prepare.py" --data "$DATA" --out "$WORK/data" --size "$LOAD" --clean-labels
cyclegan train "$WORK/data" --preset paper --run-dir "$WORK/cyclegan" \
  --set data.load_size="$LOAD" --set data.crop_size="$SIZE" --set data.workers=0 \
  --set model.generator=resnet_6blocks --set model.ngf="$WIDTH" --set model.ndf="$WIDTH" --set loss.lambda_identity=0 \
  --epochs "$EPOCHS" --epochs-decay "$EPOCHS" --precision auto --set train.save_every_epochs=2 --set train.sample_every=400 \
  --set train.eval_every_epochs=2 --set train.eval_metric=seg --set train.eval_images=106 --no-progress
# whole test split at the training crop size (photo->labels is AtoB)
cyclegan evaluate "$WORK/cyclegan" --data "$WORK/data" --size "$SIZE" --metrics seg,fid,kid,cycle --seg-direction AtoB \
  --out "$WORK/cyclegan/eval/latest"
cyclegan evaluate "$WORK/cyclegan/checkpoints/best.model.safetensors" --data "$WORK/data" --size "$SIZE" \
  --metrics seg,cycle --out "$WORK/cyclegan/eval/best"
# REFERENCE=1: the reference implementation on the same folders, settings and iterations, scored the same way
# (docs/evaluation.md, "the reference at the same budget"); REFERENCE_REPO points at its source folder.
if [ "${REFERENCE:-0}" = 1 ]; then
  python "$(dirname "$0")/reference_train.py" --data "$WORK/data" --out "$WORK/reference" --epochs "$EPOCHS" --epochs-decay "$EPOCHS" \
    --load-size "$LOAD" --crop-size "$SIZE" --ngf "$WIDTH" --ndf "$WIDTH" ${REFERENCE_REPO:+--reference "$REFERENCE_REPO"}
  cyclegan evaluate "$WORK/reference/latest_net_G_A.pth" --data "$WORK/data" --size "$SIZE" --metrics seg \
    --seg-direction AtoB --out "$WORK/reference/eval"
fi
