-- Reads of the ops console (issue 14, docs/console.md): a shipment's webhook
-- deliveries are found through its events (events_tenant_shipment via the unique
-- (tenant_id, shipment_id, shipment_seq)), then by event id here.
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (tenant_id, event_id);

-- A shipment's booking jobs, whatever their state (jobs_unique_idx covers only the
-- queued and running ones).
CREATE INDEX jobs_unique_key_idx ON jobs (unique_key) WHERE unique_key IS NOT NULL;
