//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;

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
    let db_ok = tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(&state.db))
        .await
        .is_ok_and(|r| r.is_ok());
    // The worker goes round its loop at least every poll interval; a claim waits at most
    // the pool's acquire timeout (3 s) when the database is away.
    let workers = state.config.workers_enabled.then(|| {
        let beat = state.worker_heartbeat.load(std::sync::atomic::Ordering::Relaxed);
        let limit = 30_000 + 3 * state.config.jobs_poll_interval.as_millis() as i64;
        match beat {
            0 => "stopped",
            b if chrono::Utc::now().timestamp_millis() - b > limit => "stalled",
            _ => "ok",
        }
    });
    let database = Some(if db_ok { "ok" } else { "unreachable" });
    if db_ok && workers.is_none_or(|w| w == "ok") {
        (StatusCode::OK, Json(Health { status: "ok", database, workers }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable", database, workers }))
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
