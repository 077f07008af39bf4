#!/usr/bin/env bash
# Broker benchmarks, each side by side in one run:
#  1. one brokered call (`echo hi` through cordon-shim) against the same
#     binary exec'd directly inside the same sandbox;
#  2. 50 concurrent sessions making 200 brokered calls each: errors, lost
#     output, throughput, and each supervisor's peak memory.
# The policy decision alone is `cargo bench -p cordon --bench policy`.
#
#   bench/broker.sh                 # RUNS=500 SESSIONS=50 CALLS=200 by default
set -euo pipefail
RUNS=${RUNS:-500}
SESSIONS=${SESSIONS:-50}
CALLS=${CALLS:-200}
repo=$(cd "$(dirname "$0")/.." && pwd)
command -v python3 >/dev/null || { echo "bench/broker.sh: python3 is needed" >&2; exit 1; }

(cd "$repo" && cargo build --release -j"${JOBS:-1}" --workspace --bins)
# `make release`: the same code statically linked (what to deploy).
(cd "$repo" && make release >/dev/null)
host=$(rustc -vV | sed -n 's/^host: //p')
dir=$(mktemp -d /tmp/cordon-bench-broker-XXXX)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
for b in cordon cordon-shim cordon-probe; do cp "$repo/target/release/$b" "$dir/"; done
mkdir -m 755 "$dir/static"
for b in cordon cordon-shim; do cp "$repo/target/$host/release/$b" "$dir/static/"; done
# The same program twice: a copy the agent may exec directly, and the
# system's, which the agent can only reach through the broker.
# (A few bytes appended: an exact copy would be refused as a way around
# the broker.)
{ cat /usr/bin/echo; printf '\0bench: a copy of echo\n'; } >"$dir/echo-direct"
chmod 755 "$dir/echo-direct"
cat >"$dir/bench.toml" <<TOML
[profile]
name = "bench"
[filesystem]
read = ["/etc/ld.so.cache"]
write = ["/dev/null"]
exec = ["$dir/cordon-probe", "$dir/echo-direct", "/usr/lib", { path = "/usr/lib64", optional = true }, { path = "/lib64", optional = true }]
[tools.echo]
path = "/usr/bin/echo"
allow = [["**"]]
TOML
# The same, with one env: secret injected into every call (redaction on).
sed -e 's/^name = "bench"/name = "bench-secret"/' "$dir/bench.toml" >"$dir/secret.toml"
cat >>"$dir/secret.toml" <<TOML
secrets = ["BENCH_TOKEN"]

[secrets.BENCH_TOKEN]
from = "env:BENCH_TOKEN"
TOML
export BENCH_TOKEN="bench-token-0123456789abcdef0123456789"
export CORDON_AUDIT="$dir/audit.jsonl"
cd "$dir"

echo "== 1. one call: direct exec vs brokered, $RUNS runs each, inside one sandbox ($(uname -r), $(nproc) cores)"
direct=$("$dir/cordon" run --profile bench.toml -- "$dir/cordon-probe" bench-exec "$RUNS" "$dir/echo-direct" hi)
brokered=$("$dir/cordon" run --profile bench.toml -- "$dir/cordon-probe" bench-exec "$RUNS" echo hi)
brokered_static=$("$dir/static/cordon" run --profile bench.toml -- "$dir/cordon-probe" bench-exec "$RUNS" echo hi)
python3 - "$direct" "$brokered" "$brokered_static" <<'PY'
import sys
def parse(s):
    return dict(kv.split("=") for kv in s.split())
rows = [("direct", parse(sys.argv[1])), ("brokered", parse(sys.argv[2])), ("brokered (static build)", parse(sys.argv[3]))]
base = int(rows[0][1]["median_us"])
for name, r in rows:
    m = int(r["median_us"])
    print(f"{name:<24} median {m/1000:7.3f} ms   p90 {int(r['p90_us'])/1000:7.3f} ms   +{(m-base)/1000:6.3f} ms   failures {r['failures']}")
print("target: a brokered call costs at most +1 ms at the median")
PY

echo
echo "== 3. a brokered call with one env: secret (and redaction) vs the same call without, $RUNS runs each"
plain=$("$dir/static/cordon" run --profile bench.toml -- "$dir/cordon-probe" bench-exec "$RUNS" echo hi)
secret=$("$dir/static/cordon" run --profile secret.toml -- "$dir/cordon-probe" bench-exec "$RUNS" echo hi)
python3 - "$plain" "$secret" <<'PY'
import sys
def parse(s):
    return dict(kv.split("=") for kv in s.split())
p, s = parse(sys.argv[1]), parse(sys.argv[2])
for name, r in (("no secret", p), ("one secret", s)):
    print(f"{name:<11} median {int(r['median_us'])/1000:7.3f} ms   p90 {int(r['p90_us'])/1000:7.3f} ms   failures {r['failures']}")
print(f"secret cost at the median: +{(int(s['median_us']) - int(p['median_us']))/1000:.3f} ms (target: at most +0.2 ms)")
PY
echo "(redaction throughput: cargo bench -p cordon --bench redact)"

echo
echo "== 2. $SESSIONS concurrent sessions x $CALLS brokered calls"
python3 - "$dir" "$SESSIONS" "$CALLS" <<'PY'
import os, re, subprocess, sys, time
d, sessions, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
env = dict(os.environ, CORDON_LOG="info")
start = time.monotonic()
procs = [subprocess.Popen([f"{d}/cordon", "run", "--profile", "bench.toml", "--",
                           f"{d}/cordon-probe", "bench-exec", str(calls), "echo", "hi"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=d)
         for _ in range(sessions)]
results = [(p.wait(), p.stdout.read().decode(), p.stderr.read().decode()) for p in procs]
wall = time.monotonic() - start
failures = sum(int(re.search(r"failures=(\d+)", out).group(1)) if "failures=" in out else calls
               for _, out, _ in results)
bad_exit = sum(1 for code, _, _ in results if code != 0)
rss = [int(m.group(1)) for _, _, err in results for m in [re.search(r"peak_rss_kb=(\d+)", err)] if m]
total = sessions * calls
print(f"sessions {sessions}, calls {total}, failed calls {failures}, sessions with non-zero exit {bad_exit}")
print(f"wall {wall:.2f} s, {total / wall:.0f} calls/s")
if rss:
    print(f"supervisor peak RSS per session: min {min(rss)} KiB, median {sorted(rss)[len(rss)//2]} KiB, max {max(rss)} KiB")
PY
records=$(wc -l <"$dir/audit.jsonl")
"$dir/cordon" audit verify "$dir/audit.jsonl"
echo "audit records written: $records"
