#!/bin/sh
# A shell agent: reads its input, writes a result and commits it with git.
# With --extra it also reads /etc/hostname, which the learned profile has
# never seen (cordon run must refuse it).
set -e
cat data/input.txt > /dev/null
mkdir -p out
echo "processed" > out/result.txt
[ -d .git ] || git init -q
git add out/result.txt
git -c user.name=agent -c user.email=agent@example.com commit -q -m "add result"
if [ "$1" = "--extra" ]; then cat /etc/hostname; fi
echo done
