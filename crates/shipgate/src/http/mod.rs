//! The HTTP surface: one module per resource, each ending in `router()` (utoipa's
//! `OpenApiRouter`, so routes and the OpenAPI document cannot drift apart), plus the
//! cross-cutting layers: request id + span, metrics, auth, idempotency, body limit,
//! panic → problem.
//!
//! A handler parses the request into a service input (the extractors refuse what does
//! not parse, naming the field), calls one `service` function with the `Caller`, and
//! maps the answer: a view as JSON, or a `service::Error` through `error.rs`. This layer
//! names no module below the service layer (`tests/layers.rs`).

pub mod auth;
pub mod carriers;
pub mod connections;
pub mod estimates;
pub mod events;
pub mod extract;
pub mod flat;
pub mod idempotency;
pub mod inbound;
pub mod jobs;
pub mod json_out;
pub mod openapi;
pub mod ops;
pub mod quotes;
pub mod reconcile;
pub mod shipments;
pub mod status_mappings;
pub mod webhooks;
pub mod wire;

#[cfg(test)]
mod limits_tests;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument as _;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::app::AppState;
use crate::error::{ApiError, REQUEST_ID};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "shipgate",
        description = "One REST API for booking, quoting, tracking and cancelling shipments with many carriers.\n\n\
            Authenticate with `Authorization: Bearer sg_<env>_<id>_<secret>`. Errors are RFC 9457 \
            `application/problem+json` with a stable `code`. POST and PATCH honour `Idempotency-Key`."
    ),
    modifiers(&SecurityAddon),
    tags(
        (name = "carriers", description = "Carriers and what each can do"),
        (name = "connections", description = "A tenant's accounts with carriers"),
        (name = "shipments", description = "Book, register, track, update and cancel shipments"),
        (name = "quotes", description = "Price and time quotes"),
        (name = "jobs", description = "Background jobs (pending bookings) and the dead letter"),
        (name = "webhooks", description = "Outbound webhooks (Standard Webhooks signatures) and the event log"),
        (name = "status-mappings", description = "Carrier status codes → normalized status, and codes seen without one"),
        (name = "inbound", description = "Carrier pushes to the gateway (authenticated by the connection, not an API key)"),
        (name = "ops", description = "Health, readiness and metrics")
    ),
    components(schemas(crate::error::Problem))
)]
struct ApiDoc;

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("sg_<env>_<id>_<secret>".into());
        scheme.description = Some("API key created with `shipgate api-key create --tenant ID`.".into());
        // Each pushing carrier's scheme (`inbound_<slug>_basic` or `_hmac`) comes with its
        // operation, from the registry (`inbound::router`). Swagger UI's Authorize dialog
        // lists the schemes in name order: the API key, which every /v1 operation but the
        // inbound routes takes, sorts first.
        components.add_security_scheme("api_key", SecurityScheme::Http(scheme));
    }
}

/// Routes and the OpenAPI document, without state (so `shipgate openapi` needs no database).
fn parts() -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    let (v1, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(carriers::router())
        .merge(connections::router())
        .merge(reconcile::router())
        .merge(shipments::router())
        .merge(quotes::router())
        .merge(estimates::router())
        .merge(jobs::router())
        .merge(webhooks::router())
        .merge(events::router())
        .merge(status_mappings::router())
        .split_for_parts();
    // Inbound pushes authenticate with the connection's own credentials, not an API key.
    let (ops, ops_doc) = ops::router().merge(inbound::router()).split_for_parts();
    doc.merge(ops_doc);
    openapi::finish(&mut doc);
    (v1, ops, doc)
}

/// The OpenAPI 3.1 document (`shipgate openapi`, `/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().2
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let (v1, ops, doc) = parts();
    let body_limit = state.config.body_limit_bytes;
    let v1 = v1
        .layer(middleware::from_fn_with_state(state.clone(), idempotency::idempotency))
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_api_key));
    Router::new()
        .merge(v1)
        .merge(ops)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(middleware::from_fn(move |req, next| observe(req, next, body_limit)))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()))
        .with_state(state)
}

async fn fallback(req: Request) -> ApiError {
    ApiError::NoRoute(format!("{} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Request id (taken from `x-request-id` when sane, else new), a span keyed on the
/// matched route, access log line, and request metrics by route and status.
async fn observe(req: Request, next: Next, body_limit: usize) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %request_id, method = %method, route = %route, tenant_id = tracing::field::Empty);
    let answered = async move { as_problem(next.run(req).await, body_limit).await };
    let mut resp = REQUEST_ID.scope(request_id.clone(), answered.instrument(span.clone())).await;
    let status = resp.status();
    let elapsed = started.elapsed();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), ms = elapsed.as_secs_f64() * 1e3, "request failed");
        } else {
            tracing::info!(status = status.as_u16(), ms = elapsed.as_secs_f64() * 1e3, "request");
        }
    });
    let status_label = status.as_u16().to_string();
    metrics::counter!("shipgate_http_requests_total", "route" => route.clone(), "method" => method.to_string(), "status" => status_label)
        .increment(1);
    metrics::histogram!("shipgate_http_request_duration_seconds", "route" => route, "method" => method.to_string())
        .record(elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// An error answered without a JSON body (axum's plain-text rejections, an empty 4xx
/// or 5xx from a layer) becomes a problem like every other error; its text, if any,
/// is the detail. JSON answers (problems, Ecom Express acks) pass untouched.
async fn as_problem(resp: Response, body_limit: usize) -> Response {
    use axum::http::header;
    let status = resp.status();
    let is_json = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(b"application/json") || v.starts_with(b"application/problem+json")
    });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 1024).await.ok().map(|b| String::from_utf8_lossy(&b).trim().to_owned());
    let text = text.filter(|t| !t.is_empty());
    let detail = |default: &str| text.clone().unwrap_or_else(|| default.to_owned());
    let e = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(body_limit),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::NOT_FOUND => ApiError::client(status, "not_found", "Not found", detail("no such resource")),
        StatusCode::BAD_REQUEST => {
            ApiError::client(status, "bad_request", "Bad request", detail("the request could not be understood"))
        }
        s if s.is_server_error() => {
            tracing::error!(status = s.as_u16(), detail = ?text, "an error answered without a problem body");
            ApiError::client(
                s,
                "server_error",
                "Server error",
                "an unexpected error occurred; quote the request_id when reporting it",
            )
        }
        s => ApiError::client(s, "client_error", "Request refused", detail("the request was refused")),
    };
    let mut problem = e.into_response();
    *problem.status_mut() = status;
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().entry(name).or_insert_with(|| value.clone());
        }
    }
    problem
}

/// A cursor page `{data, next_cursor}` of `$item`, as its own named schema. Concrete
/// types rather than one generic `Page<T>`: utoipa copies a generic's item schema into
/// every page (generators then emit `PageShipmentOutDataItem` beside `ShipmentOut`),
/// while a concrete field references it.
macro_rules! page {
    ($name:ident, $item:ty, $what:literal) => {
        #[doc = concat!("One page of ", $what, ". Pass `next_cursor` as `cursor` to get the next page.")]
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub data: Vec<$item>,
            /// Opaque; pass as `cursor` to get the next page. Null on the last page.
            pub next_cursor: Option<String>,
        }
    };
}
pub(crate) use page;

/// Opaque cursor: base64url of the last id on the page.
pub fn encode_cursor(id: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

pub fn decode_cursor(c: &str) -> Result<String, ApiError> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .ok_or_else(|| ApiError::query_field("cursor", "is not a cursor this API issued"))
}
