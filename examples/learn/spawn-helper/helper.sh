#!/bin/sh
# The helper the agent spawns: writes its argument into the workspace.
echo "helper got $1" > helper-out.txt
