#!/usr/bin/env bash
# The integer runtime against the fake-quant simulation of the same .mpq file (issue 9):
#   bench/runtime_accuracy.sh [CONFIGS]
# CONFIGS default "r20:w8a8 r20:w4a8 r20:w4a4 r20:mixed r20:mixed-a mv2:w8a8 mv2:w4a8".
# resnet20: calibrated on the first 1024 images of calib_train_5085.bin (MSE ranges, nearest
# rounding), evaluated on test_1017 and test_10000_jpeg. "mixed" is the SSPS plan at
# avg-w-bits=3 (activations 8); "mixed-a" searches activations too (--a-candidates 4,8) at
# avg-w-bits=3.5. mobilenetv2: calibrated on sample1000, evaluated on val1300; below 8 bits
# its weights are rounded by block-wise Attention Round with QDrop 0.5, 200 iterations per
# block (round-to-nearest W4A8 is at chance: 0.3% top-1). Each row: the
# runtime's top-1, the simulation's, their argmax agreement and the relative logit difference.
set -euo pipefail
cd "$(dirname "$0")/.."
configs=${1:-"r20:w8a8 r20:w4a8 r20:w4a4 r20:mixed r20:mixed-a mv2:w8a8 mv2:w4a8"}
data=${MPQ_DATA:-../shared/data}
c=$data/cifar10
i=$data/imagenet
[ -f "$c/resnet20.onnx" ] || { echo "bench: $c/resnet20.onnx not found (set MPQ_DATA)" >&2; exit 1; }
out=${MPQ_BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
num() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" | head -1; }
mv2_pre=(--resize 256 --crop 224 --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5)

printf "%-14s %-22s %9s %9s %9s %8s %10s\n" config data runtime simulated agree% changed "rel logit"
for cfg in $configs; do
  net=${cfg%%:*} plan=${cfg#*:}
  if [ "$net" = r20 ]; then
    model=$c/resnet20.onnx calib=(--calib "cifar10:$c/calib_train_5085.bin") pre=()
    sets=("cifar10:$c/test_1017.bin" "cifar10:$c/test_10000_jpeg.bin")
  else
    model=$i/mobilenetv2.onnx calib=(--calib "imagefolder:$i/sample1000") pre=("${mv2_pre[@]}")
    sets=("imagefolder:$i/val1300")
  fi
  case $plan in
    mixed) ./build/mpq search "$model" --method ssps --data "${calib[1]}" "${pre[@]}" \
             --budget avg-w-bits=3 -o "$out/$cfg.plan.json" > /dev/null 2>&1
           widths=(--plan "$out/$cfg.plan.json") ;;
    mixed-a) ./build/mpq search "$model" --method ssps --data "${calib[1]}" "${pre[@]}" \
             --budget avg-w-bits=3.5 --a-candidates 4,8 -o "$out/$cfg.plan.json" > /dev/null 2>&1
           widths=(--plan "$out/$cfg.plan.json") ;;
    *) w=${plan#w}; w=${w%a*}; a=${plan#*a}; widths=(--w-bits "$w" --a-bits "$a") ;;
  esac
  if [ "$net" = mv2 ] && [ "$plan" != w8a8 ]; then
    widths+=(--rounding attention --granularity block --qdrop 0.5 --iters 200)
  fi
  ./build/mpq quantize "$model" "${calib[@]}" "${pre[@]}" "${widths[@]}" -o "$out/$cfg" \
    > /dev/null 2>&1
  for s in "${sets[@]}"; do
    j=$(./build/mpq run "$out/$cfg.mpq" --data "$s" "${pre[@]}" --json 2>/dev/null)
    printf "%-14s %-22s %9.2f %9.2f %9.2f %8s %10.2e\n" "$cfg" "$(basename "${s#*:}")" \
      "$(echo "$j" | num top1)" "$(echo "$j" | num top1_simulated)" \
      "$(echo "$j" | num argmax_agreement)" "$(echo "$j" | num predictions_changed)" \
      "$(echo "$j" | num logit_relative_difference)"
  done
done
echo "files in $out"
