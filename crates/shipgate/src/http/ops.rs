//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::service;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
    /// ok | stalled | stopped; absent when this instance runs no workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<&'static str>,
}

/// Liveness
///
/// The process answers; nothing else is checked.
#[utoipa::path(get, path = "/healthz", tag = "ops", operation_id = "healthz",
    responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", database: None, workers: None })
}

/// Readiness
///
/// Ready when the database answers within 2 s and, where this instance runs workers,
/// they are going round their loop.
#[utoipa::path(get, path = "/readyz", tag = "ops", operation_id = "readyz",
    responses((status = 200, description = "Ready", body = Health), (status = 503, description = "Database unreachable or workers not running", body = Health)))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let r = service::ops::readiness(&state).await;
    let database = Some(if r.database { "ok" } else { "unreachable" });
    if r.ready() {
        (StatusCode::OK, Json(Health { status: "ok", database, workers: r.workers }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable", database, workers: r.workers }))
    }
}

/// Prometheus metrics
///
/// `shipgate_http_requests_total{route,method,status}`,
/// `shipgate_http_request_duration_seconds`, `shipgate_carrier_calls_total{carrier,operation,outcome}`,
/// `shipgate_carrier_call_duration_seconds`.
#[utoipa::path(get, path = "/metrics", tag = "ops", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics_text))
}
