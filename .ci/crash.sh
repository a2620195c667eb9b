#!/usr/bin/env bash
# Crash test: several clients write batches to `writ serve --data-dir`, the server is SIGKILLed
# mid-load and restarted on the same data, ≥ 5 rounds; every acknowledged write must be there and
# every request wholly applied or wholly absent (tests/clients/crash.py, stdlib Python only).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin writ
BIN="${CARGO_TARGET_DIR:-$(pwd)/target}/debug/writ"
timeout 300 python3 tests/clients/crash.py "$BIN" --rounds 6 --clients 4
