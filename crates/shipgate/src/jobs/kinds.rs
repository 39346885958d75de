//! The job kinds and their retry policies.
//!
//! - `booking`: book a shipment whose booking is pending (carrier was down or slow).
//!   Exactly once at the carrier: a shipment that was already attempted is looked up
//!   first, and every carrier's create is idempotent on our side's key anyway
//!   (e-Courier OrderNumber, eCMR reference, AfterShip 4003 adoption).
//! - `sink_flush`: hand queued tracking numbers to the sinks (`service::sinks`).
//! - `keepalive`: renew credentials that expire when idle (e-Courier UserGUIDs), a
//!   periodic job (`service::keepalive`).

use std::time::Duration;

use serde_json::json;

use super::{Job, Outcome, Policy};
use crate::app::AppState;
use crate::service;

pub const BOOKING: &str = "booking";
pub const SINK_FLUSH: &str = "sink_flush";
pub const KEEPALIVE: &str = "keepalive";

pub const ALL: &[&str] = &[BOOKING, SINK_FLUSH, KEEPALIVE];

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
        KEEPALIVE => Policy {
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

pub async fn run(state: &AppState, job: &Job) -> Outcome {
    let result = match job.kind.as_str() {
        BOOKING => service::booking::run_job(state, job).await,
        SINK_FLUSH => service::sinks::run_job(state).await,
        KEEPALIVE => service::keepalive::run_job(state).await,
        other => Ok(Outcome::Fail { error: format!("unknown job kind {other}") }),
    };
    result.unwrap_or_else(|e| Outcome::Retry { error: format!("{e:#}"), at_least: None })
}

/// Make sure the periodic jobs exist (idempotent; every instance calls it at start).
pub async fn ensure_periodic(state: &AppState) -> sqlx::Result<()> {
    let mut conn = state.db.acquire().await?;
    super::enqueue(&mut conn, None, KEEPALIVE, &json!({}), Some("periodic"), None).await?;
    Ok(())
}
