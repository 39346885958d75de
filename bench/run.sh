#!/usr/bin/env bash
# docs/quality.md P3 and P4, measured side by side in one run (see bench/README.md).
#   P3: POST /v1/shipments booked through the gateway vs the same SaveOrder sent straight
#       to the e-Courier simulator mounted in the same process: added median latency.
#   P4: GET /v1/shipments/{id} and GET /v1/shipments?limit=100 throughput.
# Needs: a release build (cargo build --release), wrk (apt-get install wrk), psql, a
# Postgres at $BENCH_DATABASE_ADMIN (default postgres://postgres@127.0.0.1:5432/postgres).
# Usage: bench/run.sh [runs=3] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-10}
ADMIN=${BENCH_DATABASE_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB_URL="${ADMIN%/*}/shipgate_bench"
PORT=${BENCH_PORT:-18181}
BASE="http://127.0.0.1:$PORT"
BIN=target/release/shipgate
[ -x "$BIN" ] || { echo "build first: cargo build --release"; exit 1; }
command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk"; exit 1; }
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

psql "$ADMIN" -qc "DROP DATABASE IF EXISTS shipgate_bench" -c "CREATE DATABASE shipgate_bench" >/dev/null
DATABASE_URL="$DB_URL" RUST_LOG=warn SHIPGATE_LOG_FORMAT=json "$BIN" sandbox --listen "127.0.0.1:$PORT" --sim-clock-secs 0 --data-dir "$WORK/sg" >"$WORK/sandbox.out" 2>&1 &
PID=$!
for _ in $(seq 50); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done
KEY=$(grep -o 'sg_test_[A-Za-z0-9_]*' "$WORK/sandbox.out" | head -1)
CON=$(grep -o 'con_[0-9a-f]*' "$WORK/sandbox.out" | head -1)
GUID=$(curl -s -X POST "$BASE/sim/ecourier/software/xml/ecJsonPost.asmx/Login" -H 'content-type: application/json' \
  -d '{"website":"demo","username":"demo","password":"demo-pass"}' | sed -E 's/.*"UserGUID":"([^"]*)".*/\1/')

STOPS='[{"sequence":1,"type":"pickup","name":"James Madison","address":{"line1":"2251 Orange Blossom Trail","city":"Orlando","state":"FL","postal_code":"32804","country":"US"},"scheduled_at":"2026-11-23T06:00:00-05:00"},{"sequence":2,"type":"delivery","name":"Bryan Moore","address":{"line1":"2253 Orange Blossom Trail","city":"Orlando","state":"FL","postal_code":"32804","country":"US"}}]'
PARCELS='[{"reference":"PKG-1","quantity":1,"weight":{"value":2.5,"unit":"lb"}}]'
cat >"$WORK/gateway.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.body = '{"connection_id":"$CON","stops":$STOPS,"parcels":$PARCELS}'
LUA
# The SaveOrder the gateway sends for that body (same stops, pieces, CustomerCode).
cat >"$WORK/direct.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["UserGUID"] = "$GUID"
wrk.body = '{"Order":{"CustomerCode":"DEMO","Pieces":{"Piece":[{"Sequence":"1","Reference":"PKG-1","Pieces":"1","Weight":"2.5"}]},"Stops":{"Stop":[{"Sequence":"1","StopType":"P","ScheduledDateTime":"11/23/2026 6:00:00 AM","ScheduledDateTimeTZ":"EST","Name":"James Madison","Address":"2251 Orange Blossom Trail","City":"Orlando","State":"FL","Zip":"32804","Country":"US","OrderStopPieces":{"OrderStopPiece":[{"PieceAction":"P","Sequence":"1"}]}},{"Sequence":"2","StopType":"D","Name":"Bryan Moore","Address":"2253 Orange Blossom Trail","City":"Orlando","State":"FL","Zip":"32804","Country":"US","OrderStopPieces":{"OrderStopPiece":[{"PieceAction":"D","Sequence":"1"}]}}]}}}'
LUA
# Check both bodies are accepted before measuring.
curl -sf -o /dev/null -X POST "$BASE/v1/shipments" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
  -d "{\"connection_id\":\"$CON\",\"stops\":$STOPS,\"parcels\":$PARCELS}" || { echo "gateway booking failed"; exit 1; }

median_ms() { # wrk --latency output → 50th percentile in ms
  awk '/^ +50%/ { v=$2; if (v ~ /us$/) { sub(/us/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v=v*1000 } print v }'
}
rps() { awk '/^Requests\/sec:/ { print $2 }'; }
med() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load tool and gateway share the cores"
echo "== P3: booking latency, 1 connection, ${SECS}s per run, $RUNS runs"
: >"$WORK/p3"
# The simulator lives in the gateway's process and keeps every order it receives; the
# direct runs are kept short (3 s, still ~20k samples) so its growing state does not
# weigh on the gateway runs that follow.
for i in $(seq "$RUNS"); do
  g=$(wrk -t1 -c1 -d"${SECS}s" --latency -s "$WORK/gateway.lua" "$BASE/v1/shipments" | median_ms)
  d=$(wrk -t1 -c1 -d3s --latency -s "$WORK/direct.lua" "$BASE/sim/ecourier/software/xml/ecJsonPost.asmx/SaveOrder" | median_ms)
  echo "run $i: SaveOrder direct p50 ${d} ms, via gateway p50 ${g} ms, added $(awk -v g="$g" -v d="$d" 'BEGIN{printf "%.3f", g-d}') ms"
  echo "$d $g" >>"$WORK/p3"
done
D=$(awk '{print $1}' "$WORK/p3" | med); G=$(awk '{print $2}' "$WORK/p3" | med)
echo "P3 median of runs: direct ${D} ms, gateway ${G} ms, added $(awk -v g="$G" -v d="$D" 'BEGIN{printf "%.3f", g-d}') ms (bar: <= 2 ms)"

ID=$(curl -s "$BASE/v1/shipments?limit=1" -H "Authorization: Bearer $KEY" | sed -E 's/.*"id":"(shp_[0-9a-f]+)".*/\1/')
N=$(psql "$DB_URL" -Atc "SELECT count(*) FROM shipments")
echo "== P4: reads, 64 connections, 2 threads, ${SECS}s per run, $RUNS runs ($N shipments in the table)"
: >"$WORK/p4"
for i in $(seq "$RUNS"); do
  one=$(wrk -t2 -c64 -d"${SECS}s" -H "Authorization: Bearer $KEY" "$BASE/v1/shipments/$ID" | rps)
  list=$(wrk -t2 -c64 -d"${SECS}s" -H "Authorization: Bearer $KEY" "$BASE/v1/shipments?limit=100" | rps)
  echo "run $i: GET one ${one} req/s, list of 100 ${list} req/s"
  echo "$one $list" >>"$WORK/p4"
done
echo "P4 median of runs: GET one $(awk '{print $1}' "$WORK/p4" | med) req/s (bar >= 5000), list $(awk '{print $2}' "$WORK/p4" | med) req/s (bar >= 1000)"
echo "RSS after the run: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$PID/status)"
