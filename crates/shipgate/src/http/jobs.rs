//! `/v1/jobs`: the tenant's background jobs (pending bookings), above all the dead
//! letter: jobs that used up their attempts, with their last error, re-runnable.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{PathId, Query};
use super::{decode_cursor, encode_cursor, page};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::service::views::Job;
use crate::service::{Caller, PageRequest, jobs};

page!(JobPage, Job, "jobs, newest first");

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobListParams {
    /// queued | running | succeeded | dead
    pub state: Option<String>,
    /// Page size, 1-100 (default 20).
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// List jobs
///
/// The tenant's background jobs, newest first; `state=dead` is the dead letter.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", operation_id = "list_jobs",
    security(("api_key" = [])), params(JobListParams),
    responses((status = 200, body = JobPage, description = "One page of jobs")))]
async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<JobListParams>,
) -> ApiResult<axum::Json<JobPage>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::query_field("limit", "must be between 1 and 100"));
    }
    if let Some(s) = q.state.as_deref()
        && !["queued", "running", "succeeded", "dead"].contains(&s)
    {
        return Err(ApiError::query_field("state", "must be one of queued, running, succeeded, dead"));
    }
    let after = match q.cursor.as_deref() {
        Some(c) => Some(
            jobs::parse_id(&decode_cursor(c)?)
                .ok_or_else(|| ApiError::query_field("cursor", "is not a cursor this API issued"))?,
        ),
        None => None,
    };
    let page = jobs::list(&state, &caller, q.state.as_deref(), &PageRequest { limit, after }).await?;
    let next_cursor = page.next.map(|n| encode_cursor(&format!("job_{n}")));
    Ok(axum::Json(JobPage { data: page.items, next_cursor }))
}

/// Read a job
///
/// The job with its state, attempts and last error.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", operation_id = "get_job",
    security(("api_key" = [])), params(("id" = String, Path, description = "Job id (job_<n>)")),
    responses((status = 200, body = Job, description = "The job")))]
async fn get_job(State(state): State<AppState>, caller: Caller, PathId(id): PathId) -> ApiResult<axum::Json<Job>> {
    Ok(axum::Json(jobs::get(&state, &caller, &id).await?))
}

/// Re-run a dead job
///
/// Queues a job from the dead letter again now, with a fresh set of attempts. 409 when
/// the job is not dead.
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", tag = "jobs", operation_id = "retry_job",
    security(("api_key" = [])), params(("id" = String, Path, description = "Job id (job_<n>)")),
    responses((status = 202, body = Job, description = "Queued again"),
        (status = 409, description = "The job is not in the dead letter (`job_not_dead`), or the Idempotency-Key is in flight")))]
async fn retry_job(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    Ok((StatusCode::ACCEPTED, axum::Json(jobs::retry(&state, &caller, &id).await?)))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_jobs)).routes(routes!(get_job)).routes(routes!(retry_job))
}
