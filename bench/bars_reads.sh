# P4 (docs/quality.md), sourced by bench/run.sh and bench/all.sh. Needs lib.sh sourced,
# WORK, DB_URL, BASE, KEY, TENANT, RUNS, SECS, PGHOME (the private cluster's log).
#   gateway: GET /v1/shipments/{id} over 1,000 of the tenant's shipments (a wrk script
#            walking a random sample, each connection from its own place) and
#            GET /v1/shipments?limit=100, wrk, 64 connections
#   floor:   pgbench, 64 clients, -M prepared, running the statements the gateway sent
#            Postgres for one such request (read from the server log with
#            log_statement=all, same SQL and parameters: bench/pg_capture.py)
#   also reported, no bar: GET one of a single shipment by all 64 connections (the
#            figure before coalesced reads; concurrent reads of one id share one row of
#            one statement, so it flatters the gateway: the bar uses the 1,000 ids)
#   ceiling: GET /readyz (one HTTP request, one `SELECT 1` through the gateway's pool,
#            a three-field JSON answer) vs pgbench SELECT 1, same clients: the most a
#            read that takes a statement of its own reaches on the machine. Reads by id
#            beat it by sharing statements (service::shipments::reads). Reported, not a bar.
PGBENCH=${PGBENCH:-$(command -v pgbench || echo "$PGBIN/pgbench")}

reads_setup() { # $1 size label: picks the shipment, captures the statements, writes the scripts
  local size=$1 n name path
  READ_N=$(psql "$DB_URL" -qAt -c "SELECT count(*) FROM shipments WHERE tenant_id = '$TENANT'")
  # The shipment in the middle of the tenant's (by id, i.e. by creation time), among
  # those with a gateway-shaped id.
  n=$(psql "$DB_URL" -qAt -c "SELECT count(*) FROM shipments WHERE tenant_id = '$TENANT' AND id ~ '^shp_[0-9a-f]{32}$'")
  READ_ID=$(psql "$DB_URL" -qAt -c "SELECT id FROM shipments WHERE tenant_id = '$TENANT' AND id ~ '^shp_[0-9a-f]{32}$'
    ORDER BY id OFFSET $((n / 2)) LIMIT 1")
  # 1,000 of the tenant's shipments for GET one, in random order; each wrk connection
  # starts at its own place in the list (a Lua state per thread, a counter per request).
  psql "$DB_URL" -qAt -c "SELECT id FROM shipments WHERE tenant_id = '$TENANT' AND id ~ '^shp_[0-9a-f]{32}$'
    ORDER BY random() LIMIT 1000" >"$WORK/read_ids"
  { echo "local ids = {"; sed 's/.*/"&",/' "$WORK/read_ids"; echo "}"
    echo 'local i = math.random(#ids)'
    echo 'request = function() i = i + 1; return wrk.format(nil, "/v1/shipments/" .. ids[(i % #ids) + 1]) end'
  } >"$WORK/read_many.lua"
  echo "GET one [$size]: $(wc -l <"$WORK/read_ids") shipments for the gateway's side"
  for name in one list; do
    if [ $name = one ]; then path="/v1/shipments/$READ_ID"; else path="/v1/shipments?limit=100"; fi
    echo "$path" >"$WORK/read_$name.path"
    # warm: caches (API key, connection) filled as in the steady state wrk measures
    curl -sf -o /dev/null -H "Authorization: Bearer $KEY" "$BASE$path" || { echo "GET $path failed"; return 1; }
    capture_statements "$DB_URL" curl -sf -H "Authorization: Bearer $KEY" "$BASE$path" >"$WORK/read_$name.json"
    python3 bench/pg_capture.py pgbench "$WORK/read_$name.sql" "$WORK/read_$name.args" <"$WORK/read_$name.json"
    echo "GET $path [$size]: the gateway sent $(jq length "$WORK/read_$name.json") statement(s):"
    python3 bench/pg_capture.py summary <"$WORK/read_$name.json"
    # Their plans (after five executions, as a prepared statement settles), kept in the
    # output for index-only checks; the scan lines are printed.
    python3 bench/pg_capture.py explain <"$WORK/read_$name.json" >"$WORK/read_$name.explain.sql"
    psql "$DB_URL" -q -f "$WORK/read_$name.explain.sql" >"$WORK/read_$name.plan" 2>&1 || true
    grep -E "statement|Scan|Heap Fetches|Sort|ERROR" "$WORK/read_$name.plan" | sed 's/^/     /'
    if [ -n "${PLANS_DIR:-}" ]; then
      cp "$WORK/read_$name.plan" "$PLANS_DIR/p4_${name}_${size//\//-}.plan"
      cp "$WORK/read_$name.json" "$PLANS_DIR/p4_${name}_${size//\//-}.statements.json"
    fi
  done
  return 0
}

p4_measure() { # $1 size label
  local size=$1 i name gw pg
  echo "== P4 [$size]: reads, 64 connections/clients, ${SECS}s per run, $RUNS runs ($READ_N shipments in the tenant)"
  : >"$WORK/p4_one"; : >"$WORK/p4_list"; : >"$WORK/p4_ceiling"; : >"$WORK/p4_same"
  for i in $(seq "$RUNS"); do
    local line="run $i:" same
    for name in one list; do
      if [ $name = one ]; then
        gw=$(wrk -t2 -c64 -d"${SECS}s" -H "Authorization: Bearer $KEY" -s "$WORK/read_many.lua" "$BASE" | wrk_rps)
        same=$(wrk -t2 -c64 -d"${SECS}s" -H "Authorization: Bearer $KEY" "$BASE$(cat "$WORK/read_one.path")" | wrk_rps)
      else
        gw=$(wrk -t2 -c64 -d"${SECS}s" -H "Authorization: Bearer $KEY" "$BASE$(cat "$WORK/read_$name.path")" | wrk_rps)
      fi
      local args=()
      mapfile -d '' args <"$WORK/read_$name.args"
      "$PGBENCH" -n -M prepared -c 64 -j 2 -T "$SECS" -f "$WORK/read_$name.sql" "${args[@]}" "$DB_URL" >"$WORK/p4pgb" 2>&1 || true
      pg=$(pgbench_tps <"$WORK/p4pgb")
      [ -n "$pg" ] && [ -n "$gw" ] || { echo "P4 $name: wrk '$gw' pgbench:"; tail "$WORK/p4pgb"; return 1; }
      line="$line GET $name: gateway $gw req/s, pgbench $pg tx/s ($(calc %.0f%% "100*$gw/$pg"));"
      [ $name = one ] && line="$line one id: gateway $same req/s ($(calc %.0f%% "100*$same/$pg"));" && echo "$same $pg" >>"$WORK/p4_same"
      echo "$gw $pg" >>"$WORK/p4_$name"
    done
    gw=$(wrk -t2 -c64 -d"${SECS}s" "$BASE/readyz" | wrk_rps)
    "$PGBENCH" -n -M prepared -c 64 -j 2 -T "$SECS" -f <(echo 'SELECT 1;') "$DB_URL" >"$WORK/p4pgb" 2>&1 || true
    pg=$(pgbench_tps <"$WORK/p4pgb")
    line="$line ceiling: /readyz $gw req/s, pgbench SELECT 1 $pg tx/s ($(calc %.0f%% "100*$gw/$pg"))"
    echo "$gw $pg" >>"$WORK/p4_ceiling"
    echo "$line"
  done
  local CG CP
  CG=$(awk '{print $1}' "$WORK/p4_ceiling" | med); CP=$(awk '{print $2}' "$WORK/p4_ceiling" | med)
  echo "P4 ceiling [$size] median of runs: /readyz $CG req/s, pgbench SELECT 1 $CP tx/s, ratio $(calc %.0f "100*$CG/$CP")%"
  record "P4 ceiling /readyz" "$size" "$(calc %.0f "$CG") req/s" "$(calc %.0f "$CP") tx/s (SELECT 1)" \
    "$(calc %.0f "100*$CG/$CP")%" "(no bar: one statement per read)" "-"
  CG=$(awk '{print $1}' "$WORK/p4_same" | med); CP=$(awk '{print $2}' "$WORK/p4_same" | med)
  echo "P4 GET one (one id) [$size] median of runs: gateway $CG req/s, pgbench $CP tx/s, ratio $(calc %.0f "100*$CG/$CP")% (no bar)"
  record "P4 GET one (one id)" "$size" "$(calc %.0f "$CG") req/s" "$(calc %.0f "$CP") tx/s" \
    "$(calc %.0f "100*$CG/$CP")%" "(no bar: one row shared)" "-"
  for name in one list; do
    local G P R label
    G=$(awk '{print $1}' "$WORK/p4_$name" | med); P=$(awk '{print $2}' "$WORK/p4_$name" | med); R=$(calc %.0f "100*$G/$P")
    [ $name = one ] && label="P4 GET one (1,000 ids)" || label="P4 list of 100"
    echo "$label [$size] median of runs: gateway $G req/s, pgbench $P tx/s, ratio $R% (bar >= 60%)"
    record "$label" "$size" "$(calc %.0f "$G") req/s" "$(calc %.0f "$P") tx/s" "$R%" ">= 60%" "$(verdict "$R >= 60")"
    figure "$label" "$size" "$R" high
  done
}
