//! The account's rate limit, counted the strictest plausible way.
//!
//! 2024-04 allows "10 requests/sec per organization" (AfterShip Tracking API, quickstart
//! "Rate limit": from 2024-07 on the limit is per endpoint instead). We enforce it as a
//! sliding window over the instants calls were *received*: a call is refused (429) when,
//! counting it, more than `limit` calls arrived in the half-open second ending with it.
//! Refused calls count too (they reached the carrier), so no 1-second window, wherever
//! it starts, ever admits more than `limit` calls, and `max_in_window` tells a test how
//! many calls a client sent in its busiest second.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct Limiter {
    limit: u32,
    /// Receipt instants of the calls of the last second, oldest first.
    recent: VecDeque<Instant>,
    /// Most calls received in any 1-second window.
    pub max_in_window: u32,
}

/// The `X-RateLimit-*` values sent with an answer (AfterShip Tracking API, quickstart
/// "Rate limit": Reset is "the Unix timestamp when the rate limit will be reset", Limit
/// "the rate limit ceiling ... per sec", Remaining "the number of requests left for the
/// 1-second window").
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateHeaders {
    pub limit: u32,
    pub remaining: u32,
    pub reset_unix: u64,
}

impl Limiter {
    pub fn new(limit: u32) -> Self {
        Limiter { limit, recent: VecDeque::new(), max_in_window: 0 }
    }

    fn expire(&mut self, now: Instant) {
        while self.recent.front().is_some_and(|&t| now.duration_since(t) >= WINDOW) {
            self.recent.pop_front();
        }
    }

    /// Count a call received at `at`; `false` when it is over the limit.
    pub fn admit(&mut self, at: Instant) -> bool {
        self.expire(at);
        self.recent.push_back(at);
        let count = self.recent.len() as u32;
        self.max_in_window = self.max_in_window.max(count);
        count <= self.limit
    }

    /// The headers for an answer given now, without counting anything.
    pub fn headers(&mut self, now: Instant) -> RateHeaders {
        self.expire(now);
        let used = self.recent.len() as u32;
        // The window frees up when its oldest call leaves it.
        let frees_in = self.recent.front().map_or(Duration::ZERO, |&t| WINDOW.saturating_sub(now.duration_since(t)));
        RateHeaders {
            limit: self.limit,
            remaining: self.limit.saturating_sub(used),
            reset_unix: unix_now_plus(frees_in),
        }
    }

    pub fn reset(&mut self) {
        self.recent.clear();
        self.max_in_window = 0;
    }
}

/// Unix seconds at `now + after`, rounded up (a reset "at" a second boundary).
pub(crate) fn unix_now_plus(after: Duration) -> u64 {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + after;
    t.as_secs() + u64::from(t.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleventh_call_within_a_second_is_refused_and_counted() {
        let mut l = Limiter::new(10);
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(l.admit(t0 + Duration::from_millis(i * 10)));
        }
        assert!(!l.admit(t0 + Duration::from_millis(500)));
        assert_eq!(l.max_in_window, 11);
        assert_eq!(l.headers(t0 + Duration::from_millis(500)).remaining, 0);
    }

    #[test]
    fn a_call_exactly_one_second_later_is_in_a_new_window() {
        let mut l = Limiter::new(1);
        let t0 = Instant::now();
        assert!(l.admit(t0));
        assert!(!l.admit(t0 + Duration::from_millis(999)));
        // The refused call (received at t0+999ms) still counts half a second later.
        assert!(!l.admit(t0 + Duration::from_millis(1500)));
        assert!(l.admit(t0 + Duration::from_millis(2600)));
        assert_eq!(l.max_in_window, 2);
    }
}
