//! Inbound carrier pushes, authenticated by the connection, not by an API key:
//! Ecom Express (Basic Auth, seed `003_22468744d4026f76.txt`) and AfterShip webhooks
//! (HMAC-SHA256 of the raw body, CARRIERS.md "Inbound webhooks").
//!
//! Credential checks run in constant time against a per-connection verifier kept in
//! memory for a few seconds (SHA-256 of the Basic-Auth user and password, or the HMAC
//! secret), so a push costs no decrypt and no connection read while it is warm. Failed
//! checks are counted per (connection, client address) and answered 429 with
//! Retry-After once too many arrive in a window. Both caches are safe to lose
//! (ARCHITECTURE rule 12): a restart only forgets them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, Problem};
use crate::http::extract;
use crate::ids;
use crate::service::inbound::{self as svc, PushOutcome, WebhookOutcome};
use crate::store;
use crate::store::connections::ConnectionRow;

/// Largest inbound push body: one scan is well under 1 KiB (seed "Payload"); an
/// AfterShip tracking with its checkpoints is larger, so webhooks get more room.
pub const ECOM_BODY_LIMIT: usize = 16 * 1024;
pub const AFTERSHIP_BODY_LIMIT: usize = 256 * 1024;

/// How long a verifier is reused; a change on this instance evicts it at once
/// (`AppState::forget_connection`), on other instances within this time.
const VERIFIER_TTL: Duration = Duration::from_secs(5);
/// Failed credential checks allowed per (connection, client address) and window.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// What a connection accepts, derived once from its row and decrypted credentials.
struct Verifier {
    row: ConnectionRow,
    /// SHA-256 of the Basic-Auth user and password (Ecom Express).
    basic: Option<([u8; 32], [u8; 32])>,
    /// The AfterShip webhook secret.
    webhook_secret: Option<SecretString>,
}

#[derive(Default)]
pub struct InboundCache {
    verifiers: Mutex<HashMap<String, (Instant, Arc<Verifier>)>>,
    failures: Mutex<HashMap<(String, String), (Instant, u32)>>,
    /// Status mapping tables per tenant and carrier.
    pub mappings: svc::MappingCache,
}

impl InboundCache {
    pub fn evict(&self, connection_id: &str) {
        if let Ok(mut m) = self.verifiers.lock() {
            m.remove(connection_id);
        }
    }

    /// Seconds until this client may try again, when it is blocked.
    fn blocked(&self, key: &(String, String)) -> Option<u64> {
        let m = self.failures.lock().ok()?;
        let (start, n) = m.get(key)?;
        let left = FAILURE_WINDOW.checked_sub(start.elapsed())?;
        (*n >= MAX_FAILURES).then(|| left.as_secs().max(1))
    }

    fn note_failure(&self, key: (String, String)) {
        if let Ok(mut m) = self.failures.lock() {
            if m.len() > 100_000 {
                m.retain(|_, (start, _)| start.elapsed() < FAILURE_WINDOW);
            }
            let entry = m.entry(key).or_insert((Instant::now(), 0));
            if entry.0.elapsed() >= FAILURE_WINDOW {
                *entry = (Instant::now(), 0);
            }
            entry.1 += 1;
        }
    }
}

fn sha(s: &[u8]) -> [u8; 32] {
    Sha256::digest(s).into()
}

/// The verifier for a connection id, from the cache or the database. None when there
/// is no such (live) connection.
async fn verifier(state: &AppState, id: &str) -> Result<Option<Arc<Verifier>>, sqlx::Error> {
    if !ids::is_id("con", id) {
        return Ok(None);
    }
    if let Ok(m) = state.inbound.verifiers.lock()
        && let Some((at, v)) = m.get(id)
        && at.elapsed() < VERIFIER_TTL
    {
        return Ok(Some(v.clone()));
    }
    let mut conn = state.db.acquire().await?;
    let Some(row) = store::inbound::connection_by_id(&mut conn, id).await? else { return Ok(None) };
    drop(conn);
    let creds = match state.credentials(&row) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(connection_id = %id, error = %e, "inbound connection credentials cannot be read");
            return Ok(None);
        }
    };
    let basic = match (creds.get("username"), creds.get("password")) {
        (Some(u), Some(p)) => Some((sha(u.expose_secret().as_bytes()), sha(p.expose_secret().as_bytes()))),
        _ => None,
    };
    let v = Arc::new(Verifier { basic, webhook_secret: creds.get("webhook_secret").cloned(), row });
    if let Ok(mut m) = state.inbound.verifiers.lock() {
        if m.len() > 10_000 {
            m.clear();
        }
        m.insert(id.to_owned(), (Instant::now(), v.clone()));
    }
    Ok(Some(v))
}

fn client_key(connection_id: &str, req: &Request) -> (String, String) {
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    (connection_id.to_owned(), addr)
}

/// `(user, password)` from `Authorization: Basic ...`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// The Ecom Express acknowledgement (seed "Sample Response" / "Failure Responses"):
/// `awb` and `status_update_number` are echoed exactly as pushed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushAck {
    #[schema(example = "AWB_NUMBER")]
    pub awb: Value,
    /// True only once the scan is committed.
    pub status: bool,
    /// Why the push was not accepted (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[schema(example = "44591782")]
    pub status_update_number: Value,
}

/// One Ecom Express scan as pushed (all values strings; unknown fields accepted).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({
    "awb": "AWB_NUMBER", "datetime": "2026-11-22 10:30:00", "status": "remark",
    "reason_code": "777 - RTS - Return To Shipper", "reason_code_number": "777", "location": "JRD",
    "Employee": "Name of Employee", "status_update_number": "44591782", "order_number": "ORDER_NUMBER",
    "city": "Vadodara", "ref_awb": ""
}))]
pub struct EcomPushIn {
    awb: String,
    /// "YYYY-mm-dd H:M:S", India time (+05:30).
    datetime: String,
    status: Option<String>,
    reason_code: Option<String>,
    reason_code_number: String,
    /// Takes priority over `reason_code_number` when present.
    child_reason_code_number: Option<String>,
    location: Option<String>,
    #[serde(rename = "Employee")]
    #[schema(rename = "Employee")]
    employee: Option<String>,
    /// Unique id of this scan; a repeated one is acknowledged and stored once.
    status_update_number: String,
    order_number: Option<String>,
    city: Option<String>,
    ref_awb: Option<String>,
}

fn ack(status: StatusCode, awb: Value, ok: bool, reason: Option<String>, sun: Value) -> Response {
    (status, axum::Json(PushAck { awb, status: ok, reason, status_update_number: sun })).into_response()
}

fn retry_after(mut resp: Response, secs: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

async fn read_body(req: Request, limit: usize) -> Result<Bytes, Response> {
    axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| ApiError::PayloadTooLarge(limit).into_response())
}

/// The same classification as `ApiError::from(sqlx::Error)`: the server went away.
fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c == "57P01" || c.starts_with("08")),
        _ => false,
    }
}

/// Receive one Ecom Express scan. Authenticated with the connection's Basic-Auth
/// credentials (shown once when the connection was created). `status:true` is answered
/// only after the scan is committed; a repeated `status_update_number` is acknowledged
/// `true` again and stored once. Malformed pushes are answered 400 with `status:false`
/// and a `reason` naming the field; nothing is stored. The database being unavailable
/// is answered 503 with `status:false` (retry later).
#[utoipa::path(post, path = "/v1/inbound/ecomexpress/{connection_id}", tag = "inbound",
    operation_id = "ecomexpress_push", security(("ecomexpress_basic" = [])),
    params(("connection_id" = String, Path, description = "The ecomexpress connection")),
    request_body = EcomPushIn,
    responses(
        (status = 200, body = PushAck, description = "Committed (or already stored): `status:true`"),
        (status = 400, body = PushAck, description = "Malformed push: `status:false` with a reason; nothing stored"),
        (status = 401, body = PushAck, description = "Wrong or missing credentials (`WWW-Authenticate: Basic`)"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = PushAck, description = "Too many failed authentications; see Retry-After"),
        (status = 503, body = PushAck, description = "Not stored (database unavailable): `status:false`, retry")))]
async fn ecomexpress_push(State(state): State<AppState>, Path(connection_id): Path<String>, req: Request) -> Response {
    if connection_id.contains('\0') {
        let reason = format!("connection_id {}", extract::NUL_MESSAGE);
        return ack(StatusCode::BAD_REQUEST, Value::Null, false, Some(reason), Value::Null);
    }
    let key = client_key(&connection_id, &req);
    let headers = req.headers().clone();
    let body = match read_body(req, ECOM_BODY_LIMIT).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let (awb, sun) = svc::echo_fields(&body);
    if let Some(secs) = state.inbound.blocked(&key) {
        let resp = ack(StatusCode::TOO_MANY_REQUESTS, awb, false, Some("too many failed authentications".into()), sun);
        return retry_after(resp, secs);
    }
    let verifier = match verifier(&state, &connection_id).await {
        Ok(v) => v,
        Err(e) => return store_failed(&e, awb, sun),
    };
    let authorized = verifier.as_ref().filter(|v| v.row.carrier == svc::ECOM).and_then(|v| {
        let (u, p) = v.basic?;
        let (gu, gp) = basic_credentials(&headers)?;
        // Both compared in full, in constant time (no early exit on the user).
        let ok = sha(gu.as_bytes()).ct_eq(&u) & sha(gp.as_bytes()).ct_eq(&p);
        bool::from(ok).then_some(v)
    });
    let Some(v) = authorized else {
        state.inbound.note_failure(key);
        let mut resp = ack(StatusCode::UNAUTHORIZED, awb, false, Some("unauthorized".into()), sun);
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"shipgate inbound\""));
        return resp;
    };
    // A NUL anywhere, extra fields and their names included, would fail the insert
    // (Postgres refuses U+0000) and be answered "retry" forever: it is malformed.
    if let Some(reason) = nul_reason(&body) {
        return ack(StatusCode::BAD_REQUEST, awb, false, Some(reason), sun);
    }
    let (push, raw) = match svc::parse_push(&body) {
        Ok(p) => p,
        Err(m) => return ack(StatusCode::BAD_REQUEST, m.awb, false, Some(m.reason), m.status_update_number),
    };
    if !crate::domain::time::in_range(&push.occurred_at) {
        let reason = format!("datetime {}", crate::domain::time::RANGE_MESSAGE);
        return ack(StatusCode::BAD_REQUEST, awb, false, Some(reason), sun);
    }
    match svc::ingest_ecom_push(&state, &v.row, &push, &raw).await {
        Ok(PushOutcome::Stored { .. } | PushOutcome::Duplicate) => ack(StatusCode::OK, awb, true, None, sun),
        Err(e) => store_failed(&e, awb, sun),
    }
}

/// Where a push holds a NUL, as the ack's `reason` (None: nowhere, or not JSON, which
/// the parser reports).
fn nul_reason(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let at = extract::find_nul(&v)?;
    Some(match (at.in_key, at.field.as_str()) {
        (true, "body") => "field names must not contain the NUL character (U+0000)".to_owned(),
        (_, field) => format!("{field}: {}", at.message()),
    })
}

/// Never `status:true` for anything not committed.
fn store_failed(e: &sqlx::Error, awb: Value, sun: Value) -> Response {
    if database_unavailable(e) {
        let resp =
            ack(StatusCode::SERVICE_UNAVAILABLE, awb, false, Some("temporarily unable to store; retry".into()), sun);
        return retry_after(resp, 5);
    }
    tracing::error!(error = %e, "inbound push could not be stored");
    ack(StatusCode::INTERNAL_SERVER_ERROR, awb, false, Some("internal error; retry".into()), sun)
}

/// What an AfterShip webhook did.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    /// `applied`, `unknown_tracking` (payload kept; no shipment has this number on the
    /// connection) or `duplicate` (event_id seen before).
    #[schema(example = "applied")]
    pub outcome: &'static str,
    pub shipment_id: Option<String>,
}

/// Receive an AfterShip webhook: `aftership-hmac-sha256` must be the base64 HMAC-SHA256
/// of the raw body under the connection's `webhook_secret`. Deduplicated on `event_id`;
/// `msg` (the tracking) is applied to the connection's shipment with that tracking
/// number (events deduplicated, status forward-only).
#[utoipa::path(post, path = "/v1/inbound/aftership/{connection_id}", tag = "inbound",
    operation_id = "aftership_webhook", security(("aftership_hmac" = [])),
    params(("connection_id" = String, Path, description = "The aftership connection (with a webhook_secret)")),
    request_body(content = Object, description = "`{ts, event, event_id, is_tracking_first_tag, msg: <tracking>}`"),
    responses(
        (status = 200, body = WebhookAck),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "Missing or wrong signature"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn aftership_webhook(
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
    req: Request,
) -> Result<axum::Json<WebhookAck>, Response> {
    extract::check_path_text("connection_id", &connection_id).map_err(IntoResponse::into_response)?;
    let key = client_key(&connection_id, &req);
    let signature = req.headers().get("aftership-hmac-sha256").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = read_body(req, AFTERSHIP_BODY_LIMIT).await?;
    if let Some(secs) = state.inbound.blocked(&key) {
        let e = ApiError::client(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many failed signatures",
            "too many failed signature checks from this address; retry later",
        );
        return Err(retry_after(e.into_response(), secs));
    }
    let v = verifier(&state, &connection_id).await.map_err(|e| ApiError::from(e).into_response())?;
    let verified = v.filter(|v| v.row.carrier == "aftership").filter(|v| {
        let (Some(secret), Some(sig)) = (&v.webhook_secret, &signature) else { return false };
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig.trim()) else { return false };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else { return false };
        mac.update(&body);
        // verify_slice compares in constant time.
        mac.verify_slice(&sig).is_ok()
    });
    let Some(v) = verified else {
        state.inbound.note_failure(key);
        return Err(ApiError::client(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "Invalid webhook signature",
            "aftership-hmac-sha256 is missing or does not match the body",
        )
        .into_response());
    };
    let raw: Value = extract::parse_json(&body).map_err(IntoResponse::into_response)?;
    let hook: svc::AftershipWebhook = extract::parse_json(&body).map_err(IntoResponse::into_response)?;
    let outcome = svc::ingest_aftership_webhook(&state, &v.row, &hook, &raw)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok(axum::Json(match outcome {
        WebhookOutcome::Applied { shipment_id } => WebhookAck { outcome: "applied", shipment_id: Some(shipment_id) },
        WebhookOutcome::UnknownTracking => WebhookAck { outcome: "unknown_tracking", shipment_id: None },
        WebhookOutcome::Duplicate => WebhookAck { outcome: "duplicate", shipment_id: None },
    }))
}

/// The inbound URL of a connection: `public_base_url` + path when configured, else the
/// path alone.
pub fn inbound_url(state: &AppState, carrier: &str, connection_id: &str) -> Option<String> {
    if !matches!(carrier, "ecomexpress" | "aftership") {
        return None;
    }
    let path = format!("/v1/inbound/{carrier}/{connection_id}");
    Some(match &state.config.public_base_url {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => path,
    })
}

/// A strong generated Basic-Auth pair for an ecomexpress connection.
pub fn generate_basic_credentials() -> (String, String) {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let mut token =
        |n: usize| -> String { (0..n).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect() };
    // 12 lowercase-or-digit-ish characters for the user, 32 from 62 symbols (≈190 bits) for the password.
    (format!("ecom_{}", token(12).to_ascii_lowercase()), token(32))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ecomexpress_push))
        .routes(routes!(aftership_webhook))
        // The handlers read the body themselves under their own (tighter) limits.
        .layer(DefaultBodyLimit::disable())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_is_parsed() {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("u:p:q"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&v).expect("header"));
        assert_eq!(basic_credentials(&h), Some(("u".into(), "p:q".into())));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_credentials(&h), None);
    }

    #[test]
    fn failures_block_after_the_limit() {
        let c = InboundCache::default();
        let k = ("con_x".to_owned(), "1.2.3.4".to_owned());
        for _ in 0..MAX_FAILURES - 1 {
            c.note_failure(k.clone());
        }
        assert_eq!(c.blocked(&k), None);
        c.note_failure(k.clone());
        assert!(c.blocked(&k).is_some());
        assert_eq!(c.blocked(&("con_x".to_owned(), "5.6.7.8".to_owned())), None);
    }

    #[test]
    fn generated_credentials_differ() {
        let (u1, p1) = generate_basic_credentials();
        let (u2, p2) = generate_basic_credentials();
        assert_ne!((u1, p1.clone()), (u2, p2));
        assert_eq!(p1.len(), 32);
    }
}
