#!/usr/bin/env bash
# docs/quality.md P6, the tracking engine itself: N active shipments (inserted directly, all due
# at once: the largest backlog) on one e-Courier connection whose simulator answers with
# 50 ms latency. No API calls drive it: the engine in `shipgate sandbox` polls on its own.
# For each configured rate R (connection setting rate_limit_per_second) it counts the
# GetJsonOrder calls reaching the simulator over S seconds and samples the gateway's RSS;
# the engine paces at R × tracking.rate_share (default 0.8), so expect 0.8 R calls/s.
#   1. books B real orders through the API (so every poll finds an order),
#   2. inserts N shipments pointing at those orders (SQL, generate_series),
#   3. makes them all due, sets 50 ms latency, then measures each rate.
# Usage: bench/p6-engine.sh [shipments=100000] [seconds=30] [rates="100 400"] [booked=500]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
SECS=${2:-30}
RATES=${3:-"100 400"}
B=${4:-500}
ADMIN=${BENCH_DATABASE_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB_URL="${ADMIN%/*}/shipgate_bench_p6e"
PORT=${BENCH_PORT:-18183}
BASE="http://127.0.0.1:$PORT"
BIN=${CARGO_TARGET_DIR:-target}/release/shipgate
[ -x "$BIN" ] || { echo "build first: cargo build --release"; exit 1; }
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
psql "$ADMIN" -qc "DROP DATABASE IF EXISTS shipgate_bench_p6e" -c "CREATE DATABASE shipgate_bench_p6e" >/dev/null
# The engine starts with the sandbox (default config: first poll of a new booking 30 min
# out, so the booking phase is not polled).
DATABASE_URL="$DB_URL" RUST_LOG=warn SHIPGATE_LOG_FORMAT=json SHIPGATE_DATABASE_MAX_CONNECTIONS=32 \
  "$BIN" sandbox --listen "127.0.0.1:$PORT" --sim-clock-secs 0 --data-dir "$WORK/sg" >"$WORK/sandbox.out" 2>&1 &
PID=$!
for _ in $(seq 50); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done
KEY=$(grep -o 'sg_test_[A-Za-z0-9_]*' "$WORK/sandbox.out" | head -1)
CON=$(grep -o 'con_[0-9a-f]*' "$WORK/sandbox.out" | head -1)
BODY="{\"connection_id\":\"$CON\",\"stops\":[{\"sequence\":1,\"type\":\"pickup\",\"address\":{\"line1\":\"1 Main St\",\"city\":\"Orlando\",\"country\":\"US\"}},{\"sequence\":2,\"type\":\"delivery\",\"address\":{\"line1\":\"2 Main St\",\"city\":\"Orlando\",\"country\":\"US\"}}],\"parcels\":[{\"quantity\":1}]}"
echo "machine: $(nproc) cores; gateway (with its simulators) and Postgres share them"
seq "$B" | xargs -P 16 -I{} curl -s -o /dev/null -X POST "$BASE/v1/shipments" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' -d "$BODY"
psql "$DB_URL" -qAt <<SQL
CREATE TEMP TABLE orders AS
  SELECT row_number() OVER () AS n, carrier_reference FROM shipments WHERE connection_id = '$CON' AND booking_state = 'booked';
INSERT INTO shipments (tenant_id, id, connection_id, carrier, carrier_reference, booking_state, booked_at, status)
SELECT c.tenant_id, 'shp_' || replace(gen_random_uuid()::text, '-', ''), c.id, 'ecourier', o.carrier_reference,
       'booked', now(), 'info_received'
FROM generate_series(1, $N) g
JOIN connections c ON c.id = '$CON'
JOIN orders o ON o.n = 1 + g % (SELECT count(*) FROM orders);
UPDATE shipments SET poll_next_at = now() WHERE poll_next_at IS NOT NULL;
SQL
echo "$(psql "$DB_URL" -qAt -c "SELECT count(*) FROM shipments WHERE poll_next_at IS NOT NULL") active shipments due now ($B real orders behind them)"
curl -s -o /dev/null -X PUT "$BASE/sim/ecourier/_sim/latency" -H 'content-type: application/json' -d '{"ms":50}'
polls() { curl -s "$BASE/sim/ecourier/_sim/stats" | sed -E 's/.*"GetJsonOrder":([0-9]+).*/\1/; s/^\{.*/0/'; }
for R in $RATES; do
  curl -sf -o /dev/null -X PATCH "$BASE/v1/connections/$CON" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
    -d "{\"settings\":{\"customer_code\":\"DEMO\",\"rate_limit_per_second\":$R}}"
  sleep 3 # the engine picks the new rate up at its next claim; let the old slots drain
  before=$(polls)
  rss=""
  for _ in $(seq $((SECS / 5))); do
    sleep 5
    rss="$rss $(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$PID/status)"
  done
  after=$(polls)
  due=$(psql "$DB_URL" -qAt -c "SELECT count(*) FROM shipments WHERE poll_next_at <= now()")
  polled=$(psql "$DB_URL" -qAt -c "SELECT count(*) FROM shipments WHERE poll_last_at IS NOT NULL")
  echo "rate limit $R/s: $(( (after - before) / SECS )) GetJsonOrder/s at the simulator (pace $(awk "BEGIN {print $R * 0.8}")/s); still due $due, polled so far $polled; RSS MiB every 5 s:$rss"
done
curl -s "$BASE/metrics" | grep -E '^shipgate_tracking_(polls_total|due_backlog|outstanding)' || true
