-- Idempotency-Key records (PRODUCT.md "Idempotency"): the first response is kept for
-- 24 h and replayed byte for byte. `in_flight` rows carry a lease so a crashed request
-- does not block its key forever; `retryable` rows remember the resource a 503 left
-- behind so the retry resumes it instead of creating a second one.
CREATE TABLE idempotency_keys (
    tenant_id         text NOT NULL REFERENCES tenants (id),
    key               text NOT NULL,
    request_hash      bytea NOT NULL,
    state             text NOT NULL CHECK (state IN ('in_flight', 'completed', 'retryable')),
    locked_until      timestamptz,
    resource_id       text,
    response_status   smallint,
    response_headers  jsonb,
    response_body     bytea,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
