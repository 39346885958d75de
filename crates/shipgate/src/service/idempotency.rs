//! `Idempotency-Key` (docs/product.md "Idempotency"): the protocol's state, whichever front
//! end carries the key (the HTTP middleware `http::idempotency` for every POST/PATCH
//! under `/v1`):
//! - the first request with a key claims it (`INSERT .. ON CONFLICT`, so of N
//!   concurrent requests exactly one proceeds) and its answer is kept and replayed byte
//!   for byte for the retention period;
//! - the same key with a different request is refused (`idempotency_key_reused`);
//! - the same key while the first is in flight is refused (`idempotency_key_in_use`);
//! - an answer that is not kept releases the key, so a retry starts over.
//!
//! Kept answers are encrypted (issue 10: a create or rotate call's answer carries
//! one-time secrets: generated Ecom Express passwords, `whsec_` webhook secrets).
//! Encrypting the whole body under the master key (XChaCha20-Poly1305, src/crypto.rs,
//! associated data binding tenant and key so a row moved elsewhere does not decrypt)
//! was chosen over storing the body with the secret removed: the replay stays byte for
//! byte, so a client whose first answer was lost still gets the secret it cannot get
//! again any other way, and no per-route knowledge of where secrets sit is needed.
//! `shipgate rotate-keys` re-encrypts them ([`reencrypt_responses`]).
//!
//! Hand-written because no crate offers these semantics on Postgres with tenancy.

use crate::app::AppState;
use crate::crypto::Purpose;
use crate::service::{Error, Refusal, Result};
use crate::store;

/// What a request carrying a key may do.
#[derive(Debug)]
pub enum Claim {
    /// It owns the key now: run it, then [`complete`] or [`release`] the key.
    Run,
    /// The same request ran before: its answer, to replay.
    Replay(Kept),
}

/// A kept answer.
#[derive(Debug)]
pub struct Kept {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Claim `key` for a request whose fingerprint is `request_hash` (method, path, query
/// and body, hashed by the front end).
pub async fn claim(state: &AppState, tenant: &str, key: &str, request_hash: &[u8]) -> Result<Claim> {
    let lock = state.config.idempotency_lock.as_secs_f64();
    let ttl = state.config.idempotency_ttl.as_secs_f64();
    let mut conn = state.db.acquire().await?;
    if store::idempotency::try_claim(&mut conn, tenant, key, request_hash, lock, ttl).await? {
        return Ok(Claim::Run);
    }
    let row = store::idempotency::get(&mut conn, tenant, key).await?.ok_or_else(|| in_use(key))?;
    if row.request_hash != request_hash {
        return Err(Error::refused(
            Refusal::IdempotencyKeyReused,
            format!("Idempotency-Key {key:?} was first used with a different request; use a new key for a new request"),
        ));
    }
    if row.state == "completed" {
        let body = match (&row.response_enc, &row.response_body) {
            (Some(enc), _) => state
                .crypto
                .decrypt(tenant, key, Purpose::IdempotentResponse, enc)
                .map_err(|e| Error::internal(anyhow::anyhow!("kept response for an Idempotency-Key: {e}")))?,
            (None, Some(plain)) => plain.clone(),
            (None, None) => Vec::new(),
        };
        let status = row.response_status.and_then(|s| u16::try_from(s).ok()).unwrap_or(200);
        let headers = row.response_headers.map(|h| h.0).unwrap_or_default();
        return Ok(Claim::Replay(Kept { status, headers, body }));
    }
    // A request whose instance died mid-flight: its lock expired, take it over.
    if !store::idempotency::try_resume(&mut conn, tenant, key, request_hash, lock).await? {
        return Err(in_use(key));
    }
    Ok(Claim::Run)
}

fn in_use(key: &str) -> Error {
    Error::refused(
        Refusal::IdempotencyKeyInUse,
        format!("a request with Idempotency-Key {key:?} is still being processed; retry later"),
    )
}

/// Keep the answer of the request that owns `key`, encrypted, for replays.
pub async fn complete(
    state: &AppState,
    tenant: &str,
    key: &str,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<()> {
    let enc = state.crypto.encrypt(tenant, key, Purpose::IdempotentResponse, body);
    let mut conn = state.db.acquire().await?;
    let status = i16::try_from(status).unwrap_or(500);
    Ok(store::idempotency::complete(&mut conn, tenant, key, status, headers, &enc).await?)
}

/// Forget `key`: nothing was done, so a retry starts over.
pub async fn release(state: &AppState, tenant: &str, key: &str) -> Result<()> {
    let mut conn = state.db.acquire().await?;
    Ok(store::idempotency::release(&mut conn, tenant, key).await?)
}

/// Re-encrypt every kept response not under the current master key (and encrypt the
/// plaintext ones kept before responses were encrypted). Returns (rewritten, changed
/// meanwhile, undecryptable); part of `shipgate rotate-keys`.
pub async fn reencrypt_responses(state: &AppState) -> Result<(u64, u64, u64)> {
    let (mut rewritten, mut skipped, mut undecryptable) = (0, 0, 0);
    let current = i16::from(state.crypto.current_id());
    let mut after = (String::new(), String::new());
    loop {
        let batch = {
            let mut conn = state.db.acquire().await?;
            store::idempotency::stale_responses(&mut conn, current, (&after.0, &after.1), 200).await?
        };
        let Some(last) = batch.last() else { break };
        after = (last.tenant_id.clone(), last.key.clone());
        for row in &batch {
            let plain = match (&row.enc, &row.body) {
                (Some(enc), _) => {
                    match state.crypto.decrypt(&row.tenant_id, &row.key, Purpose::IdempotentResponse, enc) {
                        Ok(p) => p,
                        Err(_) => {
                            tracing::warn!(tenant_id = %row.tenant_id, "a kept idempotent response does not decrypt with any configured key; left as is");
                            undecryptable += 1;
                            continue;
                        }
                    }
                }
                (None, Some(body)) => body.clone(),
                (None, None) => continue,
            };
            let new = state.crypto.encrypt(&row.tenant_id, &row.key, Purpose::IdempotentResponse, &plain);
            let mut conn = state.db.acquire().await?;
            if store::idempotency::swap_response(&mut conn, row, &new).await? {
                rewritten += 1;
            } else {
                skipped += 1;
            }
        }
    }
    Ok((rewritten, skipped, undecryptable))
}
