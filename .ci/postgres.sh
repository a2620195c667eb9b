#!/usr/bin/env bash
# Ensures a throwaway PostgreSQL server runs on 127.0.0.1 for Writ's tests, and prints its URL.
#
# Usage:
#   export WRIT_TEST_POSTGRES_URL="$(bash .ci/postgres.sh)"   # start (or reuse) the server
#   bash .ci/postgres.sh stop                                 # stop it (the data dir stays)
#
# Interface (kept simple on purpose, other scripts rely on it):
# - stdout: exactly one line, the URL `postgres://postgres@127.0.0.1:PORT/postgres` (trust auth on
#   loopback only, no password); everything else goes to stderr. The URL is also written to
#   "$WRIT_PG_DIR/url".
# - WRIT_PG_DIR (default "${TMPDIR:-/tmp}/writ-postgres") holds the cluster (data/), its log, port
#   and url. Reruns reuse a running server, restart a stopped one on its old port when free, and
#   never initdb twice: the script is idempotent.
# - WRIT_PG_PORT picks the port of a new cluster (default: the first free one from 55432).
# Tests create their own uniquely named databases on this server and drop them afterwards.
#
# Works on a fresh Debian 12: when no PostgreSQL binaries are found (pg_ctl on PATH or under
# /usr/lib/postgresql/*/bin), installs Debian's `postgresql` package with apt-get. PostgreSQL
# refuses to run as root, so as root the cluster belongs to the `postgres` OS user (created when
# missing) and commands run through `runuser -u postgres --`.
set -euo pipefail

dir="${WRIT_PG_DIR:-${TMPDIR:-/tmp}/writ-postgres}"
data="$dir/data"
log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
  local candidate
  if candidate="$(command -v pg_ctl 2>/dev/null)" && [ -x "$(dirname "$(readlink -f "$candidate")")/initdb" ]; then
    dirname "$(readlink -f "$candidate")"
    return 0
  fi
  # Newest version first.
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
    if [ -x "$candidate/pg_ctl" ] && [ -x "$candidate/initdb" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if ! bindir="$(find_bindir)"; then
  log "no PostgreSQL binaries found; installing Debian's postgresql package"
  if [ "$(id -u)" -ne 0 ]; then
    log "installing needs root (rerun as root, or install postgresql yourself)"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends postgresql >&2
  bindir="$(find_bindir)" || { log "postgresql installed but pg_ctl/initdb not found"; exit 1; }
fi
log "using binaries in $bindir"

# Run as the cluster's owner: ourselves, or `postgres` when we are root.
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    log "creating the postgres OS user"
    useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  as_owner() { runuser -u postgres -- "$@"; }
  mkdir -p "$dir"
  chown postgres: "$dir"
else
  as_owner() { "$@"; }
  mkdir -p "$dir"
fi
chmod 0755 "$dir"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() { as_owner "$bindir/pg_ctl" status -D "$data" >/dev/null 2>&1; }

if [ "${1:-}" = "stop" ]; then
  if [ -d "$data" ] && running; then
    as_owner "$bindir/pg_ctl" stop -D "$data" -m fast -w >&2
  fi
  log "stopped"
  exit 0
fi

if [ ! -f "$data/PG_VERSION" ]; then
  log "initdb in $data"
  rm -rf "$data"
  as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >&2 \
    || as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-locale >&2
fi

if running; then
  port="$(cat "$dir/port")"
  log "already running on port $port"
else
  port="$(cat "$dir/port" 2>/dev/null || true)"
  if [ -z "$port" ] || ! port_free "$port"; then
    port="${WRIT_PG_PORT:-55432}"
    while ! port_free "$port"; do port=$((port + 1)); done
  fi
  log "starting on 127.0.0.1:$port"
  rm -f "$data/postmaster.pid"
  as_owner "$bindir/pg_ctl" start -D "$data" -w -t 60 -l "$dir/server.log" \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=on" >&2 \
    || { log "start failed; server log:"; tail -n 30 "$dir/server.log" >&2 || true; exit 1; }
  echo "$port" | as_owner tee "$dir/port" >/dev/null
fi

url="postgres://postgres@127.0.0.1:$port/postgres"
echo "$url" | as_owner tee "$dir/url" >/dev/null
echo "$url"
