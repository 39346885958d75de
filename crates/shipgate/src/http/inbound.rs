//! Inbound carrier pushes, authenticated by the connection, not by an API key:
//! Ecom Express (Basic Auth, seed `003_22468744d4026f76.txt`) and AfterShip webhooks
//! (HMAC-SHA256 of the raw body, CARRIERS.md "Inbound webhooks").
//!
//! Credential checks run in constant time against a per-connection verifier kept in
//! memory for a few seconds (SHA-256 of the Basic-Auth user and password, or the HMAC
//! secret), so a push costs no decrypt and no connection read while it is warm.
//!
//! Failed checks (QUALITY.md security: "failures rate-limited", "without ever refusing
//! valid credentials"):
//! - nothing is kept for a connection id that is not ours: the id's shape is checked
//!   first and the connection must exist, so request data never keys our memory;
//! - failures are counted per (connection, client address) in a bounded
//!   [`FailureThrottle`](crate::cache::FailureThrottle) whose entries end with their
//!   window;
//! - the credentials are always checked first, and only a *failing* request is answered
//!   429 once its (connection, address) is past the limit: the carrier's valid pushes
//!   go through whatever anyone else sends from its address (issue: the inbound
//!   lock-out). What makes guessing hopeless is the secret's strength: generated
//!   credentials are 190-bit random, customer-chosen ones must pass
//!   [`weak_inbound_secrets`].
//!
//! Both caches are safe to lose (ARCHITECTURE rule 12): a restart only forgets them.
//! They are defined in [`crate::cache`] (the state holds them).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{client_ip, with_retry_after};
use crate::app::AppState;
use crate::cache::Verifier;
use crate::domain::FieldError;
use crate::error::{ApiError, Problem};
use crate::http::extract;
use crate::ids;
use crate::service::inbound::{self as svc, PushOutcome, WebhookOutcome};
use crate::store;

/// Largest inbound push body: one scan is well under 1 KiB (seed "Payload"); an
/// AfterShip tracking with its checkpoints is larger, so webhooks get more room.
pub const ECOM_BODY_LIMIT: usize = 16 * 1024;
pub const AFTERSHIP_BODY_LIMIT: usize = 256 * 1024;

fn sha(s: &[u8]) -> [u8; 32] {
    Sha256::digest(s).into()
}

/// The verifier for a connection id, from the cache or the database. None when there
/// is no such (live) connection.
async fn verifier(state: &AppState, id: &str) -> Result<Option<Arc<Verifier>>, sqlx::Error> {
    if !ids::is_id("con", id) {
        return Ok(None);
    }
    if let Some(v) = state.inbound.fresh(id) {
        return Ok(Some(v));
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
    state.inbound.remember(id, v.clone());
    Ok(Some(v))
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

fn retry_after(resp: Response, secs: u64) -> Response {
    with_retry_after(resp, secs)
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

/// Receive an Ecom Express scan
///
/// Authenticated with the connection's Basic-Auth credentials (shown once when the connection was created). `status:true` is answered
/// only after the scan is committed; a repeated `status_update_number` is acknowledged
/// `true` again and stored once. Malformed pushes are answered 400 with `status:false`
/// and a `reason` naming the field; nothing is stored. The database being unavailable
/// is answered 503 with `status:false` (retry later).
#[utoipa::path(post, path = "/v1/inbound/ecomexpress/{connection_id}", tag = "inbound",
    operation_id = "ecomexpress_push", security(("inbound_ecomexpress_basic" = [])),
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
    let ip = client_ip(req.extensions(), req.headers(), &state.config.trusted_proxies);
    let headers = req.headers().clone();
    let body = match read_body(req, ECOM_BODY_LIMIT).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let (awb, sun) = svc::echo_fields(&body);
    let verifier = match verifier(&state, &connection_id).await {
        Ok(v) => v,
        Err(e) => return store_failed(&e, awb, sun),
    };
    let known = verifier.is_some();
    let verifier = verifier.filter(|v| v.row.carrier == svc::ECOM);
    // Compared in full and in constant time (no early exit on the user), against a
    // dummy pair when the connection is unknown so that path costs the same.
    let expected = verifier.as_ref().and_then(|v| v.basic).unwrap_or_else(|| *dummy_pair());
    let (gu, gp) = basic_credentials(&headers).unwrap_or_default();
    let matches = bool::from(sha(gu.as_bytes()).ct_eq(&expected.0) & sha(gp.as_bytes()).ct_eq(&expected.1));
    let authorized = verifier.filter(|v| matches && v.basic.is_some());
    let Some(v) = authorized else {
        // Counted only against a connection that exists; an unknown id keeps nothing.
        if known && let Some(secs) = state.inbound.note_failure(&connection_id, ip) {
            let resp =
                ack(StatusCode::TOO_MANY_REQUESTS, awb, false, Some("too many failed authentications".into()), sun);
            return retry_after(resp, secs);
        }
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

/// Stands in for a connection's credentials when the id is unknown.
fn dummy_pair() -> &'static ([u8; 32], [u8; 32]) {
    static DUMMY: std::sync::OnceLock<([u8; 32], [u8; 32])> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let (u, p) = generate_basic_credentials();
        (sha(u.as_bytes()), sha(p.as_bytes()))
    })
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

/// Receive an AfterShip webhook
///
/// `aftership-hmac-sha256` must be the base64 HMAC-SHA256 of the raw body under the connection's `webhook_secret`. Deduplicated on `event_id`;
/// `msg` (the tracking) is applied to the connection's shipment with that tracking
/// number (events deduplicated, status forward-only).
#[utoipa::path(post, path = "/v1/inbound/aftership/{connection_id}", tag = "inbound",
    operation_id = "aftership_webhook", security(("inbound_aftership_hmac" = [])),
    params(("connection_id" = String, Path, description = "The aftership connection (with a webhook_secret)")),
    request_body(content = Object, description = "`{ts, event, event_id, is_tracking_first_tag, msg: <tracking>}`"),
    responses(
        (status = 200, body = WebhookAck, description = "Applied, kept for an unknown tracking, or a duplicate"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "The body is not JSON"),
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
    let ip = client_ip(req.extensions(), req.headers(), &state.config.trusted_proxies);
    let signature = req.headers().get("aftership-hmac-sha256").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = read_body(req, AFTERSHIP_BODY_LIMIT).await?;
    let v = verifier(&state, &connection_id).await.map_err(|e| ApiError::from(e).into_response())?;
    let known = v.is_some();
    let verified = v.filter(|v| v.row.carrier == "aftership").filter(|v| {
        let (Some(secret), Some(sig)) = (&v.webhook_secret, &signature) else { return false };
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig.trim()) else { return false };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else { return false };
        mac.update(&body);
        // verify_slice compares in constant time.
        mac.verify_slice(&sig).is_ok()
    });
    let Some(v) = verified else {
        // Counted only against a connection that exists; an unknown id keeps nothing.
        if known && let Some(secs) = state.inbound.note_failure(&connection_id, ip) {
            let e = ApiError::client(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many failed signatures",
                "too many failed signature checks from this address; retry later with a valid signature",
            );
            return Err(retry_after(e.into_response(), secs));
        }
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

/// Shortest customer-chosen inbound secret, and the least estimated strength.
pub const MIN_SECRET_LEN: usize = 16;
const MIN_SECRET_BITS: f64 = 80.0;
const MIN_DISTINCT_CHARS: usize = 8;

/// Customer-chosen inbound secrets that are too weak to stand against online guessing
/// (the throttle never refuses valid credentials, so the secret's strength is the
/// defence): the Ecom Express Basic-Auth `password` and the AfterShip `webhook_secret`.
/// At least 16 characters, 8 of them distinct, and ≥ 80 bits estimated as length ×
/// log2(size of the character classes used), the usual charset estimate (NIST SP
/// 800-63B asks for length over composition; this adds a floor on repetition). A
/// 16-letter lowercase word is refused (75 bits); generated credentials (32 characters
/// of 62 symbols, ≈ 190 bits) always pass.
pub fn weak_inbound_secrets(carrier: &str, creds: &std::collections::BTreeMap<String, String>) -> Vec<FieldError> {
    let field = match carrier {
        "ecomexpress" => "password",
        "aftership" => "webhook_secret",
        _ => return Vec::new(),
    };
    let Some(secret) = creds.get(field) else { return Vec::new() };
    match secret_weakness(secret) {
        Some(why) => vec![FieldError::new(format!("credentials.{field}"), why)],
        None => Vec::new(),
    }
}

/// Why `secret` is too weak, if it is.
fn secret_weakness(secret: &str) -> Option<String> {
    let len = secret.chars().count();
    if len < MIN_SECRET_LEN {
        return Some(format!("must be at least {MIN_SECRET_LEN} characters (a long random secret)"));
    }
    let distinct = secret.chars().collect::<std::collections::HashSet<_>>().len();
    if distinct < MIN_DISTINCT_CHARS {
        return Some(format!("must use at least {MIN_DISTINCT_CHARS} different characters"));
    }
    // Character classes used and their sizes (33 printable ASCII symbols, space included).
    let has = |f: fn(&char) -> bool| secret.chars().any(|c| f(&c));
    let pool: f64 = [
        (has(char::is_ascii_lowercase), 26.0),
        (has(char::is_ascii_uppercase), 26.0),
        (has(char::is_ascii_digit), 10.0),
        (has(|c| !c.is_ascii_alphanumeric()), 33.0),
    ]
    .iter()
    .filter(|(used, _)| *used)
    .map(|(_, n)| n)
    .sum();
    let bits = len as f64 * pool.log2();
    (bits < MIN_SECRET_BITS).then(|| {
        format!("is too guessable (about {bits:.0} bits; at least {MIN_SECRET_BITS:.0}): make it longer or mix letter cases, digits and symbols")
    })
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
    fn weak_secrets_are_named_and_strong_ones_pass() {
        let weak = |carrier: &str, field: &str, v: &str| {
            let creds = std::collections::BTreeMap::from([(field.to_owned(), v.to_owned())]);
            weak_inbound_secrets(carrier, &creds)
        };
        for bad in ["short", "passwordpassword", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "1234567812345678"] {
            let e = weak("ecomexpress", "password", bad);
            assert_eq!(e.len(), 1, "{bad} must be refused");
            assert_eq!(e[0].field, "credentials.password");
        }
        assert_eq!(weak("aftership", "webhook_secret", "secret")[0].field, "credentials.webhook_secret");
        for good in ["a-long-secret-123", "Tr0ub4dor&3-horse-battery", &generate_basic_credentials().1] {
            assert!(weak("ecomexpress", "password", good).is_empty(), "{good} must pass");
        }
        assert!(weak("ecourier", "password", "x").is_empty(), "outbound credentials are the carrier's business");
    }

    #[test]
    fn generated_credentials_differ() {
        let (u1, p1) = generate_basic_credentials();
        let (u2, p2) = generate_basic_credentials();
        assert_ne!((u1, p1.clone()), (u2, p2));
        assert_eq!(p1.len(), 32);
    }
}
