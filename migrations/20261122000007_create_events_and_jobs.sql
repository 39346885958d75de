-- Outbound events: the outbox that webhooks deliver from and `GET /v1/events` lists.
-- Written in the same transaction as the change they describe, so an event exists
-- exactly when its change committed. `shipment_seq` numbers one shipment's events
-- 1, 2, 3 ... (counter on the shipment row) so subscribers can order them; `seq` is the
-- global order and the reconciliation cursor.
ALTER TABLE shipments ADD COLUMN event_seq integer NOT NULL DEFAULT 0;

CREATE TABLE events (
    tenant_id     text NOT NULL,
    id            text NOT NULL,
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    shipment_id   text NOT NULL,
    shipment_seq  integer NOT NULL,
    type          text NOT NULL,
    data          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- set once the webhook dispatcher has fanned the event out to endpoints
    dispatched_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, shipment_id, shipment_seq),
    FOREIGN KEY (tenant_id, shipment_id) REFERENCES shipments (tenant_id, id)
);
CREATE INDEX events_tenant_seq_idx ON events (tenant_id, seq);
CREATE INDEX events_undispatched_idx ON events (seq) WHERE dispatched_at IS NULL;

-- The durable job queue (src/jobs). One row per job; claimed with FOR UPDATE SKIP
-- LOCKED under a lease and a claim token, so a worker that lost its lease cannot
-- complete the job. Periodic jobs are one row that re-queues itself.
CREATE TABLE jobs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    text,
    kind         text NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}',
    -- at most one queued or running job per (kind, unique_key)
    unique_key   text,
    state        text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'dead')),
    run_at       timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    claim_token  uuid,
    claimed_by   text,
    lease_until  timestamptz,
    last_error   text,
    -- enqueued again while running: run once more after this run, so new work is
    -- neither dropped by the uniqueness rule nor lost
    run_again    boolean NOT NULL DEFAULT false,
    -- how long a claim lasts; a job is cut off before its lease ends
    lease_secs   integer NOT NULL DEFAULT 120,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX jobs_due_idx ON jobs (run_at) WHERE state = 'queued';
CREATE INDEX jobs_lease_idx ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_dead_idx ON jobs (tenant_id, id) WHERE state = 'dead';
CREATE UNIQUE INDEX jobs_unique_idx ON jobs (kind, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'running');

