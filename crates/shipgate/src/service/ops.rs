//! What `/readyz` reports: the database answers, and where this instance runs workers,
//! they go round their loop.

use std::time::Duration;

use crate::app::AppState;

/// This instance's readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The database answered within 2 s.
    pub database: bool,
    /// `ok`, `stalled` or `stopped`; None when this instance runs no workers.
    pub workers: Option<&'static str>,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.database && self.workers.is_none_or(|w| w == "ok")
    }
}

pub async fn readiness(state: &AppState) -> Readiness {
    let database = tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(&state.db))
        .await
        .is_ok_and(|r| r.is_ok());
    // The worker goes round its loop at least every poll interval; a claim waits at most
    // the pool's acquire timeout (3 s) when the database is away.
    let workers = state.config.workers_enabled.then(|| {
        let beat = state.worker_heartbeat.load(std::sync::atomic::Ordering::Relaxed);
        let limit = 30_000 + 3 * state.config.jobs_poll_interval.as_millis() as i64;
        match beat {
            0 => "stopped",
            b if chrono::Utc::now().timestamp_millis() - b > limit => "stalled",
            _ => "ok",
        }
    });
    Readiness { database, workers }
}
