#!/usr/bin/env bash
# The tests: install, build, then every test (unit tests, the CLI, and the real models in
# ../shared/data, which skip with a message when that folder is absent), then the fuzz targets.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
# Fuzzing, bounded: every regression input and seed replayed, then 20 s per fuzz target
# (clang, ASan + UBSan; longer campaigns: tools/fuzz_campaign.sh).
./scripts/fuzz.sh "${MPQ_FUZZ_SECONDS:-20}"
