#!/usr/bin/env bash
# Before and after, side by side in one run: the same measurements against
# a baseline build of cordon (default: 9d66fba, main before the session
# launcher and broker hardening of issues 14 and 18) and against this
# checkout, on the same machine at the same time. Both are built as
# deployed (`make release`: statically linked cordon and cordon-shim).
#
#  1. start-up: `cordon run -- /bin/true` (minimal profile) for both
#     builds, next to bare /bin/true and bubblewrap (one hyperfine run);
#  2. one brokered call (`echo hi` through the shim) against the same
#     binary exec'd directly, in each build's sandbox, rounds alternating
#     between the builds;
#  3. socket calls from inside the sandbox: a TCP connect to a granted
#     port and a pathname Unix socket connect, each build (the baseline
#     let both through unexamined; this checkout decides each one).
#
#   bench/compare.sh                 # BASE=9d66fba RUNS=300 CALLS=500 ROUNDS=3
#   BASE=<rev> bench/compare.sh
set -euo pipefail
BASE=${BASE:-9d66fba}
RUNS=${RUNS:-300}
WARMUP=${WARMUP:-30}
CALLS=${CALLS:-500}
ROUNDS=${ROUNDS:-3}
CONNECTS=${CONNECTS:-2000}
repo=$(cd "$(dirname "$0")/.." && pwd)
for t in hyperfine bwrap python3; do
    command -v "$t" >/dev/null || { echo "bench/compare.sh: $t is needed (apt-get install -y hyperfine bubblewrap python3)" >&2; exit 1; }
done
host=$(rustc -vV | sed -n 's/^host: //p')

dir=$(mktemp -d /tmp/cordon-compare-XXXX)
base_src="$dir/base-src"
cleanup() {
    git -C "$repo" worktree remove --force "$base_src" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
chmod 755 "$dir"

echo "== building the baseline ($BASE) and this checkout ($(git -C "$repo" rev-parse --short HEAD)) with make release"
git -C "$repo" worktree add --detach "$base_src" "$BASE" >/dev/null
# The baseline keeps a target directory of its own, kept between runs.
base_target="$repo/target/compare-base-$(git -C "$repo" rev-parse --short "$BASE")"
(cd "$base_src" && CARGO_TARGET_DIR="$base_target" make release HOST="$host" >/dev/null)
(cd "$repo" && make release HOST="$host" >/dev/null && cargo build --release -j"${JOBS:-1}" -p cordon-tests --bins)
mkdir -m 755 "$dir/base" "$dir/new"
for b in cordon cordon-shim; do
    cp "$base_target/$host/release/$b" "$dir/base/"
    cp "$repo/target/$host/release/$b" "$dir/new/"
done
# One probe for both (it only measures from inside).
cp "$repo/target/release/cordon-probe" "$dir/"
cp "$repo/profiles/minimal.toml" "$dir/"
# The same program twice: a copy the agent may exec directly (a few bytes
# appended, or cordon would rightly refuse it as a copy of the tool), and
# the system's, which the agent reaches only through the broker.
{ cat /usr/bin/echo; printf '\0bench: a copy of echo\n'; } >"$dir/echo-direct"
chmod 755 "$dir/echo-direct"
chmod -R a+rX "$dir"

cat >"$dir/call.toml" <<TOML
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

export CORDON_AUDIT="$dir/audit.jsonl"
cd "$dir"
for b in base new; do "$dir/$b/cordon" run --profile minimal.toml -- /bin/true; done

echo
echo "== 1. start-up: $(uname -r), $(nproc) cores, $RUNS runs, $WARMUP warm-up"
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$dir/startup.json" \
    --command-name bare '/bin/true' \
    --command-name "cordon before" "$dir/base/cordon run --profile $dir/minimal.toml -- /bin/true" \
    --command-name "cordon after" "$dir/new/cordon run --profile $dir/minimal.toml -- /bin/true" \
    --command-name bwrap 'bwrap --ro-bind / / /bin/true' \
    >"$dir/startup.log" 2>&1 || { cat "$dir/startup.log" >&2; exit 1; }
python3 - "$dir/startup.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
base = next(r for r in res if r["command"] == "bare")["median"]
print(f"{'command':<14} {'median ms':>10} {'mean ms':>9} {'stddev':>8} {'over bare ms':>13}")
for r in res:
    m = r["median"]
    print(f"{r['command']:<14} {m*1e3:>10.3f} {r['mean']*1e3:>9.3f} {r['stddev']*1e3:>8.3f} {(m-base)*1e3:>+13.3f}")
print("target: cordon at most +1.5 ms over bare /bin/true")
PY

echo
echo "== 2. one call, direct vs brokered, $CALLS calls per measurement, $ROUNDS rounds alternating builds"
results="$dir/calls.txt"
: >"$results"
for round in $(seq "$ROUNDS"); do
    for b in base new; do
        d=$("$dir/$b/cordon" run --profile call.toml -- "$dir/cordon-probe" bench-exec "$CALLS" "$dir/echo-direct" hi)
        k=$("$dir/$b/cordon" run --profile call.toml -- "$dir/cordon-probe" bench-exec "$CALLS" echo hi)
        echo "$b direct $d" >>"$results"
        echo "$b brokered $k" >>"$results"
    done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    build, kind, *kv = line.split()
    r = dict(x.split("=", 1) for x in kv)
    assert r["failures"] == "0", line
    rows.setdefault((build, kind), []).append([int(s) for s in r["samples_us"].split(",")])
def med(build, kind):
    return statistics.median(s for run in rows[(build, kind)] for s in run) / 1000
print(f"{'build':<8} {'direct ms':>10} {'brokered ms':>12} {'call cost ms':>13}")
for b, name in (("base", "before"), ("new", "after")):
    d, k = med(b, "direct"), med(b, "brokered")
    print(f"{name:<8} {d:>10.3f} {k:>12.3f} {k-d:>+13.3f}")
print("target: a brokered call costs at most +1 ms at the median")
PY

echo
echo "== 3. socket calls from inside the sandbox, $CONNECTS each"
python3 - "$dir" "$CONNECTS" <<'PY'
import os, socket, subprocess, sys, threading
d, n = sys.argv[1], int(sys.argv[2])
tcp = socket.socket(); tcp.bind(("127.0.0.1", 0)); tcp.listen(512)
port = tcp.getsockname()[1]
upath = os.path.join(d, "bench.sock")
unix = socket.socket(socket.AF_UNIX); unix.bind(upath); unix.listen(512)
os.chmod(upath, 0o777)
def drain(s):
    while True:
        try:
            c, _ = s.accept(); c.close()
        except OSError:
            return
for s in (tcp, unix):
    threading.Thread(target=drain, args=(s,), daemon=True).start()
common = f"""[profile]
name = "sockets"
[filesystem]
read = ["/etc/ld.so.cache", "{d}"]
write = ["/dev/null"]
exec = ["{d}/cordon-probe", "/usr/lib", {{ path = "/usr/lib64", optional = true }}, {{ path = "/lib64", optional = true }}]
[network]
connect_tcp = [{port}]
"""
open(f"{d}/sock-base.toml", "w").write(common)
open(f"{d}/sock-new.toml", "w").write(common + f'unix = ["{upath}"]\n')
def run(build, kind, target):
    out = subprocess.run([f"{d}/{build}/cordon", "run", "--profile", f"{d}/sock-{build}.toml", "--",
                          f"{d}/cordon-probe", "bench-connect", kind, target, str(n)],
                         capture_output=True, text=True, cwd=d)
    r = dict(kv.split("=", 1) for kv in out.stdout.split())
    assert r.get("failures") == "0", (build, kind, out.stdout, out.stderr)
    return int(r["median_us"])
print(f"{'call':<22} {'before us':>10} {'after us':>9} {'added us':>9}")
for kind, target in (("tcp", str(port)), ("unix", upath)):
    before, after = run("base", kind, target), run("new", kind, target)
    print(f"{kind + ' connect':<22} {before:>10} {after:>9} {after-before:>+9}")
PY
