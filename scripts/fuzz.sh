#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 20), starting from the
# seed corpora in fuzz/seeds/. Exits non-zero on the first crash; the
# crashing input is left in fuzz/artifacts/<target>/ (turn it into a
# regression test, then add it to fuzz/seeds/<target>/).
#
# This machine has only the stable toolchain: cargo-fuzz's -Z flags are
# allowed with RUSTC_BOOTSTRAP=1, and targets are built without a
# sanitizer (-s none: libFuzzer's coverage guidance, no ASan), which suits
# code that is safe Rust (a panic is a crash either way).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-20}
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in profile protocol pattern redact egress subset canonical; do
    mkdir -p "fuzz/corpus/$t"
    echo "== fuzz $t (${SECONDS_PER_TARGET}s)"
    if ! cargo fuzz run -s none "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 >"$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz target $t crashed; the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    grep -E "^Done" "$log"
done
