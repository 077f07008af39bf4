#!/usr/bin/env bash
# MCP broker benchmark: the round trip of one tools/call of the reference
# filesystem server (list_allowed_directories), the client talking to the
# server directly and through cordon (cordon-shim mcp, the relay, the
# decision, two audit records per call, the server in its own sandbox).
# Both clients run inside the same cordon sandbox.
#
#   bench/mcp.sh          # CALLS=500 by default; needs node and the
#                         # server installed as .ci/run installs it
set -euo pipefail
CALLS=${CALLS:-500}
repo=$(cd "$(dirname "$0")/.." && pwd)
server=${CORDON_TEST_MCP_FS:-/usr/local/lib/cordon-test/mcp-fs/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js}
[ -f "$server" ] || { echo "bench/mcp.sh: $server is missing (see .ci/run)" >&2; exit 1; }
root=$(dirname "$(dirname "$(dirname "$(dirname "$server")")")")

(cd "$repo" && cargo build --release -j"${JOBS:-1}" --workspace --bins)
dir=$(mktemp -d /tmp/cordon-bench-mcp-XXXX)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
mkdir "$dir/ws"
for b in cordon cordon-shim cordon-probe; do cp "$repo/target/release/$b" "$dir/"; done
cat >"$dir/bench.toml" <<TOML
[profile]
name = "bench-mcp"
[filesystem]
read = ["/etc/ld.so.cache", "{workspace}", "$root", "/usr/share", "/etc/ssl"]
write = ["/dev/null"]
exec = ["$dir/cordon-probe", "/usr/bin/node", "/usr/lib", { path = "/usr/lib64", optional = true }, { path = "/lib64", optional = true }]
[mcp.fs]
command = ["/usr/bin/node", "$server", "{workspace}"]
[mcp.fs.sandbox]
read = ["$root"]
[mcp.fs.tools.list_allowed_directories]
allow = [{}]
TOML
export CORDON_AUDIT="$dir/audit.jsonl"
cd "$dir"
echo "== one tools/call round trip, $CALLS calls each, inside one sandbox ($(uname -r), $(nproc) cores)"
echo -n "direct to the server:   "
"$dir/cordon" run --profile bench.toml --workspace ws -- "$dir/cordon-probe" mcp-bench "$CALLS" /usr/bin/node "$server" "$dir/ws"
echo -n "through cordon (relay): "
"$dir/cordon" run --profile bench.toml --workspace ws -- "$dir/cordon-probe" mcp-bench "$CALLS" cordon-shim mcp fs
