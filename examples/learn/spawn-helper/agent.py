"""Spawns a helper script from its workspace and reads what it wrote.

With --extra it also runs `uname`, a program the learned profile has never
seen (cordon run must stop the agent).
"""
import subprocess
import sys

# Through its interpreter: the workspace is writable, so a profile may not
# let the agent execute files in it (it could run anything it writes).
subprocess.run(["/bin/sh", "./helper.sh", "from-agent"], check=True)
with open("helper-out.txt") as f:
    print("helper wrote:", f.read().strip())
if "--extra" in sys.argv:
    subprocess.run(["uname", "-s"], check=True)
