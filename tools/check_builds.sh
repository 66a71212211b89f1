#!/usr/bin/env bash
# The whole project in the builds CI does not make (too slow for its 30 minutes), each with
# every test: a Debug build (gcc -O0, assertions on) in build-debug, and an AddressSanitizer +
# UndefinedBehaviorSanitizer build (clang, the fuzz build's flags) in build-fuzz.
#
#   tools/check_builds.sh [debug] [sanitize]      (both by default)
set -euo pipefail
cd "$(dirname "$0")/.."
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(debug sanitize)
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_BASEDIR="$PWD"
for kind in "${kinds[@]}"; do
  case $kind in
    debug)
      dir=build-debug
      cmake -S . -B $dir -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
      ;;
    sanitize)
      dir=build-fuzz
      cmake -S . -B $dir -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
        -DMPQ_FUZZ=ON -DMPQ_BUILD_TESTS=ON -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
      export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
      export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
      ;;
    *)
      echo "check_builds: unknown build '$kind' (debug or sanitize)"
      exit 2
      ;;
  esac
  start=$(date +%s)
  cmake --build $dir -j "$(nproc)"
  echo "check_builds: $kind built in $(($(date +%s) - start)) s; running the tests"
  start=$(date +%s)
  ctest --test-dir $dir --output-on-failure --timeout 3600 | tee $dir/ctest.log | tail -n 30
  echo "check_builds: $kind tests took $(($(date +%s) - start)) s"
done
