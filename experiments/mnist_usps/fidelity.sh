#!/usr/bin/env bash
# bf16 fidelity on MNIST -> USPS (issue 23): the default precision (auto: bf16 where native) against strict fp32,
# over the same seeds, same data, same budget; two runs at a time, one thread each. Prints content accuracy of
# G(MNIST) on all 5,000 testA images for every run (docs/performance.md has the table).
#
#   EPOCHS=1 SEEDS="0 1 2 3" experiments/mnist_usps/fidelity.sh [DATA] [WORK]
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
for seed in $SEEDS; do
  for precision in fp32 auto; do
    run="$WORK/${precision}_seed$seed"
    mkdir -p "$run" && cp "$WORK/base/usps_cnn.safetensors" "$run/"
    [ -f "$run/cyclegan/eval/latest/metrics.json" ] ||
      SEED=$seed PRECISION=$precision bash "$HERE/run.sh" "$DATA" "$run" > "$run.log" 2>&1 &
  done
  wait
done
python - "$WORK" <<'PY'
import json, statistics, sys
from pathlib import Path
work = Path(sys.argv[1])
for precision in ("fp32", "auto"):
    accs = []
    for run in sorted(work.glob(f"{precision}_seed*")):
        m = run / "cyclegan" / "eval" / "latest" / "metrics.json"
        if m.is_file():
            acc = json.loads(m.read_text())["metrics"]["AtoB"]["content_acc"]
            chosen = json.loads((run / "cyclegan" / "config.json").read_text())["train"]["precision"]
            accs.append(acc)
            print(f"{run.name}: precision {chosen}, content accuracy {acc:.4f}")
    if accs:
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"{precision}: mean {statistics.mean(accs):.4f} +- {sd:.4f} over {len(accs)} seeds")
PY
