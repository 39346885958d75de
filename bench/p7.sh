#!/usr/bin/env bash
# docs/quality.md P7 (idle part): time from `shipgate serve` start to /readyz 200 on an
# already migrated database, and idle RSS 5 s after ready. Median of N starts.
# Usage: bench/p7.sh [starts=5]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
ADMIN=${BENCH_DATABASE_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB_URL="${ADMIN%/*}/shipgate_bench_p7"
BIN=target/release/shipgate
[ -x "$BIN" ] || { echo "build first: cargo build --release"; exit 1; }
psql "$ADMIN" -qc "DROP DATABASE IF EXISTS shipgate_bench_p7" -c "CREATE DATABASE shipgate_bench_p7" >/dev/null 2>&1
export DATABASE_URL="$DB_URL" SHIPGATE_MASTER_KEY="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" RUST_LOG=warn
"$BIN" migrate >/dev/null
: >/tmp/p7.ready; : >/tmp/p7.rss
for i in $(seq "$N"); do
  start=$(date +%s%N)
  "$BIN" serve --listen 127.0.0.1:18183 >/dev/null 2>&1 &
  PID=$!
  until curl -sf -o /dev/null http://127.0.0.1:18183/readyz; do sleep 0.005; done
  ready_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  sleep 5
  rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$PID/status)
  kill -TERM $PID; wait $PID 2>/dev/null || true
  echo "start $i: ready after ${ready_ms} ms, idle RSS ${rss} MiB"
  echo "$ready_ms" >>/tmp/p7.ready; echo "$rss" >>/tmp/p7.rss
done
med() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "P7 median: ready $(med </tmp/p7.ready) ms (bar <= 1000), idle RSS $(med </tmp/p7.rss) MiB (bar <= 40)"
