-- One live registration per tracking number and connection (issue 8): registering a
-- number twice created two shipments with the same carrier reference (AfterShip adopts
-- the existing tracking on meta 4003). `registration_key` is the registered number as
-- compared (trimmed, upper case), set when a shipment is created from a client's
-- tracking number and never changed; a failed or cancelled registration frees it.

ALTER TABLE shipments ADD COLUMN IF NOT EXISTS registration_key text;

-- Existing registrations: AfterShip is the only carrier whose shipments are created
-- from a tracking number (RegisterTracking, no booking).
UPDATE shipments SET registration_key = upper(btrim(tracking_number))
WHERE carrier = 'aftership' AND tracking_number IS NOT NULL;

-- Duplicates made before this index: the earliest keeps the key, the others stay as
-- they are, without one.
UPDATE shipments s SET registration_key = NULL
FROM (SELECT tenant_id, id,
             row_number() OVER (PARTITION BY tenant_id, connection_id, registration_key ORDER BY created_at, id) AS n
      FROM shipments
      WHERE registration_key IS NOT NULL AND booking_state IN ('pending', 'booked')) d
WHERE s.tenant_id = d.tenant_id AND s.id = d.id AND d.n > 1;

CREATE UNIQUE INDEX IF NOT EXISTS shipments_registration_uq ON shipments (tenant_id, connection_id, registration_key)
    WHERE registration_key IS NOT NULL AND booking_state IN ('pending', 'booked');
