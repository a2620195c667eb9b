#!/usr/bin/env bash
# Writ side by side with the real OpenFGA and SpiceDB (../shared/peers), in one run on this machine.
#
#   benches/peers.sh [openfga|spicedb|all]      # default all
#
# openfga: `writ model test` and OpenFGA's `fga model test` on the peer's
#   bench/bench_10000_checks.fga.yaml, each a whole process, RUNS (default 5) runs alternating,
#   after one warm-up each: wall-time medians and the median of the per-pair ratios.
# spicedb: the peer's bench_spicedb.py on its own workload, then benches/spicedb.rs on the same
#   relationships and queries (dumped by benches/peers/spicedb_workload.py from the peer's
#   generator; the first WRIT_PEER_ANSWERS (default 1000) answers come from SpiceDB and must match),
#   then the ratios Writ/SpiceDB of single-check and bulk-check throughput.
#   SpiceDB runs embedded (memdb, caches off) behind a ctypes FFI with protobuf requests; Writ is
#   called in-process. Read the ratios with that in mind (see the peer's bench_spicedb.py).
# Peers install into $PEERS_HOME (default ~/.cache/writ-peers) with the peers' own install.sh; a peer
# that is not installed is reported as such and skipped.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${WRIT_SHARED:-$ROOT/../shared}
PEERS_HOME=${PEERS_HOME:-$HOME/.cache/writ-peers}
RUNS=${RUNS:-5}
WHAT=${1:-all}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ ! -d "$SHARED/peers" ]; then
  echo "no peers: $SHARED/peers is absent (set WRIT_SHARED)"
  exit 0
fi

openfga() {
  local fga=$PEERS_HOME/openfga-venv/bin/fga
  local file=$SHARED/peers/openfga/bench/bench_10000_checks.fga.yaml
  if [ ! -x "$fga" ]; then
    echo "openfga: NOT INSTALLED ($fga missing; run $SHARED/peers/openfga/install.sh) - skipped"
    return 0
  fi
  (cd "$ROOT" && cargo build --release --quiet --bin writ)
  local writ=$TARGET/release/writ
  echo "openfga: $($fga version 2>&1 | head -n 1)"
  echo "openfga: both must pass every assertion of $file:"
  "$writ" model test --tests "$file" | tail -n 2
  "$fga" model test --tests "$file" 2>&1 | tail -n 2
  python3 - "$RUNS" "$writ" "$fga" "$file" <<'EOF'
import statistics, subprocess, sys, time
runs, writ, fga, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def once(binary):
    t = time.perf_counter()
    subprocess.run([binary, "model", "test", "--tests", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t
once(writ); once(fga)
w, f = [], []
for _ in range(runs):
    w.append(once(writ)); f.append(once(fga))
ratio = statistics.median(a / b for a, b in zip(w, f))
print(f"openfga: model test wall median over {runs} runs: writ {statistics.median(w):.3f} s, "
      f"fga {statistics.median(f):.3f} s, writ/fga {ratio:.3f} ({1 / ratio:.1f}x faster)")
EOF
}

spicedb() {
  local venv=$PEERS_HOME/spicedb-venv
  if [ ! -s "$venv/spicedb-native/libspicedb.so" ]; then
    echo "spicedb: NOT INSTALLED ($venv/spicedb-native/libspicedb.so missing; run $SHARED/peers/spicedb/install.sh) - skipped"
    return 0
  fi
  local seconds=${WRIT_PEER_SECONDS:-5}
  python3 "$ROOT/benches/peers/spicedb_workload.py" "$WORK/spicedb"
  # SpiceDB's answers to the first queries, for benches/spicedb.rs to match.
  "$venv/bin/python" - "$SHARED/peers/spicedb" "$WORK/spicedb" "${WRIT_PEER_ANSWERS:-1000}" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import driver
out, n = sys.argv[2], int(sys.argv[3])
rels = open(f"{out}/relationships.txt").read().split()
queries = [line.split() for line in open(f"{out}/queries.txt")][:n]
with driver.SpiceDB() as db:
    db.write_schema(driver.DEMO_SCHEMA)
    db.write_relationships([driver.parse_relationship(r) for r in rels], batch_size=1000, operation="create")
    with open(f"{out}/answers.txt", "w") as f:
        for o, r, s in queries:
            f.write("true\n" if db.check(o, r, s, "full") == driver.HAS_PERMISSION else "false\n")
print(f"spicedb: answered {len(queries)} queries for the comparison")
EOF
  echo "spicedb: the peer's bench_spicedb.py (--seconds $seconds):"
  "$venv/bin/python" "$SHARED/peers/spicedb/bench_spicedb.py" --seconds "$seconds" --json "$WORK/spicedb.json"
  echo "spicedb: Writ on the same workload (benches/spicedb.rs):"
  (cd "$ROOT" && WRIT_PEER_WORKLOAD=$WORK/spicedb WRIT_PEER_SECONDS=$seconds \
    cargo bench --quiet --bench spicedb) | tee "$WORK/writ.txt"
  python3 - "$WORK/spicedb.json" "$WORK/writ.txt" <<'EOF'
import json, sys
peer = json.load(open(sys.argv[1]))
writ = dict(line.split(None, 1) for line in open(sys.argv[2]) if line.strip() and len(line.split()) == 2)
writ = {k: float(v) for k, v in writ.items()}
threads = next(k for k in writ if k.startswith("check_threads"))
rows = [
    ("single check, serial", "check_serial_per_s", "check_{c}_serial_per_s"),
    ("single check p50 (us, lower is better)", "check_p50_us", "check_{c}_p50_us"),
    (f"single check, {threads[len('check_threads'):-len('_per_s')]} threads", threads, "check_{c}_" + threads[len("check_"):]),
    ("positive direct-viewer check", "check_positive_direct_per_s", "check_{c}_positive_direct_per_s"),
    ("bulk check, 10 per request (items/s)", "bulk10_items_per_s", "bulk10_{c}_items_per_s"),
    ("bulk check, 100 per request (items/s)", "bulk100_items_per_s", "bulk100_{c}_items_per_s"),
]
print(f"spicedb: {peer['n_relationships']} relationships; positive rate: writ {writ['positive_rate_random']:.3f}, "
      f"spicedb {peer['positive_rate_random']:.3f} (probe of {peer['positive_rate_n']})")
for label, w, p in rows:
    for c in ("full", "min"):
        pv = peer.get(p.format(c=c))
        if pv:
            print(f"spicedb: {label} [{c}]: writ {writ[w]:,.0f} vs spicedb {pv:,.1f} -> writ/spicedb {writ[w] / pv:,.1f}")
EOF
}

case "$WHAT" in
  openfga) openfga ;;
  spicedb) spicedb ;;
  all) openfga; spicedb ;;
  *) echo "usage: $0 [openfga|spicedb|all]"; exit 2 ;;
esac
