#!/usr/bin/env bash
# Session time of each real agent CLI (Claude Code, Codex, Gemini CLI)
# through the same scripted session, bare and under cordon with its
# shipped profile, side by side. The model is cordon-model-server on
# 127.0.0.1 over HTTPS (as the vendors' APIs), so what is measured is the
# CLI's own start-up and tool calls plus cordon's (sandbox set-up, the
# broker, the egress proxy, which terminates TLS to write the model key
# into each request: the shipped profiles deliver it by the proxy).
#
#   bench/agents.sh                      # RUNS=10 per command
#   RUNS=20 CORDON_AGENT_CLIS=/opt/cordon-agent-clis bench/agents.sh
#   BUILD=debug bench/agents.sh          # use target/debug (no release build)
#
# The scenario: `git log --oneline -n 1` (brokered under cordon), `ls`,
# then the final answer. Each run starts with a fresh, empty HOME on both
# sides (cordon gives the agent one; the bare run gets one from --prepare),
# so neither side reuses a CLI's caches. Uses hyperfine when installed
# (installed with apt-get as root), else a loop timed with date +%s%N;
# prints the median of each and cordon's overhead.
set -euo pipefail

RUNS=${RUNS:-10}
BUILD=${BUILD:-release}
repo=$(cd "$(dirname "$0")/.." && pwd)
clis=${CORDON_AGENT_CLIS:-$repo/target/agent-clis}

if ! command -v hyperfine >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null || true
fi
command -v python3 >/dev/null || { echo "bench/agents.sh: python3 is needed to read the results" >&2; exit 1; }

"$repo/scripts/install-agent-clis.sh" "$clis" >/dev/null
clis=$(cd "$clis" && pwd)
if [[ $BUILD == release ]]; then
    (cd "$repo" && cargo build --release -q -p cordon -p cordon-shim -p cordon-tests --bin cordon --bin cordon-shim --bin cordon-model-server)
else
    (cd "$repo" && cargo build -q --workspace --bins)
fi
bin=$repo/target/$BUILD

dir=$(mktemp -d /tmp/cordon-bench-agents-XXXX)
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

# The workspace: a repository with one commit; the sessions do not change it.
ws=$dir/ws
mkdir -p "$ws/.gemini"
git -C "$ws" init -q -b main
echo hello >"$ws/README"
git -C "$ws" add README
git -C "$ws" -c user.name=bench -c user.email=bench@example.invalid commit -q -m init
# Gemini CLI: choose the API key (GOOGLE_GEMINI_BASE_URL alone selects an
# auth type it then refuses) and no usage statistics.
echo '{"security":{"auth":{"selectedType":"gemini-api-key"}},"privacy":{"usageStatisticsEnabled":false},"telemetry":{"enabled":false}}' >"$ws/.gemini/settings.json"

echo '{"steps":[{"shell":"git log --oneline -n 1"},{"shell":"ls"}],"final":"Scripted session complete."}' >"$dir/scenario.json"
"$bin/cordon-model-server" --script "$dir/scenario.json" --log "$dir/requests.jsonl" --tls-ca "$dir/model-ca.pem" --idle-exit 900 >"$dir/server.out" 2>"$dir/server.err" &
server_pid=$!
for _ in $(seq 50); do grep -q listening "$dir/server.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^listening 127.0.0.1://p' "$dir/server.out")
[[ -n $port ]] || { echo "bench/agents.sh: the model server did not start" >&2; exit 1; }
url=https://localhost:$port
ca=$dir/model-ca.pem
m=$clis/node_modules

# Child profiles: the shipped profile plus where the CLIs are and the model
# server, which is also the one host of the model key (the shipped entry
# with its host replaced).
key() {
    printf '[secrets.%s]\nfrom = "env:%s"\ndeliver = "proxy"\nhosts = ["localhost:%s"]\nheader = "%s"\nformat = "%s"\n' "$1" "$1" "$port" "$2" "$3"
}
cat >"$dir/claude-code.toml" <<TOML
[profile]
name = "claude-code-bench"
extends = "$repo/profiles/claude-code.toml"
[filesystem]
read = ["$m/@anthropic-ai/claude-code"]
exec = ["$m/@anthropic-ai/claude-code/bin/claude.exe"]
[network]
allow_hosts = ["localhost:$port via 127.0.0.1"]
[environment]
pass = ["ANTHROPIC_BASE_URL"]
$(key ANTHROPIC_API_KEY x-api-key '{}')
TOML
cat >"$dir/codex.toml" <<TOML
[profile]
name = "codex-bench"
extends = "$repo/profiles/codex.toml"
[filesystem]
read = ["$m/@openai"]
exec = ["$m/@openai"]
[network]
allow_hosts = ["localhost:$port via 127.0.0.1"]
$(key OPENAI_API_KEY authorization 'Bearer {}')
TOML
cat >"$dir/gemini-cli.toml" <<TOML
[profile]
name = "gemini-cli-bench"
extends = "$repo/profiles/gemini-cli.toml"
[filesystem]
read = ["$m"]
exec = ["$m/@google/gemini-cli/bundle/gemini.js"]
[network]
allow_hosts = ["localhost:$port via 127.0.0.1"]
[environment]
pass = ["GOOGLE_GEMINI_BASE_URL"]
$(key GEMINI_API_KEY x-goog-api-key '{}')
TOML

# One script per command (hyperfine runs them without a shell).
provider="model_providers.scripted={name=\"scripted\",base_url=\"$url/v1\",wire_api=\"responses\",env_key=\"OPENAI_API_KEY\",request_max_retries=0,stream_max_retries=0}"
declare -A argv=(
    [claude-code]="'$m/@anthropic-ai/claude-code/bin/claude.exe' -p 'Run the scripted steps.' --allowedTools 'Bash Read'"
    [codex]="'$m/@openai/codex/bin/codex.js' exec --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox -c features.plugins=false -c analytics.enabled=false -c model_provider=scripted -c model=scripted -c '$provider' 'Run the scripted steps.'"
    [gemini-cli]="'$m/@google/gemini-cli/bundle/gemini.js' -p 'Run the scripted steps.' --approval-mode yolo"
)
# The bare runs get what the profiles set for the agent too
# (claude-code.toml [environment] set), so both sides run the same CLI.
# The keys are in cordon's environment (the agent gets placeholders);
# cordon trusts the model server's root by SSL_CERT_FILE, the bare CLIs by
# the variables cordon sets for the agent (with its session CA).
envs="CLAUDE_CODE_DISABLE_GIT_INSTRUCTIONS=1 DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1"
envs="$envs ANTHROPIC_BASE_URL=$url ANTHROPIC_API_KEY=sk-ant-bench OPENAI_API_KEY=sk-bench GOOGLE_GEMINI_BASE_URL=$url GEMINI_API_KEY=bench GEMINI_CLI_TRUST_WORKSPACE=true"
for cli in claude-code codex gemini-cli; do
    cat >"$dir/$cli-bare.sh" <<SH
#!/bin/bash
cd '$ws' && exec env -i PATH=/usr/local/bin:/usr/bin:/bin HOME='$dir/home' LANG=C.UTF-8 SSL_CERT_FILE='$ca' NODE_EXTRA_CA_CERTS='$ca' $envs ${argv[$cli]} </dev/null >'$dir/$cli-bare.out' 2>&1
SH
    cat >"$dir/$cli-cordon.sh" <<SH
#!/bin/bash
cd '$ws' && exec env -i PATH=/usr/local/bin:/usr/bin:/bin HOME='$dir/home' LANG=C.UTF-8 CORDON_AUDIT='$dir/audit.jsonl' SSL_CERT_FILE='$ca' $envs '$bin/cordon' run --profile '$dir/$cli.toml' --workspace '$ws' -- ${argv[$cli]} </dev/null >'$dir/$cli-cordon.out' 2>&1
SH
    chmod +x "$dir/$cli-bare.sh" "$dir/$cli-cordon.sh"
    # One checked run of each: a benchmark of a failing session is no benchmark.
    for mode in bare cordon; do
        rm -rf "$dir/home" && mkdir "$dir/home"
        if ! "$dir/$cli-$mode.sh" || ! grep -q "Scripted session complete." "$dir/$cli-$mode.out"; then
            echo "bench/agents.sh: $cli ($mode) did not complete its session:" >&2
            tail -20 "$dir/$cli-$mode.out" >&2
            exit 1
        fi
    done
done

echo "== agent sessions: $(uname -r), $(nproc) cores, $RUNS runs each, cordon from target/$BUILD"
results=$dir/results.tsv
: >"$results"
for cli in claude-code codex gemini-cli; do
    if command -v hyperfine >/dev/null; then
        # Both sides of one CLI in one hyperfine run: the same machine state.
        hyperfine -N --runs "$RUNS" --warmup 1 --prepare "rm -rf $dir/home && mkdir $dir/home" \
            --export-json "$dir/$cli.json" \
            --command-name bare "$dir/$cli-bare.sh" --command-name cordon "$dir/$cli-cordon.sh" >/dev/null
        python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(sys.argv[2], r["command"], r["median"] * 1000, sep="\t")' "$dir/$cli.json" "$cli" >>"$results"
    else
        for mode in bare cordon; do
            times=()
            for _ in $(seq "$RUNS"); do
                rm -rf "$dir/home" && mkdir "$dir/home"
                t0=$(date +%s%N)
                "$dir/$cli-$mode.sh"
                times+=($(( ($(date +%s%N) - t0) / 1000 )))
            done
            printf '%s\n' "${times[@]}" | python3 -c 'import statistics,sys; print(sys.argv[1], sys.argv[2], statistics.median(int(l) for l in sys.stdin)/1000, sep="\t")' "$cli" "$mode" >>"$results"
        done
    fi
done
python3 - "$results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    cli, mode, ms = line.split("\t")
    rows.setdefault(cli, {})[mode] = float(ms)
print(f"{'cli':<12} {'bare (ms)':>10} {'cordon (ms)':>12} {'overhead':>10}")
for cli, r in rows.items():
    b, c = r["bare"], r["cordon"]
    print(f"{cli:<12} {b:>10.0f} {c:>12.0f} {c - b:>+9.0f} ms ({(c / b - 1) * 100:+.0f}%)")
PY
