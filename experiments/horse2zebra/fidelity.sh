#!/usr/bin/env bash
# bf16 fidelity on horse2zebra (issue 23): the default precision (auto: bf16 where the CPU computes it natively)
# against strict fp32 at a fixed budget, same seeds, same data, same number of steps; FID / KID on the whole
# test split (120 horses, 140 zebras) at the training size. docs/performance.md has the table.
#
# The paper's 128x128 setup (paper128: ResNet-6, 143 -> random 128 crops with flips, 70x70 PatchGAN, LSGAN,
# lambda 10, identity 0.5, Adam 2e-4 / (0.5, 0.999), batch 1, pool of 50), with a short schedule so that a CPU
# can run it: IMAGES images per domain (the first, sorted; an epoch is IMAGES steps) for EPOCHS + EPOCHS epochs
# (constant lr, then linear decay to zero; EPOCHS=1 by default), so the budget is 2 x EPOCHS x IMAGES steps and
# the schedule completes. EPOCHS=10 is the issue's 20,000-step budget; its model snapshots (every 5 epochs) are
# scored too, into eval/epoch_NNNN, so the table shows FID along the way.
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
EPOCHS=${EPOCHS:-1}
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
          --epochs "$EPOCHS" --epochs-decay "$EPOCHS" --set data.max_images="$IMAGES" --threads "$THREADS" --no-progress
      fi
      for snapshot in "$run"/checkpoints/epoch_*.model.safetensors; do
        [ -f "$snapshot" ] || continue
        out="$run/eval/$(basename "$snapshot" .model.safetensors)"
        [ -f "$out/metrics.json" ] || cyclegan evaluate "$snapshot" --data "$DATA" --metrics fid,kid --size 128 \
          --out "$out" --no-gallery
      done
      cyclegan evaluate "$run" --data "$DATA" --metrics fid,kid --size 128 --out "$run/eval/latest" --no-gallery
    fi
  done
done
python - "$WORK" <<'PY'
import json, sys
from pathlib import Path
for run in sorted(Path(sys.argv[1]).glob("*_seed*")):
    if not (run / "eval" / "latest" / "metrics.json").is_file():
        continue
    cfg = json.loads((run / "config.json").read_text())
    t, o, images = cfg["train"], cfg["optim"], cfg["data"]["max_images"]
    precision = t["precision"] + (" + Winograd" if t.get("winograd") == "true" else "")
    for m in sorted((run / "eval").glob("epoch_*/metrics.json")) + [run / "eval" / "latest" / "metrics.json"]:
        metrics = json.loads(m.read_text())["metrics"]
        epochs = int(m.parent.name[6:]) if m.parent.name != "latest" else o["n_epochs"] + o["n_epochs_decay"]
        cells = [f"{d} FID {metrics[d]['fid']:.1f} KID {1000 * metrics[d]['kid']:.1f}" for d in ("AtoB", "BtoA")]
        print(f"{run.name} ({precision}) step {epochs * images}: " + ", ".join(cells))
PY
