#!/usr/bin/env bash
# The tests: install, build, then every test (unit tests, the CLI, and the real models in
# ../shared/data, which skip with a message when that folder is absent).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
ctest --test-dir build --output-on-failure
