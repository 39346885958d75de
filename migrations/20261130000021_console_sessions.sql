-- Console sign-in sessions (issue 14, docs/console.md): an API key exchanged for a
-- session cookie. Only the SHA-256 of the cookie's 256-bit random value is stored, so
-- a copy of this table signs nobody in. A session ends when it has been idle too long,
-- when it is older than the absolute limit, when it is signed out (revoked_at), or when
-- its API key is revoked (checked on every request by the join on api_keys).
CREATE TABLE console_sessions (
    id_hash       bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    tenant_id     text NOT NULL REFERENCES tenants (id),
    api_key_id    text NOT NULL REFERENCES api_keys (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);
