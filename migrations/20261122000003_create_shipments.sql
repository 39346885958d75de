-- The unified shipment. Stops and parcels are value objects that are always read and
-- written with their shipment and never queried on their own, so they live in jsonb
-- columns of the shipment row: one row read per GET (QUALITY P4), one row write per
-- change, and the domain types (src/domain) validate their shape before they get here.
CREATE TABLE shipments (
    tenant_id            text NOT NULL REFERENCES tenants (id),
    id                   text NOT NULL,
    reference            text,
    connection_id        text NOT NULL,
    carrier              text NOT NULL,
    carrier_reference    text,
    tracking_number      text,
    service              text,
    stops                jsonb NOT NULL DEFAULT '[]',
    parcels              jsonb NOT NULL DEFAULT '[]',
    declared_value       jsonb,
    cod_amount           jsonb,
    notes                text,
    metadata             jsonb NOT NULL DEFAULT '{}',
    channel              jsonb,
    booking_state        text CHECK (booking_state IN ('pending', 'booked', 'failed', 'cancelled')),
    booking_attempts     integer NOT NULL DEFAULT 0,
    booking_last_error   jsonb,
    booked_at            timestamptz,
    status               text NOT NULL DEFAULT 'pending',
    subtag               text,
    carrier_status       text,
    last_event           jsonb,
    estimated_delivery   timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id)
);
CREATE UNIQUE INDEX shipments_reference_uq ON shipments (tenant_id, reference) WHERE reference IS NOT NULL;
CREATE INDEX shipments_tracking_number_idx ON shipments (tenant_id, tracking_number) WHERE tracking_number IS NOT NULL;
CREATE INDEX shipments_status_idx ON shipments (tenant_id, status, id);
CREATE INDEX shipments_connection_idx ON shipments (tenant_id, connection_id, id);
CREATE INDEX shipments_carrier_idx ON shipments (tenant_id, carrier, id);

-- Normalized tracking events, one per carrier scan/event, deduplicated per shipment.
CREATE TABLE tracking_events (
    tenant_id    text NOT NULL,
    shipment_id  text NOT NULL,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    occurred_at  timestamptz NOT NULL,
    status       text,
    subtag       text,
    message      text,
    location     jsonb,
    raw_code     text,
    raw_text     text,
    source       text NOT NULL CHECK (source IN ('push', 'poll', 'api')),
    dedup_key    text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, shipment_id, id),
    UNIQUE (tenant_id, shipment_id, dedup_key),
    FOREIGN KEY (tenant_id, shipment_id) REFERENCES shipments (tenant_id, id)
);

-- Who did what, when: every change to a shipment with its actor.
CREATE TABLE shipment_history (
    tenant_id    text NOT NULL,
    shipment_id  text NOT NULL,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor_type   text NOT NULL CHECK (actor_type IN ('api_key', 'carrier_push', 'poller', 'system', 'carrier')),
    actor_id     text,
    action       text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, shipment_id, id),
    FOREIGN KEY (tenant_id, shipment_id) REFERENCES shipments (tenant_id, id)
);
