# Shared by bench/p1.sh, bench/r1.sh, bench/r2.sh, bench/all.sh (sourced): everything
# in bench/lib.sh (binaries, private Postgres, gateway start), plus an Ecom Express
# connection made through the API and the acked-vs-stored check of the reliability runs.
source bench/lib.sh
need_bins shipgate ecom_push

# bench/p1.sh and bench/p2_trace.sh: a private Postgres with production settings
# (bench/lib.sh) holding database p1, the gateway on $PORT and an Ecom Express connection.
# Needs WORK, PORT, BASE; sets DB_URL (and setup_ecom's exports).
push_stack_up() {
  snapshot_bins
  private_pg_init "${BENCH_PGPORT:-55438}"
  psql "postgres://postgres@127.0.0.1:$PRIVATE_PORT/postgres" -qc "CREATE DATABASE p1"
  DB_URL="postgres://postgres@127.0.0.1:$PRIVATE_PORT/p1"
  start_gateway "$DB_URL" "$PORT" "$WORK/gw.log"
  setup_ecom "$DB_URL" "$BASE"
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

