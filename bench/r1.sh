#!/usr/bin/env bash
# docs/quality.md reliability 1: kill -9 the gateway in the middle of a burst of 10k Ecom
# Express pushes; the pusher (examples/ecom_push.rs burst) resends every scan not acked
# true until it is, against the restarted gateway. Prints: acked pushes lost (must be 0)
# and stored scans per key (exactly one: 10k scans, 10k events, 10k event_added).
# Usage: bench/r1.sh [count=10000] [kill_after_seconds=3]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-10000}
KILL_AFTER=${2:-3}
ADMIN=${BENCH_DATABASE_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB_URL="${ADMIN%/*}/shipgate_bench_r1"
PORT=${BENCH_PORT:-18192}
BASE="http://127.0.0.1:$PORT"
source bench/inbound_lib.sh
WORK=$(mktemp -d)
trap 'kill $GW_PID $PUSHER 2>/dev/null || true; rm -rf "$WORK"' EXIT
PUSHER=

psql "$ADMIN" -qc "DROP DATABASE IF EXISTS shipgate_bench_r1" -c "CREATE DATABASE shipgate_bench_r1" >/dev/null
start_gateway "$DB_URL" "$PORT" "$WORK/gw.log"
setup_ecom "$DB_URL" "$BASE"
"$EX" burst "$URL" "$EUSER" "$EPASS" "$COUNT" 64 "$WORK/acked" 2>"$WORK/pusher.err" &
PUSHER=$!
sleep "$KILL_AFTER"
before=$(psql "$DB_URL" -qAt -c "SELECT count(*) FROM inbound_pushes")
kill -9 "$GW_PID"; wait "$GW_PID" 2>/dev/null || true
echo "kill -9 after ${KILL_AFTER}s, with $before of $COUNT scans committed; restarting in 1 s"
sleep 1
start_gateway "$DB_URL" "$PORT" "$WORK/gw.log"
wait "$PUSHER"
check_acked "$DB_URL" "$WORK/acked" "$COUNT"
