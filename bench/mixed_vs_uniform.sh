#!/usr/bin/env bash
# Mixed-precision plans against uniform ones, every plan quantized with the same default PTQ
# (compress's: mse ranges, block-wise Attention Round with QDrop 0.5) and compared on the same
# images with a paired 95 % bootstrap interval (mpq compare):
#   bench/mixed_vs_uniform.sh MODEL [METHODS]
#     MODEL    resnet20 | resnet56 | mobilenetv2
#     METHODS  default "bn_scale hessian_trace imprint coding_length ssps random:0 random:1 random:2"
#              (a metric name, random:SEED, or ssps), plus any metric registered later
# Budgets are set equal to a uniform plan's cost (first and last layer at 8 bits in every plan):
#   resnet20, resnet56  BOPs of W2A3 and of W2A2; activations searched over {2,3,4,8} (with 2 bits
#                       the narrowest candidate, W2A2's BOPs leave one plan: W2A2 itself)
#   mobilenetv2         size of W4 (activations at 8), BOPs of W4A4 and of W4A8
# For each budget and mixed plan the table gives top-1 and the paired difference (with its CI) to
# (a) the best uniform plan that fits the budget and (b) the cheapest uniform plan above it.
# Every step writes its files under OUT (default bench_out/mixed_vs_uniform/MODEL) and is skipped
# when they exist, so an interrupted run goes on where it stopped. ITERS=N overrides the PTQ's
# iterations per block (default: compress's). MPQ=PATH runs another binary than ./build/mpq (a
# copy, so that rebuilding during a long run does not change it).
set -euo pipefail
cd "$(dirname "$0")/.."
model_key=${1:?usage: bench/mixed_vs_uniform.sh resnet20|resnet56|mobilenetv2 [METHODS]}
methods=${2:-"bn_scale hessian_trace imprint coding_length ssps random:0 random:1 random:2"}
data=${MPQ_DATA:-../shared/data}
out=${OUT:-bench_out/mixed_vs_uniform/$model_key}
mpq=${MPQ:-./build/mpq}
[ -x "$mpq" ] || { echo "bench: build first (./scripts/test.sh or ninja -C build)" >&2; exit 1; }
c=$data/cifar10
i=$data/imagenet
case $model_key in
  resnet20 | resnet56)
    model=$c/$model_key.onnx
    calib=cifar10:$c/calib_train_5085.bin
    evals="test_1017=cifar10:$c/test_1017.bin test_10000_jpeg=cifar10:$c/test_10000_jpeg.bin"
    pre=()
    w_candidates=2,3,4,5,6,8
    a_candidates=2,3,4,8
    uniforms="2:2 2:3 3:2 2:4 4:2 3:3"
    budgets="bops:2:3 bops:2:2"
    noise=W2A3 noise_calib=$calib@1024:1
    ;;
  mobilenetv2)
    model=$i/mobilenetv2.onnx
    calib=imagefolder:$i/sample1000
    evals="val1300=imagefolder:$i/val1300,$i/val1300/labels.csv"
    pre=(--resize 256 --crop 224 --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5)
    w_candidates=2,3,4,5,6,8
    a_candidates=4,6,8
    uniforms="3:8 4:8 5:8 6:8 3:4 4:4 4:6 5:6 6:6 8:8"
    budgets="size:4:8 bops:4:4 bops:4:8"
    noise=W4A4 noise_calib=$calib@900:1  # sample1000 has 1000 images: a random 900 of them
    ;;
  *) echo "bench: unknown model '$model_key' (resnet20, resnet56, mobilenetv2)" >&2; exit 1 ;;
esac
[ -f "$model" ] || { echo "bench: $model not found (set MPQ_DATA)" >&2; exit 1; }
mkdir -p "$out/plans" "$out/models" "$out/predictions"
ptq=(--rounding attention --granularity block --qdrop 0.5 ${ITERS:+--iters $ITERS})
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# Predictions of MODEL_FILE on every evaluation set: predictions/NAME.SET.json
evaluate() {
  local name=$1 file=$2 e set spec
  for e in $evals; do
    set=${e%%=*} spec=${e#*=}
    [ -f "$out/predictions/$name.$set.json" ] && continue
    "$mpq" eval "$file" --data "$spec" "${pre[@]}" --predictions "$out/predictions/$name.$set.json" \
      --json > "$out/predictions/$name.$set.eval.json"
  done
}

# A plan file, quantized with the default PTQ, then evaluated.
quantize() {
  local name=$1 plan=$2
  if [ ! -f "$out/models/$name.mpq" ]; then
    log "quantize $name"
    "$mpq" quantize "$model" --plan "$plan" --calib "$calib" "${pre[@]}" "${ptq[@]}" \
      -o "$out/models/$name" > "$out/models/$name.log" 2>&1
  fi
  evaluate "$name" "$out/models/$name.mpq"
}

# The uniform plan W{w}A{a} (first and last layer at 8) and its costs, via the ILP on the
# `uniform` metric with one candidate each.
uniform_plan() {
  local w=$1 a=$2 f=$out/plans/W${1}A${2}.json
  [ -f "$f" ] || "$mpq" search "$model" --metric uniform --candidates "$w" --a-candidates "$a" \
    --budget avg-w-bits=8 --json -o "$f" > "$f.search.json" 2>/dev/null
  echo "$f"
}

log "float"
evaluate float "$model"
for u in $uniforms; do
  w=${u%:*} a=${u#*:}
  quantize "W${w}A${a}" "$(uniform_plan "$w" "$a")"
done

# The noise floor: the uniform plan $noise calibrated on another random choice of images,
# against the first-N calibration every other plan uses.
if [ ! -f "$out/models/${noise}_calibseed1.mpq" ]; then
  log "noise floor: $noise calibrated on other images"
  "$mpq" quantize "$model" --plan "$out/plans/$noise.json" --calib "$noise_calib" "${pre[@]}" \
    "${ptq[@]}" -o "$out/models/${noise}_calibseed1" > "$out/models/${noise}_calibseed1.log" 2>&1
fi
evaluate "${noise}_calibseed1" "$out/models/${noise}_calibseed1.mpq"

# The budget of "bops:2:3" is the BOPs of uniform W2A3.
budget_of() {
  local kind=${1%%:*} rest=${1#*:}
  local w=${rest%:*} a=${rest#*:}
  local f
  f=$(uniform_plan "$w" "$a")
  python3 - "$f.search.json" "$kind" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))["predicted"]
kind = sys.argv[2]
print({"bops": f"bops={p['bops']:.0f}", "size": f"size={p['size_bytes']:.0f}B"}[kind])
EOF
}

for b in $budgets; do
  budget=$(budget_of "$b")
  a_flags=(--a-candidates "$a_candidates")
  [ "${b%%:*}" = size ] && a_flags=(--a-candidates "${b##*:}")
  for m in $methods; do
    name="$b.$m"
    name=${name//:/_}
    plan=$out/plans/$name.json
    if [ ! -f "$plan" ]; then
      log "plan $name ($budget)"
      case $m in
        ssps) args=(--method ssps --data "$calib" "${pre[@]}") ;;
        *)  # one sensitivity report per method and activation set, shared by the budgets
          sens=$out/plans/sensitivity.${m//:/_}.a${a_flags[1]//,/_}.json
          if [ ! -f "$sens" ]; then
            log "sensitivity $m"
            case $m in
              random:*) sargs=(--metric random --seed "${m#random:}") ;;
              *) sargs=(--metric "$m" --data "$calib" "${pre[@]}" --fallback output_mse) ;;
            esac
            "$mpq" sensitivity "$model" "${sargs[@]}" --candidates "$w_candidates" \
              --a-candidates "${a_flags[1]}" -o "$sens" > "$sens.log" 2>&1
          fi
          args=(--sensitivity "$sens")
          ;;
      esac
      "$mpq" search "$model" "${args[@]}" --candidates "$w_candidates" "${a_flags[@]}" \
        --budget "$budget" --json -o "$plan" > "$plan.search.json" 2> "$plan.log"
    fi
    # A budget can leave no freedom (BOPs of W2A2 with 2 bits the narrowest width): a plan that
    # is a uniform one is that plan, already quantized.
    same=$(python3 - "$plan" "$out"/plans/W*A*.json <<'EOF'
import json, os, sys
widths = lambda f: [(l["w_bits"], l["a_bits"]) for l in json.load(open(f))["layers"]]
mine = widths(sys.argv[1])
print(next((os.path.basename(f)[:-5] for f in sys.argv[2:] if widths(f) == mine), ""))
EOF
)
    if [ -n "$same" ]; then
      log "plan $name is uniform $same"
      for e in $evals; do
        set=${e%%=*}
        cp "$out/predictions/$same.$set.json" "$out/predictions/$name.$set.json"
        cp "$out/predictions/$same.$set.eval.json" "$out/predictions/$name.$set.eval.json"
      done
      continue
    fi
    quantize "$name" "$plan"
  done
done

# The table.
python3 - "$out" "$mpq" "$budgets" "$methods" "$uniforms" "$evals" "$noise" <<'EOF'
import json, os, subprocess, sys
out, mpq, budgets, methods, uniforms, evals, noise = sys.argv[1:8]
sets = [e.split("=", 1)[0] for e in evals.split()]
def costs(plan):
    return json.load(open(plan + ".search.json"))["predicted"]
def top1(name, s):
    return json.load(open(f"{out}/predictions/{name}.{s}.eval.json"))["top1"]
def compare(a, b, s):
    r = subprocess.run([mpq, "compare", f"{out}/predictions/{a}.{s}.json",
                        f"{out}/predictions/{b}.{s}.json", "--json"],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)
def fmt(d):
    return f"{d['difference']:+.2f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]"
uni = {}
for u in uniforms.split():
    w, a = u.split(":")
    n = f"W{w}A{a}"
    uni[n] = costs(f"{out}/plans/{n}.json")
key = {"bops": "bops", "size": "size_bytes"}
print(f"# {os.path.basename(out)}: mixed vs uniform, same PTQ, paired 95% bootstrap CI (10000 resamples)")
for s in sets:
    print(f"\nfloat on {s}: {top1('float', s):.2f}")
    print("uniform: " + ", ".join(f"{n} {top1(n, s):.2f}" for n in uni))
    print(f"noise floor ({noise} calibrated on other images vs the first ones): "
          f"{fmt(compare(noise + '_calibseed1', noise, s))}")
for b in budgets.split():
    kind, w, a = b.split(":")
    limit = uni[f"W{w}A{a}"][key[kind]]
    fits = [n for n in uni if uni[n][key[kind]] <= limit * (1 + 1e-9)]
    above = [n for n in uni if n not in fits]
    cheapest_above = min(above, key=lambda n: uni[n][key[kind]]) if above else None
    for s in sets:
        best = max(fits, key=lambda n: top1(n, s)) if fits else None
        print(f"\n## budget {kind} = uniform W{w}A{a} ({limit:.4g}), {s}")
        print(f"best uniform that fits: {best} {top1(best, s):.2f}" if best else
              "no uniform plan fits: nothing to compare against")
        if cheapest_above:
            print(f"cheapest uniform above: {cheapest_above} {top1(cheapest_above, s):.2f} "
                  f"({uni[cheapest_above][key[kind]]:.4g})")
        print(f"| method | top-1 | {kind} | avg w bits | vs best fitting ({best}) | vs cheapest above ({cheapest_above}) |")
        print("|---|---|---|---|---|---|")
        for m in methods.split():
            name = f"{b}.{m}".replace(":", "_")
            if not os.path.exists(f"{out}/predictions/{name}.{s}.json"):
                continue
            p = costs(f"{out}/plans/{name}.json")
            vb = fmt(compare(name, best, s)) if best else "–"
            va = fmt(compare(name, cheapest_above, s)) if cheapest_above else "–"
            print(f"| {m} | {top1(name, s):.2f} | {p[key[kind]]:.4g} | {p['avg_w_bits']:.2f} | {vb} | {va} |")
EOF
