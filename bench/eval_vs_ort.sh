#!/usr/bin/env bash
# mpq's executor throughput beside ONNX Runtime's (npm onnxruntime-node), same model, same
# random input shape, same thread count, measured in one run on this machine:
#   bench/eval_vs_ort.sh [SECONDS_PER_CELL] [THREADS]
# Needs the build (scripts/setup.sh) and ../shared/data. Set MPQ_PROFILE=1 for the slowest
# nodes of each mpq cell on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build --target exec_throughput > /dev/null
seconds=${1:-5}
threads=${2:-2}
data=${MPQ_DATA:-../shared/data}
[ -f "$data/cifar10/resnet20.onnx" ] || { echo "bench: $data/cifar10/resnet20.onnx not found (set MPQ_DATA)" >&2; exit 1; }

field() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"; }

printf "%-12s %6s %14s %14s %10s %12s %12s\n" model batch "mpq img/s" "ORT img/s" "mpq/ORT" "mpq ms" "ORT ms"
for spec in "resnet20:cifar10/resnet20.onnx:3,32,32" "mobilenetv2:imagenet/mobilenetv2.onnx:3,224,224"; do
  IFS=: read -r name file chw <<<"$spec"
  for batch in 128 1; do
    ours=$(./build/bench/exec_throughput "$data/$file" "$batch" "$seconds" "$threads")
    theirs=$(node tools/ort/ort.js bench "$data/$file" "$batch,$chw" "$seconds" "$threads")
    a=$(echo "$ours" | field images_per_second); b=$(echo "$theirs" | field images_per_second)
    am=$(echo "$ours" | field ms_per_batch); bm=$(echo "$theirs" | field ms_per_batch)
    printf "%-12s %6d %14.1f %14.1f %9.2fx %12.3f %12.3f\n" "$name" "$batch" "$a" "$b" \
      "$(awk "BEGIN{print $a / $b}")" "$am" "$bm"
  done
done
echo "($threads threads, ${seconds}s per cell, random input; ORT: graph optimizations all, sequential)"
