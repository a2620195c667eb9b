#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 600), one after another, and prints executions and
# crashes per target. Usage (from anywhere): tests/fuzz/run.sh [SECONDS] [TARGET...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly compiler: `cargo +nightly` when a
# nightly toolchain is installed, otherwise stable with RUSTC_BOOTSTRAP=1.
# Working corpora and seeds live under $CARGO_TARGET_DIR (or target/), never in the repository;
# crashes land in tests/fuzz/artifacts/<target>/ (each one becomes a regression test).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(dsl json_model zed fga_mod tuple_key spicedb_relationship api_body)
work="${CARGO_TARGET_DIR:-target}/fuzz-work"
mkdir -p "$work"
python3 tests/fuzz/seed.py "$work/seeds" >/dev/null
if rustup run nightly rustc --version >/dev/null 2>&1; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
# No sanitizer: Writ forbids unsafe code, so ASan buys little and costs half the speed;
# debug assertions (-a) keep integer-overflow checks on.
options=(--fuzz-dir tests/fuzz --sanitizer none --debug-assertions)
"${fuzz[@]}" build "${options[@]}"
for target in "${targets[@]}"; do
  mkdir -p "$work/corpus/$target"
  log="$work/$target.log"
  status=0
  "${fuzz[@]}" run "${options[@]}" "$target" "$work/corpus/$target" "$work/seeds/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  crashes=$(ls "tests/fuzz/artifacts/$target" 2>/dev/null | wc -l)
  echo "$target: ${seconds}s, executions $runs, exit $status, crash files $crashes"
done
