#!/usr/bin/env bash
# The integer runtime's speed beside ONNX Runtime (issue 9), 2 threads, one run per model:
#   bench/runtime_speed.sh [SECONDS] [ISA]      (ISA: auto, avx512vnni, avx2 or ref; --isa)
# resnet20 W4A8 and the SSPS mixed plan (avg-w-bits=3) at batch 1 and 128; mobilenetv2 W4A8 at
# batch 1 and 16. References in the same run: ONNX Runtime (npm onnxruntime-node) on the float
# model and on mpq's W8A8 QCDQ export of it. Each table prints ms per batch, images/s, the ratio
# to ONNX Runtime FP32 and the fraction of the CPU's measured int8 peak (vpdpbusd with
# avx512vnni, vpmaddubsw with avx2); --profile tables follow.
# Run it alone: the machine has 2 cores, and anything else running skews every number.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
isa=${2:-auto}
data=${MPQ_DATA:-../shared/data}
c=$data/cifar10
i=$data/imagenet
[ -f "$c/resnet20.onnx" ] || { echo "bench: $c/resnet20.onnx not found (set MPQ_DATA)" >&2; exit 1; }
out=${MPQ_BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
q() { ./build/mpq quantize "$@" > /dev/null 2>&1; }
r20=(--calib "cifar10:$c/calib_train_5085.bin")
mv2=(--calib "imagefolder:$i/sample1000" --calib-count 256 --resize 256 --crop 224
     --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5)
q "$c/resnet20.onnx" "${r20[@]}" --w-bits 8 --a-bits 8 -o "$out/r20_w8a8"
q "$c/resnet20.onnx" "${r20[@]}" --w-bits 4 --a-bits 8 -o "$out/r20_w4a8"
./build/mpq search "$c/resnet20.onnx" --method ssps --data "cifar10:$c/calib_train_5085.bin" \
  --budget avg-w-bits=3 -o "$out/r20_mixed.plan.json" > /dev/null 2>&1
q "$c/resnet20.onnx" "${r20[@]}" --plan "$out/r20_mixed.plan.json" -o "$out/r20_mixed"
q "$i/mobilenetv2.onnx" "${mv2[@]}" --w-bits 8 --a-bits 8 -o "$out/mv2_w8a8"
q "$i/mobilenetv2.onnx" "${mv2[@]}" --w-bits 4 --a-bits 8 -o "$out/mv2_w4a8"
for m in r20_w4a8 r20_mixed; do
  echo "== resnet20 ${m#r20_}"
  ./build/mpq bench "$out/$m.mpq" --isa "$isa" --batch 1,128 --seconds "$seconds" \
    --float "$c/resnet20.onnx" \
    --w8a8 "$out/r20_w8a8.qcdq.onnx"
done
echo "== mobilenetv2 w4a8"
./build/mpq bench "$out/mv2_w4a8.mpq" --isa "$isa" --batch 1,16 --seconds "$seconds" \
  --float "$i/mobilenetv2.onnx" --w8a8 "$out/mv2_w8a8.qcdq.onnx"
for m in r20_w4a8 mv2_w4a8; do
  echo "== per-step profile of $m at batch 1"
  ./build/mpq bench "$out/$m.mpq" --isa "$isa" --batch 1 --seconds "$seconds" --profile |
    sed -n '/per step/,$p'
done
echo "files in $out"
