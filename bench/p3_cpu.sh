#!/usr/bin/env bash
# The gateway's own CPU per booking on P3's path (docs/quality.md P3; issue 13): on a
# private Postgres, shipgate-sims and the gateway as bench/all.sh sets them up, `runs`
# runs of wrk with one connection booking on e-Courier for `seconds` each; per booking,
# the gateway's CPU time (user + system, and user alone, from /proc/PID/stat), its
# context switches (every thread's, /proc/PID/task/*/status) and wrk's p50.
# With CALLGRIND=1 the gateway is then restarted under valgrind's callgrind, warmed up
# for 5 s, its counters zeroed, and profiled over 20 s of bookings: instructions are
# counted, not timed, so the profile is the same on a busy machine
# (callgrind_annotate --inclusive=yes OUT | grep shipgate:: for the gateway's own parts).
#
# Usage: bench/p3_cpu.sh [runs=3] [seconds=10]    CALLGRIND=1 CALLGRIND_OUT=file (default ./p3.callgrind)
# Needs: cargo build --release --workspace --bins --examples; wrk, psql, jq, valgrind (CALLGRIND=1).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-10}
PORT=${BENCH_PORT:-18291}
SIMS_PORT=${BENCH_SIMS_PORT:-18298}
BASE="http://127.0.0.1:$PORT"
SIMS_BASE="http://127.0.0.1:$SIMS_PORT"
export SHIPGATE_DATABASE_MAX_CONNECTIONS=${POOL:-32}
source bench/inbound_lib.sh
source bench/bars_booking.sh
need_bins shipgate sims
WORK=$(mktemp -d)
stack_up "${BENCH_PGPORT:-55448}" bench
setup_ecom "$DB_URL" "$BASE"
ecourier_setup
booking_setup >/dev/null
# /proc/PID/stat fields 14 and 15: utime and stime in clock ticks (proc(5)).
hz=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user() { awk '{print $14}' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
wrk -t1 -c1 -d3s -s "$WORK/book.lua" "$BASE/v1/shipments" >/dev/null
echo "== gateway CPU per booking: wrk, 1 connection, ${SECS}s per run, $RUNS runs"
for i in $(seq "$RUNS"); do
  c0=$(cpu "$GW_PID"); u0=$(user "$GW_PID"); s0=$(switches "$GW_PID")
  out=$(wrk -t1 -c1 -d"${SECS}s" --latency -s "$WORK/book.lua" "$BASE/v1/shipments")
  c1=$(cpu "$GW_PID"); u1=$(user "$GW_PID"); s1=$(switches "$GW_PID")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "run $i: $n bookings, p50 $(awk '/ 50%/ {print $2}' <<<"$out"), gateway CPU" \
    "$(calc %.0f "($c1 - $c0) * 1e6 / $hz / $n") us per booking (user $(calc %.0f "($u1 - $u0) * 1e6 / $hz / $n") us)," \
    "$(calc %.1f "($s1 - $s0) / $n") context switches per booking"
done
if [ "${CALLGRIND:-0}" = 1 ]; then
  out_file=${CALLGRIND_OUT:-$PWD/p3.callgrind}
  kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true
  DATABASE_URL="$DB_URL" valgrind --tool=callgrind --callgrind-out-file="$out_file" "$BIN" serve --listen "127.0.0.1:$PORT" \
    >>"$WORK/gw.log" 2>&1 &
  GW_PID=$!
  for _ in $(seq 600); do curl -sf -o /dev/null "$BASE/healthz" && break; sleep 0.1; done
  wrk -t1 -c1 -d5s -s "$WORK/book.lua" "$BASE/v1/shipments" >/dev/null
  callgrind_control -z "$GW_PID" >/dev/null
  out=$(wrk -t1 -c1 -d20s -s "$WORK/book.lua" "$BASE/v1/shipments")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  callgrind_control -d "$GW_PID" >/dev/null
  sleep 1
  total=$(callgrind_annotate "$out_file".1 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "callgrind: $n bookings, $(calc %.0f "$total / $n") instructions per booking; profile in $out_file.1"
fi
