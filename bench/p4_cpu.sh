#!/usr/bin/env bash
# Where a read's CPU goes (docs/quality.md P4; issue 13): on a private Postgres with
# shipgate-sims and the gateway as bench/all.sh sets them up (a few thousand bookings in
# the tenant), `runs` runs of wrk, 64 connections, `seconds` each, on
#   GET one   GET /v1/shipments/{id} over 1,000 of the tenant's shipments (P4's bar)
#   one id    GET /v1/shipments/{id} of a single shipment
#   list      GET /v1/shipments?limit=100
#   readyz    GET /readyz (one SELECT 1 through the pool)
#   no db     GET /v1/shipments/shp_x (authenticated, answered 404 without a statement)
# and prints, per request, the CPU time of the gateway (user + system, and system alone)
# and of Postgres (every backend: the postmaster's own and reaped children's times plus
# the live children's, /proc/PID/stat fields 14-17, proc(5)), with the requests per second.
# The pgbench floor of each read is bench/all.sh's; this shows the gateway's side.
# With CALLGRIND=1 a second gateway is then started under valgrind's callgrind on the
# same database, warmed up, its counters zeroed, and GET one is profiled for 15 s with
# 8 connections: instructions per request, the same however busy the machine is
# (callgrind_annotate --inclusive=yes OUT for the parts). CALLGRIND_READ=list profiles
# the list of 100 instead.
#
# Usage: bench/p4_cpu.sh [runs=3] [seconds=8]    CALLGRIND=1 CALLGRIND_OUT=file (default ./p4.callgrind)
#        CALLGRIND_READ=one|list
# Needs: cargo build --release --workspace --bins --examples; wrk, psql, jq, valgrind (CALLGRIND=1).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-8}
PORT=${BENCH_PORT:-18391}
SIMS_PORT=${BENCH_SIMS_PORT:-18398}
BASE="http://127.0.0.1:$PORT"
SIMS_BASE="http://127.0.0.1:$SIMS_PORT"
export SHIPGATE_DATABASE_MAX_CONNECTIONS=${POOL:-32}
source bench/inbound_lib.sh
source bench/bars_booking.sh
source bench/bars_reads.sh
need_bins shipgate sims
WORK=$(mktemp -d)
stack_up "${BENCH_PGPORT:-55458}" bench
setup_ecom "$DB_URL" "$BASE"
ecourier_setup
booking_setup >/dev/null
wrk -t1 -c2 -d5s -s "$WORK/book.lua" "$BASE/v1/shipments" >/dev/null
reads_setup empty >/dev/null
# Let autovacuum and analyze of the bookings' tables pass before measuring.
sleep 20
PGPID=$(head -1 "$PGDATA/postmaster.pid")
pg_cpu() {
  local s p
  s=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$PGPID/stat")
  for p in $(pgrep -P "$PGPID"); do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$s"
}
gw_cpu() { awk '{print $14 + $15}' "/proc/$GW_PID/stat"; }
gw_sys() { awk '{print $15}' "/proc/$GW_PID/stat"; }
hz=$(getconf CLK_TCK)
one_path=$(cat "$WORK/read_one.path")
echo "machine: $(nproc) cores, $(uname -r); wrk, the gateway and Postgres share the cores"
echo "== CPU per request: wrk, 64 connections, ${SECS}s per run, $RUNS runs"
for i in $(seq "$RUNS"); do
  for name in "GET one" "one id" "list" "readyz" "no db"; do
    case $name in
      "GET one") args=(-s "$WORK/read_many.lua" "$BASE") ;;
      "one id") args=("$BASE$one_path") ;;
      list) args=("$BASE$(cat "$WORK/read_list.path")") ;;
      readyz) args=("$BASE/readyz") ;;
      "no db") args=("$BASE/v1/shipments/shp_x") ;;
    esac
    g0=$(gw_cpu); s0=$(gw_sys); p0=$(pg_cpu)
    rps=$(wrk -t2 -c64 -d"${SECS}s" -H "Authorization: Bearer $KEY" "${args[@]}" | wrk_rps)
    g1=$(gw_cpu); s1=$(gw_sys); p1=$(pg_cpu)
    n=$(calc %.0f "$rps * $SECS")
    echo "run $i, $name: $(calc %.0f "$rps") req/s; per request: gateway $(calc %.1f "($g1 - $g0) * 1e6 / $hz / $n") us" \
      "(system $(calc %.1f "($s1 - $s0) * 1e6 / $hz / $n") us), Postgres $(calc %.1f "($p1 - $p0) * 1e6 / $hz / $n") us"
  done
done
if [ "${CALLGRIND:-0}" = 1 ]; then
  out_file=${CALLGRIND_OUT:-$PWD/p4.callgrind}
  cg_port=$((PORT + 1))
  DATABASE_URL="$DB_URL" valgrind --tool=callgrind --callgrind-out-file="$out_file" "$BIN" serve --listen "127.0.0.1:$cg_port" \
    >>"$WORK/gw.log" 2>&1 &
  CG_PID=$!
  for _ in $(seq 600); do curl -sf -o /dev/null "http://127.0.0.1:$cg_port/healthz" && break; sleep 0.1; done
  case ${CALLGRIND_READ:-one} in
    one) cg_args=(-s "$WORK/read_many.lua" "http://127.0.0.1:$cg_port"); cg_name="GET one" ;;
    list) cg_args=("http://127.0.0.1:$cg_port$(cat "$WORK/read_list.path")"); cg_name="list of 100" ;;
    *) echo "CALLGRIND_READ: one or list" >&2; exit 2 ;;
  esac
  wrk -t1 -c8 -d5s -H "Authorization: Bearer $KEY" "${cg_args[@]}" >/dev/null
  callgrind_control -z "$CG_PID" >/dev/null
  out=$(wrk -t1 -c8 -d15s -H "Authorization: Bearer $KEY" "${cg_args[@]}")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  callgrind_control -d "$CG_PID" >/dev/null
  sleep 1
  kill "$CG_PID" 2>/dev/null || true
  total=$(callgrind_annotate "$out_file".1 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "callgrind: $n $cg_name requests, $(calc %.0f "$total / $n") instructions per request; profile in $out_file.1"
fi
