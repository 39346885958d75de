-- Time-partitioned append-only tables, and an outbox dispatcher without a per-event
-- UPDATE (issue 13: "High-volume append-only tables (raw pushes, tracking events,
-- outbound events, webhook attempts, carrier exchanges) are partitioned by time, and
-- retention drops partitions instead of deleting rows"; "remove ... the per-event
-- dispatcher UPDATE").
--
-- Partition keys. Every unique constraint of a partitioned table, its primary key
-- included, must contain the partition key columns (PG 15 docs 5.11.2.3 "Limitations").
-- Our ids are `<prefix>_<32 hex of a UUIDv7>` (src/ids.rs): the first 12 hex digits are
-- the creation time in Unix milliseconds (RFC 9562 §5.7, UUID version 7), so a range of
-- ids is a range of time, and the keys that already hold the id stay unique without a
-- timestamp. The id columns used as keys are COLLATE "C", so bounds compare byte by byte
-- whatever the database's collation.
--
--   events             RANGE (id)           when the event was written
--   webhook_attempts   RANGE (delivery_id)  when its delivery was created (`whd_` + 12 hex
--                                           of ms + 20 hex, store/webhooks/queue.rs)
--   tracking_events    RANGE (shipment_id)  when the shipment was created: a shipment's
--   inbound_pushes     RANGE (shipment_id)  scans and raw pushes share one partition
--   carrier_exchanges  RANGE (created_at)
--
-- One partition per calendar month (UTC), named <table>_pYYYYMM, and <table>_default,
-- which takes a row no month covers (a hand-made id, a month not created yet), so no
-- insert is ever refused. Retention never drops the default partition; housekeeping
-- reports what it holds. This migration creates the months the existing rows need, the
-- current month and the next three; housekeeping (service/retention.rs) keeps three
-- months ahead and drops whole months that are past their table's retention.
--
-- Existing rows are copied (INSERT ... SELECT, then the old table is dropped); identity
-- sequences continue above the copied values and the old sequence. On a large database
-- this migration runs for minutes and blocks writes to these tables meanwhile: run
-- `shipgate migrate` once before rolling out (docs/operations.md "Upgrades").

-- ---- helpers, gone when the migration's session ends ----

-- The time in an id `<prefix>_<12 hex of Unix ms>...`.
CREATE FUNCTION pg_temp.id_time(id text) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT to_timestamp(('x' || substr(id, strpos(id, '_') + 1, 12))::bit(48)::bigint / 1000.0)
$$;

-- The lowest id of `prefix` written at `at` (the bound of a month's range).
CREATE FUNCTION pg_temp.id_bound(prefix text, at timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT prefix || '_' || lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0')
$$;

-- Monthly partitions of `tbl` for every month from `first_at` through `last_at` (UTC), and
-- the default partition. `prefix` names the id prefix of an id-keyed table; NULL for a
-- timestamptz key.
CREATE FUNCTION pg_temp.month_partitions(tbl text, prefix text, first_at timestamptz, last_at timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    m  timestamptz := date_trunc('month', first_at, 'UTC');
    nx timestamptz;
BEGIN
    WHILE m <= last_at LOOP
        nx := date_trunc('month', m + interval '32 days', 'UTC');
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                       tbl || '_p' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM'), tbl,
                       CASE WHEN prefix IS NULL THEN m::text ELSE pg_temp.id_bound(prefix, m) END,
                       CASE WHEN prefix IS NULL THEN nx::text ELSE pg_temp.id_bound(prefix, nx) END);
        m := nx;
    END LOOP;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', tbl || '_default', tbl);
END
$$;

-- Months for the rows of a table whose oldest and newest keys are at `lo` and `hi`:
-- from the oldest (at most two years back: anything older goes to the default
-- partition) through three months past the newest or now (at most a year ahead).
CREATE FUNCTION pg_temp.partitions_for(tbl text, prefix text, lo timestamptz, hi timestamptz)
RETURNS void LANGUAGE sql AS $$
    SELECT pg_temp.month_partitions(
        tbl, prefix,
        greatest(least(coalesce(lo, now()), now()), now() - interval '2 years'),
        least(greatest(coalesce(hi, now()), now()), now() + interval '1 year') + interval '3 months')
$$;

-- Make the new identity sequence of `tbl`.`col` continue above the copied rows and above
-- the old sequence (numbers handed out and then deleted are not handed out again).
CREATE FUNCTION pg_temp.continue_identity(tbl text, col text, old_seq text, copied_max bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    old_last bigint;
    v bigint;
BEGIN
    EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM %I', old_seq)
        INTO old_last;
    v := greatest(coalesce(copied_max, 0), coalesce(old_last, 0));
    IF v > 0 THEN
        PERFORM setval(pg_get_serial_sequence(tbl, col), v, true);
    END IF;
END
$$;

-- An id as the gateway writes it (rows with other ids land in the default partition).
CREATE FUNCTION pg_temp.is_id(id text, prefix text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT id ~ ('^' || prefix || '_[0-9a-f]{32}$')
$$;

-- ---- events: the outbox ----
--
-- The dispatcher no longer marks each event (`dispatched_at`: one UPDATE, so one dead
-- tuple and partial-index churn, per event). It keeps one cursor, webhook_dispatch_cursor,
-- over (txid, seq). `txid` is the id of the transaction that wrote the event
-- (pg_current_xact_id(), the top-level transaction's even inside a subtransaction). Every
-- transaction whose id is below a snapshot's xmin has ended (PG 15 docs 9.27, Table 9.78
-- "Snapshot Components": "All transaction IDs less than xmin are either committed and
-- visible, or rolled back and dead"), so no event can appear below it later: a round fans
-- out the events after the cursor with txid < xmin, in (txid, seq) order, and moves the
-- cursor (store/webhooks/queue.rs). (txid, seq) lets the cursor stop inside a transaction
-- whose events fill more than one round.
--
-- UNIQUE (tenant_id, shipment_id, shipment_seq) cannot stay unique (it does not contain the
-- partition key) and becomes a plain index. The numbering needs no constraint: every
-- writer takes its numbers from the counter on the shipment row (`shipments.event_seq`,
-- 1 for a new row), incremented by the same statement under that row's lock
-- (store/events.rs emit, store/shipments/booking.rs, store/shipments/create.rs).
--
-- webhook_deliveries loses its foreign key to events: a referenced partition cannot be
-- dropped. Retention deletes the deliveries of a month's events before dropping it
-- (service/retention.rs), and event_id becomes COLLATE "C" like events.id, so the
-- joins between them keep using the indexes (an index serves a comparison only in its
-- own collation).
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_tenant_id_event_id_fkey;
ALTER TABLE webhook_deliveries ALTER COLUMN event_id TYPE text COLLATE "C";
ALTER TABLE events RENAME TO events_unpartitioned;
ALTER SEQUENCE events_seq_seq RENAME TO events_unpartitioned_seq_seq;

CREATE TABLE events (
    tenant_id     text NOT NULL,
    id            text COLLATE "C" NOT NULL,
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    shipment_id   text NOT NULL,
    shipment_seq  integer NOT NULL,
    type          text NOT NULL,
    data          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- the writing transaction (see above)
    txid          xid8 NOT NULL DEFAULT pg_current_xact_id()
) PARTITION BY RANGE (id);
SELECT pg_temp.partitions_for('events', 'evt', min(pg_temp.id_time(id)), max(pg_temp.id_time(id)))
FROM events_unpartitioned WHERE pg_temp.is_id(id, 'evt');

-- Events already fanned out get txid 0, below the cursor's start; the others get this
-- migration's transaction id, above it, so the first round after it fans them out.
INSERT INTO events (tenant_id, id, seq, shipment_id, shipment_seq, type, data, created_at, txid)
OVERRIDING SYSTEM VALUE
SELECT tenant_id, id, seq, shipment_id, shipment_seq, type, data, created_at,
       CASE WHEN dispatched_at IS NULL THEN pg_current_xact_id() ELSE '0'::xid8 END
FROM events_unpartitioned;
SELECT pg_temp.continue_identity('events', 'seq', 'events_unpartitioned_seq_seq', (SELECT max(seq) FROM events));
DROP TABLE events_unpartitioned;

ALTER TABLE events ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE events ADD FOREIGN KEY (tenant_id, shipment_id) REFERENCES shipments (tenant_id, id);
-- A shipment's events in order (was the unique constraint; see above).
CREATE INDEX events_shipment_idx ON events (tenant_id, shipment_id, shipment_seq);
CREATE INDEX events_tenant_seq_idx ON events (tenant_id, seq);
-- The dispatcher's order (replaces events_undispatched_idx).
CREATE INDEX events_dispatch_idx ON events (txid, seq);

-- How far the dispatcher has fanned out: every event at or below (txid, seq) is done.
-- One row, locked by the round that moves it, so two instances never fan out the same
-- events (webhook_deliveries' UNIQUE (tenant_id, endpoint_id, event_id) stays the last
-- guard).
CREATE TABLE webhook_dispatch_cursor (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    txid        xid8 NOT NULL,
    seq         bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO webhook_dispatch_cursor (txid, seq) VALUES ('0', 9223372036854775807);

-- ---- webhook_attempts ----
-- No foreign key to webhook_deliveries any more: deliveries go by row (retention deletes
-- those of expiring events) while attempts go by partition, a month after their
-- delivery was created; an attempt whose delivery is gone is never read (attempts are
-- only read by delivery id).
ALTER TABLE webhook_attempts RENAME TO webhook_attempts_unpartitioned;
CREATE TABLE webhook_attempts (
    tenant_id        text NOT NULL,
    delivery_id      text COLLATE "C" NOT NULL,
    attempt          integer NOT NULL,
    started_at       timestamptz NOT NULL,
    duration_ms      integer NOT NULL,
    response_status  integer,
    -- null on success; timeout, connect, ssrf_blocked, http_<status>, request
    error_code       text,
    -- at most 1 KiB of the response body
    response_excerpt text
) PARTITION BY RANGE (delivery_id);
SELECT pg_temp.partitions_for('webhook_attempts', 'whd', min(pg_temp.id_time(delivery_id)),
                              max(pg_temp.id_time(delivery_id)))
FROM webhook_attempts_unpartitioned WHERE pg_temp.is_id(delivery_id, 'whd');
INSERT INTO webhook_attempts SELECT * FROM webhook_attempts_unpartitioned;
DROP TABLE webhook_attempts_unpartitioned;
ALTER TABLE webhook_attempts ADD PRIMARY KEY (tenant_id, delivery_id, attempt);

-- ---- tracking_events ----
-- The dedup key UNIQUE (tenant_id, shipment_id, dedup_key) already holds the partition key.
ALTER TABLE tracking_events RENAME TO tracking_events_unpartitioned;
ALTER SEQUENCE tracking_events_id_seq RENAME TO tracking_events_unpartitioned_id_seq;
CREATE TABLE tracking_events (
    tenant_id    text NOT NULL,
    shipment_id  text COLLATE "C" NOT NULL,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    occurred_at  timestamptz NOT NULL,
    status       text,
    subtag       text,
    message      text,
    location     jsonb,
    raw_code     text,
    raw_text     text,
    source       text NOT NULL,
    dedup_key    text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    actor        text
) PARTITION BY RANGE (shipment_id);
SELECT pg_temp.partitions_for('tracking_events', 'shp', min(pg_temp.id_time(shipment_id)),
                              max(pg_temp.id_time(shipment_id)))
FROM tracking_events_unpartitioned WHERE pg_temp.is_id(shipment_id, 'shp');
INSERT INTO tracking_events (tenant_id, shipment_id, id, occurred_at, status, subtag, message, location, raw_code,
                             raw_text, source, dedup_key, created_at, actor)
OVERRIDING SYSTEM VALUE
SELECT tenant_id, shipment_id, id, occurred_at, status, subtag, message, location, raw_code,
       raw_text, source, dedup_key, created_at, actor
FROM tracking_events_unpartitioned;
SELECT pg_temp.continue_identity('tracking_events', 'id', 'tracking_events_unpartitioned_id_seq',
                                 (SELECT max(id) FROM tracking_events));
DROP TABLE tracking_events_unpartitioned;
-- Constraints are added once the old table is gone, so they keep their names.
ALTER TABLE tracking_events ADD CHECK (source IN ('push', 'poll', 'api'));
ALTER TABLE tracking_events ADD PRIMARY KEY (tenant_id, shipment_id, id);
ALTER TABLE tracking_events ADD UNIQUE (tenant_id, shipment_id, dedup_key);
ALTER TABLE tracking_events ADD FOREIGN KEY (tenant_id, shipment_id) REFERENCES shipments (tenant_id, id);

-- ---- inbound_pushes ----
-- The primary key (the dedup rule: same connection, awb, status_update_number = stored
-- once) gains shipment_id, the partition key. The rule holds as before as long as a
-- connection's tracking number resolves to one shipment. A push is stored under the
-- shipment ingest finds for its tenant and number (service/inbound/ingest.rs, under that
-- shipment's row lock): the one on the pushing connection, else any, oldest id first
-- (store::shipments::get_by_tracking_for_update); an unknown number creates one shipment
-- on the pushing connection (serialized by lock_awb), which every later push finds.
-- Shipments of a scan-pushing connection (Ecom Express, which only receives pushes) are
-- created only that way, and a shipment's tracking number is set only at its creation
-- or booking (store/shipments/create.rs, booking.rs). So the answer changes only if,
-- after pushes were stored, a booking on another connection gives an older shipment the
-- same number or takes it from the one found (re-booked under another number); a
-- repeat of such a push is then stored once more under the shipment now found and
-- applied to it (the old key called it a duplicate and applied it nowhere). The unique
-- registration index (shipments_registration_uq) does not enter: a registration makes a
-- new shipment, newer than the one found, which the oldest-first order does not prefer.
ALTER TABLE inbound_pushes RENAME TO inbound_pushes_unpartitioned;
CREATE TABLE inbound_pushes (
    tenant_id             text NOT NULL,
    connection_id         text NOT NULL,
    awb                   text NOT NULL,
    status_update_number  text NOT NULL,
    shipment_id           text COLLATE "C" NOT NULL,
    payload               jsonb NOT NULL,
    received_at           timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (shipment_id);
SELECT pg_temp.partitions_for('inbound_pushes', 'shp', min(pg_temp.id_time(shipment_id)),
                              max(pg_temp.id_time(shipment_id)))
FROM inbound_pushes_unpartitioned WHERE pg_temp.is_id(shipment_id, 'shp');
INSERT INTO inbound_pushes (tenant_id, connection_id, awb, status_update_number, shipment_id, payload, received_at)
SELECT tenant_id, connection_id, awb, status_update_number, shipment_id, payload, received_at
FROM inbound_pushes_unpartitioned;
DROP TABLE inbound_pushes_unpartitioned;
ALTER TABLE inbound_pushes ADD PRIMARY KEY (tenant_id, shipment_id, connection_id, awb, status_update_number);
ALTER TABLE inbound_pushes ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
CREATE INDEX inbound_pushes_latest_idx ON inbound_pushes (tenant_id, connection_id, received_at);

-- ---- carrier_exchanges ----
-- The primary key gains created_at, the partition key. carrier_exchanges_created_idx
-- served the row-by-row purge, which dropping partitions replaces.
ALTER TABLE carrier_exchanges RENAME TO carrier_exchanges_unpartitioned;
ALTER SEQUENCE carrier_exchanges_id_seq RENAME TO carrier_exchanges_unpartitioned_id_seq;
CREATE TABLE carrier_exchanges (
    tenant_id        text NOT NULL,
    id               bigint GENERATED ALWAYS AS IDENTITY,
    connection_id    text NOT NULL,
    shipment_id      text,
    carrier          text NOT NULL,
    operation        text NOT NULL,
    method           text NOT NULL,
    url              text NOT NULL,
    request_body     text,
    response_status  integer,
    response_body    text,
    duration_ms      integer NOT NULL,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (created_at);
SELECT pg_temp.partitions_for('carrier_exchanges', NULL, min(created_at), max(created_at))
FROM carrier_exchanges_unpartitioned;
INSERT INTO carrier_exchanges (tenant_id, id, connection_id, shipment_id, carrier, operation, method, url, request_body,
                               response_status, response_body, duration_ms, error, created_at)
OVERRIDING SYSTEM VALUE
SELECT tenant_id, id, connection_id, shipment_id, carrier, operation, method, url, request_body,
       response_status, response_body, duration_ms, error, created_at
FROM carrier_exchanges_unpartitioned;
SELECT pg_temp.continue_identity('carrier_exchanges', 'id', 'carrier_exchanges_unpartitioned_id_seq',
                                 (SELECT max(id) FROM carrier_exchanges));
DROP TABLE carrier_exchanges_unpartitioned;
ALTER TABLE carrier_exchanges ADD PRIMARY KEY (tenant_id, id, created_at);
CREATE INDEX carrier_exchanges_shipment_idx ON carrier_exchanges (tenant_id, shipment_id, id) WHERE shipment_id IS NOT NULL;
CREATE INDEX carrier_exchanges_connection_idx ON carrier_exchanges (tenant_id, connection_id, created_at);

-- Autovacuum analyzes the partitions, never a partitioned parent (PG 15 docs 25.1.6
-- "Updating Planner Statistics"): give the planner the parents' statistics now.
ANALYZE events, webhook_attempts, tracking_events, inbound_pushes, carrier_exchanges;
