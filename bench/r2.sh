#!/usr/bin/env bash
# docs/quality.md reliability 2: Postgres unavailable for 30 s during a burst of Ecom Express
# pushes. Uses a private, throw-away Postgres cluster (initdb + pg_ctl under a temp dir;
# the shared system Postgres is never stopped). Prints: status:true answers for scans
# that were not committed (must be 0), /readyz while the database is down and after,
# and that the same gateway process recovers (no restart).
# Usage: bench/r2.sh [count=10000] [down_seconds=30]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-10000}
DOWN=${2:-30}
PGPORT=${BENCH_PGPORT:-55439}
PORT=${BENCH_PORT:-18193}
BASE="http://127.0.0.1:$PORT"
source bench/inbound_lib.sh
WORK=$(mktemp -d)
trap 'kill $GW_PID $PUSHER 2>/dev/null || true; private_pg_stop immediate; rm -rf "$WORK"' EXIT
PUSHER=
private_pg_init "$PGPORT"
psql "postgres://postgres@127.0.0.1:$PGPORT/postgres" -qc "CREATE DATABASE r2"
DB_URL="postgres://postgres@127.0.0.1:$PGPORT/r2"
start_gateway "$DB_URL" "$PORT" "$WORK/gw.log"
setup_ecom "$DB_URL" "$BASE"
readyz() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE/readyz"; }
echo "/readyz before: $(readyz)"
"$EX" burst "$URL" "$EUSER" "$EPASS" "$COUNT" 64 "$WORK/acked" 2>"$WORK/pusher.err" &
PUSHER=$!
sleep 3
before=$(psql "$DB_URL" -qAt -c "SELECT count(*) FROM inbound_pushes")
private_pg_stop fast
echo "Postgres stopped after 3 s of the burst ($before of $COUNT scans committed); down for ${DOWN}s"
codes=""
end=$((SECONDS + DOWN))
while [ $SECONDS -lt $end ]; do codes="$codes $(readyz)"; sleep 2; done
echo "/readyz while down:$codes"
private_pg_start
t0=$SECONDS
until [ "$(readyz)" = 200 ]; do sleep 0.2; [ $((SECONDS - t0)) -lt 60 ] || { echo "FAIL: not ready 60 s after Postgres came back"; exit 1; }; done
echo "Postgres back; /readyz 200 after $((SECONDS - t0)) s; gateway pid $GW_PID still the same process: $(kill -0 $GW_PID && echo yes)"
wait "$PUSHER"
grep -c 'status:true with HTTP' "$WORK/pusher.err" | sed 's/^/status:true answers with a non-200 HTTP status: /' || true
check_acked "$DB_URL" "$WORK/acked" "$COUNT"
