-- A repeated Ecom Express status_update_number whose payload differs from the one stored
-- first (issue 10): it is acknowledged `status:true` (the scan exists) and the first
-- payload stays the one applied, but the changed payload is kept here, once per distinct
-- payload with how often it came, so ops can see a carrier resending changed scans (also
-- counted in shipgate_inbound_changed_repushes_total). `payload_hash` is SHA-256 of the
-- payload's canonical jsonb text: jsonb ignores key order and whitespace, so only a real
-- change of a value or field counts.
CREATE TABLE inbound_push_changes (
    tenant_id             text NOT NULL REFERENCES tenants (id),
    connection_id         text NOT NULL,
    awb                   text NOT NULL,
    status_update_number  text NOT NULL,
    payload_hash          bytea NOT NULL,
    payload               jsonb NOT NULL,
    count                 bigint NOT NULL DEFAULT 1,
    first_seen            timestamptz NOT NULL DEFAULT now(),
    last_seen             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, connection_id, awb, status_update_number, payload_hash)
);
