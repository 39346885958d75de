//! The carrier API: token exchange, store shipment, shipment details, shipment overview and
//! the CMR document the details link to. Every call is recorded, then waits the configured
//! latency, then serves a queued fault if one matches, then is checked in the order a web
//! framework would: authentication, content type, JSON syntax, body validation.

// The checks below return the answer to give as their error, so a handler can stop with `?`-
// like early returns; boxing each Response would only add noise on paths that run once per call.
#![allow(clippy::result_large_err)]

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{Value, json};

use super::state::{Status, Stored};
use super::{EcmrSim, RecordedRequest, SimFault, pdf, validate};

pub(super) fn routes(sim: EcmrSim) -> Router {
    Router::new()
        .route("/api/token", post(token))
        .route("/api/shipments", post(store).get(list))
        .route("/api/shipments/{tracking_number}", get(details))
        .route("/api/shipments/{tracking_number}/documents/cmr.pdf", get(document))
        .with_state(sim)
}

pub(super) fn error(status: StatusCode, error: impl Into<String>, field: Option<&str>) -> Response {
    (status, Json(json!({"error": error.into(), "field": field}))).into_response()
}

pub(super) async fn not_found(uri: Uri) -> Response {
    error(StatusCode::NOT_FOUND, format!("no route for {}", uri.path()), None)
}

pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {}", uri.path()), None)
}

/// A response whose body fails at once: the server closes the connection without an answer.
pub(crate) fn disconnect() -> Response {
    let stream =
        futures::stream::once(async { Err::<Bytes, std::io::Error>(std::io::Error::other("simulated disconnect")) });
    Response::new(Body::from_stream(stream))
}

/// What a call must still do after its fault was served.
struct Call {
    lose_answer: bool,
}

impl Call {
    fn finish(self, response: Response) -> Response {
        if self.lose_answer { disconnect() } else { response }
    }
}

/// Records the call, waits the latency and serves the next matching fault.
async fn enter(
    sim: &EcmrSim,
    op: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Value,
) -> Result<Call, Response> {
    let mut auth_headers = Vec::new();
    if headers.contains_key(header::AUTHORIZATION) {
        auth_headers.push("authorization".to_owned());
    }
    sim.record(RecordedRequest {
        at: Utc::now(),
        method: method.to_string(),
        op: op.to_owned(),
        path: uri.path().to_owned(),
        auth_headers,
        body,
    });
    let latency = sim.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = sim.lock().take_fault(op);
    match fault {
        None => Ok(Call { lose_answer: false }),
        Some(SimFault::Http(status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Err((status, Json(body)).into_response())
        }
        Some(SimFault::Delay(d)) => {
            tokio::time::sleep(d).await;
            Ok(Call { lose_answer: false })
        }
        Some(SimFault::Disconnect) => Err(disconnect()),
        Some(SimFault::DisconnectAfterCommit) => Ok(Call { lose_answer: true }),
    }
}

/// The body as JSON, or the 415/400 answer a JSON API gives.
fn json_body(headers: &HeaderMap, bytes: &Bytes) -> Result<Value, Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json", None));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("the body is not valid JSON: {e}"), None))
}

fn unauthorized(sim: &EcmrSim, message: &str, invalid_token: bool) -> Response {
    sim.lock().stats.unauthorized += 1;
    let mut r = error(StatusCode::UNAUTHORIZED, message, Some("Authorization"));
    // RFC 6750 section 3: a bearer-protected resource names the scheme it wants.
    let challenge = if invalid_token {
        format!("Bearer realm=\"eCMR.services\", error=\"invalid_token\", error_description=\"{message}\"")
    } else {
        "Bearer realm=\"eCMR.services\"".to_owned()
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// The organisation whose valid access token the call carries.
fn authenticate(sim: &EcmrSim, headers: &HeaderMap) -> Result<String, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(sim, "an access token is required: Authorization: Bearer <access_token>", false));
    };
    let value = value.to_str().unwrap_or("");
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
        _ => return Err(unauthorized(sim, "the Authorization header must be Bearer <access_token>", true)),
    };
    let mut st = sim.lock();
    match st.tokens.get(token) {
        None => {
            drop(st);
            Err(unauthorized(sim, "the access token is not valid", true))
        }
        Some(t) if t.expires_at <= Instant::now() => {
            st.tokens.remove(token);
            drop(st);
            Err(unauthorized(sim, "the access token has expired", true))
        }
        Some(t) => Ok(t.organization_id.clone()),
    }
}

async fn token(State(sim): State<EcmrSim>, method: Method, uri: Uri, headers: HeaderMap, bytes: Bytes) -> Response {
    let parsed = json_body(&headers, &bytes);
    // The API token is a secret: the log keeps that a code was sent, not its value.
    let mut logged = parsed.as_ref().cloned().unwrap_or(Value::Null);
    if let Some(code) = logged.get_mut("code").filter(|c| !c.is_null()) {
        *code = json!("<redacted>");
    }
    let call = match enter(&sim, "token", &method, &uri, &headers, logged).await {
        Ok(call) => call,
        Err(r) => return r,
    };
    let body = match parsed {
        Ok(b) => b,
        Err(r) => return call.finish(r),
    };
    let field = |name: &str| match body.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => {
            Err(error(StatusCode::UNPROCESSABLE_ENTITY, format!("{name} is required and must be a string"), Some(name)))
        }
    };
    let (client_id, code) = match (field("client_id"), field("code")) {
        (Ok(c), Ok(k)) => (c, k),
        (Err(r), _) | (_, Err(r)) => return call.finish(r),
    };
    let config = sim.config();
    let org = config.organizations.iter().find(|o| o.organization_id == client_id && o.api_token == code);
    let Some(org) = org else {
        sim.lock().stats.token_refusals += 1;
        return call.finish(error(StatusCode::UNAUTHORIZED, "unknown organisation or API token", Some("code")));
    };
    if org.api_token_expires_at <= Utc::now() {
        sim.lock().stats.token_refusals += 1;
        let msg = format!("the API token expired at {}", super::state::rfc3339(org.api_token_expires_at));
        return call.finish(error(StatusCode::UNAUTHORIZED, msg, Some("code")));
    }
    let ttl = config.access_token_ttl;
    let expires_in = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    let access_token = {
        let mut st = sim.lock();
        st.stats.token_exchanges += 1;
        st.issue_token(&org.organization_id, Instant::now() + ttl)
    };
    let mut r =
        Json(json!({"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in})).into_response();
    // RFC 6749 section 5.1: token answers are not cached.
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    call.finish(r)
}

async fn store(State(sim): State<EcmrSim>, method: Method, uri: Uri, headers: HeaderMap, bytes: Bytes) -> Response {
    let parsed = json_body(&headers, &bytes);
    let logged = parsed.as_ref().cloned().unwrap_or(Value::Null);
    let call = match enter(&sim, "store_shipment", &method, &uri, &headers, logged).await {
        Ok(call) => call,
        Err(r) => return r,
    };
    let org = match authenticate(&sim, &headers) {
        Ok(org) => org,
        Err(r) => return call.finish(r),
    };
    let body = match parsed {
        Ok(b) => b,
        Err(r) => return call.finish(r),
    };
    let (reference, data) = match validate::store_body(&body) {
        Ok(v) => v,
        Err(e) => return call.finish(error(StatusCode::UNPROCESSABLE_ENTITY, e.error, Some(&e.field))),
    };
    let stored = sim.lock().store(&org, reference.clone(), data);
    let r = match stored {
        Ok(Stored::Created(tn)) => (
            StatusCode::CREATED,
            Json(json!({"tracking_number": tn, "reference": reference, "status": Status::Created.as_str()})),
        )
            .into_response(),
        Ok(Stored::Updated(tn, status)) => {
            Json(json!({"tracking_number": tn, "reference": reference, "status": status.as_str()})).into_response()
        }
        Err(status) => error(
            StatusCode::CONFLICT,
            format!("the shipment with reference {reference} is {} and can no longer be changed", status.as_str()),
            Some("shipment.reference"),
        ),
    };
    call.finish(r)
}

/// `scheme://host/mount`: where this router is reachable from the caller's point of view.
fn external_base(headers: &HeaderMap, original: &Uri, uri: &Uri) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let scheme = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http");
    let mount = original.path().strip_suffix(uri.path()).unwrap_or("");
    format!("{scheme}://{host}{mount}")
}

async fn details(
    State(sim): State<EcmrSim>,
    Path(tracking_number): Path<String>,
    OriginalUri(original): OriginalUri,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let call = match enter(&sim, "get_shipment", &method, &uri, &headers, Value::Null).await {
        Ok(call) => call,
        Err(r) => return r,
    };
    let org = match authenticate(&sim, &headers) {
        Ok(org) => org,
        Err(r) => return call.finish(r),
    };
    let rendered = {
        let st = sim.lock();
        st.get(&tracking_number).filter(|(o, _)| *o == org).map(|(_, s)| {
            let url = format!(
                "{}/api/shipments/{}/documents/cmr.pdf",
                external_base(&headers, &original, &uri),
                s.tracking_number
            );
            json!({
                "tracking_number": s.tracking_number,
                "reference": s.reference,
                "status": s.status.as_str(),
                "history": s.history.iter().map(|h| h.render()).collect::<Vec<_>>(),
                "documents": [{"type": "cmr", "url": url}],
            })
        })
    };
    call.finish(match rendered {
        Some(v) => Json(v).into_response(),
        None => shipment_not_found(&tracking_number),
    })
}

fn shipment_not_found(tracking_number: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("shipment {tracking_number} not found"), Some("tracking_number"))
}

fn paging_param(params: &[(String, String)], name: &str, default: u64, max: u64) -> Result<u64, Response> {
    match params.iter().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{name} must be a whole number from 1 to {max}"),
                Some(name),
            )),
        },
    }
}

async fn list(
    State(sim): State<EcmrSim>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let call = match enter(&sim, "list_shipments", &method, &uri, &headers, Value::Null).await {
        Ok(call) => call,
        Err(r) => return r,
    };
    let org = match authenticate(&sim, &headers) {
        Ok(org) => org,
        Err(r) => return call.finish(r),
    };
    let params = match query {
        Ok(Query(p)) => p,
        Err(e) => return call.finish(error(StatusCode::BAD_REQUEST, format!("bad query string: {e}"), None)),
    };
    let paging = paging_param(&params, "page", 1, 1_000_000_000)
        .and_then(|page| paging_param(&params, "per_page", 25, 100).map(|per| (page, per)));
    let (page, per_page) = match paging {
        Ok(p) => p,
        Err(r) => return call.finish(r),
    };
    let (shipments, total) = sim.lock().page(&org, page, per_page);
    call.finish(
        Json(json!({"shipments": shipments, "page": page, "per_page": per_page, "total": total})).into_response(),
    )
}

async fn document(
    State(sim): State<EcmrSim>,
    Path(tracking_number): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let call = match enter(&sim, "get_document", &method, &uri, &headers, Value::Null).await {
        Ok(call) => call,
        Err(r) => return r,
    };
    let org = match authenticate(&sim, &headers) {
        Ok(org) => org,
        Err(r) => return call.finish(r),
    };
    let pdf = {
        let st = sim.lock();
        st.get(&tracking_number).filter(|(o, _)| *o == org).map(|(_, s)| pdf::cmr(s))
    };
    let Some(pdf) = pdf else { return call.finish(shipment_not_found(&tracking_number)) };
    let disposition = format!("inline; filename=\"CMR-{tracking_number}.pdf\"");
    let mut r = pdf.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    call.finish(r)
}
