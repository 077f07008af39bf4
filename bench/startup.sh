#!/usr/bin/env bash
# Start-up cost of cordon next to bare /bin/true and bubblewrap, in one
# hyperfine run (so all commands see the same machine state).
#
#   bench/startup.sh              # as root: also installs hyperfine/bwrap
#   bench/startup.sh --user NAME  # as root: additionally run as user NAME
#   RUNS=300 WARMUP=30 bench/startup.sh
#
# Builds cordon with `cargo build --release`, copies the binary and
# profiles/minimal.toml to a world-readable temp dir (mode 755) so an
# unprivileged user can run them, runs hyperfine with -N (no shell), exports
# JSON, and prints each median and its overhead over bare /bin/true.
set -euo pipefail

RUNS=${RUNS:-300}
WARMUP=${WARMUP:-30}
AS_USER=""
if [[ ${1:-} == --user ]]; then
    AS_USER=${2:?--user needs a user name}
fi

repo=$(cd "$(dirname "$0")/.." && pwd)

need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v bwrap >/dev/null || need+=(bubblewrap)
if ((${#need[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
    else
        echo "bench/startup.sh: missing ${need[*]}; install them (e.g. sudo apt-get install -y ${need[*]})" >&2
        exit 1
    fi
fi
command -v python3 >/dev/null || { echo "bench/startup.sh: python3 is needed to read hyperfine's JSON" >&2; exit 1; }

(cd "$repo" && cargo build --release -j"${JOBS:-1}" -p cordon)
# The same code linked statically (glibc, crt-static): no dynamic loader
# at start-up. An explicit --target keeps RUSTFLAGS off build scripts and
# proc-macros, which cannot be static.
host=$(rustc -vV | sed -n 's/^host: //p')
(cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -j"${JOBS:-1}" -p cordon --target "$host")

dir=$(mktemp -d /tmp/cordon-bench-XXXX)
trap 'rm -rf "$dir"' EXIT
cp "$repo/target/release/cordon" "$repo/profiles/minimal.toml" "$dir/"
cp "$repo/target/$host/release/cordon" "$dir/cordon-static"
chmod 755 "$dir" "$dir/cordon" "$dir/cordon-static"
chmod 644 "$dir/minimal.toml"

bench() { # bench LABEL JSON [runuser prefix...]
    local label=$1 json=$2
    shift 2
    echo
    echo "== $label: $(uname -r), $(nproc) cores, $RUNS runs, $WARMUP warm-up"
    # A throwaway workspace the user can write (cordon's default is the cwd).
    "$@" hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" \
        --command-name bare '/bin/true' \
        --command-name cordon "$dir/cordon run --profile $dir/minimal.toml -- /bin/true" \
        --command-name cordon-static "$dir/cordon-static run --profile $dir/minimal.toml -- /bin/true" \
        --command-name bwrap 'bwrap --ro-bind / / /bin/true' \
        --command-name bwrap-pid 'bwrap --unshare-pid --proc /proc --dev /dev --ro-bind / / /bin/true' \
        >"$json.log" 2>&1 || { cat "$json.log" >&2; return 1; }
    python3 - "$json" <<'EOF'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
base = next(r for r in res if r["command"] == "bare")["median"]
print(f"{'command':<13} {'median ms':>10} {'mean ms':>9} {'stddev':>8} {'over bare ms':>13} {'ratio':>6}")
for r in res:
    m = r["median"]
    print(f"{r['command']:<13} {m*1e3:>10.3f} {r['mean']*1e3:>9.3f} {r['stddev']*1e3:>8.3f} "
          f"{(m-base)*1e3:>+13.3f} {m/base:>6.2f}")
EOF
}

# Run from the temp dir: cordon's workspace defaults to the current directory.
cd "$dir"
# Every run appends its session records to an audit log (part of the cost
# measured); keep it in the temp dir rather than the user's real log.
export CORDON_AUDIT="$dir/audit-root.jsonl"
# Check each command once, so a failure is not hidden in hyperfine's noise.
"$dir/cordon" run --profile "$dir/minimal.toml" -- /bin/true

bench "as $(id -un)" "$dir/root.json"
if [[ -n $AS_USER ]]; then
    chown "$AS_USER" "$dir"
    export CORDON_AUDIT="$dir/audit-user.jsonl"
    runuser -u "$AS_USER" -- env CORDON_AUDIT="$CORDON_AUDIT" "$dir/cordon" run --profile "$dir/minimal.toml" -- /bin/true
    bench "as $AS_USER (unprivileged: user namespace)" "$dir/user.json" runuser -u "$AS_USER" -- env CORDON_AUDIT="$CORDON_AUDIT"
fi
if [[ -n ${KEEP_JSON:-} ]]; then
    cp "$dir"/*.json "$KEEP_JSON"/
fi
