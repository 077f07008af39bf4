#!/usr/bin/env bash
# Load with a flooding agent, side by side in one run: per-call latency of
# SESSIONS concurrent sessions x CALLS brokered calls each (`echo hi`
# through cordon-shim), first alone ("idle"), then with one hostile session
# flooding its own broker the whole time:
#   mixed:      8 threads of forged calls as fast as they are answered,
#               frames announcing 4 GiB, 200 idle connections held open;
#   calls-only: 16 threads of forged calls, nothing else (its calls are
#               not refused for lack of slots, so it costs the most CPU);
#   conns-only: 1000 idle connections held open, and 4 GiB frames;
# and, for reference, an agent that never calls the broker but spins two
# threads (what any CPU-hungry agent costs its neighbours on this machine).
# Every call's wall time, pooled over all normal sessions: median and p99.
# Also checks that no normal call failed and that the audit log verifies.
#
#   bench/load.sh                  # SESSIONS=100 CALLS=200 by default
set -euo pipefail
SESSIONS=${SESSIONS:-100}
CALLS=${CALLS:-200}
repo=$(cd "$(dirname "$0")/.." && pwd)
command -v python3 >/dev/null || { echo "bench/load.sh: python3 is needed" >&2; exit 1; }

# The static build (`make release`, what to deploy) and the release probe.
(cd "$repo" && make release >/dev/null && cargo build --release -j"${JOBS:-1}" -p cordon-tests --bin cordon-probe)
host=$(rustc -vV | sed -n 's/^host: //p')
dir=$(mktemp -d /tmp/cordon-bench-load-XXXX)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
for b in cordon cordon-shim; do cp "$repo/target/$host/release/$b" "$dir/"; done
cp "$repo/target/release/cordon-probe" "$dir/"
profile() { # name, extra
    cat <<TOML
[profile]
name = "$1"
[filesystem]
read = ["/etc/ld.so.cache"]
write = ["/dev/null"]
exec = ["$dir/cordon-probe", "/usr/lib", { path = "/usr/lib64", optional = true }, { path = "/lib64", optional = true }]
[tools.echo]
path = "/usr/bin/echo"
allow = [["**"]]
$2
TOML
}
profile load "" >"$dir/load.toml"
profile flooder $'[divergence]\nmax_denials = 1000000' >"$dir/flooder.toml"
cd "$dir"

echo "== $SESSIONS sessions x $CALLS brokered calls, idle vs beside a flooding agent ($(uname -r), $(nproc) cores, static build)"
python3 - "$dir" "$SESSIONS" "$CALLS" <<'PY'
import os, subprocess, sys, time
d, sessions, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def run(label, flood):
    audit = f"{d}/audit-{label}.jsonl"
    env = dict(os.environ, CORDON_AUDIT=audit, CORDON_LOG="warn")
    flooder = None
    if flood:
        verb = ["burn", "2"] if flood == ["burn"] else ["flood-broker", "echo", *flood]
        flooder = subprocess.Popen([f"{d}/cordon", "run", "--profile", "flooder.toml", "--",
                                    f"{d}/cordon-probe", *verb],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=env, cwd=d)
        assert flooder.stdout.readline().strip() == b"flooding"
        time.sleep(1)  # let the flood reach its stride
    start = time.monotonic()
    procs = [subprocess.Popen([f"{d}/cordon", "run", "--profile", "load.toml", "--",
                               f"{d}/cordon-probe", "bench-exec", str(calls), "echo", "hi"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=d)
             for _ in range(sessions)]
    outs = [(p.wait(), p.stdout.read().decode()) for p in procs]
    wall = time.monotonic() - start
    summary = ""
    if flooder:
        flooder.stdin.close()
        summary = flooder.stdout.read().decode().strip()
        flooder.wait()
    samples, failures, bad = [], 0, 0
    for code, out in outs:
        bad += code != 0
        kv = dict(f.split("=", 1) for f in out.split())
        failures += int(kv.get("failures", calls))
        samples += [int(x) for x in kv.get("samples_us", "").split(",") if x]
    samples.sort()
    q = lambda p: samples[min(len(samples) - 1, len(samples) * p // 100)] / 1000
    v = subprocess.run([f"{d}/cordon", "audit", "verify", audit], capture_output=True, text=True)
    return dict(label=label, n=len(samples), failures=failures, bad=bad, median=q(50), p90=q(90), p99=q(99),
                wall=wall, verify=v.returncode == 0, summary=summary)

rows = [run("idle", None), run("flood-mixed", ["8", "200"]),
        run("flood-calls-only", ["16", "0", "no-oversized"]), run("flood-conns-only", ["0", "1000"]),
        run("cpu-burner", ["burn"])]
idle = rows[0]
print(f"{'run':<18} {'calls':>6} {'failed':>6} {'median':>9} {'p90':>9} {'p99':>9} {'x idle (med/p99)':>17} {'wall':>7}  audit")
for r in rows:
    print(f"{r['label']:<18} {r['n']:>6} {r['failures']:>6} {r['median']:>7.3f}ms {r['p90']:>7.3f}ms {r['p99']:>7.3f}ms"
          f" {r['median']/idle['median']:>7.2f} / {r['p99']/idle['p99']:<6.2f} {r['wall']:>6.1f}s  {'verifies' if r['verify'] else 'BROKEN'}")
for r in rows[1:]:
    print(f"{r['label']}: {r['summary']}")
print("target: normal sessions keep their median and p99 within 2x of idle")
PY
