//! The tenant's background jobs (pending bookings), above all the dead letter: jobs
//! that used up their attempts, with their last error, re-runnable.

use chrono::Utc;
use serde_json::Value;

use crate::app::AppState;
use crate::domain::job;
use crate::service::views::Job;
use crate::service::{Caller, Error, Page, PageRequest, Refusal, Result};
use crate::store;
use crate::store::jobs::NewJob;

/// A job id (`job_<n>`) as its number; None for anything else.
pub fn parse_id(id: &str) -> Option<i64> {
    id.strip_prefix("job_").and_then(|n| n.parse::<i64>().ok()).filter(|n| *n > 0)
}

/// The tenant's jobs, newest first, in one state (`queued`, `running`, `succeeded`,
/// `dead`) or all; the key is the last job's number.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    job_state: Option<&str>,
    page: &PageRequest<i64>,
) -> Result<Page<Job, i64>> {
    let mut conn = state.db.acquire().await?;
    let rows = store::jobs::list(&mut conn, &caller.tenant_id, job_state, page.after, page.limit + 1).await?;
    Ok(Page::of(rows, page.limit, |r| r.id, Job::from))
}

/// The tenant's job `job_<n>`.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<Job> {
    let n = parse_id(id).ok_or(Error::NotFound("job"))?;
    let mut conn = state.db.acquire().await?;
    let row = store::jobs::get(&mut conn, &caller.tenant_id, n).await?.ok_or(Error::NotFound("job"))?;
    drop(conn);
    let reconcile = row.kind == job::RECONCILE;
    let mut view = Job::from(row);
    if reconcile {
        view.progress = super::reconcile::progress(state, &caller.tenant_id, n).await?;
    }
    Ok(view)
}

/// Queue a job from the dead letter again now, with a fresh set of attempts; refused
/// when it is not dead.
pub async fn retry(state: &AppState, caller: &Caller, id: &str) -> Result<Job> {
    let n = parse_id(id).ok_or(Error::NotFound("job"))?;
    let mut conn = state.db.acquire().await?;
    if let Some(row) = store::jobs::rerun_dead(&mut conn, &caller.tenant_id, n).await? {
        return Ok(row.into());
    }
    let row = store::jobs::get(&mut conn, &caller.tenant_id, n).await?.ok_or(Error::NotFound("job"))?;
    Err(Error::refused(Refusal::JobNotDead, format!("the job is {}; only dead jobs can be re-run", row.state)))
}

/// A shipment's booking jobs, newest first (the console offers to re-run a dead one).
pub async fn booking_jobs_of(state: &AppState, caller: &Caller, shipment_id: &str) -> Result<Vec<Job>> {
    let mut conn = state.db.acquire().await?;
    let rows = store::jobs::booking_jobs_of(&mut conn, &caller.tenant_id, shipment_id).await?;
    Ok(rows.into_iter().map(Job::from).collect())
}

/// Enqueue a job of `kind` (its policy from [`job::policy`]) in the caller's
/// transaction. Returns the job id (of the existing job when `unique_key` matched one).
pub async fn enqueue(
    conn: &mut sqlx::PgConnection,
    tenant_id: Option<&str>,
    kind: &str,
    payload: &Value,
    unique_key: Option<&str>,
    run_at: Option<chrono::DateTime<Utc>>,
) -> sqlx::Result<i64> {
    let policy = job::policy(kind);
    store::jobs::enqueue(
        conn,
        &NewJob {
            tenant_id,
            kind,
            payload,
            unique_key,
            run_at,
            max_attempts: policy.max_attempts,
            lease_secs: i32::try_from(policy.lease.as_secs()).unwrap_or(i32::MAX),
        },
    )
    .await
}
