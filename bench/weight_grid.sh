#!/usr/bin/env bash
# The two weight grids against each other: each uniform plan quantized with compress's default
# PTQ (mse ranges, block-wise Attention Round with QDrop 0.5) on the restricted grid
# [-(2^(b-1)-1), 2^(b-1)-1] and on the full grid [-2^(b-1), 2^(b-1)-1], evaluated on the same
# images, and compared with a paired 95 % bootstrap interval (mpq compare):
#   bench/weight_grid.sh MODEL [W:A ...]
#     MODEL   resnet20 | resnet56 | mobilenetv2
#     W:A     uniform widths (first and last layer at 8); default "4:8 4:4 2:4 3:3" (CIFAR) or
#             "4:8 4:4" (mobilenetv2)
# ITERS=N sets the iterations per block (default: compress's); MPQ=PATH another binary; OUT the
# output folder (default bench_out/weight_grid/MODEL). Finished steps are skipped on a rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
model_key=${1:?usage: bench/weight_grid.sh resnet20|resnet56|mobilenetv2 [W:A ...]}
data=${MPQ_DATA:-../shared/data}
out=${OUT:-bench_out/weight_grid/$model_key}
mpq=${MPQ:-./build/mpq}
[ -x "$mpq" ] || { echo "bench: build first (./scripts/test.sh or ninja -C build)" >&2; exit 1; }
c=$data/cifar10
i=$data/imagenet
case $model_key in
  resnet20 | resnet56)
    model=$c/$model_key.onnx
    calib=cifar10:$c/calib_train_5085.bin
    eval_set=cifar10:$c/test_10000_jpeg.bin
    pre=()
    widths=${2:-"4:8 4:4 2:4 3:3"}
    ;;
  mobilenetv2)
    model=$i/mobilenetv2.onnx
    calib=imagefolder:$i/sample1000
    eval_set=imagefolder:$i/val1300,$i/val1300/labels.csv
    pre=(--resize 256 --crop 224 --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5)
    widths=${2:-"4:8 4:4"}
    ;;
  *) echo "bench: unknown model '$model_key' (resnet20, resnet56, mobilenetv2)" >&2; exit 1 ;;
esac
[ -f "$model" ] || { echo "bench: $model not found (set MPQ_DATA)" >&2; exit 1; }
mkdir -p "$out"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

for u in $widths; do
  w=${u%:*} a=${u#*:}
  for grid in restricted full; do
    name=W${w}A${a}.$grid
    if [ ! -f "$out/$name.pred.json" ]; then
      log "quantize $name"
      "$mpq" quantize "$model" --w-bits "$w" --a-bits "$a" --weight-grid "$grid" \
        --calib "$calib" "${pre[@]}" --rounding attention --granularity block --qdrop 0.5 \
        ${ITERS:+--iters $ITERS} --json -o "$out/$name" > "$out/$name.quantize.json" 2> "$out/$name.log"
      "$mpq" eval "$out/$name.mpq" --data "$eval_set" "${pre[@]}" \
        --predictions "$out/$name.pred.json" --json > "$out/$name.eval.json"
    fi
  done
done

echo "# $model_key: full vs restricted weight grid, same PTQ, paired 95% bootstrap CI"
echo "| plan | restricted | full | full − restricted [95% CI] | PTQ seconds (restricted / full) |"
echo "|---|---|---|---|---|"
for u in $widths; do
  w=${u%:*} a=${u#*:}
  python3 - "$out" "W${w}A${a}" "$mpq" <<'EOF'
import json, subprocess, sys
out, plan, mpq = sys.argv[1:4]
top1 = lambda g: json.load(open(f"{out}/{plan}.{g}.eval.json"))["top1"]
secs = lambda g: json.load(open(f"{out}/{plan}.{g}.quantize.json"))["seconds"]
r = json.loads(subprocess.run([mpq, "compare", f"{out}/{plan}.full.pred.json",
                               f"{out}/{plan}.restricted.pred.json", "--json"],
                              capture_output=True, text=True, check=True).stdout)
print(f"| {plan} | {top1('restricted'):.2f} | {top1('full'):.2f} | "
      f"{r['difference']:+.2f} [{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}] | "
      f"{secs('restricted'):.0f} / {secs('full'):.0f} |")
EOF
done
