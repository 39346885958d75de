-- Proof of delivery and the documents a carrier hands over (issue 12, docs/product.md
-- "Documents"): the shipment keeps the proof `{name, at, signature?: {document_id,
-- content_type, size}}`; the signature image is a document of the shipment, stored once
-- per content (sha256) however often a poll repeats it, and purged after the documents
-- retention (config `document_retention_days`) like the exchange log.
ALTER TABLE shipments ADD COLUMN proof_of_delivery jsonb;

CREATE TABLE shipment_documents (
    tenant_id     text NOT NULL,
    id            text NOT NULL,
    shipment_id   text NOT NULL,
    -- What it is: `signature` (proof of delivery).
    kind          text NOT NULL,
    content_type  text NOT NULL,
    size          integer NOT NULL CHECK (size > 0),
    sha256        bytea NOT NULL,
    content       bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, shipment_id) REFERENCES shipments (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, shipment_id, sha256)
);
-- The retention purge walks by age.
CREATE INDEX shipment_documents_created_idx ON shipment_documents (created_at);
