#!/usr/bin/env bash
# bf16 fidelity on horse2zebra (issue 23): the default precision (auto: bf16 where the CPU computes it natively)
# against strict fp32 at a fixed budget, same seeds, same data, same number of steps; FID / KID on the whole
# test split (120 horses, 140 zebras) at the training size. docs/performance.md has the table.
#
# The paper's 128x128 setup (paper128: ResNet-6, 143 -> random 128 crops with flips, 70x70 PatchGAN, LSGAN,
# lambda 10, identity 0.5, Adam 2e-4 / (0.5, 0.999), batch 1, pool of 50), with a short schedule so that a CPU
# can run it: IMAGES images per domain (the first, sorted; an epoch is IMAGES steps) for 1 + 1 epochs
# (constant lr, then linear decay to zero), so the budget is 2 x IMAGES steps and the schedule completes.
# One thread per run by default; run it twice at a time on two cores (PRECISIONS / SEEDS pick the runs of one
# instance; PRECISIONS=wino is float32 with Winograd residual convolutions in channels_last, what `auto` runs on
# a CPU without native bf16):
#
#   PRECISIONS=fp32 SEEDS=0 experiments/horse2zebra/fidelity.sh [DATA] [WORK] &
#   PRECISIONS=auto SEEDS="0 1" experiments/horse2zebra/fidelity.sh [DATA] [WORK] &
#
# Finished runs are kept (rerunning skips them; a stopped run continues with --resume), and every instance
# ends by printing the table of all finished runs in WORK.
set -euo pipefail
DATA=${1:-../shared/data/horse2zebra}
WORK=${2:-runs/h2z_fidelity}
IMAGES=${IMAGES:-1000}
THREADS=${THREADS:-${OMP_NUM_THREADS:-1}}  # CPU threads per run (the comparison holds at any count; say which)
export OMP_NUM_THREADS=$THREADS
mkdir -p "$WORK"
for seed in ${SEEDS:-0}; do
  for precision in ${PRECISIONS:-fp32 auto}; do
    run="$WORK/${precision}_seed$seed"
    if [ ! -f "$run/eval/latest/metrics.json" ]; then
      if [ -f "$run/checkpoints/latest.state.safetensors" ]; then
        cyclegan train --resume "$run" --threads "$THREADS" --no-progress
      else
        case $precision in  # wino: what auto runs on a CPU without native bf16 (fp32, Winograd, channels_last)
          wino) flags=(--precision fp32 --set train.winograd=true --set train.channels_last=true) ;;
          *) flags=(--precision "$precision") ;;
        esac
        cyclegan train "$DATA" --preset paper128 --run-dir "$run" --seed "$seed" "${flags[@]}" \
          --epochs 1 --epochs-decay 1 --set data.max_images="$IMAGES" --threads "$THREADS" --no-progress
      fi
      cyclegan evaluate "$run" --data "$DATA" --metrics fid,kid --size 128 --out "$run/eval/latest" --no-gallery
    fi
  done
done
python - "$WORK" <<'PY'
import json, sys
from pathlib import Path
for run in sorted(Path(sys.argv[1]).glob("*_seed*")):
    m = run / "eval" / "latest" / "metrics.json"
    if not m.is_file():
        continue
    metrics = json.loads(m.read_text())["metrics"]
    t = json.loads((run / "config.json").read_text())["train"]
    precision = t["precision"] + (" + Winograd" if t.get("winograd") == "true" else "")
    cells = [f"{d} FID {metrics[d]['fid']:.1f} KID {1000 * metrics[d]['kid']:.1f}" for d in ("AtoB", "BtoA")]
    print(f"{run.name} ({precision}): " + ", ".join(cells))
PY
