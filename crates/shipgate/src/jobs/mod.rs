//! The durable job queue: Postgres is the queue (docs/architecture.md rule 6).
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
//!   shutdown, stop claiming and let in-flight jobs finish. The claim/lease loop
//!   itself (slots, wake-ups, cut-off, token-checked recording, reaping, heartbeat,
//!   drain) is the one all queues share, [`crate::queue`]; this module is the job
//!   queue's part: its policies, its outcomes and how they are written.
//!
//! Why written here rather than taken from a crate: the maintained Postgres queue for
//! Rust, apalis (apalis-sql 0.7.3 and apalis-postgres 1.0 betas, per their Cargo.toml on
//! docs.rs), is built on sqlx ^0.8.1, so it would bring a second sqlx and could not
//! enqueue inside our sqlx 0.9 transactions, which is the point of an outbox-style
//! queue. The semantics docs/quality.md asks for (claim tokens checked on completion, leases
//! reaped by any instance, dead letter re-runnable by the tenant) are the handful of
//! statements in `store::jobs`.

pub mod kinds;

use std::time::Duration;

use chrono::Utc;
use rand::Rng as _;
use serde_json::Value;
use tokio::sync::watch;

use crate::app::AppState;
use crate::queue::{Batch, Done, Hint, Queue, Recording, Settings, Worker};
use crate::store;
use crate::store::jobs::ClaimedJob;

pub use crate::domain::job::{Job, Outcome, Policy};
pub use crate::service::jobs::enqueue;

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

/// How often expired leases are taken back (by any instance's worker).
const REAP_EVERY: Duration = Duration::from_secs(5);

/// Run the worker until `shutdown` turns true, then let in-flight jobs finish (the
/// claim/lease loop is [`crate::queue::Worker`]).
pub async fn run_worker(state: AppState, cfg: WorkerConfig, shutdown: watch::Receiver<bool>) {
    tracing::info!(worker = %cfg.name, concurrency = cfg.concurrency, "job worker started");
    let settings = Settings {
        slots: cfg.concurrency,
        batch: cfg.concurrency,
        refill_at: 1,
        poll: cfg.poll_interval,
        hint: Hint::Listen { db: state.db.clone(), channel: store::jobs::CHANNEL },
        maintain_every: REAP_EVERY,
        recording: Recording::Inline,
        drain: state.config.shutdown_drain,
    };
    let name = cfg.name.clone();
    Worker::new(
        JobQueue { state, kinds: cfg.kinds, worker: cfg.name, last_sweep: Default::default() },
        settings,
        shutdown,
    )
    .run()
    .await;
    tracing::info!(worker = %name, "job worker stopped");
}

/// A booking whose request died before recording its first attempt has no job
/// (bookings get one only when left pending): give one to every pending booking without
/// a job that nothing touched for `request_timeout` + 5 s. The job worker runs this
/// every minute; returns how many it adopted.
pub async fn adopt_orphan_bookings(state: &AppState) -> sqlx::Result<u64> {
    let policy = kinds::policy(kinds::BOOKING);
    let idle = state.config.request_timeout.as_secs_f64() + 5.0;
    let lease = i32::try_from(policy.lease.as_secs()).unwrap_or(i32::MAX);
    let mut conn = state.db.acquire().await?;
    store::jobs::adopt_orphan_bookings(&mut conn, idle, policy.max_attempts, lease).await
}

/// The job queue as the claim/lease loop sees it; its statements are in `store::jobs`.
struct JobQueue {
    state: AppState,
    /// Which kinds this worker claims.
    kinds: Vec<String>,
    /// `claimed_by` on the rows it claims.
    worker: String,
    /// When the orphan-booking sweep last ran.
    last_sweep: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How often the job worker looks for pending bookings left without a job.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl JobQueue {
    fn sweep_due(&self) -> bool {
        let Ok(mut last) = self.last_sweep.lock() else { return false };
        if last.is_some_and(|at| at.elapsed() < SWEEP_EVERY) {
            return false;
        }
        *last = Some(std::time::Instant::now());
        true
    }
}

impl Queue for JobQueue {
    const NAME: &'static str = "jobs";
    type Item = ClaimedJob;
    type Outcome = Outcome;

    async fn claim(&self, n: usize) -> anyhow::Result<Batch<ClaimedJob>> {
        let mut conn = self.state.db.acquire().await?;
        let jobs = store::jobs::claim(&mut conn, &self.kinds, n as i64, &self.worker).await?;
        Ok(Batch { more: jobs.len() == n, items: jobs })
    }

    fn lease(&self, job: &ClaimedJob) -> Duration {
        Duration::from_secs(u64::try_from(job.lease_secs).unwrap_or(0))
    }

    fn span(&self, job: &ClaimedJob) -> tracing::Span {
        // The shipment a booking job is for, where the payload names it.
        let shipment_id = job.payload.0.get("shipment_id").and_then(Value::as_str);
        tracing::info_span!("job", job_id = job.id, kind = %job.kind, attempt = job.attempts,
            tenant_id = job.tenant_id.as_deref(), shipment_id)
    }

    async fn run(&self, claimed: &ClaimedJob) -> Outcome {
        kinds::run(&self.state, &job_of(claimed)).await
    }

    fn timed_out(&self, _: &ClaimedJob, budget: Duration) -> Outcome {
        Outcome::Retry { error: format!("timed out after {} s", budget.as_secs()), at_least: None }
    }

    async fn record(&self, done: &[Done<ClaimedJob, Outcome>]) -> anyhow::Result<usize> {
        let mut lost = 0;
        for d in done {
            let job = &d.item;
            let label = match &d.outcome {
                Outcome::Done => "done",
                Outcome::Retry { .. } if is_last_attempt(job) => "dead",
                Outcome::Retry { .. } => "retry",
                Outcome::Postpone { .. } => "postponed",
                Outcome::Repeat { .. } => "repeat",
                Outcome::Fail { .. } => "dead",
            };
            metrics::counter!("shipgate_jobs_total", "kind" => job.kind.clone(), "outcome" => label).increment(1);
            metrics::histogram!("shipgate_job_duration_seconds", "kind" => job.kind.clone())
                .record(d.took.as_secs_f64());
            if !record(&self.state, job, &d.outcome).await? {
                metrics::counter!("shipgate_jobs_lost_claims_total", "kind" => job.kind.clone()).increment(1);
                lost += 1;
            }
        }
        Ok(lost)
    }

    async fn maintain(&self) {
        let Ok(mut conn) = self.state.db.acquire().await else { return };
        match store::jobs::reap_expired(&mut conn).await {
            Ok(n) if n > 0 => tracing::warn!(jobs = n, "took back jobs whose lease expired"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reaping expired leases failed"),
        }
        drop(conn);
        if self.sweep_due() {
            match adopt_orphan_bookings(&self.state).await {
                Ok(n) if n > 0 => tracing::warn!(bookings = n, "adopted pending bookings left without a job"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "adopting orphan bookings failed"),
            }
        }
    }

    fn heartbeat(&self, alive: bool) {
        // `/readyz` reports a worker that stopped going round its loop.
        let at = if alive { Utc::now().timestamp_millis() } else { 0 };
        self.state.worker_heartbeat.store(at, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A claimed job as handlers see it.
fn job_of(claimed: &ClaimedJob) -> Job {
    Job {
        id: claimed.id,
        tenant_id: claimed.tenant_id.clone(),
        kind: claimed.kind.clone(),
        payload: claimed.payload.0.clone(),
        attempt: claimed.attempts,
        max_attempts: claimed.max_attempts,
        claim_token: claimed.claim_token,
    }
}

/// Run one claimed job under its lease and record its outcome, in this task (directly
/// callable from tests).
pub async fn execute(state: &AppState, claimed: ClaimedJob) {
    let queue =
        JobQueue { state: state.clone(), kinds: Vec::new(), worker: String::new(), last_sweep: Default::default() };
    crate::queue::run_one(&queue, claimed).await;
}

fn is_last_attempt(job: &ClaimedJob) -> bool {
    job.attempts >= job.max_attempts
}

/// Write a run's outcome; false when the claim was lost (the lease expired and another
/// worker took the job) and the result was not recorded. A failed write leaves the job
/// to its lease: it runs again, and every job is written to be safe to repeat.
async fn record(state: &AppState, job: &ClaimedJob, outcome: &Outcome) -> sqlx::Result<bool> {
    let (id, token) = (job.id, job.claim_token);
    let mut conn = state.db.acquire().await?;
    match outcome {
        Outcome::Done => {
            tracing::debug!("job done");
            store::jobs::complete(&mut conn, id, token).await
        }
        Outcome::Retry { error, .. } if is_last_attempt(job) => {
            tracing::warn!(%error, "job failed its last attempt; dead-lettered");
            store::jobs::bury(&mut conn, id, token, error).await
        }
        Outcome::Retry { error, at_least } => {
            let delay = backoff(&kinds::policy(&job.kind), job.attempts).max(at_least.unwrap_or_default());
            tracing::info!(%error, retry_in_ms = delay.as_millis() as u64, "job will be retried");
            let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            store::jobs::requeue(&mut conn, id, token, at, Some(error), true, false).await
        }
        Outcome::Postpone { after } => {
            let at = Utc::now() + chrono::Duration::from_std(*after).unwrap_or_default();
            store::jobs::requeue(&mut conn, id, token, at, None, false, false).await
        }
        Outcome::Repeat { after } => {
            let at = Utc::now() + chrono::Duration::from_std(*after).unwrap_or_default();
            store::jobs::requeue(&mut conn, id, token, at, None, true, true).await
        }
        Outcome::Fail { error } => {
            tracing::warn!(%error, "job failed permanently; dead-lettered");
            store::jobs::bury(&mut conn, id, token, error).await
        }
    }
}

/// Claim and run every due job of `kinds` once, in this task (tests and tools).
pub async fn run_due(state: &AppState, kinds: &[&str]) -> sqlx::Result<usize> {
    let jobs = {
        let mut conn = state.db.acquire().await?;
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        store::jobs::claim(&mut conn, &kinds, 64, "inline").await?
    };
    let n = jobs.len();
    futures::future::join_all(jobs.into_iter().map(|j| execute(state, j))).await;
    Ok(n)
}
