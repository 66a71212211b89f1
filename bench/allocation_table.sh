#!/usr/bin/env bash
# Bit plans from every sensitivity metric (ILP; coding_length also with the proportional rule)
# vs uniform and random (3 seeds) at average-weight-bit budgets, all quantized the same way
# (mse ranges, nearest rounding, first/last layers at 8 bits), with each metric's cost:
#   bench/allocation_table.sh [resnet20|resnet56|mobilenetv2|all]
# resnet20: calibration on the first 1024 images of calib_train_5085.bin, top-1 on test_1017 /
# test_10000_jpeg, activations at 4 and 8 bits, budgets 2.5, 3, 4 bits. resnet56: test_1017,
# activations at 8. mobilenetv2: calibration on sample1000, val1300, budgets 5 and 6 bits
# (bn_scale falls back to output_mse on 64 images: its BN is folded), hessian on 64 images and
# 10 probes.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build --target allocation_table > /dev/null
which=${1:-all}
data=${MPQ_DATA:-../shared/data}
[ -f "$data/cifar10/resnet20.onnx" ] || { echo "bench: $data/cifar10/resnet20.onnx not found (set MPQ_DATA)" >&2; exit 1; }
c=$data/cifar10
metrics=bn_scale,hessian_trace,imprint,coding_length,coding_length/proportional,output_mse,uniform,random:3
if [ "$which" = all ] || [ "$which" = resnet20 ]; then
  ./build/bench/allocation_table "$c/resnet20.onnx" "cifar10:$c/calib_train_5085.bin@1024" \
    "cifar10:$c/test_1017.bin,cifar10:$c/test_10000_jpeg.bin" 2.5,3,4 4,8 "$metrics"
  echo
fi
if [ "$which" = all ] || [ "$which" = resnet56 ]; then
  ./build/bench/allocation_table "$c/resnet56.onnx" "cifar10:$c/calib_train_5085.bin@1024" \
    "cifar10:$c/test_1017.bin" 2.5,3,4 8 "$metrics"
  echo
fi
if [ "$which" = all ] || [ "$which" = mobilenetv2 ]; then
  ./build/bench/allocation_table "$data/imagenet/mobilenetv2.onnx" \
    "imagefolder:$data/imagenet/sample1000" "imagefolder:$data/imagenet/val1300" 5,6 8 \
    "bn_scale@64,hessian_trace@64:10,imprint,coding_length,coding_length/proportional,uniform,random:3" imagenet
fi
