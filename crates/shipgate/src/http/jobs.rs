//! `/v1/jobs`: the tenant's background jobs (pending bookings), above all the dead
//! letter: jobs that used up their attempts, with their last error, re-runnable.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AuthContext;
use super::extract::{PathId, Query};
use super::{decode_cursor, encode_cursor, page};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::store;
use crate::store::jobs::JobRow;

page!(JobPage, JobOut, "jobs, newest first");

#[derive(Debug, Serialize, ToSchema)]
pub struct JobOut {
    /// `job_<number>`
    #[schema(example = "job_42")]
    pub id: String,
    /// booking
    #[schema(example = "booking")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    /// queued | running | succeeded | dead
    #[schema(example = "dead")]
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    /// When it runs next (queued) or last became due.
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub updated_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<JobRow> for JobOut {
    fn from(r: JobRow) -> Self {
        JobOut {
            id: format!("job_{}", r.id),
            kind: r.kind,
            payload: r.payload.0,
            state: r.state,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_at: r.run_at,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        }
    }
}

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

fn parse_id(id: &str) -> Option<i64> {
    id.strip_prefix("job_").and_then(|n| n.parse::<i64>().ok()).filter(|n| *n > 0)
}

/// List jobs
///
/// The tenant's background jobs, newest first; `state=dead` is the dead letter.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", operation_id = "list_jobs",
    security(("api_key" = [])), params(JobListParams),
    responses((status = 200, body = JobPage, description = "One page of jobs")))]
async fn list_jobs(
    State(state): State<AppState>,
    auth: AuthContext,
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
    let before = match q.cursor.as_deref() {
        Some(c) => Some(
            parse_id(&decode_cursor(c)?)
                .ok_or_else(|| ApiError::query_field("cursor", "is not a cursor this API issued"))?,
        ),
        None => None,
    };
    let mut conn = state.db.acquire().await?;
    let mut rows = store::jobs::list(&mut conn, &auth.tenant_id, q.state.as_deref(), before, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| encode_cursor(&format!("job_{}", r.id))) } else { None };
    Ok(axum::Json(JobPage { data: rows.into_iter().map(JobOut::from).collect(), next_cursor }))
}

/// Read a job
///
/// The job with its state, attempts and last error.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", operation_id = "get_job",
    security(("api_key" = [])), params(("id" = String, Path, description = "Job id (job_<n>)")),
    responses((status = 200, body = JobOut, description = "The job")))]
async fn get_job(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<axum::Json<JobOut>> {
    let n = parse_id(&id).ok_or(ApiError::NotFound("job"))?;
    let mut conn = state.db.acquire().await?;
    let row = store::jobs::get(&mut conn, &auth.tenant_id, n).await?.ok_or(ApiError::NotFound("job"))?;
    Ok(axum::Json(row.into()))
}

/// Re-run a dead job
///
/// Queues a job from the dead letter again now, with a fresh set of attempts. 409 when
/// the job is not dead.
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", tag = "jobs", operation_id = "retry_job",
    security(("api_key" = [])), params(("id" = String, Path, description = "Job id (job_<n>)")),
    responses((status = 202, body = JobOut, description = "Queued again"),
        (status = 409, description = "The job is not in the dead letter (`job_not_dead`), or the Idempotency-Key is in flight")))]
async fn retry_job(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<(StatusCode, axum::Json<JobOut>)> {
    let n = parse_id(&id).ok_or(ApiError::NotFound("job"))?;
    let mut conn = state.db.acquire().await?;
    if let Some(row) = store::jobs::rerun_dead(&mut conn, &auth.tenant_id, n).await? {
        return Ok((StatusCode::ACCEPTED, axum::Json(row.into())));
    }
    let row = store::jobs::get(&mut conn, &auth.tenant_id, n).await?.ok_or(ApiError::NotFound("job"))?;
    Err(ApiError::client(
        StatusCode::CONFLICT,
        "job_not_dead",
        "Job not in the dead letter",
        format!("the job is {}; only dead jobs can be re-run", row.state),
    ))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_jobs)).routes(routes!(get_job)).routes(routes!(retry_job))
}
