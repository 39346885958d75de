#!/usr/bin/env bash
# docs/quality.md P3 and P4 alone (bench/all.sh measures every bar): `shipgate serve` on a
# private Postgres (bench/lib.sh), the e-Courier simulator in its own process
# (shipgate-sims). See bench/bars_booking.sh and bench/bars_reads.sh.
# Needs: cargo build --release --workspace --bins; wrk; pgbench; psql; jq; python3.
# Usage: bench/run.sh [runs=3] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-10}
PORT=${BENCH_PORT:-18181}
SIMS_PORT=${BENCH_SIMS_PORT:-18188}
BASE="http://127.0.0.1:$PORT"
SIMS_BASE="http://127.0.0.1:$SIMS_PORT"
source bench/inbound_lib.sh
source bench/bars_booking.sh
source bench/bars_reads.sh
need_bins sims
command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk"; exit 1; }
WORK=$(mktemp -d)
stack_up "${BENCH_PGPORT:-55437}" run
setup_ecom "$DB_URL" "$BASE"
ecourier_setup
echo "machine: $(nproc) cores, $(uname -r); wrk, pgbench, the gateway, shipgate-sims and Postgres share the cores"
booking_setup
p3_measure empty
reads_setup empty
p4_measure empty
