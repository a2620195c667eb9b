#!/usr/bin/env bash
# Runs OpenFGA's own runner script (../shared/peers/openfga/run_fga.sh) with `writ` standing in for
# the `fga` CLI, over every model-test file derived from OpenFGA's suites, and fails on any failing
# assertion: the real CLI passes them all.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=../shared
if [ ! -d "$SHARED/conformance/openfga/fga_yaml" ]; then
  echo "SKIP: $SHARED/conformance/openfga/fga_yaml is absent; parity not checked"
  # .ci/run requires the shared data: there a skip is a failure.
  [ "${WRIT_REQUIRE_CONFORMANCE:-}" = 1 ] && exit 1
  exit 0
fi
cargo build --quiet --bin writ
BIN="$(pwd)/target/debug/writ"
WRAP=$(mktemp)
printf '#!/bin/sh\nexec %s "$@"\n' "$BIN" > "$WRAP"
chmod +x "$WRAP"
OUT=$(mktemp)
FGA="$WRAP" bash "$SHARED/peers/openfga/run_fga.sh" "$SHARED/conformance/openfga/fga_yaml" "$(mktemp -d)" > "$OUT"
cat "$OUT"
if ! grep -q 'passing' "$OUT"; then
  echo "the runner reported no counts"
  exit 1
fi
if grep -q '^FAIL' "$OUT"; then
  echo "writ differs from the real CLI on the assertions above"
  exit 1
fi
