#!/usr/bin/env bash
# docs/quality.md P6 (scaled to this machine): tracking refresh of many shipments against a
# simulator answering with 50 ms latency. The refresh rate must follow the connection's
# configured rate limit (not the gateway), and memory must stay flat.
#   1. books N shipments on the e-Courier simulator (no latency),
#   2. sets 50 ms simulator latency and the connection's rate_limit_per_second to R,
#   3. refreshes them round-robin (POST /v1/shipments/{id}/refresh) with 64 connections,
#      sampling the gateway's RSS, for each R.
# Usage: bench/p6.sh [shipments=5000] [seconds=20] [rates="100 400"]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
SECS=${2:-20}
RATES=${3:-"100 400"}
ADMIN=${BENCH_DATABASE_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB_URL="${ADMIN%/*}/shipgate_bench_p6"
PORT=${BENCH_PORT:-18182}
BASE="http://127.0.0.1:$PORT"
BIN=target/release/shipgate
[ -x "$BIN" ] || { echo "build first: cargo build --release"; exit 1; }
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
psql "$ADMIN" -qc "DROP DATABASE IF EXISTS shipgate_bench_p6" -c "CREATE DATABASE shipgate_bench_p6" >/dev/null
DATABASE_URL="$DB_URL" RUST_LOG=warn SHIPGATE_LOG_FORMAT=json SHIPGATE_DATABASE_MAX_CONNECTIONS=32 \
  "$BIN" sandbox --listen "127.0.0.1:$PORT" --sim-clock-secs 0 --data-dir "$WORK/sg" >"$WORK/sandbox.out" 2>&1 &
PID=$!
for _ in $(seq 50); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done
KEY=$(grep -o 'sg_test_[A-Za-z0-9_]*' "$WORK/sandbox.out" | head -1)
CON=$(grep -o 'con_[0-9a-f]*' "$WORK/sandbox.out" | head -1)
BODY="{\"connection_id\":\"$CON\",\"stops\":[{\"sequence\":1,\"type\":\"pickup\",\"address\":{\"line1\":\"1 Main St\",\"city\":\"Orlando\",\"country\":\"US\"}},{\"sequence\":2,\"type\":\"delivery\",\"address\":{\"line1\":\"2 Main St\",\"city\":\"Orlando\",\"country\":\"US\"}}],\"parcels\":[{\"quantity\":1}]}"
echo "machine: $(nproc) cores; gateway, Postgres and load tool share them"
echo "booking $N shipments ..."
seq "$N" | xargs -P 16 -I{} curl -s -o /dev/null -X POST "$BASE/v1/shipments" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' -d "$BODY"
psql "$DB_URL" -Atc "SELECT id FROM shipments" >"$WORK/ids"
echo "$(wc -l <"$WORK/ids") shipments booked"
cat >"$WORK/refresh.lua" <<LUA
local ids = {}
for line in io.lines("$WORK/ids") do ids[#ids + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $KEY"
request = function()
  i = i % #ids + 1
  return wrk.format(nil, "/v1/shipments/" .. ids[i] .. "/refresh")
end
LUA
curl -s -o /dev/null -X PUT "$BASE/sim/ecourier/_sim/latency" -H 'content-type: application/json' -d '{"ms":50}'
for R in $RATES; do
  curl -sf -o /dev/null -X PATCH "$BASE/v1/connections/$CON" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
    -d "{\"settings\":{\"customer_code\":\"DEMO\",\"rate_limit_per_second\":$R}}"
  before=$(curl -s "$BASE/sim/ecourier/_sim/stats" | sed -E 's/.*"GetJsonOrder":([0-9]+).*/\1/; s/^\{.*/0/')
  (for _ in $(seq $((SECS / 5))); do sleep 5; awk '/VmRSS/ {printf "%.1f ", $2/1024}' /proc/$PID/status; done) >"$WORK/rss" &
  SAMPLER=$!
  out=$(wrk -t2 -c64 -d"${SECS}s" -s "$WORK/refresh.lua" "$BASE")
  wait "$SAMPLER"
  after=$(curl -s "$BASE/sim/ecourier/_sim/stats" | sed -E 's/.*"GetJsonOrder":([0-9]+).*/\1/')
  rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  echo "rate limit $R/s: $rps refreshes/s through the API, $(( (after - before) / SECS )) GetJsonOrder/s at the simulator, non-2xx: ${non2xx:-0}; RSS MiB every 5 s: $(cat "$WORK/rss")"
done
