# Shared by the .ci scripts that run Python tests (source it): a venv per requirements file, cached
# under $WRIT_CI_CACHE (default ~/.cache/writ-ci) and keyed by the file's hash and the Python
# version, so a rerun installs nothing and a changed pin gets a fresh venv; and the `writ` binary.

# ci_venv NAME REQUIREMENTS: prints the path of venv-NAME-<key>, creating it first if it has no
# pytest yet. Everything but the path goes to stderr, so `venv="$(ci_venv ...)"` captures it alone;
# each step returns on failure itself, as `set -e` does not reach into a command substitution.
ci_venv() {
    local name="$1" requirements="$2"
    local cache="${WRIT_CI_CACHE:-$HOME/.cache/writ-ci}" python="${PYTHON:-python3}"
    local key venv started
    [ -f "$requirements" ] || { echo "$name: no $requirements" >&2; return 1; }
    key="$( (cat "$requirements"; "$python" --version) | sha256sum | cut -c1-16)"
    venv="$cache/venv-$name-$key"
    if [ ! -x "$venv/bin/pytest" ]; then
        echo "$name: creating $venv" >&2
        rm -rf "$venv" && mkdir -p "$cache" || return
        started=$(date +%s)
        "$python" -m venv "$venv" >&2 || return
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2 || return
        echo "$name: venv created in $(( $(date +%s) - started )) s" >&2
    fi
    printf '%s\n' "$venv"
}

# ci_writ_bin ROOT: sets and exports WRIT_BIN to `writ` built with `cargo build` in ROOT, unless
# WRIT_BIN is already set.
ci_writ_bin() {
    if [ -z "${WRIT_BIN:-}" ]; then
        (cd "$1" && cargo build --quiet --bin writ)
        WRIT_BIN="${CARGO_TARGET_DIR:-$1/target}/debug/writ"
    fi
    export WRIT_BIN
}
