#!/usr/bin/env bash
# Per-iteration time of block reconstruction (Attention Round + QDrop 0.5, W4A4, batch 32), per
# block and in total, for resnet20 and mobilenetv2; with BASELINE=path/to/old/mpq, the same
# measured for that binary in the same run, and the ratio.
#   bench/reconstruction_speed.sh [MODELS]        (default "resnet20 mobilenetv2")
# A block's time per iteration is (its seconds at ITERS_B − at ITERS_A) / (ITERS_B − ITERS_A),
# which removes what does not depend on the iterations (streaming the block's inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
models=${1:-"resnet20 mobilenetv2"}
a=${ITERS_A:-10} b=${ITERS_B:-40}
d=${MPQ_DATA:-../shared/data}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bins="current=./build/mpq"
[ -n "${BASELINE:-}" ] && bins="baseline=$BASELINE $bins"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; iterations $a and $b"
for m in $models; do
  case $m in
    resnet20) args=("$d/cifar10/resnet20.onnx" --calib "cifar10:$d/cifar10/calib_train_5085.bin" --calib-count 128) ;;
    mobilenetv2)
      args=("$d/imagenet/mobilenetv2.onnx" --calib "imagefolder:$d/imagenet/sample1000" --calib-count 128
        --resize 256 --crop 224 --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5) ;;
    *) echo "bench: unknown model $m" >&2; exit 1 ;;
  esac
  for bin in $bins; do
    name=${bin%%=*} exe=${bin#*=}
    for it in $a $b; do
      "$exe" quantize "${args[@]}" --w-bits 4 --a-bits 4 --rounding attention --granularity block \
        --qdrop 0.5 --iters "$it" -o "$out/m" 2>&1 | tr '\r' '\n' |
        sed -n 's/^attention block \([0-9]*\)\/[0-9]* \(.*\): loss .*, \([0-9.]*\) s, peak RSS.*/\1 \3 \2/p' \
          > "$out/$m.$name.$it"
    done
  done
  python3 - "$out" "$m" "$a" "$b" $bins <<'EOF'
import sys
out, m, a, b = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
names = [x.split("=")[0] for x in sys.argv[5:]]
def per_iter(name):
    t = {}
    for it in (a, b):
        for line in open(f"{out}/{m}.{name}.{it}"):
            k, s, block = line.split(" ", 2)
            t.setdefault(int(k), [block.strip(), {}])[1][it] = float(s)
    return {k: (v[0], (v[1][b] - v[1][a]) / (b - a)) for k, v in t.items()}
res = {n: per_iter(n) for n in names}
print(f"\n## {m}: seconds per iteration")
print("| block | " + " | ".join(names) + (" | speed-up |" if len(names) > 1 else " |"))
print("|---|" + "---|" * (len(names) + (len(names) > 1)))
total = {n: 0.0 for n in names}
for k in sorted(res[names[-1]]):
    row = [res[n][k][1] for n in names]
    for n, v in zip(names, row): total[n] += v
    ratio = f" | {row[0] / row[-1]:.1f}x" if len(names) > 1 and row[-1] > 0 else ""
    print(f"| {k} {res[names[-1]][k][0][:40]} | " + " | ".join(f"{v*1000:.0f} ms" for v in row) + ratio + " |")
ratio = f" | {total[names[0]] / total[names[-1]]:.1f}x" if len(names) > 1 else ""
print("| **all blocks** | " + " | ".join(f"{total[n]:.2f} s" for n in names) + ratio + " |")
EOF
done
