-- Inbound carrier pushes (Ecom Express Basic-Auth push, AfterShip HMAC webhook) and the
-- carrier code → status table they are normalized through.

-- Every Ecom Express push as received, once: the primary key is the dedup rule of
-- CARRIERS.md "ecomexpress" (same connection, awb, status_update_number = stored once).
CREATE TABLE inbound_pushes (
    tenant_id             text NOT NULL REFERENCES tenants (id),
    connection_id         text NOT NULL,
    awb                   text NOT NULL,
    status_update_number  text NOT NULL,
    shipment_id           text NOT NULL,
    payload               jsonb NOT NULL,
    received_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, connection_id, awb, status_update_number)
);

-- AfterShip webhooks as received, deduplicated on AfterShip's event_id (CARRIERS.md
-- "Inbound webhooks"). shipment_id is null when no shipment had that tracking number.
CREATE TABLE inbound_webhooks (
    tenant_id      text NOT NULL REFERENCES tenants (id),
    connection_id  text NOT NULL,
    event_id       text NOT NULL,
    event          text,
    tracking_number text,
    shipment_id    text,
    payload        jsonb NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, connection_id, event_id)
);

-- Carrier reason code → normalized tag/subtag. Built-in defaults (this migration, from
-- CARRIERS.md "Reason codes → normalized") and per-tenant overrides are separate
-- tables so defaults carry no tenant and overrides keep tenant_id first (ARCHITECTURE
-- rule 12). `after_code` = '' applies always; a non-empty `after_code` applies only
-- when the shipment already has an event with that raw code, and then wins over the
-- plain row ("999 after a 777" → Exception_011 is such a rule, as data).
-- Ranges in the table (303-309, 222-224, 1310-1430) are expanded to one row per code:
-- lookups stay an index probe and a tenant can override a single code of a range.
-- "other undelivered codes" has no public list, so it is NOT a wildcard row: such a
-- code is unmapped (kept raw, status unchanged, listed in unmapped_codes), and ops map
-- it with PUT /v1/status-mappings once they know it.
CREATE TABLE status_mapping_defaults (
    carrier      text NOT NULL,
    code         text NOT NULL,
    after_code   text NOT NULL DEFAULT '',
    tag          text NOT NULL,
    subtag       text,
    description  text NOT NULL DEFAULT '',
    PRIMARY KEY (carrier, code, after_code)
);

CREATE TABLE status_mapping_overrides (
    tenant_id    text NOT NULL REFERENCES tenants (id),
    carrier      text NOT NULL,
    code         text NOT NULL,
    after_code   text NOT NULL DEFAULT '',
    tag          text NOT NULL,
    subtag       text,
    description  text NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, carrier, code, after_code)
);

-- Codes seen with no mapping, for ops (GET /v1/status-mappings/unmapped).
CREATE TABLE unmapped_codes (
    tenant_id   text NOT NULL REFERENCES tenants (id),
    carrier     text NOT NULL,
    code        text NOT NULL,
    last_text   text,
    count       bigint NOT NULL DEFAULT 1,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, carrier, code)
);

-- The AfterShip tag vocabulary is snake_case in our API (PRODUCT.md "Status").
INSERT INTO status_mapping_defaults (carrier, code, tag, subtag, description)
SELECT 'ecomexpress', c, t, s, d FROM (VALUES
    ('001', 'info_received', NULL, 'manifested'),
    ('013', 'info_received', NULL, 'out for pickup'),
    ('014', 'info_received', NULL, 'out for pickup'),
    ('1210', 'info_received', NULL, 'out for pickup'),
    ('1220', 'info_received', NULL, 'out for pickup'),
    ('1230', 'info_received', NULL, 'out for pickup'),
    ('0011', 'in_transit', 'InTransit_002', 'picked up'),
    ('1260', 'in_transit', 'InTransit_002', 'picked up'),
    ('400', 'in_transit', 'InTransit_002', 'picked up'),
    ('002', 'in_transit', 'InTransit_003', 'in-scan'),
    ('003', 'in_transit', 'InTransit_007', 'bagged'),
    ('004', 'in_transit', 'InTransit_007', 'connected'),
    ('005', 'in_transit', 'InTransit_007', 'connected'),
    ('100', 'in_transit', 'InTransit_001', 'in transit'),
    ('101', 'in_transit', 'InTransit_001', 'in transit'),
    ('127', 'in_transit', 'InTransit_001', 'in transit'),
    ('230', 'in_transit', 'InTransit_001', 'in transit'),
    ('240', 'in_transit', 'InTransit_001', 'in transit'),
    ('301', 'in_transit', 'InTransit_001', 'in transit'),
    ('325', 'in_transit', 'InTransit_001', 'in transit'),
    ('006', 'out_for_delivery', 'OutForDelivery_001', 'out for delivery'),
    ('999', 'delivered', 'Delivered_001', 'delivered'),
    ('204', 'delivered', 'Delivered_001', 'delivered'),
    ('212', 'attempt_fail', 'AttemptFail_002', 'consignee unavailable'),
    ('219', 'attempt_fail', 'AttemptFail_002', 'consignee unavailable'),
    ('231', 'attempt_fail', 'AttemptFail_002', 'consignee unavailable'),
    ('227', 'attempt_fail', 'AttemptFail_003', 'premises closed'),
    ('401', 'attempt_fail', 'AttemptFail_003', 'premises closed'),
    ('209', 'attempt_fail', 'AttemptFail_001', 'refused / address / other'),
    ('210', 'attempt_fail', 'AttemptFail_001', 'refused / address / other'),
    ('220', 'attempt_fail', 'AttemptFail_001', 'refused / address / other'),
    ('417', 'attempt_fail', 'AttemptFail_001', 'refused / address / other'),
    ('418', 'attempt_fail', 'AttemptFail_001', 'refused / address / other'),
    ('777', 'exception', 'Exception_010', 'return to shipper started'),
    ('77', 'exception', 'Exception_010', 'return to shipper started'),
    ('302', 'exception', 'Exception_012', 'damaged'),
    ('314', 'exception', 'Exception_012', 'damaged'),
    ('888', 'exception', 'Exception_012', 'damaged'),
    ('333', 'exception', 'Exception_013', 'lost'),
    -- CARRIERS.md gives "Exception_008 / Exception_020" for the pickup-failed/cancelled
    -- group without saying which code is which: 326 (the lone code) is read as
    -- cancelled (Exception_020, terminal in src/domain/status.rs) and the 1310-1430
    -- range as pickup failed (Exception_008, not terminal: a later pickup may succeed).
    ('326', 'exception', 'Exception_020', 'pickup cancelled')
) AS v(c, t, s, d);

INSERT INTO status_mapping_defaults (carrier, code, tag, subtag, description)
SELECT 'ecomexpress', n::text, 'in_transit', 'InTransit_001', 'in transit' FROM generate_series(303, 309) AS n;
INSERT INTO status_mapping_defaults (carrier, code, tag, subtag, description)
SELECT 'ecomexpress', n::text, 'attempt_fail', 'AttemptFail_001', 'refused / address / other'
FROM generate_series(222, 224) AS n;
INSERT INTO status_mapping_defaults (carrier, code, tag, subtag, description)
SELECT 'ecomexpress', n::text, 'exception', 'Exception_008', 'pickup failed' FROM generate_series(1310, 1430) AS n;

-- "999 after a 777" → returned to shipper (Exception_011); 77 is the other RTS code.
INSERT INTO status_mapping_defaults (carrier, code, after_code, tag, subtag, description) VALUES
    ('ecomexpress', '999', '777', 'exception', 'Exception_011', 'returned to shipper'),
    ('ecomexpress', '999', '77', 'exception', 'Exception_011', 'returned to shipper');
