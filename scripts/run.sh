#!/usr/bin/env bash
# The main job: install, build, then `mpq compress` on the embedded Fashion-MNIST default
# (sensitivity, bit allocation, quantization, evaluation, export and report into mpq_out/).
# Extra arguments go to `mpq compress`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./build/mpq compress "$@"
