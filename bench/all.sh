#!/usr/bin/env bash
# Every speed bar of docs/quality.md (issue 13) as a ratio to its floor, measured side by
# side in one run, on an almost empty database and again after seeding the size a real
# customer reaches (P8: 1M shipments, 10M tracking events, 10M outbound events), then the
# degradation of each bar and the write amplification of a booking and of a push.
# See bench/README.md ("Issue 13: bench/all.sh").
#
# Usage: bench/all.sh [--quick] [runs=3] [seconds=10]
#   --quick (or QUICK=1)      skip the seeded size (while developing)
#   SCALE_SHIPMENTS=1000000 SCALE_TEVENTS=10000000 SCALE_OEVENTS=10000000   the seeded size
#   WAMP_N=200                bookings and pushes of the write-amplification measurement
#   P7_STARTS=3               gateway starts for P7's ready time and idle RSS
#   BENCH_OUT=dir             keep the results, plans and logs there (default: a temp dir, removed)
# Needs: cargo build --release --workspace --bins --examples (shipgate, shipgate-sims,
# examples/ecom_push); wrk, pgbench, psql, jq, python3; the Postgres 15 server binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${QUICK:-0}
[ "${1:-}" = --quick ] && { QUICK=1; shift; }
RUNS=${1:-3}
SECS=${2:-10}
SCALE_SHIPMENTS=${SCALE_SHIPMENTS:-1000000}
SCALE_TEVENTS=${SCALE_TEVENTS:-10000000}
SCALE_OEVENTS=${SCALE_OEVENTS:-10000000}
PORT=${BENCH_PORT:-18191}
SIMS_PORT=${BENCH_SIMS_PORT:-18198}
BASE="http://127.0.0.1:$PORT"
SIMS_BASE="http://127.0.0.1:$SIMS_PORT"
export SHIPGATE_DATABASE_MAX_CONNECTIONS=${POOL:-32}
source bench/inbound_lib.sh
source bench/bars_push.sh
source bench/bars_booking.sh
source bench/bars_reads.sh
source bench/bars_footprint.sh
need_bins shipgate ecom_push sims
for t in wrk psql jq python3 "$PGBENCH"; do command -v "$t" >/dev/null || { echo "missing $t (apt-get install wrk postgresql-client-15 jq)"; exit 1; }; done

WORK=$(mktemp -d)
OUT=${BENCH_OUT:-$WORK/out}
mkdir -p "$OUT"
RESULTS=$OUT/results
PLANS_DIR=$OUT
: >"$RESULTS"; : >"$RESULTS.fig"; : >"$RESULTS.wamp"
cleanup() {
  stop_sampler
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null || true
  [ -n "$SIMS_PID" ] && kill "$SIMS_PID" 2>/dev/null || true
  private_pg_stop immediate
  [ -n "${BENCH_OUT:-}" ] && cp "$WORK"/*.log "$PGHOME/server.log" "$OUT/" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
T0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - T0 )) s"; }
human() { awk -v n="$1" 'BEGIN { if (n >= 1e6 && n % 1e6 == 0) print n/1e6 "M"; else if (n >= 1e3 && n % 1e3 == 0) print n/1e3 "k"; else print n }'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
snapshot_bins
echo "binaries: $REL (shipgate built $BIN_INFO), copied for the run; bench scripts at $(git rev-parse --short HEAD 2>/dev/null)"
echo "runs $RUNS x ${SECS}s; gateway pool $SHIPGATE_DATABASE_MAX_CONNECTIONS"
echo "wrk, pgbench, the gateway, shipgate-sims and Postgres share the cores"
private_pg_init "${BENCH_PGPORT:-55438}"
echo "private Postgres $("$PGBIN/postgres" --version | awk '{print $3}') on :$PRIVATE_PORT: $PROD_PG_OPTS, durable commits and autovacuum at their defaults"
psql "postgres://postgres@127.0.0.1:$PRIVATE_PORT/postgres" -qc "CREATE DATABASE bench"
DB_URL="postgres://postgres@127.0.0.1:$PRIVATE_PORT/bench"
DATABASE_URL="$DB_URL" "$BIN" migrate >>"$WORK/gw.log" 2>&1
start_sims "$SIMS_PORT" "$WORK/sims.log"
start_gateway "$DB_URL" "$PORT" "$WORK/gw.log"
setup_ecom "$DB_URL" "$BASE"
ecourier_setup
push_setup
booking_setup

measure_all() { # $1 size label
  p1_measure "$1"
  p2_measure "$1"
  p3_measure "$1"
  reads_setup "$1"
  p4_measure "$1"
  p7_measure "$1" "${P7_STARTS:-3}" $((PORT + 1))
  wamp_measure "$1" "${WAMP_N:-200}"
  echo "-- [$1] done at $(elapsed); gateway RSS $(rss_mib "$GW_PID") MiB, shipgate-sims RSS $(rss_mib "$SIMS_PID") MiB"
}

SIZES=(empty)
measure_all empty
if [ "$QUICK" != 1 ]; then
  SCALE="$(human "$SCALE_SHIPMENTS")/$(human "$SCALE_TEVENTS")/$(human "$SCALE_OEVENTS")"
  echo "== seeding $SCALE (shipments / tracking events / outbound events) by SQL (bench/seed.sql) ..."
  started=$(date +%s)
  psql "$DB_URL" -q -v t="$TENANT" -v con="$ECON" -v shipments="$SCALE_SHIPMENTS" -v tevents="$SCALE_TEVENTS" \
    -v oevents="$SCALE_OEVENTS" -f bench/seed.sql | sed 's/^/  /'
  echo "seeded in $(( $(date +%s) - started )) s: $(psql "$DB_URL" -qAt -c "SELECT pg_size_pretty(pg_database_size(current_database()))");" \
    "rows: $(psql "$DB_URL" -qAt -F ' / ' -c "SELECT (SELECT count(*) FROM shipments), (SELECT count(*) FROM tracking_events), (SELECT count(*) FROM events)")"
  SIZES+=("$SCALE")
  # A fresh gateway process for the seeded size, as for the empty one: its RSS under P1
  # is then that size's, not the heap the empty size's ten minutes of load left behind.
  kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true
  start_gateway "$DB_URL" "$PORT" "$WORK/gw.log"
  settle_seeded || exit 1
  measure_all "$SCALE"
fi

echo
echo "== Results ($(date -u '+%F %H:%M') UTC, total $(elapsed); medians of $RUNS runs of ${SECS}s)"
(echo "bar|size|gateway|floor|ratio|bar|verdict"; cat "$RESULTS") | column -t -s '|'
if [ "${#SIZES[@]}" -gt 1 ]; then
  echo
  echo "== Degradation at ${SIZES[1]} vs empty (P8: each bar <= 20 % worse)"
  awk -F'|' -v big="${SIZES[1]}" '
    $2 == "empty" { e[$1] = $3; b[$1] = $4; order[++n] = $1 }
    $2 == big { s[$1] = $3 }
    END {
      print "bar|empty|" big "|worse by|verdict"
      for (i = 1; i <= n; i++) {
        k = order[i]; if (!(k in s) || e[k] == 0) continue
        w = (b[k] == "high") ? (e[k] - s[k]) / e[k] * 100 : (s[k] - e[k]) / e[k] * 100
        printf "%s|%s|%s|%.0f %%|%s\n", k, e[k], s[k], w, (w <= 20 ? "met" : "NOT MET")
      }
    }' "$RESULTS.fig" | column -t -s '|'
  echo "(figures: P1, P4 the ratio to pgbench in %; P3 added latency / floor; P2 p99 ms; P7 ms and MiB)"
fi
echo
echo "== Write amplification per operation (pg_stat_user_tables deltas / operations; autovacuum off meanwhile)"
(echo "operation|size|table|inserted|updated|deleted|dead tuples left"; cat "$RESULTS.wamp") | column -t -s '|'
