#!/usr/bin/env bash
# Every GPU check of docs/performance.md in one command that fits a short lease (about 9 minutes on an
# H100/H200): the CUDA tests, the training-step and translation benchmarks, and the CLI end to end on
# CUDA. Each step has its own time limit and the script goes on after a failure or a timeout, cheapest
# and most important first; results land in OUT (default /tmp/gpu_check): five *.json, log.txt (every
# step's output, each under a header) and summary.txt (one line per step), 7 files in all.
#
#   benchmarks/gpu_check.sh [OUT]                 # with the package installed (pip install -e '.[test]')
#   PYTHON=python3 benchmarks/gpu_check.sh $OUT   # or any Python that has torch: src/ is put on PYTHONPATH
#   REFERENCE=runs/upstream benchmarks/gpu_check.sh $OUT   # + the reference's own step (row `reference`) on the
#       GPU: a copy of ../shared/reference/upstream-2a7afba inside the tree (runs/ is ignored, so carry it along)
set -uo pipefail
OUT=${1:-${OUT:-/tmp/gpu_check}}
PY=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
mkdir -p "$OUT"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 CYCLEGAN_DATA=${CYCLEGAN_DATA:-/nonexistent}
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
: >"$OUT/log.txt"

step() {  # step NAME SECONDS COMMAND...: run with a limit, append its output to OUT/log.txt, note the outcome
  local name=$1 limit=$2 t0=$SECONDS rc
  shift 2
  printf '\n===== %s (limit %s s) =====\n' "$name" "$limit" >>"$OUT/log.txt"
  timeout --signal=INT --kill-after=15 "$limit" "$@" >>"$OUT/log.txt" 2>&1
  rc=$?
  echo "$name: rc=$rc in $((SECONDS - t0)) s$([ $rc = 124 ] && echo " (timed out at $limit s)")" | tee -a "$SUMMARY"
}

step env 30 bash -c "nvidia-smi; $PY -c 'import torch, sys; print(sys.version); print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))'"
# correctness first: the eager CUDA paths against strict float32 (CPU and CUDA), then the compiled ones
step tests_eager 150 $PY -m pytest -q -p no:cacheprovider -m "cuda and not slow" tests/ --ignore=tests/test_cuda_cli.py
REF=()
[ -n "${REFERENCE:-}" ] && REF=(--reference "$REFERENCE")
step bench_train_b1 150 $PY benchmarks/train_step.py --device cuda --size 256 --generator resnet_9blocks --rounds 5 --iters 20 \
  --variants default fp32+fused bf16 bf16+cl fp16+cl "${REF[@]}" --json "$OUT/train_b1.json"
step bench_translate 90 $PY benchmarks/translate.py --device cuda --sizes 256 1024 --variants bf16 bf16+nchw fp16 tile256 --rounds 3 --iters 10 \
  --json "$OUT/translate.json"
step cli_cuda 90 $PY -m pytest -q -p no:cacheprovider tests/test_cuda_cli.py
step bench_train_b48 90 bash -c "$PY benchmarks/train_step.py --device cuda --size 256 --generator resnet_9blocks --batch-size 4 --rounds 3 --iters 10 --variants bf16+cl --json $OUT/train_b4.json && \
  $PY benchmarks/train_step.py --device cuda --size 256 --generator resnet_9blocks --batch-size 8 --rounds 3 --iters 10 --variants bf16+cl --json $OUT/train_b8.json"
step tests_compiled 150 $PY -m pytest -q -p no:cacheprovider -m "cuda and slow" tests/
step bench_compile 200 $PY benchmarks/train_step.py --device cuda --size 256 --generator resnet_9blocks --rounds 3 --iters 20 \
  --variants default bf16+cl bf16+cl+compile bf16+cl+graphs --json "$OUT/train_compile.json"
cat "$SUMMARY"
