#!/usr/bin/env bash
# The ops console's server time per page at 1M shipments (issue 14, docs/console.md;
# bar: every page <= 50 ms of server time). Starts `shipgate serve` (release, workers off)
# on a private Postgres with production settings (durable defaults, shared_buffers=256MB),
# seeds a tenant with SHIPMENTS shipments by SQL (spread over a year, the statuses of a
# working gateway, 3 tracking events and a history entry each, an hour of carrier calls),
# signs in to the console, requests each page N times and reports the median and p95 of
# the `Server-Timing: app;dur=` header the console sets on every answer (and the slowest:
# the overview's first request counts the chart afresh, later ones reuse it for 60 s).
# Needs: cargo build --release --bin shipgate; psql; curl; the Postgres 15 server binaries.
# Usage: bench/console.sh [N=50] [SHIPMENTS=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50}
SHIPMENTS=${2:-1000000}
PORT=${BENCH_PORT:-18192}
BASE="http://127.0.0.1:$PORT"
BIN=${CARGO_TARGET_DIR:-target}/release/shipgate
[ -x "$BIN" ] || { echo "build first: cargo build --release --bin shipgate"; exit 1; }
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
WORK=$(mktemp -d)
GW_PID=
PGDATA=
cleanup() {
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null || true
  [ -n "$PGDATA" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A private, throw-away cluster: the shared Postgres is never loaded or reconfigured.
chmod 755 "$WORK"
mkdir "$WORK/pg"; [ "$(id -u)" = 0 ] && chown postgres "$WORK/pg"
PGDATA="$WORK/pg/data"
PGPORT=${BENCH_PGPORT:-55439}
as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/pg/server.log" -w start \
  -o "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=100 -c shared_buffers=256MB" >/dev/null
psql "postgres://postgres@127.0.0.1:$PGPORT/postgres" -qc "CREATE DATABASE console"
DB="postgres://postgres@127.0.0.1:$PGPORT/console"

export SHIPGATE_MASTER_KEY=${SHIPGATE_MASTER_KEY:-$(head -c 32 /dev/urandom | base64)}
export RUST_LOG=${RUST_LOG:-warn} SHIPGATE_WORKERS_ENABLED=false
DATABASE_URL="$DB" "$BIN" serve --listen "127.0.0.1:$PORT" >>"$WORK/gw.log" 2>&1 &
GW_PID=$!
for _ in $(seq 200); do curl -sf -o /dev/null "$BASE/healthz" && break; sleep 0.05; done
TENANT=$(DATABASE_URL="$DB" "$BIN" tenant create bench | tail -1)
KEY=$(DATABASE_URL="$DB" "$BIN" api-key create --tenant "$TENANT" | tail -1)
CON=$(curl -sf -X POST "$BASE/v1/connections" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
  -d '{"carrier":"ecourier","name":"bench e-Courier","base_url":"http://127.0.0.1:9/ecourier",
       "credentials":{"website":"bench","username":"bench","password":"bench-pass"},"settings":{"customer_code":"BENCH"}}' |
  sed -n 's/.*"id":"\(con_[0-9a-f]*\)".*/\1/p')
[ -n "$CON" ] || { echo "no connection"; cat "$WORK/gw.log"; exit 1; }

echo "== seeding $SHIPMENTS shipments (+3 tracking events and a history entry each) ..."
started=$(date +%s)
psql "$DB" -q -v ON_ERROR_STOP=1 -v t="$TENANT" -v con="$CON" -v n="$SHIPMENTS" <<'SQL'
-- Ids as the gateway writes them (time-ordered: 12 hex digits of unix ms, then 20 more).
INSERT INTO shipments (tenant_id, id, reference, connection_id, carrier, tracking_number, booking_state,
                       booking_attempts, status, created_at, updated_at)
SELECT :'t', 'shp_' || lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || substr(md5(i::text), 1, 20),
       'BENCH-' || i, :'con', 'ecourier', 'TRK' || i,
       CASE WHEN i % 1000 = 0 THEN 'failed' WHEN i % 997 = 0 THEN 'pending' ELSE 'booked' END, 1,
       CASE WHEN i % 100 < 70 THEN 'delivered' WHEN i % 100 < 85 THEN 'in_transit' WHEN i % 100 < 90 THEN 'out_for_delivery'
            WHEN i % 100 < 93 THEN 'exception' WHEN i % 100 < 97 THEN 'info_received' ELSE 'pending' END,
       ts, ts
FROM (SELECT i, now() - i * (interval '365 days' / :n) AS ts FROM generate_series(1, :n) i) g;
INSERT INTO tracking_events (tenant_id, shipment_id, occurred_at, status, message, raw_code, raw_text, source, dedup_key)
SELECT s.tenant_id, s.id, s.created_at + k * interval '2 hours',
       (ARRAY['info_received', 'in_transit', s.status])[k], 'bench scan ' || k, 'C' || k, 'bench code ' || k, 'poll', 'bench:' || k
FROM shipments s, generate_series(1, 3) k;
INSERT INTO shipment_history (tenant_id, shipment_id, at, actor_type, actor_id, action)
SELECT tenant_id, id, created_at, 'api_key', 'keybench', 'created' FROM shipments;
-- An hour of carrier calls for the health line, and older ones the hour must skip.
INSERT INTO carrier_exchanges (tenant_id, connection_id, carrier, operation, method, url, response_status, duration_ms, created_at)
SELECT :'t', :'con', 'ecourier', 'GetJsonOrder', 'POST', 'http://127.0.0.1:9/ecourier', CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END,
       20 + i % 180, now() - i * interval '1 second'
FROM generate_series(1, 200000) i;
VACUUM ANALYZE;
SQL
echo "seeded in $(( $(date +%s) - started )) s: $(psql "$DB" -qAt -c "SELECT count(*) FROM shipments") shipments, $(psql "$DB" -qAt -c "SELECT count(*) FROM tracking_events") tracking events"

# Sign in like a browser.
COOKIE=$(curl -s -o /dev/null -D - -X POST "$BASE/console/sign-in" -H "Origin: $BASE" --data-urlencode "api_key=$KEY" |
  tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: sg_console=\([^;]*\).*/\1/p')
[ -n "$COOKIE" ] || { echo "sign-in failed"; exit 1; }
MID=$(psql "$DB" -qAt -c "SELECT id FROM shipments ORDER BY id DESC OFFSET $((SHIPMENTS / 2)) LIMIT 1")
ONE=$(psql "$DB" -qAt -c "SELECT id FROM shipments WHERE reference = 'BENCH-4242'")
PAGES=(
  "overview|/console/"
  "shipments (first page)|/console/shipments"
  "shipments (page at 500k)|/console/shipments?after=$MID"
  "search by reference|/console/shipments?q=BENCH-777777"
  "search by tracking number|/console/shipments?q=TRK123456"
  "search by id|/console/shipments?q=$ONE"
  "filter status=exception|/console/shipments?status=exception"
  "filter carrier + created range|/console/shipments?carrier=ecourier&created_after=2026-01-01&created_before=2026-03-01"
  "shipment (timeline)|/console/shipments/$ONE"
  "webhooks|/console/webhooks"
  "jobs (dead letter)|/console/jobs"
  "status mappings|/console/status-mappings"
  "inbound|/console/inbound"
  "connections|/console/connections"
)
q() { # $1 quantile (0-1): reads numbers, prints the nearest-rank quantile
  sort -n | awk -v q="$1" '{a[NR]=$1} END {i=int(q*NR+0.999999); if (i<1) i=1; print a[i]}'
}
echo "== server time per page (Server-Timing app;dur), $N requests each, one at a time"
printf '%-34s %10s %10s %10s %8s\n' page "median ms" "p95 ms" "max ms" verdict
worst=0
for entry in "${PAGES[@]}"; do
  name=${entry%%|*}; path=${entry#*|}
  : >"$WORK/t"
  for _ in $(seq "$N"); do
    h=$(curl -s -o /dev/null -D - -H "Cookie: sg_console=$COOKIE" "$BASE$path" | tr -d '\r')
    status=$(head -1 <<<"$h" | awk '{print $2}')
    [ "$status" = 200 ] || { echo "$name: HTTP $status"; exit 1; }
    sed -n 's/^[Ss]erver-[Tt]iming: app;dur=//p' <<<"$h" >>"$WORK/t"
  done
  med=$(q 0.5 <"$WORK/t"); p95=$(q 0.95 <"$WORK/t"); max=$(q 1 <"$WORK/t")
  verdict=$(awk -v p="$p95" 'BEGIN {print (p <= 50 ? "ok" : "OVER")}')
  [ "$verdict" = ok ] || worst=1
  printf '%-34s %10s %10s %10s %8s\n' "$name" "$med" "$p95" "$max" "$verdict"
done
[ "$worst" = 0 ] && echo "every page's p95 <= 50 ms" || echo "some page's p95 is over 50 ms"
