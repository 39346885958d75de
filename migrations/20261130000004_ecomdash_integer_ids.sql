-- ecomdash ids are integers: ShipmentId, CarrierId and LineItemId are "Integer" in
-- ecomdash's Submit Tracking Info reference (seed 004). The API used to take any
-- string for channel.ecomdash ids; the gateway now reads them as whole numbers (a
-- numeric string or a decimal like 28.0 still reads, see domain::EcomdashId). A stored
-- channel whose ids are not whole numbers could never have reached ecomdash, and
-- would no longer load: it is removed, and the shipment's history keeps what it was.
-- Its pending submission, if any, is then marked failed by the next sink round.

CREATE OR REPLACE FUNCTION pg_temp.ecomdash_id_ok(v jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    -- CASE, not AND: the cast must only see text the pattern accepted.
    SELECT CASE
        WHEN jsonb_typeof(v) = 'number' AND v::text ~ '^[0-9]+(\.0+)?$'
            THEN (v::text)::numeric <= 9007199254740991
        WHEN jsonb_typeof(v) = 'string' AND (v #>> '{}') ~ '^\s*[0-9]+(\.0+)?\s*$'
            THEN (v #>> '{}')::numeric <= 9007199254740991
        ELSE false
    END
$$;

WITH unreadable AS (
    SELECT tenant_id, id, channel
    FROM shipments
    WHERE jsonb_typeof(channel -> 'ecomdash') = 'object'
      AND NOT (
          pg_temp.ecomdash_id_ok(channel -> 'ecomdash' -> 'shipment_id')
          AND (coalesce(channel -> 'ecomdash' -> 'carrier_id', 'null') = 'null'
               OR pg_temp.ecomdash_id_ok(channel -> 'ecomdash' -> 'carrier_id'))
          AND (coalesce(channel -> 'ecomdash' -> 'line_item_ids', 'null') = 'null'
               OR (jsonb_typeof(channel -> 'ecomdash' -> 'line_item_ids') = 'array'
                   AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(channel -> 'ecomdash' -> 'line_item_ids') AS e(v)
                                   WHERE NOT pg_temp.ecomdash_id_ok(e.v))))
      )
),
dropped AS (
    UPDATE shipments s SET channel = NULL, updated_at = now()
    FROM unreadable u
    WHERE s.tenant_id = u.tenant_id AND s.id = u.id
    RETURNING u.tenant_id, u.id, u.channel
)
INSERT INTO shipment_history (tenant_id, shipment_id, actor_type, action, detail)
SELECT tenant_id, id, 'system', 'channel_dropped',
       jsonb_build_object('channel', channel,
                          'reason', 'ecomdash ids must be whole numbers (ShipmentId, CarrierId, LineItemId)')
FROM dropped;
