#!/usr/bin/env bash
# HTTP check throughput and latency under wrk, next to `GET /healthz` in the same run (issue 3's
# closing figure; target: check within 1.5x of healthz). Not part of CI.
#   bash benches/http_wrk.sh            # DURATION=10s CONNECTIONS=16 SERVER_ARGS= by default
# A release `writ serve --memory` runs pinned to core 0 (taskset -c 0), wrk to core 1; loopback only.
# The store holds schema/drive.fga and a small graph; the checked question walks a group membership
# and a folder parent (document:d7#viewer@user:u3 through folder:f1 and group:g1). Then a batch-check
# of 1,000 checks (every user against 50 documents, answers known from the graph) is timed the same way
# and reported in checks/s (target: >= 500k checks/s).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
# Extra `writ serve` flags, e.g. SERVER_ARGS="--decision-log off" to time without the decision log.
SERVER_ARGS=${SERVER_ARGS:-}
# WRIT_BIN=/path/to/writ times that binary instead of building this tree's (for A/B runs).
WRIT_BIN=${WRIT_BIN:-}

if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi
if [ -n "$WRIT_BIN" ]; then
  BIN=$WRIT_BIN
else
  cargo build --release --quiet --bin writ
  BIN="${CARGO_TARGET_DIR:-$(pwd)/target}/release/writ"
fi

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
# Request logs at info would add a formatted line per request to both sides; keep warnings only.
RUST_LOG=warn taskset -c 0 "$BIN" serve --memory --max-batch-check 1000 $SERVER_ARGS --listen "127.0.0.1:$PORT" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -sf "$URL/readyz" >/dev/null && break
  sleep 0.1
done
curl -sf "$URL/readyz" >/dev/null || { echo "writ did not start"; cat "$WORK/server.log"; exit 1; }

STORE=$(curl -sf -X POST "$URL/stores" -d '{"name":"wrk"}' | jq -r .id)
curl -sf -X PUT "$URL/stores/$STORE/writ/model" -H 'content-type: text/plain' --data-binary @schema/drive.fga >/dev/null
# 20 users in 4 groups, 4 folders (f1 viewed by group g1), 40 documents spread over the folders.
TUPLES=$(python3 - <<'PY'
import json
keys = []
for u in range(20):
    keys.append({"user": f"user:u{u}", "relation": "member", "object": f"group:g{u % 4}"})
for f in range(4):
    keys.append({"user": f"group:g{f}#member", "relation": "viewer", "object": f"folder:f{f}"})
for d in range(40):
    keys.append({"user": f"folder:f{d % 4}", "relation": "parent", "object": f"document:d{d}"})
    keys.append({"user": f"user:u{(d * 7) % 20}", "relation": "editor", "object": f"document:d{d}"})
print(json.dumps({"writes": {"tuple_keys": keys}}))
PY
)
curl -sf -X POST "$URL/stores/$STORE/write" -d "$TUPLES" >/dev/null
BODY='{"tuple_key":{"user":"user:u3","relation":"viewer","object":"document:d7"}}'
ANSWER=$(curl -sf -X POST "$URL/stores/$STORE/check" -d "$BODY")
echo "check answer: $ANSWER"
[ "$(echo "$ANSWER" | jq -r .allowed)" = true ] || { echo "the benchmarked check should be allowed"; exit 1; }

cat > "$WORK/check.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
EOF

# 1,000 checks: users u0..u19 against documents d0..d49 (d40..d49 exist in no tuple). A user sees a
# document through its folder's group (u % 4 == d % 4, d < 40) or as its editor.
python3 - "$WORK/batch.json" "$WORK/batch_expected.json" <<'PY'
import json, sys
checks, expected = [], {}
for u in range(20):
    for d in range(50):
        cid = f"u{u}d{d}"
        checks.append({"tuple_key": {"user": f"user:u{u}", "relation": "viewer", "object": f"document:d{d}"},
                       "correlation_id": cid})
        expected[cid] = d < 40 and (u % 4 == d % 4 or (d * 7) % 20 == u)
json.dump({"checks": checks}, open(sys.argv[1], "w"))
json.dump(expected, open(sys.argv[2], "w"))
PY
curl -sf -X POST "$URL/stores/$STORE/batch-check" --data-binary @"$WORK/batch.json" > "$WORK/batch_answer.json"
python3 - "$WORK/batch_answer.json" "$WORK/batch_expected.json" <<'PY' || exit 1
import json, sys
got, expected = json.load(open(sys.argv[1]))["result"], json.load(open(sys.argv[2]))
wrong = [k for k, v in expected.items() if got.get(k, {}).get("allowed") is not v]
print(f"batch-check answers: {len(expected) - len(wrong)}/{len(expected)} as the graph implies")
sys.exit(1 if wrong or len(got) != len(expected) else 0)
PY
cat > "$WORK/batch.lua" <<EOF
wrk.method = "POST"
local f = io.open("$WORK/batch.json", "r")
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
EOF

run_wrk() { # NAME URL [wrk args...]
  local name=$1 url=$2; shift 2
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d2s "$@" "$url" >/dev/null # warm-up
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" > "$WORK/$name.txt"
  echo "--- $name"
  grep -E 'Requests/sec|Non-2xx|Socket errors|^ +(50|75|90|99)%' "$WORK/$name.txt"
}

echo "wrk: 1 thread, $CONNECTIONS connections, $DURATION per endpoint; server on core 0, wrk on core 1"
run_wrk healthz "$URL/healthz"
run_wrk check "$URL/stores/$STORE/check" -s "$WORK/check.lua"
run_wrk batch "$URL/stores/$STORE/batch-check" -s "$WORK/batch.lua"

rps() { awk '/Requests\/sec/ {print $2}' "$WORK/$1.txt"; }
p() { # NAME PERCENT → microseconds
  awk -v pct="$2%" '$1 == pct { v=$2; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000000} }' "$WORK/$1.txt"
}
for name in healthz check batch; do
  if grep -q 'Non-2xx' "$WORK/$name.txt"; then echo "$name: wrk saw non-2xx answers"; exit 1; fi
done
python3 - "$(rps healthz)" "$(rps check)" "$(p healthz 50)" "$(p check 50)" "$(p healthz 99)" "$(p check 99)" <<'PY'
import sys
h_rps, c_rps, h50, c50, h99, c99 = map(float, sys.argv[1:])
print(f"healthz: {h_rps:,.0f} req/s, p50 {h50:.0f} us, p99 {h99:.0f} us")
print(f"check:   {c_rps:,.0f} req/s, p50 {c50:.0f} us, p99 {c99:.0f} us")
print(f"ratio healthz/check: throughput {h_rps / c_rps:.2f}x, p50 latency {c50 / h50:.2f}x (target <= 1.5x)")
PY
python3 - "$(rps batch)" "$(p batch 50)" "$(p batch 99)" <<'PY'
import sys
b_rps, b50, b99 = map(float, sys.argv[1:])
print(f"batch-check of 1,000: {b_rps:,.0f} req/s = {b_rps * 1000:,.0f} checks/s, p50 {b50:.0f} us, p99 {b99:.0f} us "
      f"(target >= 500,000 checks/s)")
PY
