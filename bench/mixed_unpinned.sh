#!/usr/bin/env bash
# A mixed plan that may also lower the first and last layers, against uniform W2A2 (first and
# last at 8) under the same BOPs budget, on resnet20 with activations from {2,3,4,8}: the
# hessian_trace sensitivity, the ILP with --first-last-bits 8 (which can only return W2A2
# itself) and 0, compress's default PTQ for both plans, and the paired comparison on
# test_10000_jpeg:
#   bench/mixed_unpinned.sh [MODEL]     MODEL resnet20 (default), or resnet56 with BUDGET=BOPS
# MPQ=PATH another binary; OUT the output folder (default bench_out/mixed_unpinned/MODEL).
# Finished steps are skipped on a rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
model_key=${1:-resnet20}
data=${MPQ_DATA:-../shared/data}/cifar10
out=${OUT:-bench_out/mixed_unpinned/$model_key}
mpq=${MPQ:-./build/mpq}
[ -x "$mpq" ] || { echo "bench: build first (./scripts/test.sh or ninja -C build)" >&2; exit 1; }
model=$data/$model_key.onnx
[ -f "$model" ] || { echo "bench: $model not found (set MPQ_DATA)" >&2; exit 1; }
calib=cifar10:$data/calib_train_5085.bin
eval_set=cifar10:$data/test_10000_jpeg.bin
ptq=(--rounding attention --granularity block --qdrop 0.5)
mkdir -p "$out"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

[ -f "$out/sens.json" ] || "$mpq" sensitivity "$model" --metric hessian_trace --data "$calib" \
  -o "$out/sens.json" > "$out/sens.log" 2>&1
# The budget: the BOPs of uniform W2A2 with the first and last layer at 8 bits (the
# plan the ILP returns with --first-last-bits 8 is uniform W2A2, and plan.fl8.json's "predicted"
# bops shows this value).
case $model_key in
  resnet20) budget=188784640 ;;
  *) budget=${BUDGET:?set BUDGET to the BOPs of uniform W2A2 for $model_key} ;;
esac
for fl in 8 0; do
  [ -f "$out/plan.fl$fl.json" ] || "$mpq" search "$model" --sensitivity "$out/sens.json" \
    --budget "bops=$budget" --a-candidates 2,3,4,8 --first-last-bits $fl \
    -o "$out/plan.fl$fl.json" > "$out/search.fl$fl.log" 2>&1
done
quantize() {  # NAME, then the plan flags
  local name=$1
  shift
  [ -f "$out/$name.pred.json" ] && return
  log "quantize $name"
  "$mpq" quantize "$model" "$@" --calib "$calib" "${ptq[@]}" --json -o "$out/$name" \
    > "$out/$name.quantize.json" 2> "$out/$name.log"
  "$mpq" eval "$out/$name.mpq" --data "$eval_set" --predictions "$out/$name.pred.json" --json \
    > "$out/$name.eval.json"
}
quantize mixed --plan "$out/plan.fl0.json"
quantize W2A2 --w-bits 2 --a-bits 2
echo "budget: bops=$budget (uniform W2A2, first and last layer at 8)"
python3 - "$out" <<'PY'
import json, sys
for fl in (8, 0):
    p = json.load(open(f"{sys.argv[1]}/plan.fl{fl}.json"))
    print(f"--first-last-bits {fl}: " + " ".join(f"W{l['w_bits']}A{l['a_bits']}" for l in p["layers"]))
PY
"$mpq" compare "$out/mixed.pred.json" "$out/W2A2.pred.json"
