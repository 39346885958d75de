//! A queue whose workers take everything waiting at once: the shape both the group
//! commit of inbound scans (`service::inbound::batch`) and the coalesced shipment reads
//! (`service::shipments::reads`) share.
//!
//! `workers` tasks wait on one queue. A worker that is free takes the first item as soon
//! as it arrives, then whatever else is already queued (at most `max`), and hands the
//! group to the lane's work; meanwhile the other workers take the next groups. A quiet
//! gateway so handles each item alone, at once; under load the groups grow by
//! themselves with the queue, and no item waits for a timer.
//!
//! The workers hold the state weakly: they end when the last [`AppState`] handle is
//! dropped (tests build many), and a send then fails, handing the item back.

use std::future::Future;
use std::sync::{Arc, OnceLock, Weak};

use tokio::sync::{Mutex, mpsc};

use crate::app::{AppState, Inner};

/// The queue of one lane.
pub(crate) struct Lane<I> {
    tx: mpsc::Sender<I>,
}

impl<I: Send + 'static> Lane<I> {
    /// The lane kept in `slot` (one per instance), started on first use: `workers`
    /// tasks, each handing groups of at most `max` items to the work `start` makes
    /// (called once, when the lane starts).
    pub(crate) fn get_or_start<W, F>(
        slot: &OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
        state: &AppState,
        workers: usize,
        max: usize,
        start: impl FnOnce() -> W,
    ) -> Arc<Lane<I>>
    where
        W: Fn(AppState, Vec<I>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let any = slot.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<I>(max * workers * 4);
            let rx = Arc::new(Mutex::new(rx));
            let work = start();
            for _ in 0..workers {
                tokio::spawn(worker(Arc::downgrade(&state.0), rx.clone(), max, work.clone()));
            }
            Arc::new(Lane { tx }) as Arc<dyn std::any::Any + Send + Sync>
        });
        any.clone().downcast::<Lane<I>>().expect("a lane slot holds one kind of lane")
    }

    /// Queue `item`; handed back when the workers are gone (the runtime is shutting down).
    pub(crate) async fn send(&self, item: I) -> Result<(), I> {
        self.tx.send(item).await.map_err(|mpsc::error::SendError(item)| item)
    }
}

/// Take what is queued (waiting only for the first), hand it over as one group, repeat.
async fn worker<I, W, F>(state: Weak<Inner>, rx: Arc<Mutex<mpsc::Receiver<I>>>, max: usize, work: W)
where
    W: Fn(AppState, Vec<I>) -> F,
    F: Future<Output = ()>,
{
    loop {
        let mut group = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(first) => group.push(first),
                None => return,
            }
            while group.len() < max {
                match rx.try_recv() {
                    Ok(item) => group.push(item),
                    Err(_) => break,
                }
            }
        }
        let Some(inner) = state.upgrade() else { return };
        work(AppState(inner), group).await;
    }
}
