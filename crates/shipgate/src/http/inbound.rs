//! Inbound carrier pushes, authenticated by the connection, not by an API key. Every
//! carrier whose descriptor has an [`Inbound`] (`carriers::inbound`) is served at
//! `POST /v1/inbound/<slug>/{connection_id}` by one handler, [`receive`], and documented
//! from its descriptor: the operation its folder writes, plus the tag and the security
//! scheme its [`InboundAuth`] implies. The handler authenticates, hands the body to the
//! carrier's parser, stores the push through `service::inbound` and answers the way the
//! carrier wants to be answered ([`Replies`]).
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
//!   window (defined in [`crate::cache`]: the state holds them);
//! - the credentials are always checked first, and only a *failing* request is answered
//!   429 once its (connection, address) is past the limit: the carrier's valid pushes
//!   go through whatever anyone else sends from its address (issue: the inbound
//!   lock-out). What makes guessing hopeless is the secret's strength: generated
//!   credentials are 190-bit random, customer-chosen ones must pass
//!   `carriers::inbound::secret_weakness`.
//!
//! Both caches are safe to lose (ARCHITECTURE rule 12): a restart only forgets them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use super::auth::{client_ip, with_retry_after};
use crate::app::AppState;
use crate::cache::Verifier;
use crate::carriers::inbound::{Inbound, InboundAuth, Push, Refusal, Replies, Reply, random_token};
use crate::carriers::{self, Carrier};
use crate::error::ApiError;
use crate::http::extract;
use crate::ids;
use crate::service::inbound as svc;
use crate::store;

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
    let (basic, hmac_secret) = match carriers::get(&row.carrier).and_then(|c| c.inbound).map(|i| i.auth) {
        Some(InboundAuth::Basic { user, password }) => match (creds.get(user), creds.get(password)) {
            (Some(u), Some(p)) => (Some((sha(u.expose_secret().as_bytes()), sha(p.expose_secret().as_bytes()))), None),
            _ => (None, None),
        },
        Some(InboundAuth::HmacSha256 { secret, .. }) => (None, creds.get(secret).cloned()),
        None => (None, None),
    };
    let v = Arc::new(Verifier { basic, hmac_secret, row });
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

/// Whether `signature` is base64(HMAC-SHA256(body, secret)), compared in constant time.
fn hmac_matches(secret: Option<&SecretString>, signature: Option<&str>, body: &[u8]) -> bool {
    let (Some(secret), Some(sig)) = (secret, signature) else { return false };
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig.trim()) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else { return false };
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&sig).is_ok()
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

/// Where a push holds a NUL, as a refusal's reason (None: nowhere).
fn nul_reason(v: &Value) -> Option<String> {
    let at = extract::find_nul(v)?;
    Some(match (at.in_key, at.field.as_str()) {
        (true, "body") => "field names must not contain the NUL character (U+0000)".to_owned(),
        (_, field) => format!("{field}: {}", at.message()),
    })
}

/// Stands in for a connection's credentials when the id is unknown.
fn dummy_pair() -> &'static ([u8; 32], [u8; 32]) {
    static DUMMY: std::sync::OnceLock<([u8; 32], [u8; 32])> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| (sha(random_token(16).as_bytes()), sha(random_token(32).as_bytes())))
}

/// One carrier's pushes.
#[derive(Clone, Copy)]
struct Receiver {
    carrier: &'static Carrier,
    inbound: &'static Inbound,
}

impl Receiver {
    fn acknowledges(self) -> bool {
        matches!(self.inbound.replies, Replies::Acknowledgement(_))
    }

    /// The answer to a push; `pushed` is the body as JSON (`Null` when it is not).
    fn reply(self, reply: Reply<'_>, pushed: &Value) -> Response {
        let status = match reply {
            Reply::Accepted(_) => StatusCode::OK,
            Reply::Refused(_) => StatusCode::BAD_REQUEST,
            Reply::Unauthorized => StatusCode::UNAUTHORIZED,
            Reply::Throttled => StatusCode::TOO_MANY_REQUESTS,
            Reply::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Reply::Failed => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut resp = match (self.inbound.replies, reply) {
            (Replies::Acknowledgement(ack), _) => (status, axum::Json(ack(&reply, pushed))).into_response(),
            (Replies::Problem(accepted), Reply::Accepted(outcome)) => axum::Json(accepted(outcome)).into_response(),
            (Replies::Problem(_), _) => self.problem(status, &reply).into_response(),
        };
        if let (Reply::Unauthorized, InboundAuth::Basic { .. }) = (reply, self.inbound.auth) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"shipgate inbound\""));
        }
        resp
    }

    /// A refusal in the gateway's words (carriers answered with problems).
    fn problem(self, status: StatusCode, reply: &Reply<'_>) -> ApiError {
        let basic = matches!(self.inbound.auth, InboundAuth::Basic { .. });
        match (reply, self.inbound.auth) {
            (Reply::Unauthorized, InboundAuth::HmacSha256 { header, .. }) => ApiError::client(
                status,
                "invalid_signature",
                "Invalid webhook signature",
                format!("{header} is missing or does not match the body"),
            ),
            (Reply::Unauthorized, _) => {
                ApiError::client(status, "unauthorized", "Authentication required", "missing or wrong credentials")
            }
            (Reply::Throttled, _) if basic => ApiError::client(
                status,
                "rate_limited",
                "Too many failed authentications",
                "too many failed authentications from this address; retry later with valid credentials",
            ),
            (Reply::Throttled, _) => ApiError::client(
                status,
                "rate_limited",
                "Too many failed signatures",
                "too many failed signature checks from this address; retry later with a valid signature",
            ),
            (Reply::Refused(reason), _) => ApiError::field("body", *reason),
            (Reply::Unavailable, _) => ApiError::DatabaseUnavailable,
            (Reply::Accepted(_) | Reply::Failed, _) => ApiError::Internal(anyhow::anyhow!("inbound push not stored")),
        }
    }

    /// A body the carrier's parser refused; nothing is stored.
    fn refused(self, refusal: Refusal, pushed: &Value) -> Response {
        match (self.acknowledges(), refusal) {
            (true, Refusal::Reason(reason)) => self.reply(Reply::Refused(&reason), pushed),
            (true, Refusal::Json { path, error }) => self.reply(Reply::Refused(&format!("{path}: {error}")), pushed),
            (false, Refusal::Reason(reason)) => ApiError::field("body", reason).into_response(),
            (false, Refusal::Json { path, error }) => {
                ApiError::validation(vec![extract::field_error(&path, &error, "body")]).into_response()
            }
        }
    }

    /// Never an acceptance for anything not committed.
    fn store_failed(self, e: sqlx::Error, pushed: &Value) -> Response {
        if !self.acknowledges() {
            return ApiError::from(e).into_response();
        }
        if database_unavailable(&e) {
            return with_retry_after(self.reply(Reply::Unavailable, pushed), 5);
        }
        tracing::error!(error = %e, carrier = self.carrier.slug, "inbound push could not be stored");
        self.reply(Reply::Failed, pushed)
    }
}

/// Receive one push for `connection_id` (see the module doc). A carrier that reads our
/// answers gets its acknowledgement for everything, refusals included; the others get
/// the gateway's problems.
async fn receive(rx: Receiver, state: AppState, connection_id: String, req: Request) -> Response {
    if let Err(e) = extract::check_path_text("connection_id", &connection_id) {
        if rx.acknowledges() {
            let reason = format!("connection_id {}", extract::NUL_MESSAGE);
            return rx.reply(Reply::Refused(&reason), &Value::Null);
        }
        return e.into_response();
    }
    let ip = client_ip(req.extensions(), req.headers(), &state.config.trusted_proxies);
    let headers = req.headers().clone();
    let body = match read_body(req, rx.inbound.body_limit).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    // A carrier that reads our answers is echoed its push, whatever becomes of it.
    let pushed = if rx.acknowledges() { serde_json::from_slice::<Value>(&body) } else { Ok(Value::Null) };
    let echo = pushed.as_ref().unwrap_or(&Value::Null);
    let verifier = match verifier(&state, &connection_id).await {
        Ok(v) => v,
        Err(e) => return rx.store_failed(e, echo),
    };
    let known = verifier.is_some();
    let verifier = verifier.filter(|v| v.row.carrier == rx.carrier.slug);
    let authentic = match rx.inbound.auth {
        InboundAuth::Basic { .. } => {
            // Compared in full and in constant time (no early exit on the user), against
            // a dummy pair when the connection is unknown so that path costs the same.
            let expected = verifier.as_ref().and_then(|v| v.basic).unwrap_or_else(|| *dummy_pair());
            let (gu, gp) = basic_credentials(&headers).unwrap_or_default();
            let matches = bool::from(sha(gu.as_bytes()).ct_eq(&expected.0) & sha(gp.as_bytes()).ct_eq(&expected.1));
            matches && verifier.as_ref().is_some_and(|v| v.basic.is_some())
        }
        InboundAuth::HmacSha256 { header, .. } => {
            let signature = headers.get(header).and_then(|v| v.to_str().ok());
            verifier.as_ref().is_some_and(|v| hmac_matches(v.hmac_secret.as_ref(), signature, &body))
        }
    };
    let Some(v) = verifier.filter(|_| authentic) else {
        // Counted only against a connection that exists; an unknown id keeps nothing.
        if known && let Some(secs) = state.inbound.note_failure(&connection_id, ip) {
            return with_retry_after(rx.reply(Reply::Throttled, echo), secs);
        }
        return rx.reply(Reply::Unauthorized, echo);
    };
    // The body as JSON: an object without a NUL anywhere, keys included (Postgres
    // refuses U+0000, so a NUL would fail the insert and be answered "retry" forever).
    let raw = if rx.acknowledges() {
        let raw = match pushed {
            Ok(v) => v,
            Err(e) => return rx.reply(Reply::Refused(&format!("body is not valid JSON: {e}")), &Value::Null),
        };
        if let Some(reason) = nul_reason(&raw) {
            return rx.reply(Reply::Refused(&reason), &raw);
        }
        raw
    } else {
        match extract::parse_json::<Value>(&body) {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        }
    };
    let push = match (rx.inbound.parse)(&raw) {
        Ok(p) => p,
        Err(refusal) => return rx.refused(refusal, &raw),
    };
    let stored = match &push {
        Push::Scan(scan) => svc::ingest_scan(&state, &v.row, scan, &raw).await,
        Push::Tracking(update) => svc::ingest_tracking(&state, &v.row, update, &raw).await,
    };
    match stored {
        Ok(outcome) => rx.reply(Reply::Accepted(&outcome), &raw),
        Err(e) => rx.store_failed(e, &raw),
    }
}

/// Where a carrier pushes to.
fn inbound_path(slug: &str) -> String {
    format!("/v1/inbound/{slug}/{{connection_id}}")
}

/// The inbound URL of a connection: `public_base_url` + path when configured, else the
/// path alone. None for a carrier that does not push.
pub fn inbound_url(state: &AppState, carrier: &str, connection_id: &str) -> Option<String> {
    let carrier = carriers::get(carrier).filter(|c| c.inbound.is_some())?;
    let path = format!("/v1/inbound/{}/{connection_id}", carrier.slug);
    Some(match &state.config.public_base_url {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => path,
    })
}

/// The security scheme a carrier's pushes are documented with, and its name.
fn security_scheme(carrier: &Carrier, auth: InboundAuth) -> (String, SecurityScheme) {
    let slug = carrier.slug;
    let only = format!("Only for `POST {}`", inbound_path(slug));
    match auth {
        InboundAuth::Basic { .. } => {
            let mut basic = Http::new(HttpAuthScheme::Basic);
            let shown = if carrier.generate_credentials.is_some() { " (shown once at creation)" } else { "" };
            basic.description = Some(format!("{only}: the {slug} connection's inbound user and password{shown}."));
            (format!("inbound_{slug}_basic"), SecurityScheme::Http(basic))
        }
        InboundAuth::HmacSha256 { header, secret } => (
            format!("inbound_{slug}_hmac"),
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                header.to_owned(),
                format!("{only}: base64(HMAC-SHA256(raw body, the connection's {secret}))."),
            ))),
        ),
    }
}

/// A carrier's push operation as the carrier documents it, at the path the gateway
/// serves it, tagged `inbound` and secured by its scheme.
fn document(carrier: &Carrier, inbound: &Inbound) -> utoipa::openapi::OpenApi {
    let mut doc = (inbound.openapi)();
    let (scheme_name, scheme) = security_scheme(carrier, inbound.auth);
    let items = std::mem::take(&mut doc.paths.paths);
    for (_, mut item) in items {
        if let Some(op) = item.post.as_mut() {
            op.tags = Some(vec!["inbound".to_owned()]);
            op.security = Some(vec![SecurityRequirement::new(scheme_name.clone(), Vec::<String>::new())]);
        }
        doc.paths.paths.insert(inbound_path(carrier.slug), item);
    }
    doc.components.get_or_insert_with(Default::default).add_security_scheme(scheme_name, scheme);
    doc
}

pub fn router() -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new();
    for carrier in carriers::all() {
        let Some(inbound) = carrier.inbound else { continue };
        let rx = Receiver { carrier, inbound };
        let handler = move |State(state): State<AppState>, Path(connection_id): Path<String>, req: Request| {
            receive(rx, state, connection_id, req)
        };
        router = router.merge(
            OpenApiRouter::with_openapi(document(carrier, inbound)).route(&inbound_path(carrier.slug), post(handler)),
        );
    }
    // The handler reads the body itself under the carrier's (tighter) limit.
    router.layer(DefaultBodyLimit::disable())
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
    fn every_pushing_carrier_is_served_and_documented_where_its_connections_say() {
        let doc = router().split_for_parts().1;
        let pushing: Vec<&Carrier> = carriers::all().iter().copied().filter(|c| c.inbound.is_some()).collect();
        assert!(!pushing.is_empty());
        for c in pushing {
            let path = inbound_path(c.slug);
            let op = doc.paths.paths.get(&path).and_then(|i| i.post.as_ref());
            let op = op.unwrap_or_else(|| panic!("{path} is documented"));
            assert_eq!(op.tags.as_deref(), Some(&["inbound".to_owned()][..]));
            let security = serde_json::to_value(&op.security).expect("json");
            let (name, _) = security_scheme(c, c.inbound.map(|i| i.auth).expect("inbound"));
            assert_eq!(security, serde_json::json!([{ name.clone(): [] }]), "{path}");
            let schemes = doc.components.as_ref().map(|c| &c.security_schemes);
            assert!(schemes.is_some_and(|s| s.contains_key(&name)), "{name} is defined");
            assert!(op.operation_id.is_some() && op.summary.is_some(), "{path}");
        }
    }

    #[test]
    fn a_nul_is_located_for_the_acknowledgement() {
        assert_eq!(
            nul_reason(&serde_json::json!({"awb": "a\u{0}"})).as_deref(),
            Some("awb: must not contain the NUL character (U+0000)")
        );
        assert_eq!(
            nul_reason(&serde_json::json!({"a\u{0}": 1})).as_deref(),
            Some("field names must not contain the NUL character (U+0000)")
        );
        assert_eq!(nul_reason(&serde_json::json!({"awb": "a"})), None);
    }
}
