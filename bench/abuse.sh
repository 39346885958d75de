#!/usr/bin/env bash
# Issue 10's scripted abuse run, against `shipgate serve` (release) on loopback with the
# default limits of config/default.toml: RSS before and after 10,000 failed inbound
# authentications and 1,000 bad API keys, the longest a stalled connection stays open,
# and the server errors over a corpus of hostile inputs (0 expected). Bounded: about
# 10k + 1k + 60 requests and 30 stalled connections, ~40 s.
# Usage: bench/abuse.sh   (needs: cargo build --release --bin shipgate; psql, curl, jq, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CARGO_TARGET_DIR:-target}/release/shipgate
[ -x "$BIN" ] || { echo "build first: cargo build --release --bin shipgate"; exit 1; }
ADMIN=${BENCH_DATABASE_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB=shipgate_bench_abuse
DB_URL="${ADMIN%/*}/$DB"
PORT=${ABUSE_PORT:-18190}
BASE="http://127.0.0.1:$PORT"
LOG=$(mktemp)
export SHIPGATE_MASTER_KEY=${SHIPGATE_MASTER_KEY:-$(head -c 32 /dev/urandom | base64)}
export RUST_LOG=${RUST_LOG:-error} SHIPGATE_WORKERS_ENABLED=false DATABASE_URL="$DB_URL"

psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
"$BIN" migrate >/dev/null
"$BIN" serve --listen "127.0.0.1:$PORT" >>"$LOG" 2>&1 &
GW_PID=$!
trap 'kill -TERM $GW_PID 2>/dev/null; wait $GW_PID 2>/dev/null; psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1; rm -f "$LOG"' EXIT
for _ in $(seq 200); do curl -sf -o /dev/null "$BASE/healthz" && break; sleep 0.05; done
sleep 2 # settle before the first RSS reading

TENANT=$("$BIN" tenant create abuse | tail -1)
KEY=$("$BIN" api-key create --tenant "$TENANT" | tail -1)
ECOM=$(curl -sf -X POST "$BASE/v1/connections" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
  -d '{"carrier":"ecomexpress","name":"abuse pushes"}')
CON=$(curl -sf -X POST "$BASE/v1/connections" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
  -d '{"carrier":"ecourier","name":"down","base_url":"http://127.0.0.1:9","credentials":{"website":"w","username":"u","password":"p"},"settings":{"customer_code":"C"}}' | jq -r .id)
HOOK=$(curl -sf -X POST "$BASE/v1/webhook-endpoints" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
  -d '{"url":"https://93.184.215.14/hook"}' | jq -r .id)

echo "== abuse run: shipgate serve (release) pid $GW_PID on $BASE, default limits"
python3 bench/abuse_client.py --base "$BASE" --pid "$GW_PID" --key "$KEY" --connection-id "$CON" --endpoint-id "$HOOK" \
  --ecom-url "$BASE$(jq -r .inbound_url <<<"$ECOM")" --ecom-user "$(jq -r .generated_credentials.username <<<"$ECOM")" \
  --ecom-password "$(jq -r .generated_credentials.password <<<"$ECOM")"
kill -0 "$GW_PID" 2>/dev/null && echo "gateway still running" || { echo "gateway died:"; tail -20 "$LOG"; exit 1; }
