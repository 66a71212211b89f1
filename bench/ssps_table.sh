#!/usr/bin/env bash
# SSPS against the ILP plans of hessian_trace and bn_scale on resnet20 (issue 7's table):
#   bench/ssps_table.sh [BUDGETS] [METHODS] [ITERS] [SSPS FLAGS...]
# BUDGETS default "avg-w-bits=2.5 avg-w-bits=3 avg-w-bits=4 bops=0.9G" (activations at 8 bits,
# first and last layer at 8). METHODS default "hessian_trace bn_scale ssps". Every plan is
# quantized the same way: the first 1024 images of calib_train_5085.bin, MSE ranges, block-wise
# Attention Round with QDrop 0.5 and ITERS (default 1000) iterations per block. Each cell is
# top-1 on test_1017 / top-1 on test_10000_jpeg / the plan's average weight bits / GBOPs, and
# each method's search time (sensitivity + allocation, or the SSPS search) is printed below.
# SSPS searches on calib_train_5085.bin (its first 1024 images unless SSPS FLAGS say otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
budgets=${1:-"avg-w-bits=2.5 avg-w-bits=3 avg-w-bits=4 bops=0.9G"}
methods=${2:-"hessian_trace bn_scale ssps"}
iters=${3:-1000}
shift $(( $# < 3 ? $# : 3 ))
ssps_flags=("$@")
data=${MPQ_DATA:-../shared/data}
c=$data/cifar10
[ -f "$c/resnet20.onnx" ] || { echo "bench: $c/resnet20.onnx not found (set MPQ_DATA)" >&2; exit 1; }
out=${MPQ_BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
calib="cifar10:$c/calib_train_5085.bin"
num() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" | head -1; }
now() { date +%s.%N; }

declare -A search_secs
for m in $methods; do
  [ "$m" = ssps ] && continue
  start=$(now)
  ./build/mpq sensitivity "$c/resnet20.onnx" --metric "$m" --data "$calib" --json \
    -o "$out/$m.json" > /dev/null 2>&1
  search_secs[$m]=$(awk "BEGIN{print $(now) - $start}")
done

printf "%-16s" budget; for m in $methods; do printf " %34s" "$m: 1017 / 10000 / bits / GBOPs"; done; echo
for b in $budgets; do
  printf "%-16s" "$b"
  for m in $methods; do
    plan="$out/${b//[=.]/_}-$m.plan.json"
    start=$(now)
    if [ "$m" = ssps ]; then
      ./build/mpq search "$c/resnet20.onnx" --method ssps --data "$calib" --budget "$b" \
        "${ssps_flags[@]}" -o "$plan" > "$out/${b//[=.]/_}-ssps.log" 2>&1
    else
      ./build/mpq search "$c/resnet20.onnx" --sensitivity "$out/$m.json" --budget "$b" \
        -o "$plan" > /dev/null 2>&1
    fi
    secs=$(awk "BEGIN{print $(now) - $start}")
    [ "$m" = ssps ] && search_secs["ssps $b"]=$secs || search_secs["$m"]=$(awk "BEGIN{print ${search_secs[$m]} + $secs}")
    q=$(./build/mpq quantize "$c/resnet20.onnx" --plan "$plan" --calib "$calib" --rounding attention \
      --granularity block --qdrop 0.5 --iters "$iters" --data "cifar10:$c/test_1017.bin" --json \
      -o "$out/${b//[=.]/_}-$m" 2>/dev/null)
    big=$(./build/mpq eval "$out/${b//[=.]/_}-$m.mpq" --data "cifar10:$c/test_10000_jpeg.bin" --json 2>/dev/null | num top1)
    cost=$(node -e 'const p = require(process.argv[1]).predicted;
      console.log(p.avg_w_bits.toFixed(2) + " / " + (p.bops / 1e9).toFixed(3))' "$(realpath "$plan")")
    printf " %34s" "$(printf "%.2f / %.2f / %s" "$(echo "$q" | num top1)" "$big" "$cost")"
  done
  echo
done
echo
for k in "${!search_secs[@]}"; do printf "search time %-24s %6.1f s\n" "$k" "${search_secs[$k]}"; done | sort
echo "plans, logs and models in $out"
