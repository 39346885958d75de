//! A capped request log and a fault queue. The crate's brief names a shared
//! `src/common.rs` for these; it does not exist on this branch, and other simulators
//! are being written beside this one, so this module keeps its own copy rather than
//! create a file that every simulator branch would add at once.

use std::collections::VecDeque;

/// How many carrier calls the request log keeps; the oldest are dropped first so a
/// long sandbox run or a load test cannot grow the simulator without bound.
pub(crate) const REQUEST_LOG_CAP: usize = 10_000;

/// Appends `item`, dropping the oldest entries beyond `cap`.
pub(crate) fn push_capped<T>(log: &mut VecDeque<T>, item: T, cap: usize) {
    while log.len() >= cap.max(1) {
        log.pop_front();
    }
    log.push_back(item);
}

/// Faults queued for the next calls: each entry applies to `count` calls of one
/// operation (or of any operation when `op` is `None`), first queued first used.
#[derive(Debug)]
pub(crate) struct Faults<F> {
    queue: VecDeque<(Option<String>, u32, F)>,
}

impl<F> Default for Faults<F> {
    fn default() -> Self {
        Self { queue: VecDeque::new() }
    }
}

impl<F: Clone> Faults<F> {
    pub(crate) fn push(&mut self, op: Option<&str>, count: u32, fault: F) {
        if count > 0 {
            self.queue.push_back((op.map(str::to_owned), count, fault));
        }
    }

    /// The fault the next call of `op` must suffer, if any; uses up one of its count.
    pub(crate) fn take(&mut self, op: &str) -> Option<F> {
        let index = self.queue.iter().position(|(want, _, _)| want.as_deref().is_none_or(|w| w == op))?;
        let entry = &mut self.queue[index];
        entry.1 -= 1;
        let fault = entry.2.clone();
        if entry.1 == 0 {
            self.queue.remove(index);
        }
        Some(fault)
    }

    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_to_their_operation_and_count() {
        let mut faults = Faults::default();
        faults.push(Some("SaveOrder"), 2, 'a');
        faults.push(None, 1, 'b');
        assert_eq!(faults.take("Login"), Some('b'));
        assert_eq!(faults.take("Login"), None);
        assert_eq!(faults.take("SaveOrder"), Some('a'));
        assert_eq!(faults.take("SaveOrder"), Some('a'));
        assert_eq!(faults.take("SaveOrder"), None);
    }

    #[test]
    fn the_log_keeps_the_newest_entries() {
        let mut log = VecDeque::new();
        for i in 0..5 {
            push_capped(&mut log, i, 3);
        }
        assert_eq!(log.into_iter().collect::<Vec<_>>(), vec![2, 3, 4]);
    }
}
