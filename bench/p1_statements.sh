#!/usr/bin/env bash
# Which of the gateway's statements get slower from the empty to the seeded size
# under the P1 load (pg_stat_statements), and the gateway's CPU per push at each: two
# 10 s P1 loads on the empty size, then bench/seed.sql, a CHECKPOINT, a warm-up and two
# more, each followed by the 14 statements with the most execution time (calls, mean ms,
# total ms, blocks read and hit per call, WAL bytes per call). No floor, no verdict:
# where bench/all.sh shows a degradation, this shows which statement carries it
# (bench/README.md, "Where the unmet bars stand").
# Needs: cargo build --release --bin shipgate --bin shipgate-sims --example ecom_push; wrk; psql; jq.
# Usage: [SECS=10] [SCALE_SHIPMENTS=… SCALE_TEVENTS=… SCALE_OEVENTS=…] bench/p1_statements.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-10}
SCALE_SHIPMENTS=${SCALE_SHIPMENTS:-1000000}; SCALE_TEVENTS=${SCALE_TEVENTS:-10000000}; SCALE_OEVENTS=${SCALE_OEVENTS:-10000000}
PORT=18291; SIMS_PORT=18298
BASE="http://127.0.0.1:$PORT"; SIMS_BASE="http://127.0.0.1:$SIMS_PORT"
export SHIPGATE_DATABASE_MAX_CONNECTIONS=32
source bench/inbound_lib.sh
source bench/bars_push.sh
source bench/bars_booking.sh
source bench/bars_footprint.sh
need_bins shipgate ecom_push sims
WORK=$(mktemp -d)
cleanup() { [ -n "${GW_PID:-}" ] && kill "$GW_PID" 2>/dev/null; [ -n "${SIMS_PID:-}" ] && kill "$SIMS_PID" 2>/dev/null; private_pg_stop immediate; rm -rf "$WORK"; }
trap cleanup EXIT
snapshot_bins
PG_OPTS="$PROD_PG_OPTS -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
private_pg_init 55448
psql "postgres://postgres@127.0.0.1:$PRIVATE_PORT/postgres" -qc "CREATE DATABASE bench"
DB_URL="postgres://postgres@127.0.0.1:$PRIVATE_PORT/bench"
DATABASE_URL="$DB_URL" "$BIN" migrate >>"$WORK/gw.log" 2>&1
psql "$DB_URL" -qc "CREATE EXTENSION pg_stat_statements"
start_sims "$SIMS_PORT" "$WORK/sims.log"
start_gateway "$DB_URL" "$PORT" "$WORK/gw.log"
setup_ecom "$DB_URL" "$BASE"
ecourier_setup
push_setup >/dev/null
cpu() { awk '{print $14+$15}' /proc/$GW_PID/stat; }
measure() { # $1 label
  psql "$DB_URL" -qAtc "SELECT pg_stat_statements_reset()" >/dev/null
  local c0 c1 r
  c0=$(cpu)
  wrk -t2 -c64 -d"${SECS}s" -s "$WORK/push.lua" "$BASE" >"$WORK/w" 2>&1
  c1=$(cpu)
  r=$(wrk_rps <"$WORK/w")
  echo "== $1: $r pushes/s; gateway CPU $(calc %.0f "($c1-$c0)*10000/($r*$SECS)") us per push"
  psql "$DB_URL" -qAt -F ' | ' -c "SELECT calls, round(mean_exec_time::numeric, 3) AS mean_ms, round(total_exec_time::numeric) AS total_ms,
      round(shared_blks_read::numeric / greatest(calls,1), 2) AS rd, round(shared_blks_hit::numeric / greatest(calls,1), 1) AS hit,
      round(wal_bytes::numeric / greatest(calls,1)) AS wal, left(regexp_replace(query, '\s+', ' ', 'g'), 110)
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'bench') ORDER BY total_exec_time DESC LIMIT 14"
}
measure empty
measure empty
psql "$DB_URL" -q -v t="$TENANT" -v con="$ECON" -v shipments="$SCALE_SHIPMENTS" -v tevents="$SCALE_TEVENTS" \
  -v oevents="$SCALE_OEVENTS" -f bench/seed.sql >/dev/null
settle_seeded
measure seeded
measure seeded
