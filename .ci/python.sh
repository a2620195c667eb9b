#!/usr/bin/env bash
# The Python client's tests (clients/python): a venv keyed by the pinned requirements, the package
# installed from the checkout, `writ` built with `cargo build`, and pytest against real servers.
# Exits non-zero on any failure.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
package="$root/clients/python"
requirements="$package/requirements-test.txt"
cache="${WRIT_CI_CACHE:-$HOME/.cache/writ-ci}"
python="${PYTHON:-python3}"

key="$( (cat "$requirements"; "$python" --version) | sha256sum | cut -c1-16)"
venv="$cache/venv-python-$key"
if [ ! -x "$venv/bin/pytest" ]; then
    echo "python.sh: creating $venv"
    rm -rf "$venv"
    mkdir -p "$cache"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
fi
# The package itself changes with the checkout: reinstall it every run (no dependency changes).
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall "$package"

if [ -z "${WRIT_BIN:-}" ]; then
    (cd "$root" && cargo build --quiet --bin writ)
    export WRIT_BIN="$root/target/debug/writ"
fi

cd "$package"
exec "$venv/bin/pytest" -q -p no:cacheprovider tests
