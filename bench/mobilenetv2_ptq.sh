#!/usr/bin/env bash
# mobilenetv2 post-training quantization, round-to-nearest vs block-wise Attention Round with
# QDrop (issue 6): calibration on sample1000, top-1 on val1300 beside the float model, wall time
# and peak memory of each run. First and last layers at 8 bits.
#   bench/mobilenetv2_ptq.sh [SETTINGS] [ITERS]      (default "W4A8 W4A4", 200 per block)
set -euo pipefail
cd "$(dirname "$0")/.."
settings=${1:-"W4A8 W4A4"}
iters=${2:-200}
i=${MPQ_DATA:-../shared/data}/imagenet
[ -f "$i/mobilenetv2.onnx" ] || { echo "bench: $i/mobilenetv2.onnx not found (set MPQ_DATA)" >&2; exit 1; }
pre=(--resize 256 --crop 224 --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5)
num() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p"; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf "%-6s %-28s %8s %8s %8s %10s\n" setting method float top-1 seconds "peak MB"
for s in $settings; do
  w=${s#W}; w=${w%A*}; a=${s#*A}
  for m in nearest attention+block+qdrop; do
    flags=(--rounding nearest)
    [ "$m" = nearest ] || flags=(--rounding attention --granularity block --qdrop 0.5 --iters "$iters")
    r=$(./build/mpq quantize "$i/mobilenetv2.onnx" --w-bits "$w" --a-bits "$a" \
      --calib "imagefolder:$i/sample1000" --data "imagefolder:$i/val1300" "${pre[@]}" \
      "${flags[@]}" --json -o "$out/m" 2>"$out/log")
    printf "%-6s %-28s %8.2f %8.2f %8.0f %10.0f\n" "$s" "$m" "$(echo "$r" | num float_top1)" \
      "$(echo "$r" | num top1)" "$(echo "$r" | num seconds)" "$(echo "$r" | num peak_rss_mb)"
  done
done
