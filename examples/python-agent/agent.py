#!/usr/bin/env python3
"""A tiny stand-in for an AI agent: it tries ordinary and forbidden things
and reports what its sandbox let it do. Run it under cordon:

    cordon run --profile profiles/python-agent.toml \
        --workspace examples/python-agent -- python3 agent.py
"""
import os
import socket
import subprocess
import sys

results = []


def attempt(what, action):
    try:
        detail = action()
        results.append(("allowed", what, detail or ""))
    except Exception as e:  # noqa: BLE001 - reporting every refusal is the point
        results.append(("BLOCKED", what, f"{type(e).__name__}: {e}"))


def read(path):
    with open(path, "rb") as f:
        return f"{len(f.read())} bytes"


def write(path):
    with open(path, "w") as f:
        f.write("agent was here\n")
    return "written"


def connect(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        return "connected"
    except ConnectionRefusedError:
        return "the sandbox allowed it (nothing listens there)"
    finally:
        s.close()


scratch = os.environ.get("TMPDIR", "/tmp")
attempt("list the workspace", lambda: ", ".join(sorted(os.listdir("."))))
attempt("read data/notes.txt", lambda: read("data/notes.txt"))
attempt("write a note to the scratch dir ($TMPDIR)", lambda: write(os.path.join(scratch, "note.txt")))
attempt("read the workspace's .env (denied in the profile)", lambda: read(".env"))
attempt("change a workspace file", lambda: write("data/notes.txt"))
attempt("read /etc/shadow", lambda: read("/etc/shadow"))
attempt("read /etc/passwd", lambda: read("/etc/passwd"))
attempt("read ../../profiles/python-agent.toml (outside the workspace)", lambda: read("../../profiles/python-agent.toml"))
attempt("connect to TCP port 443", lambda: connect(443))
attempt("connect to TCP port 22", lambda: connect(22))
attempt("run /bin/sh", lambda: subprocess.run(["/bin/sh", "-c", "true"], check=True) and "ran")
attempt("see the host's processes", lambda: f"{len([p for p in os.listdir('/proc') if p.isdigit()])} pids")
attempt("find an API key in the environment",
        lambda: "found!" if any("KEY" in k or "TOKEN" in k for k in os.environ) else "none")

width = max(len(w) for _, w, _ in results)
for verdict, what, detail in results:
    print(f"{verdict:8} {what:{width}}  {detail}")

if "--try-ptrace" in sys.argv:
    import ctypes
    print("now calling ptrace(PTRACE_TRACEME); cordon kills the whole sandbox (exit 86)", flush=True)
    ctypes.CDLL(None).ptrace(0, 0, 0, 0)
    print("still alive: the sandbox did not stop ptrace")
