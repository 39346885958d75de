#!/usr/bin/env bash
# docs/quality.md P1 and P2, measured side by side in one run (see bench/README.md).
#   P1: Ecom Express pushes through the gateway (wrk, 64 connections) vs pgbench running
#       the equivalent hand-written transaction on the same Postgres (64 clients).
#   P2: p99 ack latency at 50% of P1's gateway peak (open-loop pusher, examples/ecom_push.rs).
# Needs: cargo build --release --bin shipgate --example ecom_push; wrk; pgbench; psql; jq.
# Usage: bench/p1.sh [runs=3] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-10}
PORT=${BENCH_PORT:-18191}
BASE="http://127.0.0.1:$PORT"
PGBENCH=${PGBENCH:-$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)}
AWBS=${AWBS:-5000}
export SHIPGATE_DATABASE_MAX_CONNECTIONS=${POOL:-32}
source bench/inbound_lib.sh
command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk"; exit 1; }
WORK=$(mktemp -d)
trap 'kill $GW_PID 2>/dev/null || true; private_pg_stop immediate; rm -rf "$WORK"' EXIT

# A private Postgres (durable defaults; room for 64 pgbench clients + the gateway's pool)
# so the comparison is not disturbed by, and does not disturb, other users of the
# shared server. Same server for both sides.
PG_OPTS="-c max_connections=200 -c shared_buffers=256MB" private_pg_init "${BENCH_PGPORT:-55438}"
psql "postgres://postgres@127.0.0.1:$PRIVATE_PORT/postgres" -qc "CREATE DATABASE p1"
DB_URL="postgres://postgres@127.0.0.1:$PRIVATE_PORT/p1"
start_gateway "$DB_URL" "$PORT" "$WORK/gw.log"
setup_ecom "$DB_URL" "$BASE"
AUTH=$(printf '%s:%s' "$EUSER" "$EPASS" | base64 -w0)
PATH_=${URL#$BASE}

# One scan per request, a fresh status_update_number each time, on one of $AWBS AWBs,
# the codes of a shipment's life in turn (as Ecom pushes them).
cat >"$WORK/push.lua" <<LUA
-- Globals: wrk's thread:set/get reach a thread's globals only.
threads = {}
counter, errors, tid, nthreads = 0, 0, 0, 0
codes = {"001", "0011", "002", "006", "999"}
function setup(thread) nthreads = nthreads + 1; thread:set("tid", nthreads); table.insert(threads, thread) end
function init(args) math.randomseed(os.time() * 100 + tid) end
function request()
  counter = counter + 1
  local sun = string.format("%d%02d%09d", os.time(), tid, counter)
  local awb = "BENCH-" .. math.random(0, $AWBS - 1)
  local code = codes[(counter % 5) + 1]
  local body = '{"awb":"' .. awb .. '","datetime":"2026-11-22 10:30:00","status":"scan","reason_code":"' .. code ..
    ' - scan","reason_code_number":"' .. code .. '","location":"JRD","Employee":"Bench","status_update_number":"' ..
    sun .. '","order_number":"ORD-1","city":"Vadodara","ref_awb":""}'
  return wrk.format("POST", "$PATH_", {["Content-Type"] = "application/json", ["Authorization"] = "Basic $AUTH"}, body)
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"status":true', 1, true) then errors = errors + 1 end
end
function done(summary, latency, requests)
  local e = 0
  for _, t in ipairs(threads) do e = e + t:get("errors") end
  io.write(string.format("not acked true: %d\n", e))
end
LUA

# The same writes, hand-written, for pgbench: lock the shipment, keep the raw push, add
# the event, move status/last_event, history row, one numbered outbound event, commit.
# The JSON documents (same sizes as the gateway's) are pgbench variables, so their ':'
# are not read as variable references.
PAYLOAD='{"awb":"BENCH-1","datetime":"2026-11-22 10:30:00","status":"scan","reason_code":"002 - scan","reason_code_number":"002","location":"JRD","Employee":"Bench","status_update_number":"1","order_number":"ORD-1","city":"Vadodara","ref_awb":""}'
EVT='{"occurred_at":"2026-11-22T05:00:00Z","status":"in_transit","subtag":"InTransit_003","message":"scan","location":{"code":"JRD","city":"Vadodara","country":"IN"},"raw_code":"002","raw_text":"002 - scan","actor":"Bench","source":"push","dedup_key":"ecomexpress:1"}'
SHP=$(curl -sf "$BASE/v1/shipments?limit=1" -H "Authorization: Bearer $KEY" | jq -c '.data[0]')
HIST="{\"count\":1,\"events\":[$EVT]}"
EDATA="{\"shipment\":$SHP,\"event\":$EVT}"
cat >"$WORK/txn.sql" <<SQL
\set n random(0, $AWBS - 1)
\set sun random(1, 2000000000)
BEGIN;
SELECT id AS sid FROM shipments WHERE tenant_id = :tenant AND tracking_number = 'BENCH-' || :n
  ORDER BY (connection_id = :con) DESC, id LIMIT 1 FOR UPDATE \gset
WITH p AS (INSERT INTO inbound_pushes (tenant_id, connection_id, awb, status_update_number, shipment_id, payload)
           VALUES (:tenant, :con, 'BENCH-' || :n, 'pgb' || :sun, :sid, :payload)
           ON CONFLICT DO NOTHING RETURNING 1),
     ev AS (INSERT INTO tracking_events (tenant_id, shipment_id, occurred_at, status, subtag, message, location, raw_code,
                                         raw_text, source, dedup_key, actor)
            SELECT :tenant, :sid, now(), 'in_transit', 'InTransit_003', 'scan', (:evt)::jsonb -> 'location',
                   '002', '002 - scan', 'push', 'pgb' || :sun, 'Bench' FROM p
            ON CONFLICT DO NOTHING RETURNING id),
     u AS (UPDATE shipments SET carrier_status = '002', last_event = :evt, updated_at = now()
           WHERE tenant_id = :tenant AND id = :sid AND EXISTS (SELECT 1 FROM ev) RETURNING id),
     h AS (INSERT INTO shipment_history (tenant_id, shipment_id, actor_type, action, detail)
           SELECT :tenant, id, 'carrier_push', 'events_added', :hist FROM u)
SELECT id FROM u;
WITH s AS (UPDATE shipments SET event_seq = event_seq + 1 WHERE tenant_id = :tenant AND id = :sid RETURNING event_seq)
INSERT INTO events (tenant_id, id, shipment_id, shipment_seq, type, data)
SELECT :tenant, 'evt_pgb' || :sun || '_' || s.event_seq, :sid, s.event_seq, 'shipment.event_added', :edata FROM s;
COMMIT;
SQL

echo "machine: $(nproc) cores, $(uname -r); wrk, gateway (pool $SHIPGATE_DATABASE_MAX_CONNECTIONS) and Postgres share the cores"
echo "warm-up: ${SECS}s of pushes create the $AWBS shipments"
wrk -t2 -c64 -d"${SECS}s" -s "$WORK/push.lua" "$BASE" >"$WORK/warm" 2>&1 || { cat "$WORK/warm"; exit 1; }
# AWBs the warm-up did not reach get their shipment directly (pgbench needs all of them).
psql "$DB_URL" -qAt -c "INSERT INTO shipments (tenant_id, id, connection_id, carrier, tracking_number, status)
  SELECT '$TENANT', 'shp_bench' || n, '$CON', 'ecomexpress', 'BENCH-' || n, 'in_transit' FROM generate_series(0, $AWBS - 1) n
  WHERE NOT EXISTS (SELECT 1 FROM shipments WHERE tenant_id = '$TENANT' AND tracking_number = 'BENCH-' || n)" >/dev/null
echo "  $(awk '/^Requests\/sec:/ {print $2}' "$WORK/warm") pushes/s; shipments: $(psql "$DB_URL" -qAt -c 'SELECT count(*) FROM shipments')"
: >"$WORK/gwrates"; : >"$WORK/pgrates"
echo "== P1: ${SECS}s per run, 64 connections/clients, $RUNS runs"
for i in $(seq "$RUNS"); do
  wrk -t2 -c64 -d"${SECS}s" -s "$WORK/push.lua" "$BASE" >"$WORK/w$i" 2>&1
  g=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/w$i")
  nok=$(awk '/^not acked true:/ {print $4}' "$WORK/w$i")
  "$PGBENCH" -n -M prepared -c 64 -j 2 -T "$SECS" -f "$WORK/txn.sql" -D tenant="$TENANT" -D con="$CON" \
    -D payload="$PAYLOAD" -D evt="$EVT" -D hist="$HIST" -D edata="$EDATA" "$DB_URL" >"$WORK/p$i" 2>&1 || true
  p=$(awk '/^tps = / {print $3}' "$WORK/p$i")
  [ -n "$p" ] || { echo "pgbench failed:"; tail -20 "$WORK/p$i"; exit 1; }
  [ -n "$g" ] || { echo "wrk failed:"; cat "$WORK/w$i"; exit 1; }
  echo "run $i: gateway $g pushes/s ($nok not acked true), pgbench $p tx/s, ratio $(awk -v g="$g" -v p="$p" 'BEGIN {printf "%.0f%%", 100*g/p}')"
  echo "$g" >>"$WORK/gwrates"; echo "$p" >>"$WORK/pgrates"
done
G=$(med <"$WORK/gwrates"); P=$(med <"$WORK/pgrates")
echo "P1 median of runs: gateway $G pushes/s, pgbench $P tx/s, ratio $(awk -v g="$G" -v p="$P" 'BEGIN {printf "%.0f%%", 100*g/p}') (bar >= 70%)"

RATE=$(awk -v g="$G" 'BEGIN {printf "%d", g/2}')
echo "== P2: open-loop pushes at $RATE/s (50% of the P1 gateway median), ${SECS}s per run, $RUNS runs"
: >"$WORK/p99"
for i in $(seq "$RUNS"); do
  line=$("$EX" rate "$URL" "$EUSER" "$EPASS" "$RATE" "$SECS" "$AWBS")
  echo "run $i: $line"
  sed -E 's/.*p99 ([0-9.]+) ms.*/\1/' <<<"$line" >>"$WORK/p99"
done
echo "P2 median p99: $(med <"$WORK/p99") ms (bar <= 25 ms); gateway RSS now $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$GW_PID/status)"
