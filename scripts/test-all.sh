#!/usr/bin/env bash
# The whole test suite: every crate's tests as the current user, then, when
# run as root, the sandbox battery again as an unprivileged user (most
# people do not run their agents as root, and cordon then takes a different
# path: a user namespace instead of privileged namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

# The agent CLIs of tests/tests/agents.rs (scripts/install-agent-clis.sh),
# for both passes; .ci/run sets it to its own install.
if [ -z "${CORDON_AGENT_CLIS:-}" ] && [ -d target/agent-clis/node_modules ]; then
    export CORDON_AGENT_CLIS="$PWD/target/agent-clis"
fi

echo "== cargo test --workspace (as $(id -un))"
cargo test --workspace

if [ "$(id -u)" -ne 0 ]; then
    echo "== not root: skipping the unprivileged-user pass (it needs root to switch users)"
    if [ "${CI:-}" = "true" ]; then
        echo "CI must run as root so the unprivileged pass runs" >&2
        exit 1
    fi
    exit 0
fi

user=cordon-ci
if ! id -u "$user" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
fi

# The checkout may sit in a 0700 directory (mktemp -d): copy the binaries
# and test executables somewhere the unprivileged user can execute them.
bindir=$(mktemp -d /tmp/cordon-unpriv.XXXXXX)
trap 'rm -rf "$bindir"' EXIT
chmod 755 "$bindir"
cargo build --workspace --bins
cp target/debug/cordon target/debug/cordon-shim target/debug/cordon-probe target/debug/cordon-model-server "$bindir/"
mapfile -t exes < <(cargo test -p cordon-tests --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") and "test" in msg["target"]["kind"]:
        print(msg["executable"])
')
if [ "${#exes[@]}" -eq 0 ]; then
    echo "no test executables found for cordon-tests" >&2
    exit 1
fi
for exe in "${exes[@]}"; do
    cp "$exe" "$bindir/"
done
cp -r profiles examples "$bindir/"
mkdir -p "$bindir/tests" && cp -r tests/verifiers "$bindir/tests/"
chmod -R a+rX "$bindir"

status=0
for exe in "${exes[@]}"; do
    name=$(basename "$exe")
    echo "== $name (as $user)"
    (cd "$bindir" && setpriv --reuid="$user" --regid="$user" --clear-groups --inh-caps=-all --bounding-set=-all \
        env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$bindir" TMPDIR=/tmp CI="${CI:-}" \
        CORDON_TEST_BIN_DIR="$bindir" CORDON_TEST_REPO_DIR="$bindir" RUST_BACKTRACE=1 \
        ${CORDON_AGENT_CLIS:+CORDON_AGENT_CLIS="$CORDON_AGENT_CLIS"} "$bindir/$name" --test-threads=2) || status=1
done
exit $status
