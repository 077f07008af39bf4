#!/usr/bin/env bash
# Installs the agent CLIs that tests/tests/agents.rs and bench/agents.sh
# drive, at pinned versions, into an npm prefix of their own (never
# global): scripts/install-agent-clis.sh [DIR] (default target/agent-clis).
# Point the tests at it with CORDON_AGENT_CLIS=DIR. Safe to re-run: a DIR
# that already holds these versions is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

# Bump together with the profiles: each CLI's startup (what it execs, which
# hosts it calls, how it is configured) is what profiles/*.toml allow.
CLAUDE_CODE=2.1.332
CODEX=0.171.0
GEMINI_CLI=0.61.0

dir=${1:-target/agent-clis}
want="@anthropic-ai/claude-code@$CLAUDE_CODE @openai/codex@$CODEX @google/gemini-cli@$GEMINI_CLI"
stamp="$dir/.cordon-pinned"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$dir/node_modules/.bin/claude" ]; then
    echo "agent CLIs already installed in $dir ($want)"
    exit 0
fi

for need in node npm; do
    command -v "$need" >/dev/null || { echo "$need is missing: install Node.js 20 or newer (Gemini CLI needs it)" >&2; exit 1; }
done
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
    echo "node $(node --version) is too old: Gemini CLI $GEMINI_CLI needs Node.js 20 or newer" >&2
    exit 1
fi

mkdir -p "$dir"
# shellcheck disable=SC2086 # $want is a list of package specs
npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error $want
# The sandboxed runs as an unprivileged user must read and execute them.
chmod -R a+rX "$dir"
echo "$want" >"$stamp"
for cli in claude codex gemini; do
    printf '%s: ' "$cli"
    "$dir/node_modules/.bin/$cli" --version
done
