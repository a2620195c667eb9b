#!/usr/bin/env bash
# HTTP check throughput under wrk on issue 34's workload (≈134k tuples, varied check pairs, half
# denied), next to `GET /healthz` in the same run; targets: `/check` >= 0.67x the requests/s of
# `/healthz`, and a batch-check of 1,000 >= 500k checks/s with the default decision log. Not part of CI.
#   bash benches/http_wrk.sh                       # DURATION=5s CONNECTIONS=16 RUNS=3 LOG_MODES="deny off"
#   WRIT_BINS="/tmp/writ-before /tmp/writ-after" bash benches/http_wrk.sh   # A/B, rounds interleaved
# A release `writ serve --memory` per binary and decision-log mode runs pinned to core 0 (taskset -c 0),
# wrk on core 1; loopback only. `benches/http_workload.py` writes the workload, `benches/http_wrk.py`
# loads it, checks one batch's answers, runs the rounds and prints medians and ratios.
# SERVER_ARGS adds `writ serve` flags to every server.
set -euo pipefail
cd "$(dirname "$0")/.."
# WRIT_BINS=paths times those binaries instead of building this tree's.
WRIT_BINS=${WRIT_BINS:-}

if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi
if [ -z "$WRIT_BINS" ]; then
  cargo build --release --quiet --bin writ
  WRIT_BINS="${CARGO_TARGET_DIR:-$(pwd)/target}/release/writ"
fi
# shellcheck disable=SC2086 # one path per word
exec python3 benches/http_wrk.py $WRIT_BINS
