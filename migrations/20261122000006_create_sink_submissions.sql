-- Channel sinks (ecomdash): one row per (shipment, sink, tracking number) to hand over.
-- The pending state lives here, not in memory, so a restart loses nothing; rows are
-- claimed with FOR UPDATE SKIP LOCKED under a lease, so any number of instances can
-- run the worker.
CREATE TABLE sink_submissions (
    tenant_id        text NOT NULL,
    id               bigint GENERATED ALWAYS AS IDENTITY,
    shipment_id      text NOT NULL,
    sink             text NOT NULL,
    connection_id    text NOT NULL,
    tracking_number  text NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'submitted', 'failed', 'superseded')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    locked_until     timestamptz,
    last_error       text,
    submitted_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, shipment_id, sink, tracking_number),
    FOREIGN KEY (tenant_id, shipment_id) REFERENCES shipments (tenant_id, id)
);
CREATE INDEX sink_submissions_due_idx ON sink_submissions (next_attempt_at) WHERE state = 'pending';

-- What the sinks made of this shipment, kept on the row so a read stays one query.
ALTER TABLE shipments ADD COLUMN sinks jsonb NOT NULL DEFAULT '{}';
-- Documents the carrier holds (eCMR's CMR PDF links).
ALTER TABLE shipments ADD COLUMN documents jsonb NOT NULL DEFAULT '[]';
-- Who did it at the carrier (eCMR history `by`).
ALTER TABLE tracking_events ADD COLUMN actor text;
