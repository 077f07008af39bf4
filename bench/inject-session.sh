#!/usr/bin/env bash
# What a proxy-delivered secret adds to a session's start and end:
# `cordon run -- /bin/true` with profiles/minimal.toml, the same with host
# rules (its own network namespace and egress proxy, no secret), and the
# same with one `deliver = "proxy"` secret the agent holds (`[environment]
# secrets`: the session CA is made, its bundle written, the agent's proxy
# gets an injector). /bin/true sends no request, so the value is never
# fetched: this is the fixed cost of having the secret.
#
#   RUNS=200 bench/inject-session.sh      # release build, hyperfine -N
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
runs=${RUNS:-200}
# cordon-shim too: a session with a proxy secret has a broker.
cargo build --release -p cordon --bin cordon -p cordon-shim --bin cordon-shim 2>/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp profiles/minimal.toml "$dir/plain.toml"
hosts='
[network]
allow_hosts = ["api.example.com:443"]
'
{ cat profiles/minimal.toml; echo "$hosts"; } >"$dir/hosts.toml"
{
    cat profiles/minimal.toml
    echo "$hosts"
    cat <<'EOF'
[environment]
secrets = ["API_KEY"]

[secrets.API_KEY]
from = "env:BENCH_API_KEY"
deliver = "proxy"
hosts = ["api.example.com:443"]
format = "Bearer {}"
EOF
} >"$dir/secret.toml"
export CORDON_AUDIT="$dir/audit.jsonl" BENCH_API_KEY=bench-value
cordon=$repo/target/release/cordon
hyperfine -N --warmup 20 --runs "$runs" --export-json "$dir/session.json" \
    -n plain "$cordon run --profile $dir/plain.toml -- /bin/true" \
    -n host-rules "$cordon run --profile $dir/hosts.toml -- /bin/true" \
    -n proxy-secret "$cordon run --profile $dir/secret.toml -- /bin/true"
python3 - "$dir/session.json" <<'EOF'
import json, statistics, sys
for r in json.load(open(sys.argv[1]))["results"]:
    t = sorted(r["times"])
    p = lambda q: t[min(len(t) - 1, int(q * len(t)))] * 1000
    print(f'{r["command"]:>13}: median {statistics.median(t) * 1000:.2f} ms, p90 {p(0.9):.2f} ms')
EOF
