#!/usr/bin/env bash
# Installs everything mpq needs on a fresh Debian 12 machine (as root) and builds it.
# Idempotent: packages already present are skipped, the build is incremental (ccache).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-openmp
  libonnx-dev libprotobuf-dev protobuf-compiler
  libcli11-dev nlohmann-json3-dev libfmt-dev zlib1g-dev libjpeg62-turbo-dev libglpk-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev  # fuzz targets: libFuzzer, AddressSanitizer, UBSan (scripts/fuzz.sh)
  dataset-fashion-mnist
  chromium  # the report.html test renders the page headless
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ONNX Runtime (cross-checks and benchmarks): the CPU library ships inside the npm package;
# --ignore-scripts skips its post-install step, which only tries to download GPU binaries.
# Vega-Lite (tools/report) is linked into mpq and inlined into compress's report.html.
for pkg in ort/node_modules/onnxruntime-node report/node_modules/vega-embed; do
  dir="tools/${pkg%%/*}"
  if [ ! -d "tools/$pkg" ]; then
    (cd "$dir" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
done

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_BASEDIR="$PWD"  # paths relative to the checkout: a fresh clone hits the cache
export CCACHE_SLOPPINESS=pch_defines,time_macros  # ccache may cache what uses the precompiled ATen
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build build -j "$(nproc)"
