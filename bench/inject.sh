#!/usr/bin/env bash
# The injecting egress path side by side with a plain CONNECT tunnel, in
# one run (supervisor/benches/inject.rs): latency per request on a kept-
# alive connection, per fresh connection (CONNECT, TLS, one request), and
# download throughput. In-process: the same proxy, client and local TLS
# server for both paths.
#
#   bench/inject.sh          # REQUESTS=2000 CONNECTIONS=300 MIB=512 by default
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
cargo bench -j"${JOBS:-1}" -p cordon --bench inject 2>/dev/null
