#!/usr/bin/env bash
# docs/quality.md P1 and P2 alone (bench/all.sh measures every bar): see bench/bars_push.sh.
# Needs: cargo build --release --bin shipgate --example ecom_push; wrk; pgbench; psql; jq.
# Usage: bench/p1.sh [runs=3] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-10}
PORT=${BENCH_PORT:-18191}
BASE="http://127.0.0.1:$PORT"
export SHIPGATE_DATABASE_MAX_CONNECTIONS=${POOL:-32}
source bench/inbound_lib.sh
source bench/bars_push.sh
source bench/bars_footprint.sh
command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk"; exit 1; }
WORK=$(mktemp -d)
trap 'stop_sampler; kill $GW_PID 2>/dev/null || true; private_pg_stop immediate; rm -rf "$WORK"' EXIT
# A private Postgres with production settings (bench/lib.sh), gateway and pgbench on it.
push_stack_up
echo "machine: $(nproc) cores, $(uname -r); wrk, gateway (pool $SHIPGATE_DATABASE_MAX_CONNECTIONS) and Postgres share the cores"
push_setup
p1_measure empty
p2_measure empty
echo "gateway RSS under the P1 load, largest sample: $(maxof <"$WORK/p1_rss") MiB (P7 bar <= 150); now $(rss_mib "$GW_PID") MiB"
