-- Reconciliation with a carrier's own list (issue 12, docs/product.md "Reconciliation"):
-- one row per run, written page by page in the same transaction as the page's effects,
-- so a run resumes where it stopped after a restart and repeats nothing; the newest
-- rows are a connection's reports.
CREATE TABLE reconciliations (
    tenant_id      text NOT NULL,
    id             text NOT NULL,
    connection_id  text NOT NULL,
    -- The durable job that walks the list (`jobs.id`), progress visible at /v1/jobs/{id}.
    job_id         bigint NOT NULL UNIQUE,
    import         boolean NOT NULL,
    -- Who asked: `api` (POST /v1/connections/{id}/reconcile) or `schedule`.
    trigger        text NOT NULL CHECK (trigger IN ('api', 'schedule')),
    state          text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'succeeded', 'failed')),
    -- Where the next page starts (the carrier's cursor); NULL before the first page.
    cursor         text,
    pages          integer NOT NULL DEFAULT 0,
    -- Counts and samples so far: seen, matched, carrier_only, imported,
    -- status_disagreements (fixed / kept), missing_at_carrier.
    report         jsonb NOT NULL DEFAULT '{}',
    error          text,
    started_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX reconciliations_connection_idx ON reconciliations (tenant_id, connection_id, id);

-- When a reconciliation last found the shipment on the carrier's list: what is still
-- unseen once a run has walked the whole list is what the carrier no longer knows.
ALTER TABLE shipments ADD COLUMN seen_at_carrier timestamptz;

-- Shipments imported from a carrier's list have the history actor `reconcile`.
ALTER TABLE shipment_history DROP CONSTRAINT shipment_history_actor_type_check;
ALTER TABLE shipment_history ADD CONSTRAINT shipment_history_actor_type_check
    CHECK (actor_type IN ('api_key', 'carrier_push', 'poller', 'system', 'carrier', 'reconcile'));
