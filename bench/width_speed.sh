#!/usr/bin/env bash
# What a weight width buys in speed on one kernel set (issue 20), resnet20, 2 threads:
#   bench/width_speed.sh [ISA] [SECONDS]         (ISA: avx2 by default; avx512vnni, ref)
# 1. Uniform W2..W8 (A8): every 3x3 conv's GMAC/s and its speed-up over the same layer at W8A8
#    (`mpq bench --profile --json` at batch 128), the fraction of the measured int8 peak, and
#    the whole model's images/s.
# 2. A latency table for the ISA (`mpq latency-table --isa`, batch 16), a plan searched under a
#    latency budget halfway between uniform W4A8 and W8A8, and that plan beside uniform W8A8 in
#    alternating `mpq bench` runs: the table's prediction, the measured time, the speed-up.
# Run it alone: the machine has 2 cores, and anything else running skews every number.
set -euo pipefail
cd "$(dirname "$0")/.."
isa=${1:-avx2}
seconds=${2:-3}
data=${MPQ_DATA:-../shared/data}
c=$data/cifar10
[ -f "$c/resnet20.onnx" ] || { echo "bench: $c/resnet20.onnx not found (set MPQ_DATA)" >&2; exit 1; }
out=${MPQ_BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
calib=(--calib "cifar10:$c/calib_train_5085.bin")
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); kernels: $isa"
for w in 2 3 4 5 6 7 8; do
  [ -f "$out/w${w}a8.mpq" ] ||
    ./build/mpq quantize "$c/resnet20.onnx" "${calib[@]}" --w-bits "$w" --a-bits 8 \
      -o "$out/w${w}a8" > /dev/null 2>&1
  ./build/mpq bench "$out/w${w}a8.mpq" --isa "$isa" --batch 128 --seconds "$seconds" --profile \
    --json > "$out/w${w}a8.bench.json"
done
python3 - "$out" <<'EOF'
import json, sys
out = sys.argv[1]
runs = {w: json.load(open(f"{out}/w{w}a8.bench.json")) for w in range(2, 9)}
peak = max(r["int8_peak_gmacs"] for r in runs.values())
def convs(r):  # the 3x3 convs: 2.36 M or 1.18 M MACs, not the first (W8 pinned) or the FC
    return {s["step"]: s for s in r["results"][0]["profile"]
            if s["kind"] == "conv" and s["macs_per_image"] >= 1_000_000}
base = convs(runs[8])
print(f"\n3x3 convs at batch 128, GMAC/s (speed-up over the same layer at W8A8); "
      f"measured int8 peak {peak:.0f} GMAC/s")
print(f"{'layer':<34}" + "".join(f"{'W%d' % w:>14}" for w in range(2, 9)))
ratios = {w: [] for w in range(2, 9)}
for name in base:
    row = f"{name[:34]:<34}"
    for w in range(2, 9):
        s = convs(runs[w])[name]
        ratios[w].append(s["gmacs"] / base[name]["gmacs"])
        row += f"{s['gmacs']:>7.0f} ({ratios[w][-1]:.2f}x)"
    print(row)
def median(v):
    v = sorted(v)
    return v[len(v) // 2]
print(f"{'median speed-up over W8A8':<34}" + "".join(f"{median(ratios[w]):>13.2f}x" for w in range(2, 9)))
print(f"{'median % of int8 peak':<34}" + "".join(
    f"{100 * median([s['gmacs'] for s in convs(runs[w]).values()]) / peak:>13.1f}%" for w in range(2, 9)))
print(f"{'whole model, images/s':<34}" + "".join(
    f"{runs[w]['results'][0]['mpq']['images_per_second']:>14.0f}" for w in range(2, 9)))
EOF
lut=$out/lut_$isa.json
./build/mpq latency-table "$c/resnet20.onnx" "${calib[@]}" --calib-count 16 --isa "$isa" \
  --w-candidates 2,3,4,5,6,8 --a-candidates 8 --latency-batch 16 --seconds 6 -o "$lut" \
  > "$out/latency_table.log" 2>&1
budget=$(python3 -c "import json; t = json.load(open('$lut'))['end_to_end']; \
print(f\"{(t['w4a8'] + t['w8a8']) / 2:.3f}\")")
./build/mpq search "$c/resnet20.onnx" --data "cifar10:$c/calib_train_5085.bin" \
  --budget "latency=${budget}ms" --latency-table "$lut" -o "$out/latency.plan.json" | tail -n 3
./build/mpq quantize "$c/resnet20.onnx" "${calib[@]}" --plan "$out/latency.plan.json" \
  -o "$out/latency" > /dev/null 2>&1
echo "latency budget ${budget} ms at batch 16 ($isa); alternating runs:"
for round in 1 2 3; do
  for m in latency w8a8; do
    ./build/mpq bench "$out/$m.mpq" --isa "$isa" --batch 16 --seconds "$seconds" --repeat 3 \
      --latency-table "$lut" | grep -E "mpq \(|predicts" | sed "s|^|  $m: |"
  done
done
echo "files in $out"
