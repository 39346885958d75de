-- Which carriers the tracking engine polls, as data the gateway writes from its carrier
-- registry (src/carriers; `service::registry::publish`, when the tracking engine starts
-- and when a connection is created, so a carrier's row exists before its first
-- shipment), instead of the list `tracking_pollable_carrier` held since 20261122000010:
-- polling follows the registry, and no SQL names a carrier. A test keeps the two in
-- step (tests/api/carrier_sql.rs).
CREATE TABLE carrier_traits (
    carrier     text PRIMARY KEY,
    -- Polled by the tracking engine (the descriptor's `polling`: capability Refresh).
    pollable    boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Carriers already in use keep the answer they had until the gateway writes the
-- registry's (a shipment's carrier is its connection's).
INSERT INTO carrier_traits (carrier, pollable)
SELECT DISTINCT carrier, tracking_pollable_carrier(carrier) FROM connections;

-- A carrier the registry has not written is not polled. STABLE: it reads a table (one
-- primary-key probe, ~2 µs; the schedule trigger and `due_connections` call it).
CREATE OR REPLACE FUNCTION tracking_pollable_carrier(carrier text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT t.pollable FROM carrier_traits t WHERE t.carrier = $1), false)
$$;
