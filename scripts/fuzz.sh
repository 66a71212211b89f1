#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan) into build-fuzz, replays
# every regression input and seed, then fuzzes each target for SECONDS (default 30) from a
# copy of its corpus. Prints one line per target (executions, coverage, corpus, findings) and
# exits non-zero on any crash, sanitizer report, leak or hang over 10 s; a failing input is
# kept in build-fuzz/findings/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 1800 mpq_file_fuzz
#   JOBS=2 scripts/fuzz.sh 1800                two targets at a time (tools/fuzz_campaign.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(mpq_file_fuzz onnx_import_fuzz json_fuzz dataset_fuzz jpeg_fuzz)
jobs=${JOBS:-1}

command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing (scripts/setup.sh installs it)"; exit 1; }
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_BASEDIR="$PWD"
export CCACHE_SLOPPINESS=pch_defines,time_macros
# -O1 with line tables: what ASan's reports need, and ~15 % less compile time than -O2 -g.
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DMPQ_FUZZ=ON -DMPQ_BUILD_TESTS="${MPQ_FUZZ_TESTS:-OFF}" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build build-fuzz --target fuzz_targets -j "$(nproc)"

# Sanitizers stop at the first report; leaks are findings too. LibTorch's own lazily created
# thread pools and registries live until exit: only leaks reachable from mpq's code count.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive  # the runtime's 2-thread runs need no spinning

out=build-fuzz/findings
mkdir -p "$out"
run_target() {
  local t=$1 bin=build-fuzz/tests/fuzz/$1 log=$out/$1.log
  local work; work=$(mktemp -d)
  mkdir -p "$out/$t"
  local inputs=()
  for d in tests/fuzz/regressions/$t tests/fuzz/corpus/$t; do
    [ -d "$d" ] && inputs+=("$d")
  done
  # Replay: every stored input once (a regression input that fails again fails the run).
  local replay=ok
  if [ ${#inputs[@]} -gt 0 ]; then
    find "${inputs[@]}" -type f -print0 | xargs -0 -r "$bin" -timeout=10 -rss_limit_mb=2560 \
      -artifact_prefix="$out/$t/" >"$log.replay" 2>&1 || replay=FAILED
  fi
  local status=ok
  if [ "$seconds" -gt 0 ]; then
    "$bin" "$work" "${inputs[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 \
      -max_len=1048576 -print_final_stats=1 -artifact_prefix="$out/$t/" >"$log" 2>&1 || status=FAILED
  fi
  local execs cov ft corp
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" 2>/dev/null | tail -1 | grep -o '[0-9]*' || echo 0)
  ft=$(grep -o 'ft: [0-9]*' "$log" 2>/dev/null | tail -1 | grep -o '[0-9]*' || echo 0)
  corp=$(ls "$work" | wc -l)
  printf 'fuzz %-17s %5ss  execs %9s  cov %6s  ft %6s  new corpus %5s  replay %s  fuzz %s\n' \
    "$t" "$seconds" "${execs:-0}" "${cov:-0}" "${ft:-0}" "$corp" "$replay" "$status"
  if [ -n "${KEEP_CORPUS:-}" ]; then mkdir -p "$KEEP_CORPUS/$t" && cp -n "$work"/* "$KEEP_CORPUS/$t/" 2>/dev/null || true; fi
  rm -rf "$work"
  [ "$replay" = ok ] && [ "$status" = ok ]
}

failed=0
pids=()
for t in "${targets[@]}"; do
  run_target "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
if [ $failed -ne 0 ]; then
  echo "fuzz: FAILED; logs and failing inputs in $out/ (reproduce: build-fuzz/tests/fuzz/TARGET INPUT)"
  exit 1
fi
echo "fuzz: every target clean"
