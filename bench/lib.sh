# Shared by every bench script (sourced): the release binaries, a private Postgres 15
# cluster with production settings, the gateway and the simulators in their own
# processes, medians and percentiles, and the results table of bench/all.sh.
# Callers set WORK (a temp dir they remove) before calling private_pg_init.
REL=${CARGO_TARGET_DIR:-target}/release
BIN=$REL/shipgate
EX=$REL/examples/ecom_push
SIMS=$REL/shipgate-sims
need_bins() { # names of the release artifacts a script needs: shipgate ecom_push sims
  local b
  for b in "$@"; do
    case $b in
      shipgate) [ -x "$BIN" ] || { echo "build first: cargo build --release --bin shipgate"; exit 1; } ;;
      ecom_push) [ -x "$EX" ] || { echo "build first: cargo build --release --example ecom_push"; exit 1; } ;;
      sims) [ -x "$SIMS" ] || { echo "build first: cargo build --release -p sims --bin shipgate-sims"; exit 1; } ;;
    esac
  done
}
# Copies of the binaries under $WORK, so a build finishing in the shared target dir
# during a long run cannot swap the code measured (or migrate the bench database with
# another branch's migrations: `serve` migrates on start).
snapshot_bins() {
  mkdir -p "$WORK/bin"
  local b
  for b in "$BIN" "$EX" "$SIMS"; do [ -x "$b" ] && cp "$b" "$WORK/bin/"; done
  BIN_INFO="$(date -u -r "$BIN" '+%F %T') UTC, sha256 $(sha256sum "$BIN" | cut -c1-12)"
  BIN=$WORK/bin/shipgate EX=$WORK/bin/ecom_push SIMS=$WORK/bin/shipgate-sims
}
export SHIPGATE_MASTER_KEY=${SHIPGATE_MASTER_KEY:-$(head -c 32 /dev/urandom | base64)}
# Workers off: the bars measure the request paths alone (no tracking polls, webhook
# dispatch or job runs competing for the two cores).
export RUST_LOG=${RUST_LOG:-warn} SHIPGATE_WORKERS_ENABLED=false
GW_PID=
SIMS_PID=

wait_up() { # $1 base url, $2 path (default /healthz)
  for _ in $(seq 400); do curl -sf -o /dev/null "$1${2:-/healthz}" && return 0; sleep 0.025; done
  echo "$1 did not start"; return 1
}

start_gateway() { # $1 database url, $2 port, $3 log file; sets GW_PID
  DATABASE_URL="$1" "$BIN" serve --listen "127.0.0.1:$2" >>"$3" 2>&1 &
  GW_PID=$!
  wait_up "http://127.0.0.1:$2"
}

start_sims() { # $1 port, $2 log file; sets SIMS_PID: every carrier simulator, own process
  "$SIMS" "127.0.0.1:$1" >>"$2" 2>&1 &
  SIMS_PID=$!
  for _ in $(seq 400); do grep -q listening "$2" 2>/dev/null && return 0; sleep 0.025; done
  echo "shipgate-sims did not start"; return 1
}

rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; } # $1 pid

# Sample a process's RSS every 0.5 s into a file until stopped (stop_sampler).
SAMPLER_PID=
start_sampler() { # $1 pid, $2 file
  ( while kill -0 "$1" 2>/dev/null; do rss_mib "$1" >>"$2" 2>/dev/null || true; echo >>"$2"; sleep 0.5; done ) &
  SAMPLER_PID=$!
}
stop_sampler() { [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=; }

med() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
maxof() { sort -n | awk 'NF {m=$1} END {print m}'; }
quantile() { # $1 quantile (0-1): reads numbers, prints the nearest-rank quantile
  sort -n | awk -v q="$1" '{a[NR]=$1} END {i=int(q*NR+0.999999); if (i<1) i=1; print a[i]}'
}
# wrk --latency output: the 50th percentile in ms; requests/s.
wrk_p50_ms() {
  awk '/^ +50%/ { v=$2; if (v ~ /us$/) { sub(/us/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v=v*1000 } print v }'
}
wrk_rps() { awk '/^Requests\/sec:/ { print $2 }'; }
pgbench_tps() { awk '/^tps = / {print $3}'; }
calc() { awk "BEGIN {printf \"$1\", $2}"; } # calc FORMAT EXPR

# A private, throw-away Postgres cluster under $WORK (initdb + pg_ctl; as the postgres
# OS user when root). The shared system Postgres is never stopped or reconfigured.
# Production settings by default: durable commits (fsync, synchronous_commit and
# full_page_writes at their defaults), autovacuum on (default), shared_buffers=256MB,
# max_connections=200 (64 pgbench clients + the gateway's pool), max_wal_size=4GB
# (the 1GB default checkpoints every few seconds while seeding 20M rows).
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PROD_PG_OPTS="-c max_connections=200 -c shared_buffers=256MB -c max_wal_size=4GB"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
private_pg_init() { # $1 port, server options in PG_OPTS (default PROD_PG_OPTS); sets PGDATA
  chmod 755 "$WORK"
  PGHOME="$WORK/pg"
  PGDATA="$PGHOME/data"
  mkdir "$PGHOME"; [ "$(id -u)" = 0 ] && chown postgres "$PGHOME"
  as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  PRIVATE_PORT=$1
  private_pg_start
  warm_wal
}
# A server that has run a write load for a while has WAL segments to reuse: each
# checkpoint renames the ones it no longer needs for the WAL it expects before the next
# (PG 15 docs, 30.5 "WAL Configuration": recycled "based on a moving average of the
# number of WAL files used in previous checkpoint cycles", within min/max_wal_size).
# A fresh cluster has none, so every 16 MB of WAL a commit first waits for a new segment
# to be written full of zeros and fsynced (wait events IO:WALInitWrite/WALInitSync):
# 30-150 ms stalls every few seconds under P2's load, which no production server at
# steady state has. So: 2 GB of WAL positions (128 segments, switched through) and a
# checkpoint, which sets the moving average to them and recycles the segments.
WARM_WAL_SEGMENTS=${WARM_WAL_SEGMENTS:-128}
warm_wal() {
  local url="postgres://postgres@127.0.0.1:$PRIVATE_PORT/postgres" i
  [ "$WARM_WAL_SEGMENTS" -gt 0 ] || return 0
  { echo "CREATE TABLE wal_warm (i int);"
    for i in $(seq "$WARM_WAL_SEGMENTS"); do echo "INSERT INTO wal_warm VALUES ($i); SELECT pg_switch_wal();"; done
    echo "DROP TABLE wal_warm; CHECKPOINT;"; } | psql "$url" -qAt -v ON_ERROR_STOP=1 >/dev/null
}
private_pg_start() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -o "-p $PRIVATE_PORT -k $PGHOME -c listen_addresses=127.0.0.1 ${PG_OPTS:-$PROD_PG_OPTS}" \
    -l "$PGHOME/server.log" -w start >/dev/null
}
private_pg_stop() { # $1 mode (fast | immediate)
  [ -n "${PGDATA:-}" ] || return 0
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m "${1:-fast}" stop >/dev/null 2>&1 || true
}
# The stack a bar runs against, for the scripts that measure one or two bars: the
# binaries copied (snapshot_bins), a private Postgres with database $2 migrated,
# shipgate-sims on SIMS_PORT and the gateway on PORT; all stopped and WORK removed on
# exit. Needs WORK, PORT, SIMS_PORT; sets DB_URL.
stack_up() { # $1 private Postgres port, $2 database name
  trap stack_down EXIT
  snapshot_bins
  private_pg_init "$1"
  psql "postgres://postgres@127.0.0.1:$PRIVATE_PORT/postgres" -qc "CREATE DATABASE $2"
  DB_URL="postgres://postgres@127.0.0.1:$PRIVATE_PORT/$2"
  DATABASE_URL="$DB_URL" "$BIN" migrate >>"$WORK/gw.log" 2>&1
  start_sims "$SIMS_PORT" "$WORK/sims.log"
  start_gateway "$DB_URL" "$PORT" "$WORK/gw.log"
}
stack_down() {
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null || true
  [ -n "$SIMS_PID" ] && kill "$SIMS_PID" 2>/dev/null || true
  private_pg_stop immediate
  rm -rf "$WORK"
}
pg_set() { # $1 database url, then name=value ... (ALTER SYSTEM + reload; value DEFAULT resets)
  local url=$1 kv; shift
  for kv in "$@"; do
    if [ "${kv#*=}" = DEFAULT ]; then psql "$url" -qc "ALTER SYSTEM RESET ${kv%%=*}"
    else psql "$url" -qc "ALTER SYSTEM SET ${kv%%=*} = '${kv#*=}'"; fi
  done
  psql "$url" -qAtc "SELECT pg_reload_conf()" >/dev/null
  sleep 0.3
}

# The statements the gateway sends Postgres for one request, read from the server log
# with log_statement=all switched on around it (ALTER SYSTEM + reload: PostgreSQL 15
# docs, 20.8.3 "What to Log", log_statement). Prints a JSON list of {sql, params}.
capture_statements() { # $1 database url, then the command making the request
  local url=$1 log="$PGHOME/server.log" from; shift
  pg_set "$url" log_statement=all
  from=$(stat -c %s "$log")
  "$@" >/dev/null
  sleep 0.3
  pg_set "$url" log_statement=DEFAULT
  tail -c +"$((from + 1))" "$log" | python3 bench/pg_capture.py statements
}

# Results of bench/all.sh: one line per bar and size,
#   bar|size|gateway|floor|ratio|bar text|verdict
# and the figures the degradation table compares: bar|size|figure|better (high|low).
RESULTS=${RESULTS:-}
record() { # bar size gateway floor ratio bartext verdict
  [ -n "$RESULTS" ] && printf '%s|%s|%s|%s|%s|%s|%s\n' "$@" >>"$RESULTS"
  return 0
}
figure() { # bar size value better
  [ -n "$RESULTS" ] && printf '%s|%s|%s|%s\n' "$@" >>"$RESULTS.fig"
  return 0
}
verdict() { awk "BEGIN {print ($1) ? \"met\" : \"NOT MET\"}"; } # verdict 'AWK CONDITION'
