#!/usr/bin/env bash
# The Python client's tests (clients/python): a venv keyed by the pinned requirements, the package
# installed from the checkout, `writ` built with `cargo build`, and pytest against real servers.
# Exits non-zero on any failure.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
package="$root/clients/python"
requirements="$package/requirements-test.txt"
# shellcheck source=venv.sh
source "$root/.ci/venv.sh"
venv="$(ci_venv python "$requirements")"
# The package itself changes with the checkout: reinstall it every run (no dependency changes).
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall "$package"

ci_writ_bin "$root"

cd "$package"
exec "$venv/bin/pytest" -q -p no:cacheprovider tests
