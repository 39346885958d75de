//! What every simulator shares: a bounded request log and a queue of injected faults.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Most requests a simulator remembers for `requests()` by default; the oldest are
/// dropped first, so a long sandbox or benchmark run does not grow the simulator.
pub const REQUEST_LOG_CAP: usize = 10_000;

/// Append to a request log, dropping the oldest entries beyond `cap` (0 keeps nothing).
pub fn push_capped<T>(log: &mut VecDeque<T>, item: T, cap: usize) {
    if cap == 0 {
        return;
    }
    while log.len() >= cap {
        log.pop_front();
    }
    log.push_back(item);
}

/// Faults injected for the next N calls of one operation (or of any operation), served
/// first queued, first used.
#[derive(Debug, Clone)]
pub struct Faults<F> {
    queue: VecDeque<(Option<String>, u32, F)>,
}

impl<F> Default for Faults<F> {
    fn default() -> Self {
        Faults { queue: VecDeque::new() }
    }
}

impl<F: Clone> Faults<F> {
    /// The next `count` calls of `op` (of any operation when `None`) answer with `fault`;
    /// `count == 0` clears the pending faults of that selector.
    pub fn fail_next(&mut self, op: Option<&str>, count: u32, fault: F) {
        let op = op.map(str::to_owned);
        if count == 0 {
            self.queue.retain(|(o, _, _)| *o != op);
        } else {
            self.queue.push_back((op, count, fault));
        }
    }

    /// The fault for this call of `op`, if one is pending (and count it down).
    pub fn take(&mut self, op: &str) -> Option<F> {
        let i = self.queue.iter().position(|(o, _, _)| o.as_deref().is_none_or(|o| o == op))?;
        let entry = &mut self.queue[i];
        entry.1 -= 1;
        let fault = entry.2.clone();
        if entry.1 == 0 {
            self.queue.remove(i);
        }
        Some(fault)
    }

    pub fn clear(&mut self) {
        self.queue.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// A latency knob shared by a simulator's handle and its handlers without a lock.
#[derive(Debug, Default)]
pub struct Latency(AtomicU64);

impl Latency {
    pub fn set(&self, latency: Duration) {
        self.0.store(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// Sleep for a simulated latency (no-op for zero).
pub async fn delay(latency: Duration) {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_served_per_operation_in_order_and_count_zero_clears() {
        let mut faults = Faults::default();
        faults.fail_next(Some("SaveOrder"), 2, 'a');
        faults.fail_next(None, 1, 'b');
        assert_eq!(faults.take("Login"), Some('b'));
        assert_eq!(faults.take("Login"), None);
        assert_eq!(faults.take("SaveOrder"), Some('a'));
        faults.fail_next(Some("SaveOrder"), 0, 'x');
        assert_eq!(faults.take("SaveOrder"), None, "count 0 cleared what was left");
        assert!(faults.is_empty());
    }

    #[test]
    fn the_request_log_keeps_the_newest() {
        let mut log = VecDeque::new();
        for i in 0..5 {
            push_capped(&mut log, i, 3);
        }
        assert_eq!(log, [2, 3, 4]);
        push_capped(&mut log, 9, 0);
        assert_eq!(log, [2, 3, 4], "cap 0 keeps nothing new");
    }
}
