-- Every request/response with a carrier, secrets redacted and bodies size-capped,
-- linked to the shipment it was made for (when there is one).
CREATE TABLE carrier_exchanges (
    tenant_id        text NOT NULL,
    id               bigint GENERATED ALWAYS AS IDENTITY,
    connection_id    text NOT NULL,
    shipment_id      text,
    carrier          text NOT NULL,
    operation        text NOT NULL,
    method           text NOT NULL,
    url              text NOT NULL,
    request_body     text,
    response_status  integer,
    response_body    text,
    duration_ms      integer NOT NULL,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX carrier_exchanges_shipment_idx ON carrier_exchanges (tenant_id, shipment_id, id) WHERE shipment_id IS NOT NULL;
CREATE INDEX carrier_exchanges_created_idx ON carrier_exchanges (created_at);
