//! Inbound carrier pushes, authenticated by the connection, not by an API key. Every
//! pushing carrier (`service::inbound::receivers`) is served at
//! `POST /v1/inbound/<slug>/{connection_id}` by one handler, [`receive`], and documented
//! from its descriptor: the operation its folder writes, plus the tag and the security
//! scheme its `InboundAuth` implies. The handler reads the body under the carrier's
//! limit, has the service layer judge the credentials and store the push, and answers
//! the way the carrier wants to be answered ([`Replies`]): with its acknowledgement
//! for everything, or with the gateway's problems. A failing (connection, address) past
//! the failure limit is answered 429 (see `service::inbound`).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use super::auth::{client_ip, with_retry_after};
use crate::app::AppState;
use crate::error::ApiError;
use crate::http::extract;
use crate::service;
use crate::service::inbound::{
    Authenticated, InboundAuth, Presented, Received, Receiver, Refusal, Replies, Reply, inbound_path, receivers,
};

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

async fn read_body(req: Request, limit: usize) -> Result<Bytes, Response> {
    axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| ApiError::PayloadTooLarge(limit).into_response())
}

/// Where a push holds a NUL, as a refusal's reason (None: nowhere).
fn nul_reason(v: &Value) -> Option<String> {
    let at = extract::find_nul(v)?;
    Some(match (at.in_key, at.field.as_str()) {
        (true, "body") => "field names must not contain the NUL character (U+0000)".to_owned(),
        (_, field) => format!("{field}: {}", at.message()),
    })
}

/// The answer to a push; `pushed` is the body as JSON (`Null` when it is not).
fn reply(rx: Receiver, reply: Reply<'_>, pushed: &Value) -> Response {
    let status = match reply {
        Reply::Accepted(_) => StatusCode::OK,
        Reply::Refused(_) => StatusCode::BAD_REQUEST,
        Reply::Unauthorized => StatusCode::UNAUTHORIZED,
        Reply::Throttled => StatusCode::TOO_MANY_REQUESTS,
        Reply::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Reply::Failed => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut resp = match (rx.replies(), reply) {
        (Replies::Acknowledgement(ack), _) => (status, axum::Json(ack(&reply, pushed))).into_response(),
        (Replies::Problem(accepted), Reply::Accepted(outcome)) => axum::Json(accepted(outcome)).into_response(),
        (Replies::Problem(_), _) => problem(rx, status, &reply).into_response(),
    };
    if let (Reply::Unauthorized, InboundAuth::Basic { .. }) = (reply, rx.auth()) {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"shipgate inbound\""));
    }
    resp
}

/// A refusal in the gateway's words (carriers answered with problems).
fn problem(rx: Receiver, status: StatusCode, reply: &Reply<'_>) -> ApiError {
    let basic = matches!(rx.auth(), InboundAuth::Basic { .. });
    match (reply, rx.auth()) {
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
fn refused(rx: Receiver, refusal: Refusal, pushed: &Value) -> Response {
    match (rx.acknowledges(), refusal) {
        (true, Refusal::Reason(reason)) => reply(rx, Reply::Refused(&reason), pushed),
        (true, Refusal::Json { path, error }) => reply(rx, Reply::Refused(&format!("{path}: {error}")), pushed),
        (false, Refusal::Reason(reason)) => ApiError::field("body", reason).into_response(),
        (false, Refusal::Json { path, error }) => {
            ApiError::validation(vec![extract::field_error(&path, &error, "body")]).into_response()
        }
    }
}

/// Never an acceptance for anything not committed.
fn store_failed(rx: Receiver, e: service::Error, pushed: &Value) -> Response {
    if !rx.acknowledges() {
        return ApiError::from(e).into_response();
    }
    if e.is_unavailable() {
        return with_retry_after(reply(rx, Reply::Unavailable, pushed), 5);
    }
    tracing::error!(error = %e, carrier = rx.slug(), "inbound push could not be stored");
    reply(rx, Reply::Failed, pushed)
}

/// Receive one push for `connection_id` (see the module doc). A carrier that reads our
/// answers gets its acknowledgement for everything, refusals included; the others get
/// the gateway's problems.
async fn receive(rx: Receiver, state: AppState, connection_id: String, req: Request) -> Response {
    if let Err(e) = extract::check_path_text("connection_id", &connection_id) {
        if rx.acknowledges() {
            let reason = format!("connection_id {}", extract::NUL_MESSAGE);
            return reply(rx, Reply::Refused(&reason), &Value::Null);
        }
        return e.into_response();
    }
    let ip = client_ip(req.extensions(), req.headers(), &state.config.trusted_proxies);
    let headers = req.headers().clone();
    let body = match read_body(req, rx.body_limit()).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    // A carrier that reads our answers is echoed its push, whatever becomes of it.
    let pushed = if rx.acknowledges() { serde_json::from_slice::<Value>(&body) } else { Ok(Value::Null) };
    let echo = pushed.as_ref().unwrap_or(&Value::Null);
    let presented = Presented {
        basic: basic_credentials(&headers),
        signature: rx.signature_header().and_then(|h| headers.get(h)).and_then(|v| v.to_str().ok()),
    };
    let sender = match rx.authenticate(&state, &connection_id, &presented, &body, ip).await {
        Ok(Authenticated::Sender(sender)) => sender,
        Ok(Authenticated::Refused) => return reply(rx, Reply::Unauthorized, echo),
        Ok(Authenticated::Throttled(secs)) => return with_retry_after(reply(rx, Reply::Throttled, echo), secs),
        Err(e) => return store_failed(rx, e, echo),
    };
    // The body as JSON: an object without a NUL anywhere, keys included (Postgres
    // refuses U+0000, so a NUL would fail the insert and be answered "retry" forever).
    let raw = if rx.acknowledges() {
        let raw = match pushed {
            Ok(v) => v,
            Err(e) => return reply(rx, Reply::Refused(&format!("body is not valid JSON: {e}")), &Value::Null),
        };
        if let Some(reason) = nul_reason(&raw) {
            return reply(rx, Reply::Refused(&reason), &raw);
        }
        raw
    } else {
        match extract::parse_json::<Value>(&body) {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        }
    };
    match service::inbound::ingest(&state, rx, &sender, &raw).await {
        Ok(Received::Stored(outcome)) => reply(rx, Reply::Accepted(&outcome), &raw),
        Ok(Received::Refused(refusal)) => refused(rx, refusal, &raw),
        Err(e) => store_failed(rx, e, &raw),
    }
}

/// The security scheme a carrier's pushes are documented with, and its name.
fn security_scheme(rx: Receiver) -> (String, SecurityScheme) {
    let slug = rx.slug();
    let only = format!("Only for `POST {}`", inbound_path(slug));
    match rx.auth() {
        InboundAuth::Basic { .. } => {
            let mut basic = Http::new(HttpAuthScheme::Basic);
            let shown = if rx.generates_credentials() { " (shown once at creation)" } else { "" };
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
fn document(rx: Receiver) -> utoipa::openapi::OpenApi {
    let mut doc = rx.document();
    let (scheme_name, scheme) = security_scheme(rx);
    let items = std::mem::take(&mut doc.paths.paths);
    for (_, mut item) in items {
        if let Some(op) = item.post.as_mut() {
            op.tags = Some(vec!["inbound".to_owned()]);
            op.security = Some(vec![SecurityRequirement::new(scheme_name.clone(), Vec::<String>::new())]);
        }
        doc.paths.paths.insert(inbound_path(rx.slug()), item);
    }
    doc.components.get_or_insert_with(Default::default).add_security_scheme(scheme_name, scheme);
    doc
}

pub fn router() -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new();
    for rx in receivers() {
        let handler = move |State(state): State<AppState>, Path(connection_id): Path<String>, req: Request| {
            receive(rx, state, connection_id, req)
        };
        router = router.merge(OpenApiRouter::with_openapi(document(rx)).route(&inbound_path(rx.slug()), post(handler)));
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
        let pushing = receivers();
        assert!(!pushing.is_empty());
        for rx in pushing {
            let path = inbound_path(rx.slug());
            let op = doc.paths.paths.get(&path).and_then(|i| i.post.as_ref());
            let op = op.unwrap_or_else(|| panic!("{path} is documented"));
            assert_eq!(op.tags.as_deref(), Some(&["inbound".to_owned()][..]));
            let security = serde_json::to_value(&op.security).expect("json");
            let (name, _) = security_scheme(rx);
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
