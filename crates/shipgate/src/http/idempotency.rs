//! `Idempotency-Key` (PRODUCT.md "Idempotency"), as middleware on every POST/PATCH
//! under `/v1`:
//! - first request with a key claims it (`INSERT .. ON CONFLICT`, so of N concurrent
//!   requests exactly one proceeds) and its response is stored and replayed byte for
//!   byte for the retention period (`Idempotent-Replayed: true` marks a replay);
//! - same key, different method/path/body → 422 `idempotency_key_reused`;
//! - same key while the first is in flight → 409 `idempotency_key_in_use`;
//! - a 5xx is not stored: if the request created something (a shipment kept as
//!   `pending` when the carrier was down), the key remembers it and a retry with the
//!   same key resumes that shipment instead of creating another; otherwise the key is
//!   released so the retry starts over.
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
                return Ok(replay(&row));
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
    if parts.status.is_server_error() {
        // Nothing a client sent is left half-done behind a 5xx (a booking the carrier
        // could not take is answered 202 and kept), so a retry simply starts over.
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
            &body,
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

fn replay(row: &store::idempotency::KeyRow) -> Response {
    let status =
        row.response_status.and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok()).unwrap_or(StatusCode::OK);
    let mut resp = Response::new(Body::from(row.response_body.clone().unwrap_or_default()));
    *resp.status_mut() = status;
    if let Some(headers) = &row.response_headers {
        for (k, v) in &headers.0 {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
                resp.headers_mut().insert(k, v);
            }
        }
    }
    resp.headers_mut().insert(HeaderName::from_static("idempotent-replayed"), HeaderValue::from_static("true"));
    resp
}
