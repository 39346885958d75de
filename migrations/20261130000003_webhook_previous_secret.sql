-- Secret rotation with an overlap: after a rotation the previous signing secret keeps
-- signing (beside the new one) until previous_secret_expires_at, so receivers can
-- switch secrets without losing deliveries. Standard Webhooks lets a delivery carry
-- several space-separated signatures (spec "Signature scheme").
--
-- previous_secret_enc is sealed exactly like secret_enc (crate::crypto, AAD binds
-- tenant + endpoint + purpose), so a rotation moves the ciphertext as it is.
ALTER TABLE webhook_endpoints
    ADD COLUMN previous_secret_enc bytea,
    ADD COLUMN previous_secret_expires_at timestamptz,
    ADD CONSTRAINT webhook_endpoints_previous_secret_ck
        CHECK ((previous_secret_enc IS NULL) = (previous_secret_expires_at IS NULL));
