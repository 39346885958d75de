-- The ops console's overview, webhooks and inbound pages (issue 14, docs/console.md).

-- Shipments by day and status over the last days: an index-only range scan; and a list
-- filtered by creation time, walked newest first and stopped after one page.
CREATE INDEX shipments_created_idx ON shipments (tenant_id, created_at, id) INCLUDE (status);
-- Bookings that need a look (pending or failed), newest first.
CREATE INDEX shipments_booking_attention_idx ON shipments (tenant_id, id)
    WHERE booking_state IN ('pending', 'failed');
-- Per-connection health from the exchange log over the last hour.
CREATE INDEX carrier_exchanges_connection_idx ON carrier_exchanges (tenant_id, connection_id, created_at);
-- Failing webhook deliveries (failed, or pending after a failed attempt), newest first.
CREATE INDEX webhook_deliveries_failing_idx ON webhook_deliveries (tenant_id, seq)
    WHERE state = 'failed' OR (state = 'pending' AND attempts > 0);
-- The latest pushes per connection.
CREATE INDEX inbound_pushes_latest_idx ON inbound_pushes (tenant_id, connection_id, received_at);
CREATE INDEX inbound_webhooks_latest_idx ON inbound_webhooks (tenant_id, connection_id, received_at);

-- Pushes refused for a connection that exists (wrong credentials, or a body its
-- carrier's parser refused), so ops can see a carrier failing to push. Nothing is
-- kept for an unknown connection id, and a throttled sender is not recorded (the
-- failed-push throttle bounds the writes). Kept 7 days (housekeeping).
CREATE TABLE inbound_refusals (
    tenant_id      text NOT NULL REFERENCES tenants (id),
    id             bigint GENERATED ALWAYS AS IDENTITY,
    connection_id  text NOT NULL,
    -- 'authentication' or 'body'
    kind           text NOT NULL CHECK (kind IN ('authentication', 'body')),
    detail         text NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX inbound_refusals_latest_idx ON inbound_refusals (tenant_id, connection_id, id);
CREATE INDEX inbound_refusals_at_idx ON inbound_refusals (at);
