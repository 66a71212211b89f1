#!/usr/bin/env bash
# Top-1 of uniformly quantized models, nearest rounding, for every activation observer:
#   bench/quant_table.sh [resnet20|mobilenetv2|all]
# resnet20: calibrated on the first 1024 images of calib_train_5085.bin, evaluated on
# test_1017.bin; mobilenetv2: calibrated on imagenet/sample1000, evaluated on val1300. Weight
# scales per channel by max |w| or MSE-optimal clipping; first and last layers at 8 bits. Each
# cell is one `mpq eval --w-bits W --a-bits A --observer O --weight-observer V` run.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
data=${MPQ_DATA:-../shared/data}
[ -f "$data/cifar10/resnet20.onnx" ] || { echo "bench: $data/cifar10/resnet20.onnx not found (set MPQ_DATA)" >&2; exit 1; }
observers="minmax percentile mse"

top1() { sed -n 's/.*"top1":\([0-9.]*\).*/\1/p'; }

table() {  # name model data calib "plans" extra-flags...
  local name=$1 model=$2 eval_data=$3 calib=$4 plans=$5
  shift 5
  local float
  float=$(./build/mpq eval "$model" --data "$eval_data" "$@" --json | top1)
  echo "$name: top-1 (%) on ${eval_data##*/}, float $float"
  printf "%-6s" "W:"; for v in max mse; do for o in $observers; do printf " %11s" "$v"; done; done; echo
  printf "%-6s" "A:"; for v in max mse; do for o in $observers; do printf " %11s" "$o"; done; done
  printf " %8s\n" "seconds"
  for plan in $plans; do
    local w=${plan#W}; w=${w%A*}; local a=${plan#*A}
    printf "%-6s" "$plan"
    local start=$SECONDS
    for v in max mse; do
      for o in $observers; do
        printf " %11.2f" "$(./build/mpq eval "$model" --data "$eval_data" --calib "$calib" \
          --w-bits "$w" --a-bits "$a" --observer "$o" --weight-observer "$v" "$@" --json | top1)"
      done
    done
    printf " %8d\n" $((SECONDS - start))
  done
  echo
}

if [ "$which" = all ] || [ "$which" = resnet20 ]; then
  table resnet20 "$data/cifar10/resnet20.onnx" "cifar10:$data/cifar10/test_1017.bin" \
    "cifar10:$data/cifar10/calib_train_5085.bin@1024" "W8A8 W6A6 W4A8 W4A4 W3A8 W2A8"
fi
if [ "$which" = all ] || [ "$which" = mobilenetv2 ]; then
  table mobilenetv2 "$data/imagenet/mobilenetv2.onnx" "imagefolder:$data/imagenet/val1300" \
    "imagefolder:$data/imagenet/sample1000" "W8A8 W6A8 W4A8 W4A4" \
    --resize 256 --crop 224 --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5
fi
