-- A tenant's account with one carrier. Credentials and cached tokens are AEAD
-- ciphertexts (see src/crypto.rs); only the names of the credential fields that are
-- set are kept in clear, so responses can say which are present.
CREATE TABLE connections (
    tenant_id          text NOT NULL REFERENCES tenants (id),
    id                 text NOT NULL,
    carrier            text NOT NULL,
    name               text NOT NULL,
    base_url           text,
    credentials_enc    bytea NOT NULL,
    credential_fields  text[] NOT NULL,
    settings           jsonb NOT NULL DEFAULT '{}',
    token_enc          bytea,
    token_updated_at   timestamptz,
    status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'misconfigured')),
    status_detail      text,
    verified_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz,
    PRIMARY KEY (tenant_id, id)
);
-- Inbound pushes (a later issue) arrive with only the connection id in the URL.
CREATE UNIQUE INDEX connections_id_uq ON connections (id);
