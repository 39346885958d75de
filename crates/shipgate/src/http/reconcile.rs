//! `/v1/connections/{id}/reconcile` and `/reconciliations`: compare a carrier's own list
//! of the connection's shipments with ours, as a durable job, and read its reports.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Json, PathId, Query};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::service::views::Reconciliation;
use crate::service::{Caller, reconcile};

/// What to do with shipments only the carrier has.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileIn {
    /// Import carrier-only shipments as shipments (history actor `reconcile`); default
    /// false: only report them.
    #[serde(default)]
    pub import: bool,
}

/// A reconciliation started (or the one already running on the connection).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconcileStarted {
    /// Follow its progress and report at `GET /v1/jobs/{job_id}`.
    #[schema(example = "job_42")]
    pub job_id: String,
    pub reconciliation: Reconciliation,
}

/// A connection's reconciliations, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationList {
    pub data: Vec<Reconciliation>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReconciliationParams {
    /// How many, 1-100 (default 20).
    pub limit: Option<i64>,
}

/// Reconcile a connection with its carrier
///
/// Starts a durable job that walks the carrier's own list of the connection's shipments
/// page by page (eCMR's shipment overview, AfterShip's tracking list), paced by the
/// connection's rate limit, and reports shipments only the carrier has (imported when
/// `import` is true), status disagreements (fixed forward only) and active shipments the
/// carrier no longer knows (reported, never deleted). A restart resumes at the next page.
/// While a run is going, its job is answered again. 422 `capability_not_supported` for a
/// carrier without such a list.
#[utoipa::path(post, path = "/v1/connections/{id}/reconcile", tag = "connections", operation_id = "reconcile_connection",
    security(("api_key" = [])), params(("id" = String, Path, description = "Connection id")),
    request_body = ReconcileIn,
    responses((status = 202, body = ReconcileStarted, description = "Started (or already running): follow the job"),
        (status = 422, description = "The carrier has no list to reconcile with (`capability_not_supported`), or a field is invalid")))]
async fn reconcile_connection(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(body): Json<ReconcileIn>,
) -> ApiResult<(StatusCode, axum::Json<ReconcileStarted>)> {
    let started = reconcile::start(&state, &caller, &id, body.import).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ReconcileStarted { job_id: started.job_id, reconciliation: started.reconciliation }),
    ))
}

/// List a connection's reconciliations
///
/// Newest first: the first is the connection's last report.
#[utoipa::path(get, path = "/v1/connections/{id}/reconciliations", tag = "connections",
    operation_id = "list_connection_reconciliations", security(("api_key" = [])),
    params(("id" = String, Path, description = "Connection id"), ReconciliationParams),
    responses((status = 200, body = ReconciliationList, description = "The reconciliations, newest first"),
        (status = 422, description = "A parameter is invalid (`validation_failed`, naming it)")))]
async fn list_reconciliations(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Query(q): Query<ReconciliationParams>,
) -> ApiResult<axum::Json<ReconciliationList>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::query_field("limit", "must be between 1 and 100"));
    }
    Ok(axum::Json(ReconciliationList { data: reconcile::list(&state, &caller, &id, limit).await? }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(reconcile_connection)).routes(routes!(list_reconciliations))
}
