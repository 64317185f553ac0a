#!/usr/bin/env bash
# horse2zebra at the paper's settings (Sec. 4, Appendix 7.1), for a GPU: ResNet-9 generators, 70x70
# PatchGAN, LSGAN, lambda 10, identity 0.5 (the reference code's default), Adam 2e-4 / (0.5, 0.999),
# batch 1, 286 -> random 256 crops with flips, 100 epochs + 100 of linear decay (~267k steps).
# FID on the first 120 test images per direction every 10 epochs keeps checkpoints/best (best-over-training,
# chosen on the test set); the final model is scored on the whole test split at the end, both reported.
#
#   experiments/horse2zebra/run.sh [DATA] [RUN]         # DATA defaults to ../shared/data/horse2zebra
#   CPU=1 experiments/horse2zebra/run.sh [DATA] [RUN]   # reduced CPU sanity variant (see below)
set -euo pipefail
DATA=${1:-../shared/data/horse2zebra}
RUN=${2:-runs/horse2zebra}

if [[ "${CPU:-0}" == "1" ]]; then
  # Sanity variant for a CPU: 64x64 crops from 72, ResNet-6 with ngf 16, 200 images per domain, 3 + 3
  # epochs, no identity loss; checks that the pipeline learns something, not the paper's numbers.
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  cyclegan train "$DATA" --preset quick --run-dir "$RUN" --set data.max_images=200 \
    --set train.eval_every_epochs=3 --set train.eval_metric=fid --set train.eval_images=120 --no-progress
  # test images resized to the training crop (64), as the reference's test.py does
  cyclegan evaluate "$RUN" --data "$DATA" --metrics fid,kid,cycle --size 64
  exit 0
fi

cyclegan train "$DATA" --preset paper --run-dir "$RUN" \
  --set train.eval_every_epochs=10 --set train.eval_metric=fid --set train.eval_images=120 --no-progress
# final model, whole test split (120 horses, 140 zebras), against the test sets (and the train sets)
cyclegan evaluate "$RUN" --data "$DATA" --metrics fid,kid,cycle --out "$RUN/eval/latest"
cyclegan evaluate "$RUN" --data "$DATA" --metrics fid,kid --reference train --out "$RUN/eval/latest_vs_train"
# best-over-training snapshot (selected by test-subset FID: optimistic, label it as such)
cyclegan evaluate "$RUN/checkpoints/best.model.safetensors" --data "$DATA" --metrics fid,kid,cycle --out "$RUN/eval/best"
