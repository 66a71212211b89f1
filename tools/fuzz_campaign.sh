#!/usr/bin/env bash
# A long fuzzing campaign: every fuzz target for MINUTES (default 30) each, two at a time (one
# per core), growing the corpora in build-fuzz/campaign/ (start again from there with
# KEEP_CORPUS's folder copied into tests/fuzz/corpus/ when it found new coverage worth keeping).
# Prints scripts/fuzz.sh's table: executions, coverage (cov: edges, ft: features), findings.
#
#   tools/fuzz_campaign.sh [MINUTES] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
shift || true
echo "fuzz campaign: $minutes min per target on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
KEEP_CORPUS=build-fuzz/campaign JOBS=${JOBS:-2} ./scripts/fuzz.sh $((minutes * 60)) "$@"
