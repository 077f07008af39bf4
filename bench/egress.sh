#!/usr/bin/env bash
# Egress benchmark, side by side in one run: the same client (the probe,
# inside a cordon sandbox) downloads from the same local server (the probe's
# `sink`, outside) and times fresh connections to their first byte:
#   direct:  a profile with connect_tcp = [PORT] (no proxy);
#   proxied: a profile with allow_hosts = ["127.0.0.1:PORT"]: its own network
#            namespace, every connection a CONNECT through cordon's proxy.
# Also the same client with no sandbox at all, as the floor.
#
#   bench/egress.sh          # MIB=2048 ROUNDS=500 by default
set -euo pipefail
MIB=${MIB:-2048}
ROUNDS=${ROUNDS:-500}
repo=$(cd "$(dirname "$0")/.." && pwd)
(cd "$repo" && cargo build --release -j"${JOBS:-1}" --workspace --bins)
dir=$(mktemp -d /tmp/cordon-bench-egress-XXXX)
chmod 755 "$dir"
for b in cordon cordon-shim cordon-probe; do cp "$repo/target/release/$b" "$dir/"; done
sink_out="$dir/sink.out"
"$dir/cordon-probe" sink 0 >"$sink_out" &
sink=$!
trap 'kill $sink 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q '^ready' "$sink_out" 2>/dev/null && break; sleep 0.05; done
port=$(awk '/^ready/ {print $2}' "$sink_out")
profile() {
    cat <<TOML
[profile]
name = "bench-egress"
[filesystem]
read = ["/etc/ld.so.cache"]
exec = ["$dir/cordon-probe", "/usr/lib", { path = "/usr/lib64", optional = true }, { path = "/lib64", optional = true }]
[network]
$1
TOML
}
profile "connect_tcp = [$port]" >"$dir/direct.toml"
profile "allow_hosts = [\"127.0.0.1:$port\"]" >"$dir/proxied.toml"
export CORDON_AUDIT="$dir/audit.jsonl"
cd "$dir"
echo "== egress: $MIB MiB download and $ROUNDS fresh connections to first byte ($(uname -r), $(nproc) cores)"
printf '%-34s %s\n' "no sandbox, direct" "$(./cordon-probe egress-bench 127.0.0.1 "$port" "$MIB" "$ROUNDS")"
printf '%-34s %s\n' "cordon, connect_tcp (direct)" "$(./cordon run --profile direct.toml -- ./cordon-probe egress-bench 127.0.0.1 "$port" "$MIB" "$ROUNDS")"
printf '%-34s %s\n' "cordon, allow_hosts (proxied)" "$(./cordon run --profile proxied.toml -- ./cordon-probe egress-bench 127.0.0.1 "$port" "$MIB" "$ROUNDS")"
records=$(grep -c '"kind":"connect"' "$dir/audit.jsonl" || true)
echo "audit records of proxied connections: $records (expected $((ROUNDS + 1)))"
if command -v hyperfine >/dev/null; then
    echo "== start-up: the same sandbox without and with host rules (a network namespace, loopback up, the proxy)"
    hyperfine -N --warmup 20 --runs "${STARTS:-300}" --style basic \
        -n "connect_tcp (no namespace)" "./cordon run --profile direct.toml -- ./cordon-probe exit 0" \
        -n "allow_hosts (namespace + proxy)" "./cordon run --profile proxied.toml -- ./cordon-probe exit 0" 2>&1 |
        grep -E "^(Benchmark|  Time)|faster|±"
fi
