//! Per-connection traffic limits, one implementation for every adapter:
//! - a rate limit kept as the carrier counts it: at most N calls *arrive* at the carrier
//!   in any one-second window. We cannot see arrival times, only that a call arrives
//!   after we let it go and before its answer is back, so a call counts from the moment
//!   it is let go until one second (plus `rate_window_slack`) after it was answered, and
//!   a new call goes only while fewer than N calls count. Why that holds: if N+1 calls
//!   arrived within one second, take the one let go last; every other one was let go
//!   before it and answered after arriving, so less than a second before that last
//!   arrival: all N still counted when the last one was let go, which therefore waited.
//!   This holds however late a busy machine actually sends a call after letting it go;
//!   a log of departure times (or a token bucket such as governor's GCRA, which lets N
//!   go at once and N more within the first second) does not: with the CPU busy, 40
//!   concurrent AfterShip registrations once put 11 calls into one second,
//! - a concurrency cap (ecomdash: 3 calls in flight),
//! - a 429 gate: after a 429 with `Retry-After` / `X-RateLimit-Reset`, no call leaves
//!   until that moment (waiting when it is near, failing fast when it is far),
//! - a circuit breaker: after `breaker_threshold` consecutive transient failures the
//!   connection fails fast with `Transient { retry_after }` for `breaker_cooldown`, then
//!   lets one probe through; its success closes the breaker, its failure reopens it.
//!
//! The limits live in the connection's client (one per instance), or, for a limit the
//! carrier keeps per account (AfterShip), in [`Limits::shared`] under the account's
//! scope, so that a client rebuilt after a connection change, or a second connection to
//! the same account, counts against the same calls. They are safe to lose: a restarted
//! instance starts with a closed breaker and no calls counted.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
// tokio's clock (std's outside paused tests), so the waits can be tested in virtual time.
use tokio::time::Instant;

use super::CarrierError;

#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    pub rate_per_second: Option<u32>,
    pub max_concurrency: Option<u32>,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    /// Longest a call waits for the rate limiter or a 429 gate before failing fast.
    pub max_wait: Duration,
    /// Added to the one second a call counts after its answer: the carrier's clock and
    /// window edges are not ours (an arrival exactly one second later may still count).
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
            rate_window_slack: Duration::from_millis(50),
        }
    }
}

#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

/// The calls that count against the rate, and the 429 gate.
#[derive(Debug, Default)]
struct RateLog {
    /// At most N entries: `(id, None)` while the call is in flight, `(id, Some(t))` once
    /// it was answered at `t` (it counts until `t + window`).
    calls: Vec<(u64, Option<Instant>)>,
    next_id: u64,
    /// No call leaves before this (the carrier answered 429).
    gate: Option<Instant>,
    /// After a 429: calls answered before this count as answered at it, so that the
    /// calls held at the gate do not all go at once when it opens.
    floor: Option<Instant>,
}

pub struct Limits {
    cfg: LimitsConfig,
    rate: Option<usize>,
    window: Duration,
    log: Mutex<RateLog>,
    /// Woken when a counted call is answered (its slot may free up later).
    answered: Notify,
    slots: Option<Arc<Semaphore>>,
    breaker: Mutex<Breaker>,
}

/// Held for the duration of one HTTP call, until its answer has been read: dropping it
/// records the answer time.
pub struct Permit<'a> {
    limits: &'a Limits,
    call: Option<u64>,
    _slot: Option<OwnedSemaphorePermit>,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.call {
            self.limits.answer(id);
        }
    }
}

/// Breaker state as ops see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// Limits shared by scope (see [`Limits::shared`]).
static SHARED: OnceLock<Mutex<HashMap<String, Arc<Limits>>>> = OnceLock::new();

impl Limits {
    pub fn new(cfg: LimitsConfig) -> Limits {
        let rate = cfg.rate_per_second.and_then(NonZeroU32::new).map(|n| n.get() as usize);
        let slots = cfg.max_concurrency.filter(|n| *n > 0).map(|n| Arc::new(Semaphore::new(n as usize)));
        let window = Duration::from_secs(1) + cfg.rate_window_slack;
        Limits {
            cfg,
            rate,
            window,
            log: Mutex::new(RateLog::default()),
            answered: Notify::new(),
            slots,
            breaker: Mutex::new(Breaker::default()),
        }
    }

    pub fn unlimited() -> Limits {
        Limits::new(LimitsConfig::default())
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.cfg
    }

    /// The limits of `scope` (e.g. one carrier account), created with `cfg` the first
    /// time and kept while any client uses them or calls still count; replaced when the
    /// configuration changed. `scope` is a key, never a secret: hash credentials first.
    pub fn shared(scope: &str, cfg: LimitsConfig) -> Arc<Limits> {
        let registry = SHARED.get_or_init(|| Mutex::new(HashMap::new()));
        let Ok(mut map) = registry.lock() else { return Arc::new(Limits::new(cfg)) };
        map.retain(|_, l| Arc::strong_count(l) > 1 || !l.idle());
        if let Some(l) = map.get(scope).filter(|l| l.cfg == cfg) {
            return l.clone();
        }
        let l = Arc::new(Limits::new(cfg));
        map.insert(scope.to_owned(), l.clone());
        l
    }

    /// No call counts and no gate is closed: forgetting these limits loses nothing.
    fn idle(&self) -> bool {
        let now = Instant::now();
        self.log.lock().is_ok_and(|log| {
            log.gate.is_none_or(|g| g <= now)
                && log.calls.iter().all(|(_, d)| d.is_some_and(|d| d + self.window <= now))
        })
    }

    fn answer(&self, id: u64) {
        if let Ok(mut log) = self.log.lock() {
            let now = Instant::now();
            let at = log.floor.filter(|f| *f > now).unwrap_or(now);
            if let Some(entry) = log.calls.iter_mut().find(|(i, _)| *i == id) {
                entry.1 = Some(at);
            }
        }
        self.answered.notify_waiters();
    }

    /// Wait for a concurrency slot, the 429 gate and the rate; the permit must be held
    /// until the call's answer has been read.
    pub async fn acquire(&self) -> Result<Permit<'_>, CarrierError> {
        let started = Instant::now();
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
        let call = loop {
            // Registered before the log is read, so an answer in between still wakes us.
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            // How long to wait: `Some(d)` until a known moment, `None` until a call in
            // flight is answered.
            let (wait, gated) = {
                let Ok(mut log) = self.log.lock() else { break None };
                let now = Instant::now();
                let window = self.window;
                log.calls.retain(|(_, done)| done.is_none_or(|d| d + window > now));
                match (log.gate.filter(|g| *g > now), self.rate) {
                    (Some(g), _) => (Some(g - now), true),
                    (None, Some(n)) if log.calls.len() >= n => {
                        (log.calls.iter().filter_map(|(_, d)| d.map(|d| d + window - now)).min(), false)
                    }
                    (None, Some(_)) => {
                        let id = log.next_id;
                        log.next_id += 1;
                        log.calls.push((id, None));
                        break Some(id);
                    }
                    (None, None) => break None,
                }
            };
            let left = self.cfg.max_wait.saturating_sub(started.elapsed());
            let too_long = |wait: Option<Duration>| CarrierError::Transient {
                message: if gated {
                    "the carrier asked us to slow down (429)".into()
                } else {
                    "connection rate limit reached".into()
                },
                retry_after: Some(wait.unwrap_or_default().max(Duration::from_secs(1))),
            };
            match wait {
                Some(w) if w > left => return Err(too_long(Some(w))),
                Some(w) => {
                    tokio::select! {
                        () = tokio::time::sleep(w) => {}
                        () = &mut answered => {}
                    }
                }
                None => {
                    if tokio::time::timeout(left, &mut answered).await.is_err() {
                        return Err(too_long(None));
                    }
                }
            }
        };
        Ok(Permit { limits: self, call, _slot: slot })
    }

    /// The carrier answered 429: nothing leaves before `wait` has passed, and the calls
    /// that count now count as answered then, so the ones held at the gate do not all
    /// go at once when it opens.
    pub fn throttled(&self, wait: Duration) {
        if let Ok(mut log) = self.log.lock() {
            let until = Instant::now() + wait;
            if log.gate.is_none_or(|g| g < until) {
                log.gate = Some(until);
            }
            if log.floor.is_none_or(|f| f < until) {
                log.floor = Some(until);
            }
            for (_, done) in log.calls.iter_mut() {
                if let Some(d) = done
                    && *d < until
                {
                    *d = until;
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

    #[tokio::test(start_paused = true)]
    async fn a_call_counts_until_a_second_after_its_answer() {
        let l = Limits::new(LimitsConfig {
            rate_per_second: Some(2),
            rate_window_slack: Duration::ZERO,
            ..Default::default()
        });
        let start = tokio::time::Instant::now();
        // Two calls let go at once, answered only after 3 s (a slow carrier, or a busy
        // machine that sent them late): both may arrive at 2.9 s.
        let a = l.acquire().await.expect("a");
        let b = l.acquire().await.expect("b");
        let third = async {
            let p = l.acquire().await.expect("third");
            (tokio::time::Instant::now() - start, p)
        };
        let answer = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(a);
            tokio::time::sleep(Duration::from_millis(500)).await;
            drop(b);
        };
        let ((waited, _p), ()) = tokio::join!(third, answer);
        // A log of departure times would have let it go at 1 s, next to the two late
        // arrivals; it goes one second after the first answer.
        assert_eq!(waited, Duration::from_secs(4), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_on_calls_in_flight_is_bounded_by_max_wait() {
        let l = Limits::new(LimitsConfig {
            rate_per_second: Some(1),
            max_wait: Duration::from_secs(2),
            ..Default::default()
        });
        let _in_flight = l.acquire().await.expect("first");
        let r = l.acquire().await;
        assert!(
            matches!(&r, Err(CarrierError::Transient { retry_after: Some(_), message }) if message.contains("rate limit")),
            "{:?}",
            r.err()
        );
    }

    #[tokio::test]
    async fn shared_limits_are_one_per_scope_and_config() {
        let cfg = LimitsConfig { rate_per_second: Some(10), ..Default::default() };
        let a = Limits::shared("test:scope-a", cfg.clone());
        let b = Limits::shared("test:scope-a", cfg.clone());
        assert!(Arc::ptr_eq(&a, &b), "same scope, same limits");
        assert!(!Arc::ptr_eq(&a, &Limits::shared("test:scope-b", cfg.clone())));
        let changed = Limits::shared("test:scope-a", LimitsConfig { rate_per_second: Some(5), ..cfg });
        assert!(!Arc::ptr_eq(&a, &changed), "a changed setting takes effect");
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
