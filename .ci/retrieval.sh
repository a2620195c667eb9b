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
# shellcheck source=venv.sh
source "$root/.ci/venv.sh"
venv="$(ci_venv retrieval "$requirements")"
# The package itself changes with the checkout: reinstall it every run (no dependency changes).
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall "$package"

ci_writ_bin "$root"

cd "$package"
# Chroma and the OpenFGA SDK send no telemetry from CI.
export ANONYMIZED_TELEMETRY=False
exec "$venv/bin/pytest" -q -rsx -p no:cacheprovider tests_retrieval
