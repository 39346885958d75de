-- Responses kept for Idempotency-Key replays are encrypted (issue 10: a create or rotate
-- call's response carries one-time secrets, such as generated Ecom Express passwords and
-- `whsec_` webhook secrets, which must not rest in clear). New rows keep the body only in
-- `response_enc`: XChaCha20-Poly1305 under the master key, associated data binding tenant
-- and key (src/crypto.rs). `response_body` remains for rows written before this migration
-- until they expire (idempotency_ttl_hours) or `shipgate rotate-keys` encrypts them.
ALTER TABLE idempotency_keys ADD COLUMN response_enc bytea;
