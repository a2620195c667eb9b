#!/usr/bin/env bash
# Runs OpenFGA's own runner script (../shared/peers/openfga/run_fga.sh) with `writ` standing in for
# the `fga` CLI, over every model-test file derived from OpenFGA's suites. Fails on any failing
# assertion that needs no condition (condition evaluation is tracked separately), and prints counts.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=../shared
if [ ! -d "$SHARED/conformance/openfga/fga_yaml" ]; then
  echo "SKIP: $SHARED/conformance/openfga/fga_yaml is absent; parity not checked"
  exit 0
fi
cargo build --quiet --bin writ
BIN="$(pwd)/target/debug/writ"
WRAP=$(mktemp)
printf '#!/bin/sh\nexec %s "$@"\n' "$BIN" > "$WRAP"
chmod +x "$WRAP"
OUT=$(mktemp)
FGA="$WRAP" bash "$SHARED/peers/openfga/run_fga.sh" "$SHARED/conformance/openfga/fga_yaml" "$(mktemp -d)" > "$OUT"
grep -v '^FAIL' "$OUT"
failures=$(grep '^FAIL' "$OUT" || true)
unexplained=$(printf '%s\n' "$failures" | grep -v -e '"condition"' -e '"context"' | grep -v '^$' || true)
conditioned=$(printf '%s\n' "$failures" | grep -c -e '"condition"' -e '"context"' || true)
echo "failing assertions that need condition evaluation: $conditioned"
if [ -n "$unexplained" ]; then
  echo "failing assertions that need no condition:"
  printf '%s\n' "$unexplained"
  exit 1
fi
