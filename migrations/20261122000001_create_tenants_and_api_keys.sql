-- Tenants own everything; API keys authenticate a tenant.
CREATE TABLE tenants (
    id          text PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- An API key is `sg_<env>_<id>_<secret>`: `id` is the indexed lookup part, only a
-- SHA-256 of the high-entropy secret is stored (a slow KDF buys nothing for 190-bit
-- random secrets and would cost every request).
CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants (id),
    env          text NOT NULL,
    name         text,
    secret_hash  bytea NOT NULL CHECK (length(secret_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at);
