//! When a shipment is polled next: adaptive to its status (soon when the parcel is about
//! to arrive, rarely before it has moved), slower when nothing has changed for a long
//! time, slower after failed polls, and spread by jitter so shipments booked together
//! are not polled together. Pure, so the policy is tested without a database.

use std::time::Duration;

use crate::config::TrackingConfig;
use crate::domain::Status;

/// What the last poll found.
#[derive(Debug, Clone, Copy)]
pub struct PollState {
    pub status: Status,
    /// Time since the status last changed.
    pub idle: Duration,
    /// Consecutive failed polls, including this one (0: it succeeded).
    pub failures: i32,
    /// The carrier asked us to wait this long (429 / Retry-After).
    pub retry_after: Option<Duration>,
}

/// The delay until the next poll; `unit` is a random number in [0, 1) for the jitter.
pub fn next_poll(cfg: &TrackingConfig, s: &PollState, unit: f64) -> Duration {
    let mut base = cfg.intervals.get(&s.status).copied().unwrap_or(cfg.max_interval);
    if s.idle >= cfg.idle_after {
        base = base.mul_f64(cfg.idle_factor);
    }
    base = base.min(cfg.max_interval);
    if s.failures > 0 {
        let shift = u32::try_from(s.failures - 1).unwrap_or(0).min(20);
        let backoff = cfg.failure_backoff.saturating_mul(1u32 << shift).min(cfg.failure_backoff_max);
        base = base.max(backoff);
        if let Some(wait) = s.retry_after {
            base = base.max(wait);
        }
    }
    base.mul_f64(1.0 + cfg.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn cfg() -> TrackingConfig {
        Config::from_toml_overrides("").expect("defaults").tracking
    }

    fn at(status: Status) -> PollState {
        PollState { status, idle: Duration::ZERO, failures: 0, retry_after: None }
    }

    const MID: f64 = 0.5; // no jitter

    #[test]
    fn the_last_mile_is_polled_sooner_than_transit_and_transit_sooner_than_a_label() {
        let c = cfg();
        let ofd = next_poll(&c, &at(Status::OutForDelivery), MID);
        let transit = next_poll(&c, &at(Status::InTransit), MID);
        let label = next_poll(&c, &at(Status::InfoReceived), MID);
        assert_eq!(ofd, Duration::from_secs(900));
        assert_eq!(transit, Duration::from_secs(3600));
        assert!(label > transit, "{label:?}");
    }

    #[test]
    fn idle_shipments_back_off_up_to_the_maximum() {
        let c = cfg();
        let idle = PollState { idle: Duration::from_secs(3 * 86400), ..at(Status::InTransit) };
        assert_eq!(next_poll(&c, &idle, MID), Duration::from_secs(4 * 3600));
        let idle_pending = PollState { idle: Duration::from_secs(3 * 86400), ..at(Status::Pending) };
        assert_eq!(next_poll(&c, &idle_pending, MID), c.max_interval);
    }

    #[test]
    fn failures_back_off_exponentially_and_honour_retry_after() {
        let c = cfg();
        let fail = |failures, retry_after| {
            next_poll(&c, &PollState { failures, retry_after, ..at(Status::OutForDelivery) }, MID)
        };
        assert_eq!(fail(1, None), Duration::from_secs(900), "never sooner than the status interval");
        assert_eq!(fail(3, None), Duration::from_secs(1200));
        assert_eq!(fail(30, None), c.failure_backoff_max);
        assert_eq!(fail(1, Some(Duration::from_secs(5000))), Duration::from_secs(5000));
    }

    #[test]
    fn jitter_spreads_within_the_configured_fraction() {
        let c = cfg();
        let low = next_poll(&c, &at(Status::InTransit), 0.0);
        let high = next_poll(&c, &at(Status::InTransit), 0.999_999);
        assert_eq!(low, Duration::from_secs(2880));
        assert!(high > Duration::from_secs(4319) && high <= Duration::from_secs(4320), "{high:?}");
    }
}
