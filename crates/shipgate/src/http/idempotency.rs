//! `Idempotency-Key` (PRODUCT.md "Idempotency"), as middleware on every POST/PATCH
//! under `/v1`:
//! - first request with a key claims it (`INSERT .. ON CONFLICT`, so of N concurrent
//!   requests exactly one proceeds) and its response is stored and replayed byte for
//!   byte for the retention period (`Idempotent-Replayed: true` marks a replay);
//! - same key, different method/path/body → 422 `idempotency_key_reused`;
//! - same key while the first is in flight → 409 `idempotency_key_in_use`;
//! - a 5xx is not stored: nothing a client sent is left half-done behind one (a
//!   booking the carrier could not take is answered 202 and kept), so the key is
//!   released and a retry starts over.
//!
//! Which answers are stored ([`stored`]): every 2xx and 3xx, and the 4xx that the same
//! request would get again (400 malformed, 404, 409 state conflicts, 422 validation or
//! carrier refusals). Not stored, the key released: 5xx, and the 4xx a client fixes
//! *without changing the request* (issue 10: a 415 was replayed for 24 h after the
//! client fixed its content type): 401/403 (credentials), 406, 408 (too slow), 411,
//! 413 (the limit is ours), 415 (content type), 425, 428, 429 (throttled), 431. None
//! of these is answered after the handler changed anything, so a retry cannot do
//! anything twice.
//!
//! Stored responses are encrypted (issue 10: a create or rotate call's answer carries
//! one-time secrets: generated Ecom Express passwords, `whsec_` webhook secrets).
//! Encrypting the whole body under the master key (XChaCha20-Poly1305, src/crypto.rs,
//! associated data binding tenant and key so a row moved elsewhere does not decrypt)
//! was chosen over storing the body with the secret removed: the replay stays byte for
//! byte, so a client whose first answer was lost still gets the secret it cannot get
//! again any other way, and no per-route knowledge of where secrets sit is needed.
//! `shipgate rotate-keys` re-encrypts them ([`reencrypt_responses`]).
//!
//! Hand-written because no crate offers these semantics on Postgres with tenancy.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::auth::AuthContext;
use crate::app::AppState;
use crate::crypto::Purpose;
use crate::error::ApiError;
use crate::store;

pub const HEADER: &str = "idempotency-key";

const KEPT_HEADERS: [&str; 3] = ["content-type", "location", "retry-after"];

pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match handle(state, req, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(state: AppState, req: Request, next: Next) -> Result<Response, ApiError> {
    if !matches!(*req.method(), Method::POST | Method::PATCH) {
        return Ok(next.run(req).await);
    }
    let Some(key) = req.headers().get(HEADER) else {
        return Ok(next.run(req).await);
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .ok_or_else(|| {
            let e = crate::domain::FieldError::new("Idempotency-Key", "must be 1-255 visible ASCII characters");
            ApiError::invalid(crate::error::Location::Header, vec![e])
        })?
        .to_owned();
    let Some(auth) = req.extensions().get::<AuthContext>().cloned() else {
        return Err(ApiError::Unauthorized);
    };
    let (parts, body) = req.into_parts();
    let limit = state.config.body_limit_bytes;
    let bytes = to_bytes(body, limit).await.map_err(|_| ApiError::PayloadTooLarge(limit))?;
    let mut h = Sha256::new();
    h.update(parts.method.as_str());
    h.update([0]);
    h.update(parts.uri.path());
    h.update([0]);
    h.update(parts.uri.query().unwrap_or(""));
    h.update([0]);
    h.update(&bytes);
    let hash = h.finalize().to_vec();

    let lock = state.config.idempotency_lock.as_secs_f64();
    let ttl = state.config.idempotency_ttl.as_secs_f64();
    let tenant = auth.tenant_id.as_str();
    {
        let mut conn = state.db.acquire().await?;
        if !store::idempotency::try_claim(&mut conn, tenant, &key, &hash, lock, ttl).await? {
            let row = store::idempotency::get(&mut conn, tenant, &key).await?.ok_or_else(|| in_use(&key))?;
            if row.request_hash != hash {
                return Err(ApiError::client(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "Idempotency-Key reused",
                    format!(
                        "Idempotency-Key {key:?} was first used with a different request; use a new key for a new request"
                    ),
                ));
            }
            if row.state == "completed" {
                return replay(&state, tenant, &key, &row);
            }
            // A request whose instance died mid-flight: its lock expired, take it over.
            if !store::idempotency::try_resume(&mut conn, tenant, &key, &hash, lock).await? {
                return Err(in_use(&key));
            }
        }
    }

    let req = Request::from_parts(parts, Body::from(bytes));
    let response = next.run(req).await;
    let (mut parts, body) = response.into_parts();
    let body = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            release(&state, tenant, &key).await;
            return Err(ApiError::Internal(anyhow::anyhow!("buffering response: {e}")));
        }
    };
    let mut conn = state.db.acquire().await?;
    if !stored(parts.status) {
        // Nothing was done (see the module doc): a retry simply starts over.
        store::idempotency::release(&mut conn, tenant, &key).await?;
    } else {
        let headers: Vec<(String, String)> = KEPT_HEADERS
            .iter()
            .filter_map(|n| {
                parts.headers.get(*n).and_then(|v| v.to_str().ok()).map(|v| ((*n).to_owned(), v.to_owned()))
            })
            .collect();
        store::idempotency::complete(
            &mut conn,
            tenant,
            &key,
            i16::try_from(parts.status.as_u16()).unwrap_or(500),
            &headers,
            &state.crypto.encrypt(tenant, &key, Purpose::IdempotentResponse, &body),
        )
        .await?;
    }
    parts.headers.insert(HeaderName::from_static("idempotent-replayed"), HeaderValue::from_static("false"));
    Ok(Response::from_parts(parts, Body::from(body)))
}

fn in_use(key: &str) -> ApiError {
    ApiError::client(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        "Idempotency-Key in use",
        format!("a request with Idempotency-Key {key:?} is still being processed; retry later"),
    )
}

async fn release(state: &AppState, tenant: &str, key: &str) {
    if let Ok(mut conn) = state.db.acquire().await {
        let _ = store::idempotency::release(&mut conn, tenant, key).await;
    }
}

/// Whether a response is kept for replays (see the module doc).
pub fn stored(status: StatusCode) -> bool {
    if status.is_server_error() {
        return false;
    }
    !matches!(status.as_u16(), 401 | 403 | 406 | 408 | 411 | 413 | 415 | 425 | 428 | 429 | 431)
}

fn replay(state: &AppState, tenant: &str, key: &str, row: &store::idempotency::KeyRow) -> Result<Response, ApiError> {
    let body = match (&row.response_enc, &row.response_body) {
        (Some(enc), _) => state
            .crypto
            .decrypt(tenant, key, Purpose::IdempotentResponse, enc)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("kept response for an Idempotency-Key: {e}")))?,
        (None, Some(plain)) => plain.clone(),
        (None, None) => Vec::new(),
    };
    let status =
        row.response_status.and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok()).unwrap_or(StatusCode::OK);
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    if let Some(headers) = &row.response_headers {
        for (k, v) in &headers.0 {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
                resp.headers_mut().insert(k, v);
            }
        }
    }
    resp.headers_mut().insert(HeaderName::from_static("idempotent-replayed"), HeaderValue::from_static("true"));
    Ok(resp)
}

/// Re-encrypt every kept response not under the current master key (and encrypt the
/// plaintext ones kept before responses were encrypted). Returns (rewritten, changed
/// meanwhile, undecryptable); part of `shipgate rotate-keys`.
pub async fn reencrypt_responses(state: &AppState) -> anyhow::Result<(u64, u64, u64)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixable_and_server_errors_are_not_stored() {
        for s in [200, 201, 202, 204, 303, 400, 404, 409, 422] {
            assert!(stored(StatusCode::from_u16(s).expect("status")), "{s} is stored");
        }
        for s in [401, 403, 408, 413, 415, 429, 431, 500, 502, 503, 504] {
            assert!(!stored(StatusCode::from_u16(s).expect("status")), "{s} is not stored");
        }
    }
}
