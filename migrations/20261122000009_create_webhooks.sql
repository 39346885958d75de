-- Outbound webhooks (PRODUCT.md "Webhook endpoint"): subscriber endpoints, one delivery
-- row per (endpoint, event) that is also the durable delivery queue, and every attempt.

CREATE TABLE webhook_endpoints (
    tenant_id       text NOT NULL REFERENCES tenants (id),
    id              text NOT NULL,
    url             text NOT NULL,
    description     text,
    -- empty = every event type
    event_types     text[] NOT NULL DEFAULT '{}',
    -- the signing secret, sealed with crate::crypto (AAD binds tenant + endpoint)
    secret_enc      bytea NOT NULL,
    enabled         boolean NOT NULL DEFAULT true,
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- The queue: `pending` rows are due at `next_attempt_at`. A claim moves
-- `next_attempt_at` to the end of the lease and sets a fresh `claim_token`, so a
-- worker that dies mid-attempt leaves a row that becomes due again when its lease
-- ends, and a worker whose lease was taken over cannot record its result (the token
-- no longer matches).
CREATE TABLE webhook_deliveries (
    tenant_id       text NOT NULL,
    id              text NOT NULL,
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    endpoint_id     text NOT NULL,
    event_id        text NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'succeeded', 'failed', 'cancelled')),
    next_attempt_at timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    -- attempts allowed before the delivery ends `failed` (1 + retry schedule length;
    -- a manual retry or replay allows one more)
    max_attempts    integer NOT NULL,
    claim_token     uuid,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, endpoint_id, event_id),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, event_id) REFERENCES events (tenant_id, id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at, seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (tenant_id, endpoint_id, seq);

CREATE TABLE webhook_attempts (
    tenant_id        text NOT NULL,
    delivery_id      text NOT NULL,
    attempt          integer NOT NULL,
    started_at       timestamptz NOT NULL,
    duration_ms      integer NOT NULL,
    response_status  integer,
    -- null on success; timeout, connect, ssrf_blocked, http_<status>, request
    error_code       text,
    -- at most 1 KiB of the response body
    response_excerpt text,
    PRIMARY KEY (tenant_id, delivery_id, attempt),
    FOREIGN KEY (tenant_id, delivery_id) REFERENCES webhook_deliveries (tenant_id, id) ON DELETE CASCADE
);
