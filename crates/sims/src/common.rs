//! What every simulator shares: a bounded request log and a fault queue.

use std::time::Duration;

/// Most requests a simulator remembers for `requests()`; the older half is dropped when
/// the log is full, so a long benchmark run does not grow the simulator's memory.
pub const REQUEST_LOG_CAP: usize = 20_000;

/// Append to a request log, dropping its older half when it is full.
pub fn push_capped<T>(log: &mut Vec<T>, item: T) {
    if log.len() >= REQUEST_LOG_CAP {
        log.drain(..REQUEST_LOG_CAP / 2);
    }
    log.push(item);
}

/// Faults injected for the next N calls of one operation (or of any operation).
#[derive(Debug, Clone)]
pub struct FaultRule<F> {
    /// The operation it applies to (`None`: any).
    pub op: Option<String>,
    pub remaining: u32,
    pub fault: F,
}

/// A queue of [`FaultRule`]s, consulted once per call in insertion order.
#[derive(Debug, Clone)]
pub struct Faults<F> {
    rules: Vec<FaultRule<F>>,
}

impl<F> Default for Faults<F> {
    fn default() -> Self {
        Faults { rules: Vec::new() }
    }
}

impl<F: Clone> Faults<F> {
    /// The next `count` calls of `op` (or of any operation) answer with `fault`;
    /// `count == 0` clears the pending faults of that selector.
    pub fn fail_next(&mut self, op: Option<&str>, count: u32, fault: F) {
        let op = op.map(str::to_owned);
        if count == 0 {
            self.rules.retain(|r| r.op != op);
        } else {
            self.rules.push(FaultRule { op, remaining: count, fault });
        }
    }

    /// The fault for this call of `op`, if one is pending (and count it down).
    pub fn take(&mut self, op: &str) -> Option<F> {
        let i = self.rules.iter().position(|r| r.op.as_deref().is_none_or(|o| o == op))?;
        let fault = self.rules[i].fault.clone();
        self.rules[i].remaining -= 1;
        if self.rules[i].remaining == 0 {
            self.rules.remove(i);
        }
        Some(fault)
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }
}

/// Sleep for a simulated latency (no-op for zero).
pub async fn delay(latency: Duration) {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}
