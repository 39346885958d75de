# Shared by bench/p1.sh, bench/r1.sh, bench/r2.sh (sourced): start `shipgate serve`
# (release) on a database, create a tenant, an API key and an ecomexpress connection,
# and export URL, EUSER, EPASS for the pusher.
BIN=${CARGO_TARGET_DIR:-target}/release/shipgate
EX=${CARGO_TARGET_DIR:-target}/release/examples/ecom_push
[ -x "$BIN" ] && [ -x "$EX" ] || { echo "build first: cargo build --release --bin shipgate --example ecom_push"; exit 1; }
export SHIPGATE_MASTER_KEY=${SHIPGATE_MASTER_KEY:-$(head -c 32 /dev/urandom | base64)}
export RUST_LOG=${RUST_LOG:-warn} SHIPGATE_WORKERS_ENABLED=false
GW_PID=

wait_up() { # $1 base url
  for _ in $(seq 200); do curl -sf -o /dev/null "$1/healthz" && return 0; sleep 0.05; done
  echo "gateway did not start"; return 1
}

start_gateway() { # $1 database url, $2 port, $3 log file; sets GW_PID
  DATABASE_URL="$1" "$BIN" serve --listen "127.0.0.1:$2" >>"$3" 2>&1 &
  GW_PID=$!
  wait_up "http://127.0.0.1:$2"
}

setup_ecom() { # $1 database url, $2 base url; exports TENANT KEY CON URL EUSER EPASS
  TENANT=$(DATABASE_URL="$1" "$BIN" tenant create bench | tail -1)
  KEY=$(DATABASE_URL="$1" "$BIN" api-key create --tenant "$TENANT" | tail -1)
  local body
  body=$(curl -sf -X POST "$2/v1/connections" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
    -d '{"carrier":"ecomexpress","name":"bench pushes"}')
  CON=$(jq -r .id <<<"$body")
  EUSER=$(jq -r .generated_credentials.username <<<"$body")
  EPASS=$(jq -r .generated_credentials.password <<<"$body")
  URL="$2$(jq -r .inbound_url <<<"$body")"
  export TENANT KEY CON URL EUSER EPASS
}

med() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Acked keys (awb,status_update_number) vs what is stored: prints the figures and
# fails when an acked push is missing or the stored count is not the expected one.
# (A key cannot be stored twice: it is the primary key of inbound_pushes; counted anyway.)
check_acked() { # $1 database url, $2 acked file, $3 expected distinct scans
  psql "$1" -qAt -v ON_ERROR_STOP=1 -c "DROP TABLE IF EXISTS bench_acked" -c "CREATE TABLE bench_acked (awb text, sun text)" \
    -c "\\copy bench_acked FROM '$2' WITH (FORMAT csv)"
  local q="SELECT (SELECT count(*) FROM bench_acked),
      (SELECT count(*) FROM inbound_pushes WHERE connection_id = '$CON'),
      (SELECT count(*) FROM bench_acked a WHERE NOT EXISTS (SELECT 1 FROM inbound_pushes p
         WHERE p.connection_id = '$CON' AND p.awb = a.awb AND p.status_update_number = a.sun)),
      (SELECT count(*) FROM (SELECT awb, status_update_number FROM inbound_pushes WHERE connection_id = '$CON'
         GROUP BY 1, 2 HAVING count(*) > 1) d),
      (SELECT count(*) FROM tracking_events e JOIN shipments s ON s.tenant_id = e.tenant_id AND s.id = e.shipment_id
         WHERE s.connection_id = '$CON'),
      (SELECT count(*) FROM events e JOIN shipments s ON s.tenant_id = e.tenant_id AND s.id = e.shipment_id
         WHERE s.connection_id = '$CON' AND e.type = 'shipment.event_added')"
  local acked stored lost dup tev added
  IFS='|' read -r acked stored lost dup tev added < <(psql "$1" -qAt -c "$q")
  psql "$1" -qAt -c "DROP TABLE bench_acked"
  echo "acked true: $acked, stored scans: $stored (expected $3), acked but not stored (lost): $lost, keys stored more than once: $dup, tracking events: $tev, event_added events: $added"
  [ "$lost" = 0 ] && [ "$stored" = "$3" ] && [ "$dup" = 0 ] && [ "$tev" = "$3" ] && [ "$added" = "$3" ] || { echo "FAIL"; return 1; }
  echo "PASS"
}

# A private, throw-away Postgres cluster under $WORK (initdb + pg_ctl; as the postgres
# OS user when root). The shared system Postgres is never stopped or reconfigured.
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
private_pg_init() { # $1 port, extra server options in PG_OPTS; sets PGDATA
  chmod 755 "$WORK"
  PGHOME="$WORK/pg"
  PGDATA="$PGHOME/data"
  mkdir "$PGHOME"; [ "$(id -u)" = 0 ] && chown postgres "$PGHOME"
  as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  PRIVATE_PORT=$1
  private_pg_start
}
private_pg_start() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -o "-p $PRIVATE_PORT -k $PGHOME -c listen_addresses=127.0.0.1 ${PG_OPTS:-}" \
    -l "$PGHOME/server.log" -w start >/dev/null
}
private_pg_stop() { # $1 mode (fast | immediate)
  [ -n "${PGDATA:-}" ] || return 0
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m "${1:-fast}" stop >/dev/null 2>&1 || true
}
