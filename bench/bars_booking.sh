# P3 (docs/quality.md), sourced by bench/run.sh and bench/all.sh. Needs lib.sh sourced,
# WORK, DB_URL, BASE, KEY, TENANT, RUNS, SECS, and shipgate-sims running on SIMS_BASE.
#   gateway: POST /v1/shipments booked on e-Courier, 1 connection, p50 (wrk --latency)
#   direct:  the same SaveOrder sent straight to the e-Courier simulator, in its own
#            process (shipgate-sims), 1 connection, p50 -> added = gateway - direct
#   floor:   pgbench, 1 client, prepared: the booking's own writes as hand-written
#            statements, p50 of its per-transaction log -> bar: added <= floor + 1 ms
#   paused:  the same floor with the pauses a gateway within the bar leaves between
#            its statements: the carrier call (direct p50) and the bar's 1 ms as idle
#            time, 0.6 ms of it between the statements and 0.4 ms after; its p50 less
#            the p50 of the same pauses run alone (pgbench's \sleep overshoots). Where a
#            backend that waits costs more when it resumes, this is the floor a gateway
#            with exactly 1 ms of its own work meets (bench/README.md, 2026-12-02: the
#            floor's backend ran 1.9-2.3 ms of CPU per booking, paused 2.4-2.8 ms, the
#            gateway's 2.8-3.3 ms). A miss with added <= paused + 1 ms reads
#            "NOT MET: floor".
PGBENCH=${PGBENCH:-$(command -v pgbench || echo "$PGBIN/pgbench")}
BOOK_STOPS='[{"sequence":1,"type":"pickup","name":"James Madison","address":{"line1":"2251 Orange Blossom Trail","city":"Orlando","state":"FL","postal_code":"32804","country":"US"},"scheduled_at":"2026-11-23T06:00:00-05:00"},{"sequence":2,"type":"delivery","name":"Bryan Moore","address":{"line1":"2253 Orange Blossom Trail","city":"Orlando","state":"FL","postal_code":"32804","country":"US"}}]'
BOOK_PARCELS='[{"reference":"PKG-1","quantity":1,"weight":{"value":2.5,"unit":"lb"}}]'

ecourier_setup() { # creates the e-Courier connection on the simulator; exports ECON
  local body
  body=$(curl -sf -X POST "$BASE/v1/connections" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
    -d "{\"carrier\":\"ecourier\",\"name\":\"bench e-Courier\",\"base_url\":\"$SIMS_BASE/ecourier\",
         \"credentials\":{\"website\":\"demo\",\"username\":\"demo\",\"password\":\"demo-pass\"},
         \"settings\":{\"customer_code\":\"DEMO\"}}") || { echo "e-Courier connection refused"; return 1; }
  ECON=$(jq -r .id <<<"$body")
  export ECON
}

book_once() { # prints the created shipment's JSON (one booking through the gateway)
  curl -sf -X POST "$BASE/v1/shipments" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
    -d "{\"connection_id\":\"$ECON\",\"stops\":$BOOK_STOPS,\"parcels\":$BOOK_PARCELS}"
}

# The values a real booking wrote (same database), as pgbench variables: JSON sizes,
# the exchange's request and response, the events' data.
booking_setup() {
  local shp sid q
  shp=$(book_once) || { echo "gateway booking failed"; return 1; }
  sid=$(jq -r .id <<<"$shp")
  [ "$(jq -r .booking.state <<<"$shp")" = booked ] || { echo "booking not booked: $shp"; return 1; }
  q() { psql "$DB_URL" -qAt -v ON_ERROR_STOP=1 -c "$1"; }
  B_ROW=$(q "SELECT row_to_json(s) FROM shipments s WHERE tenant_id = '$TENANT' AND id = '$sid'")
  B_XCH=$(q "SELECT row_to_json(x) FROM carrier_exchanges x WHERE tenant_id = '$TENANT' AND shipment_id = '$sid'
             AND operation = 'SaveOrder' ORDER BY created_at DESC LIMIT 1")
  B_CREATED=$(q "SELECT data FROM events WHERE tenant_id = '$TENANT' AND shipment_id = '$sid' AND type = 'shipment.created'")
  B_BOOKED=$(q "SELECT data FROM events WHERE tenant_id = '$TENANT' AND shipment_id = '$sid' AND type = 'shipment.booked'")
  B_HCREATED=$(q "SELECT detail FROM shipment_history WHERE tenant_id = '$TENANT' AND shipment_id = '$sid' AND action = 'created'")
  B_HBOOKED=$(q "SELECT detail FROM shipment_history WHERE tenant_id = '$TENANT' AND shipment_id = '$sid' AND action = 'booked'")
  B_ACTOR=$(q "SELECT actor_id FROM shipment_history WHERE tenant_id = '$TENANT' AND shipment_id = '$sid' AND action = 'created'")
  [ -n "$B_XCH" ] && [ -n "$B_BOOKED" ] || { echo "no SaveOrder exchange or shipment.booked event for $sid"; return 1; }
  echo "booking sample $sid: request $(jq -r '.request_body | length' <<<"$B_XCH") B, response $(jq -r '.response_body | length' <<<"$B_XCH") B," \
    "shipment.created $(wc -c <<<"$B_CREATED") B, shipment.booked $(wc -c <<<"$B_BOOKED") B"

  # The gateway's request, and the SaveOrder it sent, each with a fresh order number
  # per request (a known OrderNumber would make the simulator modify instead of create).
  cat >"$WORK/book.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.body = '{"connection_id":"$ECON","stops":$BOOK_STOPS,"parcels":$BOOK_PARCELS}'
LUA
  local guid save
  guid=$(curl -sf -X POST "$SIMS_BASE/ecourier/software/xml/ecJsonPost.asmx/Login" -H 'content-type: application/json' \
    -d '{"website":"demo","username":"demo","password":"demo-pass"}' | jq -r .UserGUID)
  save=$(jq -r .request_body <<<"$B_XCH" | jq -c 'if .Order.OrderNumber then .Order.OrderNumber = "@ON@" else . end')
  cat >"$WORK/direct.lua" <<LUA
counter = 0
body = [==[$save]==]
function request()
  counter = counter + 1
  local b = string.gsub(body, "@ON@", string.format("D%d%07d", os.time(), counter))
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["UserGUID"] = "$guid"}, b)
end
LUA
  curl -sf -o /dev/null -X POST "$SIMS_BASE/ecourier/software/xml/ecJsonPost.asmx/SaveOrder" -H 'content-type: application/json' \
    -H "UserGUID: $guid" -d "${save//@ON@/DCHECK$$}" || { echo "direct SaveOrder refused"; return 1; }

  # The floor: the booking's writes as the store writes them (crates/shipgate/src/store/
  # shipments/create.rs insert_with_history, booking.rs mark_booked), minus the
  # safety-net job insert and delete that issue 13 removes. Ids are time-ordered like the
  # gateway's (12 hex of the statement's ms timestamp first).
  local cols="tenant_id, id, reference, connection_id, carrier, carrier_reference, tracking_number, service, stops,
    parcels, declared_value, cod_amount, notes, metadata, channel, booking_state, booking_attempts, booking_last_error,
    booked_at, status, subtag, carrier_status, last_event, estimated_delivery, sinks, documents, proof_of_delivery,
    created_at, updated_at"
  local newid="lpad(to_hex((extract(epoch FROM statement_timestamp()) * 1000)::bigint), 12, '0') || '7'"
  cat >"$WORK/book_floor.sql" <<SQL
\set r random(1, 4000000000000000000)
WITH h AS (INSERT INTO shipment_history (tenant_id, shipment_id, actor_type, actor_id, action, detail, at)
           VALUES (:tenant, 'shp_' || $newid || lpad(to_hex(:r::bigint), 19, '0'), 'api_key', :actor, 'created', :hcreated, now())),
     e AS (INSERT INTO events (tenant_id, id, shipment_id, shipment_seq, type, data, created_at)
           VALUES (:tenant, 'evt_' || $newid || lpad(to_hex(:r::bigint), 19, '0'), 'shp_' || $newid || lpad(to_hex(:r::bigint), 19, '0'),
                   1, 'shipment.created', :created, now()))
INSERT INTO shipments (tenant_id, id, reference, connection_id, carrier, carrier_reference, tracking_number,
                       service, stops, parcels, declared_value, cod_amount, notes, metadata, channel, booking_state,
                       registration_key, event_seq, created_at, updated_at)
VALUES (:tenant, 'shp_' || $newid || lpad(to_hex(:r::bigint), 19, '0'), NULL, :con, 'ecourier', :carref, NULL, NULL, :stops,
        :parcels, NULL, NULL, NULL, :metadata, NULL, 'pending', NULL, 1, now(), now())
RETURNING $cols \gset s_
WITH x AS (INSERT INTO carrier_exchanges (tenant_id, connection_id, shipment_id, carrier, operation, method, url,
                                          request_body, response_status, response_body, duration_ms, error, created_at)
           SELECT :tenant, :con, :s_id, 'ecourier', :xop, :xmethod, :xurl, :xreq, :xstatus::int4, :xresp, :xms::int4, NULL, now()),
     u AS (UPDATE shipments SET booking_state = 'booked', booking_last_error = NULL,
                  booking_attempts = booking_attempts + 1, booked_at = coalesce(booked_at, now()),
                  tracking_number = coalesce(:tracking, tracking_number),
                  carrier_reference = coalesce(:carref, carrier_reference),
                  status = CASE WHEN status = 'pending' THEN 'info_received' ELSE status END,
                  event_seq = event_seq + 1, updated_at = now()
           WHERE tenant_id = :tenant AND id = :s_id
           RETURNING *),
     e AS (INSERT INTO events (tenant_id, id, shipment_id, shipment_seq, type, data)
           SELECT tenant_id, 'evt_' || $newid || lpad(to_hex(:r::bigint + 1), 19, '0'), id, event_seq, 'shipment.booked',
                  jsonb_set(jsonb_set(jsonb_set(jsonb_set((:booked)::jsonb,
                      '{shipment,booking,attempts}', to_jsonb(booking_attempts)),
                      '{shipment,status}', to_jsonb(status)),
                      '{shipment,tracking_number}', coalesce(to_jsonb(tracking_number), 'null'::jsonb)),
                      '{shipment,carrier_reference}', coalesce(to_jsonb(carrier_reference), 'null'::jsonb))
           FROM u),
     h AS (INSERT INTO shipment_history (tenant_id, shipment_id, actor_type, actor_id, action, detail)
           SELECT tenant_id, id, 'api_key', :actor, 'booked', :hbooked FROM u)
SELECT $cols FROM u;
SQL
  BOOK_ARGS=(-D tenant="$TENANT" -D con="$ECON" -D actor="$B_ACTOR" -D hcreated="$B_HCREATED" -D created="$B_CREATED"
    -D carref="$(jq -r .carrier_reference <<<"$B_ROW")" -D tracking="$(jq -r .tracking_number <<<"$B_ROW")"
    -D stops="$(jq -c .stops <<<"$B_ROW")" -D parcels="$(jq -c .parcels <<<"$B_ROW")" -D metadata="$(jq -c .metadata <<<"$B_ROW")"
    -D xop=SaveOrder -D xmethod="$(jq -r .method <<<"$B_XCH")" -D xurl="$(jq -r .url <<<"$B_XCH")"
    -D xreq="$(jq -r .request_body <<<"$B_XCH")" -D xstatus="$(jq -r .response_status <<<"$B_XCH")"
    -D xresp="$(jq -r .response_body <<<"$B_XCH")" -D xms="$(jq -r .duration_ms <<<"$B_XCH")"
    -D booked="$B_BOOKED" -D hbooked="$B_HBOOKED")
  # What the gateway sends Postgres for one booking, for comparison with the floor.
  capture_statements "$DB_URL" book_once >"$WORK/book_statements.json"
  echo "one booking through the gateway sent $(jq length "$WORK/book_statements.json") statement(s):"
  python3 bench/pg_capture.py summary <"$WORK/book_statements.json"
  [ -n "${PLANS_DIR:-}" ] && cp "$WORK/book_statements.json" "$PLANS_DIR/booking.statements.json"
  "$PGBENCH" -n -M prepared -c 1 -t 1 -f "$WORK/book_floor.sql" "${BOOK_ARGS[@]}" "$DB_URL" >"$WORK/book_check" 2>&1 &&
    grep -q "number of failed transactions: 0" "$WORK/book_check" || { echo "floor script failed:"; cat "$WORK/book_check"; return 1; }
}

pgbench_log_p50_ms() { # $1 log prefix: p50 of the per-transaction latencies (3rd field, us)
  cat "$1".* | awk '{print $3/1000}' | med
}

p3_measure() { # $1 size label
  local size=$1 i g d f favg p between pauses
  # The simulator keeps every order it is sent (~10 KB each, ~12k/s direct): direct runs
  # of at most 3 s (tens of thousands of samples) keep its memory to a few GB over a run.
  local DSECS=$(( SECS < 3 ? SECS : 3 ))
  # Gateway and floor take turns in slices of each run, so that both see the same
  # background (autovacuum on the tables the loads before left dead tuples in, a
  # checkpoint's full-page writes): run after run, whatever slows the server slows both.
  local SLICES=${P3_SLICES:-5} SL j
  SL=$(( SECS / SLICES )); [ "$SL" -lt 1 ] && SL=1
  echo "== P3 [$size]: booking latency, 1 connection, $RUNS runs of ${SLICES} alternating ${SL}s slices (gateway, floor) (simulator in its own process)"
  : >"$WORK/p3"
  for i in $(seq "$RUNS"); do
    rm -f "$WORK"/p3log.*
    : >"$WORK/p3g"; : >"$WORK/p3f"
    for j in $(seq "$SLICES"); do
      wrk -t1 -c1 -d"${SL}s" --latency -s "$WORK/book.lua" "$BASE/v1/shipments" | wrk_p50_ms >>"$WORK/p3g"
      "$PGBENCH" -n -M prepared -c 1 -T "$SL" -l --log-prefix="$WORK/p3log.$j" -f "$WORK/book_floor.sql" "${BOOK_ARGS[@]}" \
        "$DB_URL" >"$WORK/p3pgb" 2>&1 || { echo "pgbench failed:"; tail "$WORK/p3pgb"; return 1; }
      pgbench_log_p50_ms "$WORK/p3log.$j" >>"$WORK/p3f"
    done
    # Each side's p50: the median of its slices' p50s.
    g=$(med <"$WORK/p3g")
    d=$(wrk -t1 -c1 -d"${DSECS}s" --latency -s "$WORK/direct.lua" \
      "$SIMS_BASE/ecourier/software/xml/ecJsonPost.asmx/SaveOrder" | wrk_p50_ms)
    f=$(med <"$WORK/p3f")
    favg=$(cat "$WORK"/p3log.* | awk '{s+=$3} END {printf "%.3f", s/NR/1000}')
    # The floor with the pauses (see the header): pgbench's \sleep takes microseconds.
    between=$(calc %d "600 + 1000*$d")
    awk -v b="$between" '/^WITH x AS/ && !done {print "\\sleep " b " us"; done = 1} {print} END {print "\\sleep 400 us"}' \
      "$WORK/book_floor.sql" >"$WORK/book_paused.sql"
    rm -f "$WORK"/p3plog.*
    "$PGBENCH" -n -M prepared -c 1 -T "$DSECS" -l --log-prefix="$WORK/p3plog" -f "$WORK/book_paused.sql" "${BOOK_ARGS[@]}" \
      "$DB_URL" >"$WORK/p3pgb" 2>&1 || { echo "pgbench (paused) failed:"; tail "$WORK/p3pgb"; return 1; }
    # The pauses as pgbench takes them, alone: a \sleep overshoots (0.23 ms over 1.2 ms
    # asked, on the 2026-12-02 machine), and that is no part of the writes' cost.
    printf '\\sleep %s us\n\\sleep 400 us\n' "$between" >"$WORK/book_sleep.sql"
    rm -f "$WORK"/p3slog.*
    "$PGBENCH" -n -c 1 -T "$DSECS" -l --log-prefix="$WORK/p3slog" -f "$WORK/book_sleep.sql" "$DB_URL" >"$WORK/p3pgb" 2>&1 ||
      { echo "pgbench (pauses alone) failed:"; tail "$WORK/p3pgb"; return 1; }
    pauses=$(pgbench_log_p50_ms "$WORK/p3slog")
    p=$(calc %.3f "$(pgbench_log_p50_ms "$WORK/p3plog") - $pauses")
    echo "run $i: gateway p50 $g ms (slices $(tr '\n' ' ' <"$WORK/p3g")), SaveOrder direct p50 $d ms, added $(calc %.3f "$g-$d") ms;" \
      "floor (pgbench, both statements) p50 $f ms (slices $(tr '\n' ' ' <"$WORK/p3f"), avg $favg ms);" \
      "paused floor $p ms (p50 less the pauses' own p50, $pauses ms for $(calc %.3f "1 + $d") ms asked)"
    echo "$g $d $f $p" >>"$WORK/p3"
  done
  local G D F A P v
  G=$(awk '{print $1}' "$WORK/p3" | med); D=$(awk '{print $2}' "$WORK/p3" | med); F=$(awk '{print $3}' "$WORK/p3" | med)
  P=$(awk '{print $4}' "$WORK/p3" | med)
  A=$(calc %.3f "$G-$D")
  echo "P3 [$size] median of runs: gateway $G ms - direct $D ms = added $A ms; floor $F ms; added - floor = $(calc %.3f "$A-$F") ms (bar <= 1 ms);" \
    "paused floor $P ms: added - paused floor = $(calc %.3f "$A-$P") ms"
  v=$(verdict "$A <= $F + 1")
  if [ "$v" != met ] && awk "BEGIN {exit !($A <= $P + 1)}"; then v="NOT MET: floor"; fi
  record P3 "$size" "added $A ms (p50 $G - direct $D)" "$(calc %.3f "$F") ms; paused $(calc %.3f "$P") ms" \
    "$(calc %.2f "$A/$F")x" "added <= floor + 1 ms" "$v"
  figure P3 "$size" "$(calc %.3f "$A/$F")" low
}
