#!/usr/bin/env bash
# Retention (issue 13, docs/quality.md P8): removing expired outbound events by dropping
# their months' partitions (`shipgate retention`, crates/shipgate/src/service/retention.rs)
# against deleting the same kind of rows, on a private Postgres with production settings
# (bench/lib.sh) seeded by bench/seed.sql (events spread over the last year).
#   DELETE: every row of one full expired month, then the VACUUM that DELETE owes
#   DROP:   `shipgate retention` dropping every expired month (outbound retention 90 days)
# Time, WAL written and dead rows left are read around each step (pg_current_wal_lsn,
# pg_stat_user_tables). Rows per month scale with the seed; the DELETE's cost grows with
# them, the DROP's does not.
# Needs: cargo build --release --bin shipgate; psql.
# Usage: bench/retention.sh [shipments=300000]   (10 tracking and 10 outbound events each)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300000}
source bench/lib.sh
need_bins shipgate
WORK=$(mktemp -d)
trap 'private_pg_stop immediate; rm -rf "$WORK"' EXIT
snapshot_bins
private_pg_init "${BENCH_PGPORT:-55439}"
psql "postgres://postgres@127.0.0.1:$PRIVATE_PORT/postgres" -qc "CREATE DATABASE retention"
DB_URL="postgres://postgres@127.0.0.1:$PRIVATE_PORT/retention"
DATABASE_URL="$DB_URL" "$BIN" migrate >/dev/null
TENANT=$(DATABASE_URL="$DB_URL" "$BIN" tenant create bench | tail -1)
echo "machine: $(nproc) cores, $(uname -r); private Postgres: $PROD_PG_OPTS, autovacuum on"
echo "seeding $N shipments, $((N * 10)) tracking events and $((N * 10)) outbound events over the last year ..."
started=$(date +%s)
# The connection id is only a label here: seed.sql skips the foreign-key triggers.
psql "$DB_URL" -q -v t="$TENANT" -v con=con_seeded -v shipments="$N" -v tevents=$((N * 10)) \
  -v oevents=$((N * 10)) -f bench/seed.sql 2>&1 | grep -v 'already exists, skipping' || true
echo "seeded in $(( $(date +%s) - started )) s: $(psql "$DB_URL" -qAt -c "SELECT pg_size_pretty(pg_database_size(current_database()))")"

q() { psql "$DB_URL" -qAt -c "$1"; }
lsn() { q "SELECT pg_current_wal_lsn()"; }
wal_mb() { q "SELECT round(pg_wal_lsn_diff('$2', '$1') / 1048576.0, 2)"; } # $1 before, $2 after
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Months wholly older than the outbound retention (90 days), as service::retention
# decides, oldest first, with their rows.
mapfile -t MONTHS < <(q "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_p[0-9]{6}$'
    AND to_date(substr(c.relname, 9), 'YYYYMM') + interval '1 month' <= now() - interval '90 days'
  ORDER BY c.relname")
[ "${#MONTHS[@]}" -ge 3 ] || { echo "expected several expired months, got: ${MONTHS[*]}"; exit 1; }
total=0
declare -A ROWS
for m in "${MONTHS[@]}"; do ROWS[$m]=$(q "SELECT count(*) FROM $m"); total=$((total + ${ROWS[$m]})); done
echo "expired months of events: ${#MONTHS[@]} (${MONTHS[*]}), $total rows"

# DELETE: the fullest expired month (the seed's first months are empty or partial), as
# a purge by rows would remove it (straight from its partition: the same rows a range
# DELETE on the parent reaches after pruning).
M=${MONTHS[0]}
for m in "${MONTHS[@]}"; do [ "${ROWS[$m]}" -gt "${ROWS[$M]}" ] && M=$m; done
a=$(lsn); t0=$(now_ms)
q "DELETE FROM $M" >/dev/null
t1=$(now_ms); b=$(lsn)
sleep 1
dead=$(q "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = '$M'")
DEL_MS=$((t1 - t0)); DEL_WAL=$(wal_mb "$a" "$b")
a=$(lsn); t0=$(now_ms)
q "VACUUM $M" >/dev/null
t1=$(now_ms); b=$(lsn)
VAC_MS=$((t1 - t0)); VAC_WAL=$(wal_mb "$a" "$b")
echo "DELETE FROM $M: ${ROWS[$M]} rows in $DEL_MS ms, $DEL_WAL MB of WAL, $dead dead rows left; VACUUM: $VAC_MS ms, $VAC_WAL MB of WAL"

# DROP: `shipgate retention` drops every expired month (the emptied one too).
left=$((total - ${ROWS[$M]}))
a=$(lsn); t0=$(now_ms)
DATABASE_URL="$DB_URL" RUST_LOG=error "$BIN" retention >"$WORK/retention.out" 2>&1
t1=$(now_ms); b=$(lsn)
DROP_MS=$((t1 - t0)); DROP_WAL=$(wal_mb "$a" "$b")
sed 's/^/  /' "$WORK/retention.out"
remaining=$(q "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'events'::regclass AND c.relname = ANY ('{$(IFS=,; echo "${MONTHS[*]}")}')")
[ "$remaining" = 0 ] || { echo "retention left $remaining of the expired months"; exit 1; }
echo "shipgate retention: ${#MONTHS[@]} months, $left rows, in $DROP_MS ms (the whole command: connect, every table's"
echo "  maintenance, next months created), $DROP_WAL MB of WAL, 0 dead rows left"

echo
echo "== Retention: removing expired outbound events ($N shipments seeded; $(date -u '+%F %H:%M') UTC)"
(
  echo "method|rows|time|per million rows|WAL|dead rows left|vacuum owed"
  echo "DELETE one month ($M)|${ROWS[$M]}|$DEL_MS ms|$(calc %.0f "$DEL_MS * 1000000 / ${ROWS[$M]}") ms|$DEL_WAL MB|$dead|$VAC_MS ms, $VAC_WAL MB WAL"
  echo "DROP ${#MONTHS[@]} months (shipgate retention)|$left|$DROP_MS ms|$(calc %.0f "$DROP_MS * 1000000 / $left") ms|$DROP_WAL MB|0|none"
) | column -t -s '|'
