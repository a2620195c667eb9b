#!/usr/bin/env bash
# The Python client's permission-aware retrieval tests (clients/python/tests_retrieval): a venv
# keyed by requirements-retrieval.txt (Qdrant, Chroma, LanceDB, LangChain, LlamaIndex,
# auth0-ai-langchain), the package installed from the checkout, `writ` built with `cargo build`
# unless WRIT_BIN is set, and pytest against a real `writ serve` and real local vector stores.
# Exits non-zero on any failure. Tests of routes the server lacks are skipped with the reason.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
package="$root/clients/python"
requirements="$package/requirements-retrieval.txt"
cache="${WRIT_CI_CACHE:-$HOME/.cache/writ-ci}"
python="${PYTHON:-python3}"

key="$( (cat "$requirements"; "$python" --version) | sha256sum | cut -c1-16)"
venv="$cache/venv-retrieval-$key"
if [ ! -x "$venv/bin/pytest" ]; then
    echo "retrieval.sh: creating $venv"
    rm -rf "$venv"
    mkdir -p "$cache"
    started=$(date +%s)
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "retrieval.sh: venv created in $(( $(date +%s) - started )) s"
fi
# The package itself changes with the checkout: reinstall it every run (no dependency changes).
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall "$package"

if [ -z "${WRIT_BIN:-}" ]; then
    (cd "$root" && cargo build --quiet --bin writ)
    export WRIT_BIN="$root/target/debug/writ"
fi

cd "$package"
# Chroma and the OpenFGA SDK send no telemetry from CI.
export ANONYMIZED_TELEMETRY=False
exec "$venv/bin/pytest" -q -rsx -p no:cacheprovider tests_retrieval
