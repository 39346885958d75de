//! Jobs as both sides see them: the service layer enqueues them and answers with an
//! [`Outcome`]; the worker (`crate::jobs`) claims, runs and records them. Kept here,
//! below both, so the service layer never imports the worker that calls it.
//!
//! - `booking`: book a shipment whose booking is pending (carrier was down or slow).
//! - `sink_flush`: hand queued tracking numbers to the sinks.
//! - `keepalive`: renew credentials that expire when idle, a periodic job.
//! - `reconcile`: walk a carrier's own list of a connection's shipments, page by page,
//!   and compare it with ours (`service::reconcile`).
//! - `reconcile_schedule`: start the reconciliations connections ask for in their
//!   settings (`reconcile_every_hours`), a periodic job.

use std::time::Duration;

use serde_json::Value;

pub const BOOKING: &str = "booking";
pub const SINK_FLUSH: &str = "sink_flush";
pub const KEEPALIVE: &str = "keepalive";
pub const RECONCILE: &str = "reconcile";
pub const RECONCILE_SCHEDULE: &str = "reconcile_schedule";

pub const ALL: &[&str] = &[BOOKING, SINK_FLUSH, KEEPALIVE, RECONCILE, RECONCILE_SCHEDULE];

pub fn policy(kind: &str) -> Policy {
    match kind {
        // A carrier outage can last hours: 30 s, 1 min, 2 min ... capped at 30 min,
        // 20 attempts ≈ 7 h before the booking is given up (and reported failed).
        BOOKING => Policy {
            max_attempts: 20,
            base_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(1800),
            lease: Duration::from_secs(120),
        },
        SINK_FLUSH => Policy {
            max_attempts: 50,
            base_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(900),
            lease: Duration::from_secs(300),
        },
        // A run walks pages for a while and then gives the slot back (Postpone): the
        // lease covers one slice. A carrier outage retries like a booking, for hours.
        RECONCILE => Policy {
            max_attempts: 20,
            base_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(1800),
            lease: Duration::from_secs(120),
        },
        KEEPALIVE | RECONCILE_SCHEDULE => Policy {
            max_attempts: 10,
            base_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
            lease: Duration::from_secs(300),
        },
        _ => Policy {
            max_attempts: 5,
            base_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(600),
            lease: Duration::from_secs(60),
        },
    }
}

/// What a job kind does when it fails, and how long one run may take.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_attempts: i32,
    /// First retry delay; doubled per attempt, up to `max_backoff`, with full jitter.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Claim lifetime; a run is cut off `queue::LEASE_MARGIN` before it ends.
    pub lease: Duration,
}

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
    /// This run's claim: a job that writes progress as it goes writes it only while the
    /// claim is still its own (`store::jobs` checks it on every outcome too).
    pub claim_token: uuid::Uuid,
}

impl Job {
    /// Whether a `Retry` now would send the job to the dead letter.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}
