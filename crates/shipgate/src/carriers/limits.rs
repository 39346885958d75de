//! Per-connection traffic limits, one implementation for every adapter:
//! - a rate limit kept as the carrier counts it: at most N calls leave in any window of
//!   one second plus `rate_window_slack` (jitter between leaving here and arriving
//!   there). A token bucket such as governor's GCRA lets a burst of N plus N more go
//!   within the first second, which AfterShip answers with 429, so this is a sliding
//!   log of departure times instead (at most N entries per connection),
//! - a concurrency cap (ecomdash: 3 calls in flight),
//! - a 429 gate: after a 429 with `Retry-After` / `X-RateLimit-Reset`, no call leaves
//!   until that moment (waiting when it is near, failing fast when it is far),
//! - a circuit breaker: after `breaker_threshold` consecutive transient failures the
//!   connection fails fast with `Transient { retry_after }` for `breaker_cooldown`, then
//!   lets one probe through; its success closes the breaker, its failure reopens it.
//!
//! The limits live in the connection's client (one per instance). They are safe to
//! lose: a restarted instance starts with a closed breaker and a full bucket.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::collections::VecDeque;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::CarrierError;

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub rate_per_second: Option<u32>,
    pub max_concurrency: Option<u32>,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    /// Longest a call waits for the rate limiter or a 429 gate before failing fast.
    pub max_wait: Duration,
    /// Added to the one-second rate window for network jitter.
    pub rate_window_slack: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            rate_per_second: None,
            max_concurrency: None,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            max_wait: Duration::from_secs(10),
            rate_window_slack: Duration::from_millis(200),
        }
    }
}

#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

pub struct Limits {
    cfg: LimitsConfig,
    rate: Option<usize>,
    window: Duration,
    /// Departure times of the last calls (≤ rate), and the 429 gate.
    sent: Mutex<(VecDeque<Instant>, Option<Instant>)>,
    slots: Option<Arc<Semaphore>>,
    breaker: Mutex<Breaker>,
}

/// Held for the duration of one HTTP call.
pub struct Permit {
    _slot: Option<OwnedSemaphorePermit>,
}

/// Breaker state as ops see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl Limits {
    pub fn new(cfg: LimitsConfig) -> Limits {
        let rate = cfg.rate_per_second.and_then(NonZeroU32::new).map(|n| n.get() as usize);
        let slots = cfg.max_concurrency.filter(|n| *n > 0).map(|n| Arc::new(Semaphore::new(n as usize)));
        let window = Duration::from_secs(1) + cfg.rate_window_slack;
        Limits {
            cfg,
            rate,
            window,
            sent: Mutex::new((VecDeque::new(), None)),
            slots,
            breaker: Mutex::new(Breaker::default()),
        }
    }

    pub fn unlimited() -> Limits {
        Limits::new(LimitsConfig::default())
    }

    /// Wait for the 429 gate, the rate window and a concurrency slot.
    pub async fn acquire(&self) -> Result<Permit, CarrierError> {
        let started = Instant::now();
        loop {
            let wait = {
                let Ok(mut st) = self.sent.lock() else { break };
                let now = Instant::now();
                let (sent, gate) = &mut *st;
                let mut earliest = gate.filter(|g| *g > now).unwrap_or(now);
                if let Some(n) = self.rate {
                    while sent.front().is_some_and(|t| *t + self.window <= now) {
                        sent.pop_front();
                    }
                    if sent.len() >= n {
                        earliest = earliest.max(sent[sent.len() - n] + self.window);
                    }
                }
                if earliest <= now {
                    if self.rate.is_some() {
                        sent.push_back(now);
                    }
                    break;
                }
                earliest - now
            };
            if started.elapsed() + wait > self.cfg.max_wait {
                let why = if self.sent.lock().ok().and_then(|s| s.1).is_some_and(|g| g > Instant::now()) {
                    "the carrier asked us to slow down (429)"
                } else {
                    "connection rate limit reached"
                };
                return Err(CarrierError::Transient {
                    message: why.into(),
                    retry_after: Some(wait.max(Duration::from_secs(1))),
                });
            }
            tokio::time::sleep(wait).await;
        }
        let slot = match &self.slots {
            Some(s) => match tokio::time::timeout(self.cfg.max_wait, s.clone().acquire_owned()).await {
                Ok(Ok(p)) => Some(p),
                _ => {
                    return Err(CarrierError::Transient {
                        message: "connection concurrency limit reached".into(),
                        retry_after: Some(Duration::from_secs(1)),
                    });
                }
            },
            None => None,
        };
        Ok(Permit { _slot: slot })
    }

    /// The carrier answered 429: nothing leaves before `wait` has passed, and the calls
    /// that left recently count as leaving then, so the ones held at the gate do not
    /// all go at once when it opens.
    pub fn throttled(&self, wait: Duration) {
        if let Ok(mut st) = self.sent.lock() {
            let until = Instant::now() + wait;
            let (sent, gate) = &mut *st;
            if gate.is_none_or(|g| g < until) {
                *gate = Some(until);
            }
            for t in sent.iter_mut() {
                if *t < until {
                    *t = until;
                }
            }
        }
    }

    /// Fail fast while the breaker is open; let one probe through when it half-opens.
    pub fn check_breaker(&self) -> Result<(), CarrierError> {
        let Ok(mut b) = self.breaker.lock() else { return Ok(()) };
        match b.open_until {
            Some(until) if Instant::now() < until => Err(CarrierError::Transient {
                message: "carrier unavailable (circuit open after repeated failures)".into(),
                retry_after: Some((until - Instant::now()).max(Duration::from_secs(1))),
            }),
            Some(_) if b.probing => Err(CarrierError::Transient {
                message: "carrier unavailable (circuit half-open, probe in flight)".into(),
                retry_after: Some(Duration::from_secs(1)),
            }),
            Some(_) => {
                b.probing = true;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Record an operation's outcome: only transient failures count against the carrier.
    pub fn record(&self, transient_failure: bool) {
        let Ok(mut b) = self.breaker.lock() else { return };
        if transient_failure {
            b.consecutive_failures += 1;
            if b.probing || b.consecutive_failures >= self.cfg.breaker_threshold {
                b.open_until = Some(Instant::now() + self.cfg.breaker_cooldown);
                if !b.probing {
                    tracing::warn!(failures = b.consecutive_failures, "carrier circuit opened");
                }
            }
        } else {
            if b.open_until.is_some() {
                tracing::info!("carrier circuit closed");
            }
            *b = Breaker::default();
        }
        b.probing = false;
    }

    pub fn breaker_state(&self) -> BreakerState {
        match self.breaker.lock().map(|b| b.open_until) {
            Ok(Some(until)) if Instant::now() < until => BreakerState::Open,
            Ok(Some(_)) => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_breaker_opens_fails_fast_and_closes_after_a_good_probe() {
        let l = Limits::new(LimitsConfig {
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_millis(50),
            ..Default::default()
        });
        for _ in 0..3 {
            assert!(l.check_breaker().is_ok());
            l.record(true);
        }
        assert_eq!(l.breaker_state(), BreakerState::Open);
        assert!(matches!(l.check_breaker(), Err(CarrierError::Transient { retry_after: Some(_), .. })));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(l.check_breaker().is_ok(), "one probe");
        assert!(l.check_breaker().is_err(), "only one probe at a time");
        l.record(false);
        assert_eq!(l.breaker_state(), BreakerState::Closed);
        // A failed probe reopens at once.
        for _ in 0..3 {
            l.record(true);
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(l.check_breaker().is_ok());
        l.record(true);
        assert_eq!(l.breaker_state(), BreakerState::Open);
    }

    #[tokio::test]
    async fn rate_and_concurrency_are_enforced() {
        let l = Arc::new(Limits::new(LimitsConfig {
            rate_per_second: Some(10),
            max_concurrency: Some(2),
            ..Default::default()
        }));
        let start = Instant::now();
        for _ in 0..20 {
            drop(l.acquire().await.expect("permit"));
        }
        // 10/s with a burst of 10: the 20th call cannot leave before ~1 s.
        assert!(start.elapsed() >= Duration::from_millis(900), "{:?}", start.elapsed());
        let a = l.acquire().await.expect("1");
        let b = l.acquire().await.expect("2");
        assert_eq!(l.slots.as_ref().map(|s| s.available_permits()), Some(0));
        drop((a, b));
    }

    #[tokio::test]
    async fn a_429_holds_calls_until_the_carrier_allows_them() {
        let l = Limits::new(LimitsConfig { max_wait: Duration::from_millis(200), ..Default::default() });
        l.throttled(Duration::from_millis(100));
        let start = Instant::now();
        l.acquire().await.expect("waits, then goes");
        assert!(start.elapsed() >= Duration::from_millis(90));
        l.throttled(Duration::from_secs(30));
        assert!(
            matches!(l.acquire().await, Err(CarrierError::Transient { retry_after: Some(d), .. }) if d > Duration::from_secs(20))
        );
    }
}
