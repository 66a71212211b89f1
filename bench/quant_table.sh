#!/usr/bin/env bash
# Top-1 of uniformly quantized shared models, nearest rounding, every weight observer (max,
# mse) x activation observer (minmax, percentile, mse); first and last layers at 8 bits.
#   bench/quant_table.sh [resnet20|mobilenetv2|all]
# resnet20: calibrated on the first 1024 images of calib_train_5085.bin, evaluated on
# test_1017.bin; mobilenetv2: calibrated on imagenet/sample1000, evaluated on val1300.
# One cell equals `mpq eval MODEL --data EVAL --calib CALIB --w-bits W --a-bits A
# --observer O --weight-observer V` (bench/quant_table.cpp shares calibration and decoding).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build --target quant_table > /dev/null
which=${1:-all}
data=${MPQ_DATA:-../shared/data}
[ -f "$data/cifar10/resnet20.onnx" ] || { echo "bench: $data/cifar10/resnet20.onnx not found (set MPQ_DATA)" >&2; exit 1; }
if [ "$which" = all ] || [ "$which" = resnet20 ]; then
  ./build/bench/quant_table "$data/cifar10/resnet20.onnx" \
    "cifar10:$data/cifar10/calib_train_5085.bin@1024" "cifar10:$data/cifar10/test_1017.bin" \
    W8A8,W6A6,W4A8,W4A4,W3A8,W2A8
  echo
fi
if [ "$which" = all ] || [ "$which" = mobilenetv2 ]; then
  ./build/bench/quant_table "$data/imagenet/mobilenetv2.onnx" \
    "imagefolder:$data/imagenet/sample1000" "imagefolder:$data/imagenet/val1300" \
    W8A8,W6A8,W4A8,W4A4 imagenet
fi
