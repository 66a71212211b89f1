#!/usr/bin/env bash
# The model-zoo table (issue 18): every tools/zoo model at full size (224 pixels, BN statistics
# from 128 images), both exports. Per export: mpq's float logits against ONNX Runtime's, then
# W8A8 (calibrated on 32 sample1000 images, nearest rounding): the simulation against float,
# its own difference between batch sizes 4 and 16, and ONNX Runtime on the QCDQ export against
# the simulation, and mpq's integer runtime on the packed export where it runs the model
# (relative logit difference ||a - b|| / ||b||, and argmax agreement).
#   bench/zoo_table.sh [ZOO_DIR]          (default bench_out/zoo224; generated when missing)
# It runs the Zoo* tests on that zoo and tabulates what they print.
set -euo pipefail
cd "$(dirname "$0")/.."
zoo=${1:-bench_out/zoo224}
tools/zoo/make_zoo.sh "$zoo" --size 224 --images 128
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; zoo $zoo"
MPQ_ZOO=$zoo ./build/tests/mpq_tests --gtest_filter='Zoo*' 2>&1 | tee "$zoo/tests.log" |
  python3 -c '
import re, sys
imp, w8, rt = {}, {}, {}
for line in sys.stdin:
    m = re.match(r"(\S+)\.onnx: max \|mpq - onnxruntime\| / max \|onnxruntime\| = (\S+)", line)
    if m: imp[m[1]] = m[2]
    m = re.match(r"(\S+)\.onnx W8A8: simulation vs float (\S+)% \(argmax (\S+)%\); batch 4 vs \d+ (\S+) \(argmax (\S+)%\); onnxruntime QCDQ vs simulation (\S+) \(argmax (\S+)%\)", line)
    if m: w8[m[1]] = m.groups()[1:]
    m = re.match(r"(\S+)\.onnx W8A8: integer runtime \((\S+)\) vs simulation (\S+) \(argmax (\S+)%\)", line)
    if m: rt[m[1]] = f"{m[3]} ({m[4]} %, {m[2]})"
print("| export | mpq vs ORT (max rel) | W8A8 sim vs float | argmax | sim batch 4 vs 16 | argmax | ORT QCDQ vs sim | argmax | runtime vs sim (argmax, ISA) |")
print("|---|---|---|---|---|---|---|---|---|")
for k in sorted(set(imp) | set(w8)):
    w, i = w8.get(k, ("-",) * 6), imp.get(k, "-")
    r = rt.get(k, "not run")
    print(f"| {k} | {i} | {w[0]} % | {w[1]} % | {w[2]} | {w[3]} % | {w[4]} | {w[5]} % | {r} |")
'
grep -E "FAILED|PASSED" "$zoo/tests.log" | tail -3
