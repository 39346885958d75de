//! The durable job queue: Postgres is the queue (ARCHITECTURE.md rule 6).
//!
//! - **Enqueue** inside the caller's transaction ([`enqueue`]), so a job exists exactly
//!   when the change that asked for it committed. `NOTIFY` (delivered at commit) wakes
//!   the workers; they also poll, so a lost notification only delays a job.
//! - **Claim** with `FOR UPDATE SKIP LOCKED`, oldest due first, under a lease and a fresh
//!   claim token. Completing, retrying or burying a job checks the token, so a worker
//!   whose lease ran out (stalled, partitioned) cannot overwrite the result of the worker
//!   that took the job over. A job is cut off before its lease ends, and leases of dead
//!   workers are reaped by any instance.
//! - **Retry** with exponential backoff and full jitter per job kind; after the last
//!   attempt the job goes to the **dead letter** (`state = 'dead'`), listed at
//!   `GET /v1/jobs?state=dead` and re-runnable with `POST /v1/jobs/{id}/retry`.
//! - **Unique jobs** (`unique_key`): at most one queued or running per key; enqueueing
//!   one that is running marks it to run once more, so work added meanwhile is not lost.
//! - **Periodic jobs** are one row that re-queues itself ([`Outcome::Repeat`]).
//! - Workers run inside `serve` (`workers_enabled`, `worker_concurrency`) and, on
//!   shutdown, stop claiming and let in-flight jobs finish.
//!
//! Why written here rather than taken from a crate: the maintained Postgres queue for
//! Rust, apalis (apalis-sql 0.7.3 and apalis-postgres 1.0 betas, per their Cargo.toml on
//! docs.rs), is built on sqlx ^0.8.1, so it would bring a second sqlx and could not
//! enqueue inside our sqlx 0.9 transactions, which is the point of an outbox-style
//! queue. The semantics QUALITY.md asks for (claim tokens checked on completion, leases
//! reaped by any instance, dead letter re-runnable by the tenant) are the handful of
//! statements in `store::jobs`.

pub mod kinds;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng as _;
use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::app::AppState;
use crate::store;
use crate::store::jobs::{ClaimedJob, NewJob};

/// What a job kind does when it fails, and how long one run may take.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_attempts: i32,
    /// First retry delay; doubled per attempt, up to `max_backoff`, with full jitter.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Claim lifetime; a run is cut off `LEASE_MARGIN` before it ends.
    pub lease: Duration,
}

const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// The result of one run of a job.
#[derive(Debug)]
pub enum Outcome {
    /// Done; the job is finished (or runs once more if it was enqueued meanwhile).
    Done,
    /// Failed, may succeed later: retried after the backoff, or at `at_least` if the
    /// other side said when (Retry-After). Dead after the last attempt.
    Retry { error: String, at_least: Option<Duration> },
    /// Not failed, not ready (e.g. waiting for a rate limit): run again after `after`
    /// without using up an attempt.
    Postpone { after: Duration },
    /// A periodic job: run again after `after` with a fresh set of attempts.
    Repeat { after: Duration },
    /// Cannot succeed by retrying: straight to the dead letter.
    Fail { error: String },
}

/// A claimed job as handlers see it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub tenant_id: Option<String>,
    pub kind: String,
    pub payload: Value,
    /// This run's number, from 1.
    pub attempt: i32,
    pub max_attempts: i32,
}

impl Job {
    /// Whether a `Retry` now would send the job to the dead letter.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// Enqueue a job of `kind` (its policy from [`kinds::policy`]) in the caller's
/// transaction. Returns the job id (of the existing job when `unique_key` matched one).
pub async fn enqueue(
    conn: &mut sqlx::PgConnection,
    tenant_id: Option<&str>,
    kind: &str,
    payload: &Value,
    unique_key: Option<&str>,
    run_at: Option<chrono::DateTime<Utc>>,
) -> sqlx::Result<i64> {
    let policy = kinds::policy(kind);
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

/// The retry delay before attempt `attempt + 1`: exponential with full jitter in
/// [delay/2, delay] (AWS "Exponential Backoff And Jitter": spreads retries of jobs that
/// failed together, e.g. during one carrier outage).
pub fn backoff(policy: &Policy, attempt: i32) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let delay = policy.base_backoff.saturating_mul(1u32 << exp.min(20)).min(policy.max_backoff);
    let half = delay / 2;
    let jitter = rand::rng().random_range(0..=half.as_millis().max(1) as u64);
    half + Duration::from_millis(jitter)
}

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub concurrency: usize,
    pub poll_interval: Duration,
    /// Which kinds this worker runs (tests run one kind alone).
    pub kinds: Vec<String>,
    pub name: String,
}

impl WorkerConfig {
    pub fn from_state(state: &AppState) -> WorkerConfig {
        WorkerConfig {
            concurrency: state.config.worker_concurrency.max(1),
            poll_interval: state.config.jobs_poll_interval,
            kinds: kinds::ALL.iter().map(|k| (*k).to_owned()).collect(),
            name: format!("{}-{}", hostname(), std::process::id()),
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "shipgate".to_owned())
}

/// Run the worker until `shutdown` turns true, then let in-flight jobs finish.
pub async fn run_worker(state: AppState, cfg: WorkerConfig, mut shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(cfg.concurrency));
    let mut running: JoinSet<()> = JoinSet::new();
    let mut listener = listen(&state).await;
    let mut last_reap = std::time::Instant::now() - Duration::from_secs(60);
    let mut idle_tick = tokio::time::interval(cfg.poll_interval);
    idle_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(worker = %cfg.name, concurrency = cfg.concurrency, "job worker started");
    loop {
        state.worker_heartbeat.store(Utc::now().timestamp_millis(), std::sync::atomic::Ordering::Relaxed);
        if *shutdown.borrow() {
            break;
        }
        if last_reap.elapsed() >= Duration::from_secs(5) {
            last_reap = std::time::Instant::now();
            reap(&state).await;
        }
        // Claim as many due jobs as there are free slots.
        let free = permits.available_permits();
        let mut claimed_full = false;
        if free > 0 {
            match claim(&state, &cfg, free).await {
                Ok(jobs) => {
                    claimed_full = jobs.len() == free;
                    for job in jobs {
                        let Ok(permit) = permits.clone().acquire_owned().await else { break };
                        let state = state.clone();
                        running.spawn(async move {
                            execute(&state, job).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming jobs failed; retrying after the poll interval");
                }
            }
        }
        while running.try_join_next().is_some() {}
        if claimed_full && permits.available_permits() > 0 {
            continue;
        }
        // Sleep until a notification, a finished job (a slot is free again), the poll
        // interval, or shutdown.
        tokio::select! {
            _ = shutdown.changed() => {}
            woke = next_notification(&mut listener) => {
                if !woke {
                    // The listener connection broke: poll, then try to listen again.
                    tokio::time::sleep(cfg.poll_interval).await;
                    listener = listen(&state).await;
                }
            }
            Some(_) = running.join_next(), if !running.is_empty() && permits.available_permits() == 0 => {}
            _ = idle_tick.tick() => {}
        }
    }
    let n = running.len();
    if n > 0 {
        tracing::info!(in_flight = n, "job worker draining");
    }
    while running.join_next().await.is_some() {}
    state.worker_heartbeat.store(0, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(worker = %cfg.name, "job worker stopped");
}

async fn listen(state: &AppState) -> Option<sqlx::postgres::PgListener> {
    let mut l = sqlx::postgres::PgListener::connect_with(&state.db).await.ok()?;
    l.listen(store::jobs::CHANNEL).await.ok()?;
    Some(l)
}

/// Wait for a notification; false when the listener is gone (the caller polls).
async fn next_notification(listener: &mut Option<sqlx::postgres::PgListener>) -> bool {
    match listener {
        Some(l) => l.recv().await.is_ok(),
        None => {
            std::future::pending::<()>().await;
            false
        }
    }
}

async fn claim(state: &AppState, cfg: &WorkerConfig, n: usize) -> sqlx::Result<Vec<ClaimedJob>> {
    let mut conn = state.db.acquire().await?;
    store::jobs::claim(&mut conn, &cfg.kinds, n as i64, &cfg.name).await
}

async fn reap(state: &AppState) {
    let Ok(mut conn) = state.db.acquire().await else { return };
    match store::jobs::reap_expired(&mut conn).await {
        Ok(n) if n > 0 => tracing::warn!(jobs = n, "took back jobs whose lease expired"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "reaping expired leases failed"),
    }
}

/// Run one claimed job and record its outcome (directly callable from tests).
pub async fn execute(state: &AppState, claimed: ClaimedJob) {
    let policy = kinds::policy(&claimed.kind);
    let lease = Duration::from_secs(u64::try_from(claimed.lease_secs).unwrap_or(0));
    let budget = lease.saturating_sub(LEASE_MARGIN).max(Duration::from_secs(1));
    let job = Job {
        id: claimed.id,
        tenant_id: claimed.tenant_id.clone(),
        kind: claimed.kind.clone(),
        payload: claimed.payload.0.clone(),
        attempt: claimed.attempts,
        max_attempts: claimed.max_attempts,
    };
    let started = std::time::Instant::now();
    let span = tracing::info_span!("job", job_id = job.id, kind = %job.kind, attempt = job.attempt);
    let outcome = match tokio::time::timeout(budget, kinds::run(state, &job).instrument(span)).await {
        Ok(o) => o,
        Err(_) => Outcome::Retry { error: format!("timed out after {} s", budget.as_secs()), at_least: None },
    };
    let label = match &outcome {
        Outcome::Done => "done",
        Outcome::Retry { .. } if job.is_last_attempt() => "dead",
        Outcome::Retry { .. } => "retry",
        Outcome::Postpone { .. } => "postponed",
        Outcome::Repeat { .. } => "repeat",
        Outcome::Fail { .. } => "dead",
    };
    metrics::counter!("shipgate_jobs_total", "kind" => job.kind.clone(), "outcome" => label).increment(1);
    metrics::histogram!("shipgate_job_duration_seconds", "kind" => job.kind.clone())
        .record(started.elapsed().as_secs_f64());
    if let Err(e) = record(state, &claimed, &policy, &job, outcome).await {
        // The lease will expire and the job will run again: every job is written to be
        // safe to repeat.
        tracing::warn!(job_id = job.id, kind = %job.kind, error = %e, "could not record a job's outcome");
    }
}

async fn record(
    state: &AppState,
    claimed: &ClaimedJob,
    policy: &Policy,
    job: &Job,
    outcome: Outcome,
) -> sqlx::Result<()> {
    let mut conn = state.db.acquire().await?;
    let token = claimed.claim_token;
    let kept = match outcome {
        Outcome::Done => store::jobs::complete(&mut conn, job.id, token).await?,
        Outcome::Retry { error, .. } if job.is_last_attempt() => {
            tracing::warn!(job_id = job.id, kind = %job.kind, %error, "job failed its last attempt; dead-lettered");
            store::jobs::bury(&mut conn, job.id, token, &error).await?
        }
        Outcome::Retry { error, at_least } => {
            let delay = backoff(policy, job.attempt).max(at_least.unwrap_or_default());
            tracing::info!(job_id = job.id, kind = %job.kind, %error, retry_in_ms = delay.as_millis() as u64, "job will be retried");
            let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            store::jobs::requeue(&mut conn, job.id, token, at, Some(&error), true, false).await?
        }
        Outcome::Postpone { after } => {
            let at = Utc::now() + chrono::Duration::from_std(after).unwrap_or_default();
            store::jobs::requeue(&mut conn, job.id, token, at, None, false, false).await?
        }
        Outcome::Repeat { after } => {
            let at = Utc::now() + chrono::Duration::from_std(after).unwrap_or_default();
            store::jobs::requeue(&mut conn, job.id, token, at, None, true, true).await?
        }
        Outcome::Fail { error } => {
            tracing::warn!(job_id = job.id, kind = %job.kind, %error, "job failed permanently; dead-lettered");
            store::jobs::bury(&mut conn, job.id, token, &error).await?
        }
    };
    if !kept {
        tracing::warn!(job_id = job.id, kind = %job.kind, "lost the claim on a job before recording it; result dropped");
        metrics::counter!("shipgate_jobs_lost_claims_total", "kind" => job.kind.clone()).increment(1);
    }
    Ok(())
}

/// Claim and run every due job of `kinds` once, in this task (tests and tools).
pub async fn run_due(state: &AppState, kinds: &[&str]) -> sqlx::Result<usize> {
    let cfg = WorkerConfig {
        concurrency: 64,
        poll_interval: Duration::from_secs(1),
        kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
        name: "inline".to_owned(),
    };
    let jobs = claim(state, &cfg, 64).await?;
    let n = jobs.len();
    futures::future::join_all(jobs.into_iter().map(|j| execute(state, j))).await;
    Ok(n)
}
