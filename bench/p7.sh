#!/usr/bin/env bash
# docs/quality.md P7 (idle part) alone: time from `shipgate serve` start to /readyz 200 on
# an already migrated database, and idle RSS 5 s after ready; median of N starts, on a
# private Postgres (bench/lib.sh). bench/all.sh also measures RSS under the P1 load.
# Usage: bench/p7.sh [starts=5]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
source bench/lib.sh
source bench/bars_footprint.sh
need_bins shipgate
WORK=$(mktemp -d)
trap 'private_pg_stop immediate; rm -rf "$WORK"' EXIT
snapshot_bins
private_pg_init "${BENCH_PGPORT:-55438}"
psql "postgres://postgres@127.0.0.1:$PRIVATE_PORT/postgres" -qc "CREATE DATABASE p7"
DB_URL="postgres://postgres@127.0.0.1:$PRIVATE_PORT/p7"
DATABASE_URL="$DB_URL" "$BIN" migrate >/dev/null
p7_measure empty "$N" "${BENCH_PORT:-18183}"
