//! Online master-key rotation (docs/quality.md security: "a versioned master key that can be
//! rotated online"). Deploy the new key as `SHIPGATE_MASTER_KEY` (with a new
//! `master_key_id`) and keep the old one in `SHIPGATE_PREVIOUS_MASTER_KEYS`: running
//! instances read both, new writes use the new key. `shipgate rotate-keys` then
//! re-encrypts every ciphertext still under an older key while the service runs; each
//! row is swapped only if it did not change meanwhile (compare-and-set on the old
//! ciphertext), so a concurrent credential update or token renewal is never overwritten.
//! When it reports 0 left, the old key can be removed from the configuration.

use crate::app::AppState;
use crate::crypto::Purpose;
use crate::service::Result;
use crate::store;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    pub rewritten: u64,
    /// Rows that changed between read and write (they were written with the current key
    /// by whoever changed them) or could not be decrypted (reported, left untouched).
    pub skipped: u64,
    pub undecryptable: u64,
}

/// Re-encrypt every stored ciphertext that is not under the current key.
pub async fn rotate_all(state: &AppState) -> Result<Rotated> {
    let mut total = Rotated::default();
    let current = state.crypto.current_id();
    let mut after = String::new();
    loop {
        let batch = {
            let mut conn = state.db.acquire().await?;
            store::connections::stale_ciphertexts(&mut conn, i16::from(current), &after, 200).await?
        };
        let Some(last) = batch.last() else { break };
        after = format!("{}/{}", last.tenant_id, last.id);
        for row in &batch {
            for (purpose, old) in
                [(Purpose::Credentials, Some(&row.credentials_enc)), (Purpose::Token, row.token_enc.as_ref())]
            {
                let Some(old) = old.filter(|b| !state.crypto.is_current(b)) else { continue };
                let Ok(plain) = state.crypto.decrypt(&row.tenant_id, &row.id, purpose, old) else {
                    tracing::warn!(connection_id = %row.id, purpose = ?purpose, "ciphertext does not decrypt with any configured key; left as is");
                    total.undecryptable += 1;
                    continue;
                };
                let new = state.crypto.encrypt(&row.tenant_id, &row.id, purpose, &plain);
                let mut conn = state.db.acquire().await?;
                let swapped = match purpose {
                    Purpose::Token => {
                        store::connections::swap_token_ciphertext(&mut conn, &row.tenant_id, &row.id, old, &new).await?
                    }
                    _ => {
                        store::connections::swap_credentials_ciphertext(&mut conn, &row.tenant_id, &row.id, old, &new)
                            .await?
                    }
                };
                if swapped {
                    total.rewritten += 1;
                } else {
                    total.skipped += 1;
                }
            }
        }
    }
    // Webhook endpoint secrets (AAD binds tenant and endpoint).
    let mut after = String::new();
    loop {
        let batch = {
            let mut conn = state.db.acquire().await?;
            store::webhooks::stale_secrets(&mut conn, i16::from(current), &after, 200).await?
        };
        let Some(last) = batch.last() else { break };
        after = format!("{}/{}", last.0, last.1);
        for (tenant, id, old) in &batch {
            let Ok(plain) = state.crypto.decrypt(tenant, id, Purpose::WebhookSecret, old) else {
                tracing::warn!(endpoint_id = %id, "webhook secret does not decrypt with any configured key; left as is");
                total.undecryptable += 1;
                continue;
            };
            let new = state.crypto.encrypt(tenant, id, Purpose::WebhookSecret, &plain);
            let mut conn = state.db.acquire().await?;
            if store::webhooks::swap_secret_ciphertext(&mut conn, tenant, id, old, &new).await? {
                total.rewritten += 1;
            } else {
                total.skipped += 1;
            }
        }
    }
    // Responses kept for Idempotency-Key replays (AAD binds tenant and key).
    let (rewritten, skipped, undecryptable) = super::idempotency::reencrypt_responses(state).await?;
    total.rewritten += rewritten;
    total.skipped += skipped;
    total.undecryptable += undecryptable;
    // Rotated-out webhook secrets still signing during their overlap, sealed the same way.
    let mut after = String::new();
    loop {
        let batch = {
            let mut conn = state.db.acquire().await?;
            store::webhooks::stale_previous_secrets(&mut conn, i16::from(current), &after, 200).await?
        };
        let Some(last) = batch.last() else { break };
        after = format!("{}/{}", last.0, last.1);
        for (tenant, id, old) in &batch {
            let Ok(plain) = state.crypto.decrypt(tenant, id, Purpose::WebhookSecret, old) else {
                tracing::warn!(endpoint_id = %id, "previous webhook secret does not decrypt with any configured key; left as is");
                total.undecryptable += 1;
                continue;
            };
            let new = state.crypto.encrypt(tenant, id, Purpose::WebhookSecret, &plain);
            let mut conn = state.db.acquire().await?;
            if store::webhooks::swap_previous_secret_ciphertext(&mut conn, tenant, id, old, &new).await? {
                total.rewritten += 1;
            } else {
                total.skipped += 1;
            }
        }
    }
    Ok(total)
}
