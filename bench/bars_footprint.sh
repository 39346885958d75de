# P7 (docs/quality.md) and the write-amplification report, sourced by bench/p7.sh and
# bench/all.sh. Needs lib.sh sourced, WORK, DB_URL, BASE; the write amplification also
# the e-Courier connection (bars_booking.sh) and the Ecom Express one (bars_push.sh).

p7_measure() { # $1 size label, $2 starts (default 3), $3 port; P1's RSS samples in $WORK/p1_rss
  local size=$1 n=${2:-3} port=${3:-18199} i start pid ready rss
  echo "== P7 [$size]: $n starts of a second \`shipgate serve\` on the migrated database: ready (/readyz 200), idle RSS 5 s later"
  : >"$WORK/p7_ready"; : >"$WORK/p7_rss"
  for i in $(seq "$n"); do
    start=$(date +%s%N)
    DATABASE_URL="$DB_URL" "$BIN" serve --listen "127.0.0.1:$port" >>"$WORK/p7.log" 2>&1 &
    pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; do
      kill -0 $pid 2>/dev/null || { echo "gateway exited:"; tail "$WORK/p7.log"; return 1; }
      sleep 0.005
    done
    ready=$(( ($(date +%s%N) - start) / 1000000 ))
    sleep 5
    rss=$(rss_mib $pid)
    kill -TERM $pid; wait $pid 2>/dev/null || true
    echo "start $i: ready after $ready ms, idle RSS $rss MiB"
    echo "$ready" >>"$WORK/p7_ready"; echo "$rss" >>"$WORK/p7_rss"
  done
  local R S L
  R=$(med <"$WORK/p7_ready"); S=$(med <"$WORK/p7_rss")
  echo "P7 [$size] median: ready $R ms (bar <= 1000), idle RSS $S MiB (bar <= 40)"
  record "P7 ready" "$size" "$R ms" "-" "-" "<= 1000 ms" "$(verdict "$R <= 1000")"
  record "P7 idle RSS" "$size" "$S MiB" "-" "-" "<= 40 MiB" "$(verdict "$S <= 40")"
  figure "P7 ready" "$size" "$R" low
  figure "P7 idle RSS" "$size" "$S" low
  if [ -s "$WORK/p1_rss" ]; then
    L=$(maxof <"$WORK/p1_rss")
    echo "P7 [$size]: gateway RSS under the P1 load, largest sample (every 0.5 s): $L MiB (bar <= 150)"
    record "P7 RSS under P1" "$size" "$L MiB" "-" "-" "<= 150 MiB" "$(verdict "$L <= 150")"
    figure "P7 RSS under P1" "$size" "$L" low
  fi
}

# Rows inserted / updated (HOT) / deleted and dead tuples left, per table, per booking
# and per push: pg_stat_user_tables deltas (PostgreSQL 15 docs, 28.2 "The Cumulative
# Statistics System", pg_stat_all_tables) with autovacuum
# off for this measurement only. A backend reports its counters when it goes idle, at
# most once a second and at the latest 10 s later (PGSTAT_IDLE_INTERVAL in pgstat.c), hence
# the 11 s waits before each snapshot. Page pruning can still remove dead tuples.
wamp_snapshot() {
  sleep 11
  psql "$DB_URL" -qAt -F ' ' -c "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, n_dead_tup
    FROM pg_stat_user_tables ORDER BY relname" >"$1"
}
wamp_delta() { # $1 before, $2 after, $3 operation count, $4 operation, $5 size
  awk -v n="$3" -v op="$4" -v size="$5" 'NR == FNR {i[$1]=$2; u[$1]=$3; h[$1]=$4; d[$1]=$5; x[$1]=$6; next}
    { di=$2-i[$1]; du=$3-u[$1]; dh=$4-h[$1]; dd=$5-d[$1]; dx=$6-x[$1]
      if (di || du || dd || dx) printf "%s|%s|%s|%.2f|%.2f (%.2f HOT)|%.2f|%.2f\n", op, size, $1, di/n, du/n, dh/n, dd/n, dx/n }' "$1" "$2"
}

wamp_measure() { # $1 size label, $2 operations of each kind (default 200)
  local size=$1 n=${2:-200} i ok=0 pok=0
  echo "== write amplification [$size]: $n bookings, then $n pushes; pg_stat_user_tables deltas, autovacuum off meanwhile"
  pg_set "$DB_URL" autovacuum=off
  wamp_snapshot "$WORK/wa0"
  for i in $(seq "$n"); do
    book_once | grep -q '"state":"booked"' && ok=$((ok + 1))
  done
  wamp_snapshot "$WORK/wa1"
  for i in $(seq "$n"); do
    curl -sf -X POST "$URL" -u "$EUSER:$EPASS" -H 'content-type: application/json' \
      -d "{\"awb\":\"BENCH-$((i % AWBS))\",\"datetime\":\"2026-11-22 10:30:00\",\"status\":\"scan\",\"reason_code\":\"002 - scan\",\"reason_code_number\":\"002\",\"location\":\"JRD\",\"Employee\":\"Bench\",\"status_update_number\":\"wa$size$$-$i\",\"order_number\":\"ORD-1\",\"city\":\"Vadodara\",\"ref_awb\":\"\"}" |
      grep -q '"status":true' && pok=$((pok + 1))
  done
  wamp_snapshot "$WORK/wa2"
  pg_set "$DB_URL" autovacuum=DEFAULT
  echo "$ok of $n bookings booked, $pok of $n pushes acked status:true"
  { wamp_delta "$WORK/wa0" "$WORK/wa1" "$n" booking "$size"; wamp_delta "$WORK/wa1" "$WORK/wa2" "$n" push "$size"; } >"$WORK/wamp"
  (echo "operation|size|table|inserted|updated|deleted|dead tuples left"; cat "$WORK/wamp") | column -t -s '|' | sed 's/^/  /'
  [ -n "$RESULTS" ] && cat "$WORK/wamp" >>"$RESULTS.wamp"
  return 0
}
