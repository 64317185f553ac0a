#!/usr/bin/env bash
# bf16 fidelity on MNIST -> USPS (issue 23): the default precision (auto: bf16 where native) against strict fp32,
# over the same seeds, same data, same budget; two runs at a time, one thread each (a queue: the next run starts when
# either of the two ends, so a faster variant does not leave a core idle). Prints content accuracy of
# G(MNIST) on all 5,000 testA images for every run (docs/performance.md has the table).
# VARIANTS picks the runs: fp32 (strict), auto (the default on this machine), wino (what auto chooses on a CPU
# without native bf16: float32 with Winograd F(4x4, 3x3) residual convolutions in channels_last).
#
#   EPOCHS=1 SEEDS="0 1 2 3" experiments/mnist_usps/fidelity.sh [DATA] [WORK]
#   EPOCHS=4 SEEDS="0 1" VARIANTS=wino experiments/mnist_usps/fidelity.sh [DATA] [WORK]
set -euo pipefail
DATA=${1:-../shared/data/mnist_usps}
WORK=${2:-runs/mnist_usps_fidelity}
HERE=$(cd "$(dirname "$0")" && pwd)
SEEDS=${SEEDS:-"0 1 2 3"}
export EPOCHS=${EPOCHS:-1}
mkdir -p "$WORK/base"
python "$HERE/prepare.py" --data "$DATA" --out "$WORK/base/data" >/dev/null
[ -f "$WORK/base/usps_cnn.safetensors" ] ||
  python "$HERE/train_classifier.py" --data "$WORK/base/data" --out "$WORK/base/usps_cnn.safetensors" --augment none
runs=()
for seed in $SEEDS; do
  for variant in ${VARIANTS:-fp32 auto}; do
    runs+=("$variant:$seed")
  done
done
for item in "${runs[@]}"; do  # two at a time: the next run starts as soon as either of the two ends
  while (($(jobs -rp | wc -l) >= 2)); do wait -n || true; done
  variant=${item%:*} seed=${item#*:}
  run="$WORK/${variant}_seed$seed"
  mkdir -p "$run" && cp "$WORK/base/usps_cnn.safetensors" "$run/"
  case $variant in
    wino) settings=(PRECISION=fp32 WINOGRAD=true CHANNELS_LAST=true) ;;
    *) settings=(PRECISION="$variant") ;;
  esac
  [ -f "$run/cyclegan/eval/latest/metrics.json" ] ||
    env SEED="$seed" "${settings[@]}" bash "$HERE/run.sh" "$DATA" "$run" > "$run.log" 2>&1 &
done
wait
python - "$WORK" <<'PY'
import json, statistics, sys
from pathlib import Path
work = Path(sys.argv[1])
for variant in ("fp32", "auto", "wino"):
    accs = []
    for run in sorted(work.glob(f"{variant}_seed*")):
        m = run / "cyclegan" / "eval" / "latest" / "metrics.json"
        if m.is_file():
            acc = json.loads(m.read_text())["metrics"]["AtoB"]["content_acc"]
            t = json.loads((run / "cyclegan" / "config.json").read_text())["train"]
            accs.append(acc)
            print(f"{run.name}: precision {t['precision']}, winograd {t.get('winograd', 'false')}, content accuracy {acc:.4f}")
    if accs:
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"{variant}: mean {statistics.mean(accs):.4f} +- {sd:.4f} over {len(accs)} seeds")
PY
