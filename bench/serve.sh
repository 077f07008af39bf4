#!/usr/bin/env bash
# `cordon serve` figures: daemon memory with 0, 10 and 100 idle sessions,
# and brokered calls per second across 100 sessions.
#
#   bench/serve.sh                      # release build, 100 agents x 200 calls
#   AGENTS=20 CALLS=50 bench/serve.sh   # smaller
#   SIZES="0 10 100" bench/serve.sh
#
# Memory: the daemon's own VmRSS, and the total over the daemon and every
# session process (each session's `cordon run`, its sandbox init and the
# agent), both as RSS (shared pages counted once per process, so an
# overestimate) and as PSS (shared pages divided among their users: what
# the sessions really cost together).
#
# Calls: every agent runs a loop of CALLS brokered calls of `tp` (the real
# /usr/bin/true, run under its own tool sandbox per call), all agents at
# once; the figure is allowed calls recorded in the audit log divided by
# the wall time from the first call record to the last. Each call is a
# full round trip: shim exec, decision, audit record, tool sandbox, tool
# run, exit status back.
set -euo pipefail

AGENTS=${AGENTS:-100}
CALLS=${CALLS:-200}
SIZES=${SIZES:-"0 10 100"}
repo=$(cd "$(dirname "$0")/.." && pwd)
host=$(rustc -vV | sed -n 's/^host: //p')

bin=${BIN:-"$repo/target/$host/release"}
if [[ ! -x $bin/cordon || ! -x $bin/cordon-shim ]]; then
    (cd "$repo" && make release)
fi
work=$(mktemp -d /tmp/cordon-bench-serve.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cp "$bin/cordon" "$bin/cordon-shim" "$work/"

python3 - "$work" "$AGENTS" "$CALLS" "$SIZES" <<'PY'
import json, os, signal, subprocess, sys, time

work, agents, calls, sizes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), [int(s) for s in sys.argv[4].split()]
cordon = os.path.join(work, "cordon")

def profile(path, tool):
    extra = ""
    if tool:
        extra = '\n[tools.tp]\npath = "/usr/bin/true"\nallow = [["**"]]\nmax_calls = 1000000\n'
    with open(path, "w") as f:
        f.write('[profile]\nname = "bench"\n\n[filesystem]\nread = ["/etc/ld.so.cache"]\n'
                'write = ["/dev/null"]\nexec = ["/usr/bin/dash", "/usr/bin/sleep", "/usr/lib", "/usr/lib64", "/lib64"]\n' + extra)

def config(d, n, argv, restart):
    with open(os.path.join(d, "cordon.toml"), "w") as f:
        f.write(f'[audit]\npath = "{d}/audit.jsonl"\n\n[control]\nsocket = "{d}/run/control.sock"\n\n')
        for i in range(n):
            f.write(f'[[agent]]\nname = "a{i}"\nprofile = "{d}/p.toml"\ncommand = {json.dumps(argv)}\nrestart = "{restart}"\n\n')

def ps(d):
    out = subprocess.run([cordon, "ps", "--json", "--socket", f"{d}/run/control.sock"], capture_output=True, text=True)
    return json.loads(out.stdout)["agents"] if out.returncode == 0 else None

def start(d):
    log = open(os.path.join(d, "serve.log"), "w")
    p = subprocess.Popen([cordon, "serve", "--config", f"{d}/cordon.toml"], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    for _ in range(1000):
        if os.path.exists(f"{d}/run/control.sock"):
            return p
        time.sleep(0.01)
    raise SystemExit("the daemon did not start: " + open(os.path.join(d, "serve.log")).read())

def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)
    return p.returncode

def status_kb(pid, key):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0

def pss_kb(pid):
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0

def tree(root):
    children = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            stat = open(f"/proc/{e}/stat").read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(e))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out

print(f"cordon serve bench on {os.cpu_count()} cores, kernel {os.uname().release}")
print()
print("memory (idle sessions: each agent is `sleep`)")
print(f"{'sessions':>8}  {'daemon RSS':>10}  {'daemon PSS':>10}  {'processes':>9}  {'total RSS':>10}  {'total PSS':>10}")
for n in sizes:
    d = os.path.join(work, f"mem{n}")
    os.makedirs(d)
    profile(f"{d}/p.toml", False)
    config(d, n, ["/usr/bin/sleep", "100000"], "no")
    p = start(d)
    deadline = time.time() + 300
    while time.time() < deadline:
        a = ps(d)
        if a is not None and sum(1 for x in a if x["state"] == "running" and x["session"]) == n:
            break
        time.sleep(0.2)
    else:
        raise SystemExit(f"{n} sessions did not all start")
    time.sleep(2)
    pids = tree(p.pid)
    rss = status_kb(p.pid, "VmRSS")
    total_rss = sum(status_kb(x, "VmRSS") for x in pids)
    total_pss = sum(pss_kb(x) for x in pids)
    print(f"{n:>8}  {rss/1024:>8.1f}MB  {pss_kb(p.pid)/1024:>8.1f}MB  {len(pids):>9}  {total_rss/1024:>8.1f}MB  {total_pss/1024:>8.1f}MB")
    hwm = status_kb(p.pid, "VmHWM")
    rc = stop(p)
    if rc != 0:
        raise SystemExit(f"daemon exit {rc}")
print()
print(f"calls: {agents} agents x {calls} brokered calls each, all at once")
d = os.path.join(work, "calls")
os.makedirs(d)
profile(f"{d}/p.toml", True)
script = f"i=0; while [ $i -lt {calls} ]; do tp || exit 9; i=$((i+1)); done"
config(d, agents, ["/usr/bin/dash", "-c", script], "no")
t0 = time.time()
p = start(d)
deadline = time.time() + 3600
while time.time() < deadline:
    a = ps(d)
    if a is not None and all(x["state"] == "stopped" for x in a):
        break
    time.sleep(0.5)
wall = time.time() - t0
hwm = status_kb(p.pid, "VmHWM")
rc = stop(p)
bad = [x for x in a if x["last_exit"] != "exit 0"]
allowed, times = 0, []
for line in open(f"{d}/audit.jsonl"):
    r = json.loads(line)
    if r.get("kind") == "call":
        times.append(r["time"])
        if r.get("decision") == "allow":
            allowed += 1
from datetime import datetime
def ts(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
span = ts(max(times)) - ts(min(times)) if times else 0
v = subprocess.run([cordon, "audit", "verify", f"{d}/audit.jsonl"], capture_output=True, text=True)
print(f"  sessions with an error: {len(bad)}; daemon exit {rc}; audit verify: {v.stdout.strip() or v.stderr.strip()}")
print(f"  allowed calls recorded: {allowed} of {agents * calls}")
print(f"  first to last call: {span:.1f}s -> {allowed / span if span else 0:.0f} calls/s across {agents} sessions")
print(f"  whole run incl. session start-up: {wall:.1f}s; daemon peak RSS {hwm/1024:.1f}MB")
if bad or allowed != agents * calls or rc != 0 or v.returncode != 0:
    raise SystemExit(1)
PY
