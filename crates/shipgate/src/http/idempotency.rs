//! `Idempotency-Key` (docs/product.md "Idempotency") as middleware on every POST/PATCH
//! under `/v1`: the request's fingerprint (method, path, query, body) claims the key
//! through `service::idempotency`, which keeps the protocol's state (claim, replay,
//! in flight, reused) and the answers, encrypted. Here: the HTTP side, and which
//! answers are kept.
//!
//! `Idempotent-Replayed: true` marks a replay. Which answers are kept ([`stored`]):
//! every 2xx and 3xx, and the 4xx that the same request would get again (400 malformed,
//! 404, 409 state conflicts, 422 validation or carrier refusals). Not kept, the key
//! released: 5xx (nothing a client sent is left half-done behind one: a booking the
//! carrier could not take is answered 202 and kept), and the 4xx a client fixes
//! *without changing the request* (issue 10: a 415 was replayed for 24 h after the
//! client fixed its content type): 401/403 (credentials), 406, 408 (too slow), 411,
//! 413 (the limit is ours), 415 (content type), 425, 428, 429 (throttled), 431. None
//! of these is answered after the handler changed anything, so a retry cannot do
//! anything twice.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::error::ApiError;
use crate::service::Caller;
use crate::service::idempotency::{self as keys, Claim, Kept};

pub const HEADER: &str = "idempotency-key";

const KEPT_HEADERS: [&str; 3] = ["content-type", "location", "retry-after"];

pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let key = match req.headers().get(HEADER) {
        Some(key) if matches!(*req.method(), Method::POST | Method::PATCH) => key.clone(),
        _ => return next.run(req).await,
    };
    // Boxed: axum moves this middleware's future into a box of its own on every request,
    // so the keyed path's state (its statements' futures, kilobytes) lives behind a
    // pointer instead of being copied for requests that never take it.
    match Box::pin(handle(state, req, next, key)).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// A POST or PATCH carrying `key` in its `Idempotency-Key` header.
async fn handle(state: AppState, req: Request, next: Next, key: HeaderValue) -> Result<Response, ApiError> {
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .ok_or_else(|| {
            let e = crate::domain::FieldError::new("Idempotency-Key", "must be 1-255 visible ASCII characters");
            ApiError::invalid(crate::error::Location::Header, vec![e])
        })?
        .to_owned();
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
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

    let tenant = caller.tenant_id.as_str();
    if let Claim::Replay(kept) = keys::claim(&state, tenant, &key, &hash).await? {
        return Ok(replay(kept));
    }

    let req = Request::from_parts(parts, Body::from(bytes));
    let response = next.run(req).await;
    let (mut parts, body) = response.into_parts();
    let body = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            let _ = keys::release(&state, tenant, &key).await;
            return Err(ApiError::Internal(anyhow::anyhow!("buffering response: {e}")));
        }
    };
    if !stored(parts.status) {
        // Nothing was done (see the module doc): a retry simply starts over.
        keys::release(&state, tenant, &key).await?;
    } else {
        let headers: Vec<(String, String)> = KEPT_HEADERS
            .iter()
            .filter_map(|n| {
                parts.headers.get(*n).and_then(|v| v.to_str().ok()).map(|v| ((*n).to_owned(), v.to_owned()))
            })
            .collect();
        keys::complete(&state, tenant, &key, parts.status.as_u16(), &headers, &body).await?;
    }
    parts.headers.insert(HeaderName::from_static("idempotent-replayed"), HeaderValue::from_static("false"));
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Whether a response is kept for replays (see the module doc).
pub fn stored(status: StatusCode) -> bool {
    if status.is_server_error() {
        return false;
    }
    !matches!(status.as_u16(), 401 | 403 | 406 | 408 | 411 | 413 | 415 | 425 | 428 | 429 | 431)
}

/// The kept answer, as first answered.
fn replay(kept: Kept) -> Response {
    let mut resp = Response::new(Body::from(kept.body));
    *resp.status_mut() = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    for (k, v) in &kept.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp.headers_mut().insert(HeaderName::from_static("idempotent-replayed"), HeaderValue::from_static("true"));
    resp
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
