//! The simulator's memory: accepted items, queued faults, calls in flight per key pair, the
//! request log and counters.

use std::collections::{HashMap, VecDeque};

use super::{EcomdashSim, EcomdashStats, RecordedRequest, SimFault, SubmittedItem};

#[derive(Default)]
pub(crate) struct State {
    pub submitted: Vec<SubmittedItem>,
    pub faults: VecDeque<(u32, SimFault)>,
    /// shipment id → (message, submissions still to fail)
    pub item_faults: HashMap<i64, (String, u32)>,
    /// (subscription key, integration key) → calls in flight
    pub in_flight: HashMap<(String, String), usize>,
    pub requests: VecDeque<RecordedRequest>,
    pub stats: EcomdashStats,
}

impl State {
    pub fn take_fault(&mut self) -> Option<SimFault> {
        let (remaining, fault) = self.faults.front_mut()?;
        *remaining -= 1;
        let fault = fault.clone();
        if *remaining == 0 {
            self.faults.pop_front();
        }
        self.stats.faults_injected += 1;
        Some(fault)
    }

    /// The per-item failure queued for this shipment, if any (one use).
    pub fn take_item_fault(&mut self, shipment_id: i64) -> Option<String> {
        let (message, remaining) = self.item_faults.get_mut(&shipment_id)?;
        *remaining -= 1;
        let message = message.clone();
        if *remaining == 0 {
            self.item_faults.remove(&shipment_id);
        }
        Some(message)
    }
}

/// A call counted in flight for its key pair until dropped, also when the client goes away
/// and the handler's future is dropped half-way.
pub(crate) struct InFlight {
    sim: EcomdashSim,
    key: (String, String),
}

impl InFlight {
    /// Enters the key pair's window, or `None` when `max` calls are already in it.
    pub fn enter(sim: &EcomdashSim, key: (String, String), max: usize) -> Option<InFlight> {
        let mut st = sim.lock();
        let n = st.in_flight.entry(key.clone()).or_default();
        if *n >= max {
            st.stats.throttled += 1;
            return None;
        }
        *n += 1;
        let now = *n;
        st.stats.max_in_flight = st.stats.max_in_flight.max(now);
        drop(st);
        Some(InFlight { sim: sim.clone(), key })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.sim.lock();
        if let Some(n) = st.in_flight.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.in_flight.remove(&self.key);
            }
        }
    }
}
