#!/usr/bin/env bash
# The main job: install, build, then run mpq on the embedded Fashion-MNIST default.
# Extra arguments go to `mpq eval`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./build/mpq eval "$@"
