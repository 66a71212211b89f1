#!/usr/bin/env bash
# Rounding methods side by side on resnet20 (issue 6's table):
#   bench/rounding_table.sh [SETTINGS] [METHODS] [ITERS] [BLOCK_ITERS]
# SETTINGS default "W4A4 W3A4 W2A4 W4A8 W2A8", METHODS default "nearest adaround attention
# attention+block+qdrop": a rounding method, "+block" for block-wise reconstruction with learned
# activation steps (BLOCK_ITERS, default 1000, per block; else ITERS, default 1000, per layer),
# "+qdrop" for QDrop with probability 0.5. The bit
# convention is the QDrop peer's: first conv and fc weights at 8 bits, fc input at 8 bits, the
# input image not quantized. Calibration: the first 1024 images of calib_train_5085.bin; top-1 on
# test_1017 (from mpq quantize --data) and test_10000_jpeg (mpq eval of the written .mpq), with
# the number of test_1017 predictions changed vs float and the wall time of each cell.
set -euo pipefail
cd "$(dirname "$0")/.."
settings=${1:-"W4A4 W3A4 W2A4 W4A8 W2A8"}
methods=${2:-"nearest adaround attention attention+block+qdrop"}
iters=${3:-1000}
block_iters=${4:-1000}
data=${MPQ_DATA:-../shared/data}
c=$data/cifar10
[ -f "$c/resnet20.onnx" ] || { echo "bench: $c/resnet20.onnx not found (set MPQ_DATA)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
./build/mpq inspect "$c/resnet20.onnx" --json > "$out/layers.json"
num() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
printf "%-6s" setting; for m in $methods; do printf " %30s" "$m: 1017 / 10000 / changed / s"; done; echo
for s in $settings; do
  w=${s#W}; w=${w%A*}; a=${s#*A}
  node -e '
    const l = JSON.parse(require("fs").readFileSync(process.argv[1])).layers;
    const [w, a] = [Number(process.argv[2]), Number(process.argv[3])];
    const layers = l.map((x, i) => ({name: x.name,
      w_bits: i == 0 || i == l.length - 1 ? 8 : w,
      a_bits: i == 0 ? 32 : i == l.length - 1 ? 8 : a}));
    console.log(JSON.stringify({model: "resnet20.onnx", layers}));' "$out/layers.json" "$w" "$a" > "$out/$s.json"
  printf "%-6s" "$s"
  for m in $methods; do
    flags=(--rounding "${m%%+*}" --iters "$iters")
    [[ $m == *+block* ]] && flags=(--rounding "${m%%+*}" --iters "$block_iters" --granularity block)
    [[ $m == *+qdrop* ]] && flags+=(--qdrop 0.5)
    start=$(date +%s.%N)
    q=$(./build/mpq quantize "$c/resnet20.onnx" --plan "$out/$s.json" --calib "cifar10:$c/calib_train_5085.bin" \
      "${flags[@]}" --data "cifar10:$c/test_1017.bin" --json -o "$out/$s-$m" 2>/dev/null)
    secs=$(awk "BEGIN{print $(date +%s.%N) - $start}")
    big=$(./build/mpq eval "$out/$s-$m.mpq" --data "cifar10:$c/test_10000_jpeg.bin" --json 2>/dev/null | num top1)
    t1=$(echo "$q" | num top1); agree=$(echo "$q" | num agreement)
    changed=$(awk "BEGIN{printf \"%d\", (100 - $agree) * 1017 / 100 + 0.5}")
    printf " %30s" "$(printf "%.2f / %.2f / %d / %.0f" "$t1" "$big" "$changed" "$secs")"
  done
  echo
done
