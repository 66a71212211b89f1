#!/usr/bin/env bash
# The zoo's speed in the integer runtime (issue 18): every tools/zoo model quantized W8A8
# (nearest rounding, 32 sample1000 calibration images) and run by `mpq bench` beside ONNX Runtime
# on the float model and on mpq's W8A8 QCDQ export of it, one run, 2 threads:
#   bench/zoo_speed.sh [ZOO_DIR] [SECONDS] [ISA]     (default build/zoo, 2 s, auto)
# Prints one table row per model and batch size (1 and 16): ms per batch for each, and mpq's
# speed as a ratio to each reference. Run it alone: the machine has 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
zoo=${1:-build/zoo}
seconds=${2:-2}
isa=${3:-auto}
mpq=${MPQ_BIN:-./build/mpq}
data=${MPQ_DATA:-../shared/data}
[ -f "$zoo/MANIFEST.json" ] || { echo "bench: no zoo in $zoo (tools/zoo/make_zoo.sh $zoo)" >&2; exit 1; }
size=$(python3 -c "import json; print(json.load(open('$zoo/MANIFEST.json'))['size'])")
out=${MPQ_BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
pre=(--resize $((size * 256 / 224)) --crop "$size" --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225)
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; zoo $zoo ($size px); kernels: $isa"
echo "| model | batch | mpq W8A8 ms | ORT FP32 ms | ORT W8A8 ms | mpq vs FP32 | mpq vs ORT W8A8 | ISA |"
echo "|---|---|---|---|---|---|---|---|"
for f in "$zoo"/*.onnx; do
  name=$(basename "$f" .onnx)
  case $name in *_bn) continue ;; esac
  "$mpq" quantize "$f" --w-bits 8 --a-bits 8 --rounding nearest \
    --calib "imagefolder:$data/imagenet/sample1000@32" "${pre[@]}" -o "$out/$name" > /dev/null 2>&1 ||
    { echo "| $name | - | quantize failed | | | | | |"; continue; }
  "$mpq" bench "$out/$name.mpq" --isa "$isa" --batch 1,16 --seconds "$seconds" --float "$f" \
    --w8a8 "$out/$name.qcdq.onnx" --json 2> /dev/null | python3 -c '
import json, sys
name = sys.argv[1]
j = json.loads(sys.stdin.read().strip().splitlines()[-1])
for r in j["results"]:
    m = r["mpq"]["ms_per_batch"]
    f = r.get("ort_fp32", {}).get("ms_per_batch")
    q = r.get("ort_w8a8", {}).get("ms_per_batch")
    batch, isa = r["batch"], j["isa"]
    ratio = lambda ref: f"{ref / m:.2f}x" if ref else "-"
    print(f"| {name} | {batch} | {m:.2f} | {f or 0:.2f} | {q or 0:.2f} | {ratio(f)} | {ratio(q)} | {isa} |")
' "$name" || echo "| $name | - | bench failed | | | | | |"
done
