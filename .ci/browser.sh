#!/usr/bin/env bash
# The console in a real browser (issue 30): Debian's chromium and chromium-driver (installed with apt
# when missing), Selenium and pytest in a venv keyed by tests/browser/requirements.txt, and
# `writ serve --memory --console --auth preshared` on a free loopback port with an admin, a writer,
# a reader and an approver key, every decision logged and the `first_tool_call` alert on; the tests seed their own stores through
# the API and drive the pages as a user does. Screenshots of every page (1280×800) go to
# $WRIT_SCREENSHOTS (default ${TMPDIR:-/tmp}/writ-screenshots), outside the checkout.
# Exits non-zero on any failure; nothing is skipped: a missing browser is installed, not excused.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=venv.sh
source "$root/.ci/venv.sh"

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "browser.sh: installing Debian's chromium and chromium-driver"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
export WRIT_CHROMIUM=/usr/bin/chromium WRIT_CHROMEDRIVER=/usr/bin/chromedriver
"$WRIT_CHROMIUM" --version
venv="$(ci_venv browser "$root/tests/browser/requirements.txt")"
ci_writ_bin "$root"

work="$(mktemp -d)"
server_pid=""
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop_server EXIT

# Four fresh random keys, one per role, in a keys file the tests read back (JSON is valid YAML).
"$venv/bin/python" - "$work/keys.json" <<'PY'
import json, secrets, sys
keys = [{"name": f"{role}-key", "key": secrets.token_hex(24), "role": role}
        for role in ("admin", "writer", "reader", "approver")]
with open(sys.argv[1], "w") as out:
    json.dump({"keys": keys}, out)
PY
# Alerts on: an agent's first call of a tool raises one, which the Approvals page lists.
printf 'first_tool_call: true\n' >"$work/alerts.yaml"
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export WRIT_CONSOLE_URL="http://127.0.0.1:$port" WRIT_CONSOLE_KEYS="$work/keys.json"
RUST_LOG=warn "$WRIT_BIN" serve --memory --listen "127.0.0.1:$port" --console --auth preshared \
    --keys "$work/keys.json" --decision-log all --alerts "$work/alerts.yaml" >"$work/server.log" 2>&1 &
server_pid=$!
for attempt in $(seq 1 300); do
    if "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/readyz", timeout=1)' \
        "$WRIT_CONSOLE_URL" 2>/dev/null; then
        break
    fi
    if [ "$attempt" -eq 300 ]; then
        echo "browser.sh: writ serve was not ready within 30 s:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "browser.sh: writ serve exited at start:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done

export WRIT_SCREENSHOTS="${WRIT_SCREENSHOTS:-${TMPDIR:-/tmp}/writ-screenshots}"
mkdir -p "$WRIT_SCREENSHOTS"
started=$(date +%s)
status=0
(cd "$root/tests/browser" && "$venv/bin/pytest" -q -rxX -p no:cacheprovider "$@") || status=$?
echo "browser.sh: tests took $(( $(date +%s) - started )) s; screenshots in $WRIT_SCREENSHOTS"
if [ "$status" -ne 0 ]; then
    echo "browser.sh: the server's log:" >&2
    tail -n 50 "$work/server.log" >&2
fi
exit "$status"
