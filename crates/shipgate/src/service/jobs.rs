//! The tenant's background jobs (pending bookings), above all the dead letter: jobs
//! that used up their attempts, with their last error, re-runnable.

use crate::app::AppState;
use crate::service::views::Job;
use crate::service::{Caller, Error, Page, PageRequest, Refusal, Result};
use crate::store;

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
    Ok(store::jobs::get(&mut conn, &caller.tenant_id, n).await?.ok_or(Error::NotFound("job"))?.into())
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
