-- The database a real customer reaches (docs/quality.md P8), seeded by SQL for
-- bench/all.sh: :shipments shipments of tenant :t on connection :con (an e-Courier
-- connection), :tevents tracking events and :oevents outbound events spread evenly over
-- them, all spread over the last year, ids time-ordered as the gateway makes them
-- (crates/shipgate/src/ids.rs: `<prefix>_` + the 32 hex of a UUIDv7, whose first 12 hex
-- are the unix ms timestamp).
--   psql "$DB" -v t=ten_... -v con=con_... -v shipments=1000000 -v tevents=10000000 \
--        -v oevents=10000000 -f bench/seed.sql
-- Only the columns that matter are given (the rest take their defaults), so the file
-- survives most layout changes; one transaction per table (autocommit per statement);
-- VACUUM ANALYZE at the end, as after a restore.
\set ON_ERROR_STOP 1
\timing on
SELECT (:tevents / :shipments) AS tper, (:oevents / :shipments) AS oper \gset
-- The rows are consistent by construction (every event's shipment is inserted first):
-- skip the per-row foreign-key triggers. session_replication_role = replica fires no
-- ordinary trigger, and foreign keys are enforced by triggers (PostgreSQL 15 docs,
-- 20.11.1 "session_replication_role"; pg_dump's --disable-triggers relies on the same).
SET session_replication_role = replica;
SET maintenance_work_mem = '256MB';

-- A UUIDv7's 32 hex for a time: 12 hex of unix ms, version 7, 3 hex, variant 8, 15 hex
-- (RFC 9562 5.7); the 18 "random" hex are a row number here (unique and cheap: md5 per
-- row cost a third of the seeding time). A temporary function: gone with the session.
CREATE FUNCTION pg_temp.v7(ts timestamptz, n bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7000' || '8' || lpad(to_hex(n), 15, '0')
$$;

-- Shipments, oldest first (so the primary key grows at its right edge as in production):
-- booked e-Courier orders with a pickup and a delivery stop and one parcel, the
-- statuses of a working gateway; event_seq = the outbound events seeded below.
INSERT INTO shipments (tenant_id, id, reference, connection_id, carrier, carrier_reference, tracking_number, stops,
                       parcels, booking_state, booking_attempts, booked_at, status, event_seq, created_at, updated_at)
SELECT :'t', 'shp_' || pg_temp.v7(ts, i), 'SEED-' || i, :'con', 'ecourier', 'SEED' || i, 'SEEDTRK' || i,
       '[{"sequence":1,"type":"pickup","name":"James Madison","address":{"line1":"2251 Orange Blossom Trail","city":"Orlando","state":"FL","postal_code":"32804","country":"US"},"scheduled_at":"2026-11-23T06:00:00-05:00"},{"sequence":2,"type":"delivery","name":"Bryan Moore","address":{"line1":"2253 Orange Blossom Trail","city":"Orlando","state":"FL","postal_code":"32804","country":"US"}}]',
       '[{"reference":"PKG-1","quantity":1,"weight":{"value":2.5,"unit":"lb"}}]',
       CASE WHEN i % 1000 = 0 THEN 'failed' ELSE 'booked' END, 1, ts,
       CASE WHEN i % 100 < 70 THEN 'delivered' WHEN i % 100 < 85 THEN 'in_transit' WHEN i % 100 < 90 THEN 'out_for_delivery'
            WHEN i % 100 < 93 THEN 'exception' WHEN i % 100 < 97 THEN 'info_received' ELSE 'pending' END,
       :oper, ts, ts + :tper * interval '1 hour'
FROM (SELECT i, now() - interval '1 hour' * :tper - i * (interval '365 days' / :shipments) AS ts
      FROM generate_series(:shipments, 1, -1) i) g;

-- Tracking events: :tper per shipment, an hour apart after its creation.
-- The months the seeded rows fall in get their partitions (as a gateway running for a
-- year would have them: housekeeping creates each month ahead of time), named and
-- bounded as store/partitions.rs makes them, so no seeded row lands in a default partition.
DO $$
DECLARE m timestamp; t record;
BEGIN
  FOR t IN SELECT * FROM (VALUES ('events', 'evt'), ('tracking_events', 'shp'), ('inbound_pushes', 'shp')) v(name, prefix) LOOP
    FOR m IN SELECT generate_series(date_trunc('month', (now() AT TIME ZONE 'UTC') - interval '14 months'),
                                    date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month') LOOP
      EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
        t.name || '_p' || to_char(m, 'YYYYMM'), t.name,
        t.prefix || '_' || lpad(to_hex((extract(epoch FROM m) * 1000)::bigint), 12, '0'),
        t.prefix || '_' || lpad(to_hex((extract(epoch FROM m + interval '1 month') * 1000)::bigint), 12, '0'));
    END LOOP;
  END LOOP;
END $$;

INSERT INTO tracking_events (tenant_id, shipment_id, occurred_at, status, message, raw_code, raw_text, source, dedup_key,
                             created_at)
SELECT s.tenant_id, s.id, s.created_at + k * interval '1 hour',
       CASE WHEN k = :tper THEN s.status ELSE 'in_transit' END, 'seeded scan ' || k, 'S' || k, 'seeded code ' || k,
       'poll', 'seed:' || k, s.created_at + k * interval '1 hour'
FROM shipments s, generate_series(1, :tper) k
WHERE s.tenant_id = :'t' AND s.reference LIKE 'SEED-%';

-- Outbound events: :oper per shipment (created, booked, then scans), numbered 1.. in
-- shipment_seq, each already delivered to the webhooks.
INSERT INTO events (tenant_id, id, shipment_id, shipment_seq, type, data, created_at,
                    -- ===== SEEDED EVENTS COUNT AS DISPATCHED (schema of the day) =====
                    -- today: the writing transaction's id, and the dispatcher fans out only
                    -- events after its cursor (migrations/20261130000040); txid 0 is below
                    -- the cursor's start, as the migration marks events already fanned out.
                    txid)
SELECT s.tenant_id, 'evt_' || pg_temp.v7(s.created_at + k * interval '1 hour', substr(s.reference, 6)::bigint * 1000 + k), s.id, k,
       CASE k WHEN 1 THEN 'shipment.created' WHEN 2 THEN 'shipment.booked' ELSE 'shipment.event_added' END,
       jsonb_build_object('shipment', jsonb_build_object('id', s.id, 'status', s.status, 'tracking_number', s.tracking_number),
                          'event', jsonb_build_object('message', 'seeded scan ' || k)),
       s.created_at + k * interval '1 hour',
       '0'::xid8  -- txid: see the marked spot above
FROM shipments s, generate_series(1, :oper) k
WHERE s.tenant_id = :'t' AND s.reference LIKE 'SEED-%';

RESET session_replication_role;
VACUUM ANALYZE shipments;
VACUUM ANALYZE tracking_events;
VACUUM ANALYZE events;
CHECKPOINT;
