#!/usr/bin/env bash
# Peer agreement with the real SpiceDB: runs SpiceDB's integration validation files through
# ../shared/peers/spicedb/run_testconfigs.py (the real engine, installed by the peer's install.sh)
# and through `writ validate --assertions`, then compares the outcome of every assertion: each side
# lists the assertions it failed with what it answered, and the two lists must be identical.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=../shared
DIR="$SHARED/conformance/spicedb/integration"
if [ ! -d "$DIR" ] || [ ! -f "$SHARED/peers/spicedb/run_testconfigs.py" ]; then
  echo "SKIP: $DIR or the SpiceDB peer is absent; SpiceDB parity not checked"
  # .ci/run requires the shared data: there a skip is a failure.
  [ "${WRIT_REQUIRE_CONFORMANCE:-}" = 1 ] && exit 1
  exit 0
fi
bash "$SHARED/peers/spicedb/install.sh" >/dev/null
PY="${PEERS_HOME:-$HOME/.cache/writ-peers}/spicedb-venv/bin/python"
cargo build --quiet --bin writ
BIN="${CARGO_TARGET_DIR:-target}/debug/writ"
PEER_OUT=$(mktemp)
WRIT_OUT=$(mktemp)
trap 'rm -f "$PEER_OUT" "$WRIT_OUT"' EXIT
"$PY" "$SHARED/peers/spicedb/run_testconfigs.py" "$DIR" > "$PEER_OUT" || true
"$BIN" validate --assertions "$DIR" > "$WRIT_OUT" || true
python3 - "$PEER_OUT" "$WRIT_OUT" <<'PYEOF'
import re, sys

KINDS = ("assertTrue", "assertFalse", "assertCaveated", "validation")

def failures(path):
    """file -> set of '<kind>: <assertion> -> got <ANSWER>' lines (the assertions that side failed)."""
    out, current = {}, None
    for line in open(path):
        m = re.match(r"^(FAIL|ok  ) (\S+?)(:| )", line)
        if m:
            current = m.group(2)
            out.setdefault(current, set())
            continue
        text = line.strip()
        if current and text.split(":", 1)[0] in KINDS:
            out[current].add(text)
    return out

peer_text, writ_text = open(sys.argv[1]).read(), open(sys.argv[2]).read()
m_peer = re.search(r"(\d+) passed, (\d+) failed, (\d+) skipped", peer_text)
m_writ = re.search(r"(\d+) files; (\d+) passed, (\d+) failed, (\d+) unsupported", writ_text)
if not m_peer or not m_writ:
    print("a runner printed no summary:\n--- peer\n" + peer_text[-2000:] + "\n--- writ\n" + writ_text[-2000:])
    sys.exit(1)
peer, writ = failures(sys.argv[1]), failures(sys.argv[2])
total = int(m_writ.group(2)) + int(m_writ.group(3)) + int(m_writ.group(4))
disagreements = []
for name in sorted(set(peer) | set(writ)):
    for line in sorted(peer.get(name, set()) ^ writ.get(name, set())):
        side = "SpiceDB" if line in peer.get(name, set()) else "Writ"
        disagreements.append(f"  {name}: only {side} failed: {line}")
print("\n".join(disagreements))
print(f"SpiceDB parity: {total} assertions; SpiceDB {m_peer.group(1)} passed/{m_peer.group(2)} failed/"
      f"{m_peer.group(3)} skipped; Writ {m_writ.group(2)} passed/{m_writ.group(3)} failed/"
      f"{m_writ.group(4)} unsupported; {len(disagreements)} disagreements")
if total == 0:
    print("no assertions ran")
    sys.exit(1)
sys.exit(1 if disagreements else 0)
PYEOF
