//! What each job kind runs (the kinds and their retry policies are `domain::job`).
//!
//! - `booking`: book a shipment whose booking is pending (carrier was down or slow).
//!   Exactly once at the carrier: a shipment that was already attempted is looked up
//!   first, and every carrier's create is idempotent on our side's key anyway
//!   (e-Courier OrderNumber, eCMR reference, AfterShip 4003 adoption).
//! - `sink_flush`: hand queued tracking numbers to the sinks (`service::sinks`).
//! - `keepalive`: renew credentials that expire when idle (e-Courier UserGUIDs), a
//!   periodic job (`service::keepalive`).
//! - `reconcile`, `reconcile_schedule`: a reconciliation with a carrier's list, and the
//!   periodic job that starts the scheduled ones (`service::reconcile`).

use serde_json::json;

use super::{Job, Outcome};
use crate::app::AppState;
use crate::service;

pub use crate::domain::job::{ALL, BOOKING, KEEPALIVE, RECONCILE, RECONCILE_SCHEDULE, SINK_FLUSH, policy};

pub async fn run(state: &AppState, job: &Job) -> Outcome {
    let result = match job.kind.as_str() {
        BOOKING => service::booking::run_job(state, job).await,
        SINK_FLUSH => service::sinks::run_job(state).await,
        KEEPALIVE => service::keepalive::run_job(state).await,
        RECONCILE => service::reconcile::run_job(state, job).await,
        RECONCILE_SCHEDULE => service::reconcile::run_schedule(state).await,
        other => Ok(Outcome::Fail { error: format!("unknown job kind {other}") }),
    };
    result.unwrap_or_else(|e| Outcome::Retry { error: format!("{e:#}"), at_least: None })
}

/// Make sure the periodic jobs exist (idempotent; every instance calls it at start).
pub async fn ensure_periodic(state: &AppState) -> sqlx::Result<()> {
    let mut conn = state.db.acquire().await?;
    super::enqueue(&mut conn, None, KEEPALIVE, &json!({}), Some("periodic"), None).await?;
    super::enqueue(&mut conn, None, RECONCILE_SCHEDULE, &json!({}), Some("periodic"), None).await?;
    Ok(())
}
