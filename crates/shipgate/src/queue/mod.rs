//! The one claim/lease loop the gateway's Postgres-backed queues run on (docs/architecture.md
//! rule 6: Postgres is the queue): the job queue (`crate::jobs`), webhook deliveries
//! (`crate::webhooks::worker`) and the tracking engine's claims (`crate::tracking`).
//! Each keeps its own SQL in `store/` and implements [`Queue`]; [`Worker`] does the rest.
//!
//! - **Claim in batches when slots free up.** At most `slots` items are held at once
//!   (waiting for their start, running, or waiting to be recorded). A claim asks for as
//!   many as are free, at most `batch`; a busy queue waits until `refill_at` slots are
//!   free, so it claims many rows per statement rather than one per finished item.
//! - **Wake on a hint or poll.** A hint (LISTEN/NOTIFY on a channel, or an in-process
//!   [`Notify`]) only shortens the wait: the loop also polls, so a lost hint only delays.
//! - **Run each item under its lease**, cut off [`LEASE_MARGIN`] (at most a tenth of the
//!   lease) before the lease ends, so that its outcome is recorded while the claim is
//!   still ours. An item may have a start time (the tracking engine's paced slots).
//! - **Record only while holding the claim.** The queue's SQL checks the claim token; an
//!   outcome whose claim was lost (the lease ran out and another worker took the item, or
//!   an operator re-queued it) is dropped and counted in
//!   `shipgate_queue_lost_claims_total{queue}`. Outcomes are written by the item's own
//!   task ([`Recording::Inline`]) or by one recorder in batches ([`Recording::Batched`]).
//! - **Reap and heartbeat.** [`Queue::maintain`] runs at most every `maintain_every`
//!   (the job queue takes back expired leases there; a queue whose claim moves the row's
//!   due time to the end of the lease needs no reaper: an expired claim is simply due
//!   again). [`Queue::heartbeat`] is called on every turn of the loop, at least once per
//!   poll interval even when every slot is busy.
//! - **Shutdown**: stop claiming; items still waiting for their start are given back
//!   ([`Queue::release`]); items in flight finish, for at most `drain`; then the recorder
//!   flushes. An item cut off by the drain is claimed again after its lease: every
//!   queue's work is written to be safe to repeat.
//!
//! What differs stays with each queue: its statements, the tracking engine's
//! per-connection pacing and horizon (inside its claim), the webhook worker's order of
//! due time and batched recording.
//!
//! Why written here rather than taken from a crate: the maintained Postgres queue for
//! Rust, apalis, is built on sqlx 0.8 (see `crate::jobs`) and keeps work in its own
//! table and format, while our three queues are rows of our own tables (jobs, webhook
//! deliveries, the shipments' poll schedule) claimed by statements that also pace
//! (tracking) or join what a delivery needs (webhooks). What they share is this loop.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::Instrument as _;

/// How long before its lease ends an item is cut off (a tenth of the lease when that is
/// shorter), leaving time to record its outcome under the claim.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Rounds a batched recorder tries a failing write before the items' leases are left to
/// expire (they are then claimed and run again).
const RECORD_ROUNDS: u32 = 5;

/// How long an item may run when `lease` is left on its claim.
pub fn cutoff(lease: Duration) -> Duration {
    lease.saturating_sub(LEASE_MARGIN.min(lease / 10))
}

/// What one claim returned.
#[derive(Debug)]
pub struct Batch<T> {
    pub items: Vec<T>,
    /// More may be due now: claim again at once (when slots are free) instead of waiting.
    pub more: bool,
}

/// One item and what running it came to.
#[derive(Debug)]
pub struct Done<I, O> {
    pub item: I,
    pub outcome: O,
    /// How long the run took (cut off included).
    pub took: Duration,
}

/// A queue of claimable work: its statements and what one item does. Items are claimed
/// under a lease and a claim token (in the item); [`Queue::record`] writes outcomes only
/// where the token still matches.
pub trait Queue: Send + Sync + 'static {
    /// Names the queue in logs and metrics.
    const NAME: &'static str;
    type Item: Send + Sync + 'static;
    type Outcome: Send + Sync + 'static;

    /// Claim up to `n` due items (`n` ≥ 1), each under its lease.
    fn claim(&self, n: usize) -> impl Future<Output = anyhow::Result<Batch<Self::Item>>> + Send;

    /// The item's lease, counted from when its claim began.
    fn lease(&self, item: &Self::Item) -> Duration;

    /// When the item may start (a paced slot); None: at once.
    fn starts_at(&self, _item: &Self::Item) -> Option<Instant> {
        None
    }

    /// The span the item runs and is recorded in, with the ids that matter.
    fn span(&self, item: &Self::Item) -> tracing::Span;

    /// Do the work. Cancelled when the lease is about to end ([`Queue::timed_out`]).
    fn run(&self, item: &Self::Item) -> impl Future<Output = Self::Outcome> + Send;

    /// The outcome of a run cut off after `budget`.
    fn timed_out(&self, item: &Self::Item, budget: Duration) -> Self::Outcome;

    /// Write outcomes, each only while its claim is still held. Returns how many were
    /// dropped because the claim was lost. An error leaves the claims to expire.
    fn record(&self, done: &[Done<Self::Item, Self::Outcome>]) -> impl Future<Output = anyhow::Result<usize>> + Send;

    /// Give back an item that never started (shutdown before its start time).
    fn release(&self, _item: &Self::Item) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Upkeep between claims, at most every `maintain_every`: reap expired leases.
    fn maintain(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// How long to sleep when nothing was due (a hint may end it sooner).
    fn idle_wait(&self, poll: Duration) -> impl Future<Output = Duration> + Send {
        async move { poll }
    }

    /// Called on every turn of the loop (`true`) and once stopped (`false`).
    fn heartbeat(&self, _alive: bool) {}
}

/// What wakes an idle worker before its poll interval.
#[derive(Clone)]
pub enum Hint {
    None,
    /// An in-process signal (e.g. the webhook dispatcher created deliveries).
    Notify(Arc<Notify>),
    /// Postgres LISTEN on `channel` (NOTIFY is sent when the enqueueing transaction
    /// commits). A broken listener is re-opened after a poll interval.
    Listen {
        db: PgPool,
        channel: &'static str,
    },
}

/// Where outcomes are written.
#[derive(Debug, Clone, Copy)]
pub enum Recording {
    /// By the item's own task, right after its run (the slot is held until written).
    Inline,
    /// By one recorder task, up to `max` outcomes per [`Queue::record`] call; the slot
    /// is free once the outcome is handed over.
    Batched { max: usize },
}

/// How a worker claims, waits and drains.
#[derive(Clone)]
pub struct Settings {
    /// Most items held at once.
    pub slots: usize,
    /// Most items per claim.
    pub batch: usize,
    /// Claim only once this many slots are free (1: as soon as one is).
    pub refill_at: usize,
    /// Longest idle wait, and the heartbeat period while every slot is busy.
    pub poll: Duration,
    pub hint: Hint,
    pub maintain_every: Duration,
    pub recording: Recording,
    /// Longest wait for items in flight at shutdown.
    pub drain: Duration,
}

/// What a worker did so far (tests, and the lost-claims counter's source).
#[derive(Debug, Default)]
pub struct Stats {
    pub claimed: AtomicU64,
    pub recorded: AtomicU64,
    pub lost: AtomicU64,
    pub released: AtomicU64,
    pub timed_out: AtomicU64,
}

/// What one call of [`Worker::claim_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed {
    pub count: usize,
    pub more: bool,
}

type Sink<Q> = mpsc::Sender<Done<<Q as Queue>::Item, <Q as Queue>::Outcome>>;

/// Runs one [`Queue`]: claims, runs items on their own tasks, records, drains.
pub struct Worker<Q: Queue> {
    queue: Arc<Q>,
    settings: Settings,
    slots: Arc<Semaphore>,
    tasks: JoinSet<()>,
    recorder: Option<(Sink<Q>, JoinHandle<()>)>,
    stop: watch::Receiver<bool>,
    last_maintain: Option<Instant>,
    stats: Arc<Stats>,
}

impl<Q: Queue> Worker<Q> {
    /// A worker that stops claiming when `stop` turns true (a dropped sender does not
    /// stop it). Must be called inside the runtime (a batched recorder starts here).
    pub fn new(queue: Q, mut settings: Settings, stop: watch::Receiver<bool>) -> Worker<Q> {
        settings.slots = settings.slots.max(1);
        settings.batch = settings.batch.max(1);
        settings.refill_at = settings.refill_at.clamp(1, settings.slots);
        let queue = Arc::new(queue);
        let stats = Arc::new(Stats::default());
        let recorder = match settings.recording {
            Recording::Inline => None,
            Recording::Batched { max } => {
                let (tx, rx) = mpsc::channel(settings.slots.saturating_mul(4));
                let handle = tokio::spawn(recorder(queue.clone(), stats.clone(), max.max(1), rx));
                Some((tx, handle))
            }
        };
        Worker {
            slots: Arc::new(Semaphore::new(settings.slots)),
            queue,
            settings,
            tasks: JoinSet::new(),
            recorder,
            stop,
            last_maintain: None,
            stats,
        }
    }

    pub fn queue(&self) -> &Q {
        &self.queue
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Items held now (waiting for their start, running, or being recorded inline).
    pub fn in_flight(&self) -> usize {
        self.settings.slots - self.slots.available_permits()
    }

    /// Claim as many items as slots are free (at most `batch`) and start each on its
    /// own task. The loop's step, callable alone (tests, the tracking engine's rounds).
    pub async fn claim_once(&mut self) -> anyhow::Result<Claimed> {
        while self.tasks.try_join_next().is_some() {}
        let n = self.slots.available_permits().min(self.settings.batch);
        if n == 0 {
            return Ok(Claimed { count: 0, more: false });
        }
        let claimed_at = Instant::now();
        let batch = self.queue.claim(n).await?;
        let count = batch.items.len();
        self.stats.claimed.fetch_add(count as u64, Ordering::Relaxed);
        for item in batch.items {
            self.start(item, claimed_at).await;
        }
        Ok(Claimed { count, more: batch.more })
    }

    async fn start(&mut self, item: Q::Item, claimed_at: Instant) {
        // Claims never ask for more than the free slots, and only this task takes them.
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => match self.slots.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let queue = self.queue.clone();
        let stats = self.stats.clone();
        let mut stop = self.stop.clone();
        let sink = self.recorder.as_ref().map(|(tx, _)| tx.clone());
        self.tasks.spawn(async move {
            let span = queue.span(&item);
            if let Some(at) = queue.starts_at(&item) {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = stopped(&mut stop) => {
                        // Not started: give it back so that another instance takes it now.
                        queue.release(&item).instrument(span).await;
                        stats.released.fetch_add(1, Ordering::Relaxed);
                        drop(permit);
                        return;
                    }
                }
            }
            let done = run_under_lease(&*queue, &stats, item, claimed_at).instrument(span.clone()).await;
            match sink {
                Some(tx) => {
                    let _ = tx.send(done).await;
                }
                None => record_one(&*queue, &stats, done).instrument(span).await,
            }
            drop(permit);
        });
    }

    /// Wait until every item started so far has finished (and, inline, is recorded).
    pub async fn settle(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    async fn maintain_if_due(&mut self) {
        if self.last_maintain.is_none_or(|t| t.elapsed() >= self.settings.maintain_every) {
            self.last_maintain = Some(Instant::now());
            self.queue.maintain().await;
        }
    }

    /// The loop, until `stop` turns true; then drain (see the module doc).
    pub async fn run(mut self) {
        let poll = self.settings.poll;
        let mut hint = HintState::open(self.settings.hint.clone()).await;
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop = self.stop.clone();
        tracing::info!(queue = Q::NAME, slots = self.settings.slots, "worker started");
        loop {
            self.queue.heartbeat(true);
            if *self.stop.borrow() {
                break;
            }
            self.maintain_if_due().await;
            while self.tasks.try_join_next().is_some() {}
            let want = self.settings.refill_at;
            if self.slots.available_permits() < want {
                // Busy: wait for enough free slots; the tick keeps the heartbeat going.
                let slots = self.slots.clone();
                tokio::select! {
                    _ = stopped(&mut stop) => {}
                    p = slots.acquire_many_owned(u32::try_from(want).unwrap_or(u32::MAX)) => drop(p),
                    _ = tick.tick() => {}
                }
                continue;
            }
            match self.claim_once().await {
                Ok(Claimed { more: true, .. }) => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(
                        queue = Q::NAME,
                        error = format!("{e:#}"),
                        "claim failed; retrying after the poll interval"
                    );
                    tokio::select! {
                        _ = stopped(&mut stop) => {}
                        _ = tokio::time::sleep(poll) => {}
                    }
                    continue;
                }
            }
            let wait = self.queue.idle_wait(poll).await;
            tokio::select! {
                _ = stopped(&mut stop) => {}
                _ = hint.wait(poll) => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        self.drain().await;
        self.queue.heartbeat(false);
        tracing::info!(queue = Q::NAME, "worker stopped");
    }

    async fn drain(&mut self) {
        let n = self.tasks.len();
        if n > 0 {
            tracing::info!(queue = Q::NAME, in_flight = n, "worker draining");
        }
        let tasks = &mut self.tasks;
        let all = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(self.settings.drain, all).await.is_err() {
            tracing::warn!(
                queue = Q::NAME,
                left = self.tasks.len(),
                "items did not finish within the drain time; they are claimed again after their lease"
            );
            self.tasks.shutdown().await;
        }
        if let Some((tx, handle)) = self.recorder.take() {
            drop(tx);
            let _ = handle.await;
        }
    }
}

/// Run one claimed item under its lease and record its outcome, in this task: a queue's
/// step called directly (tests, tools). The lease counts from now.
pub async fn run_one<Q: Queue>(queue: &Q, item: Q::Item) -> Arc<Stats> {
    let stats = Arc::new(Stats::default());
    let span = queue.span(&item);
    async {
        let done = run_under_lease(queue, &stats, item, Instant::now()).await;
        record_one(queue, &stats, done).await;
    }
    .instrument(span)
    .await;
    stats
}

/// Resolves when `stop` turns true; never when its sender was merely dropped.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn run_under_lease<Q: Queue>(
    queue: &Q,
    stats: &Stats,
    item: Q::Item,
    claimed_at: Instant,
) -> Done<Q::Item, Q::Outcome> {
    let budget = cutoff(queue.lease(&item).saturating_sub(claimed_at.elapsed()));
    let started = Instant::now();
    let outcome = match tokio::time::timeout(budget, queue.run(&item)).await {
        Ok(o) => o,
        Err(_) => {
            stats.timed_out.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(queue = Q::NAME, budget_ms = budget.as_millis() as u64, "cut off before its lease ends");
            queue.timed_out(&item, budget)
        }
    };
    Done { item, outcome, took: started.elapsed() }
}

async fn record_one<Q: Queue>(queue: &Q, stats: &Stats, done: Done<Q::Item, Q::Outcome>) {
    match queue.record(std::slice::from_ref(&done)).await {
        Ok(lost) => note_recorded::<Q>(stats, 1, lost),
        Err(e) => tracing::warn!(
            queue = Q::NAME,
            error = format!("{e:#}"),
            "could not record an outcome; the item is claimed again after its lease"
        ),
    }
}

fn note_recorded<Q: Queue>(stats: &Stats, written: usize, lost: usize) {
    let lost = lost.min(written);
    stats.recorded.fetch_add((written - lost) as u64, Ordering::Relaxed);
    if lost > 0 {
        stats.lost.fetch_add(lost as u64, Ordering::Relaxed);
        metrics::counter!("shipgate_queue_lost_claims_total", "queue" => Q::NAME).increment(lost as u64);
        tracing::warn!(queue = Q::NAME, lost, "lost the claim before recording; result dropped");
    }
}

/// Writes handed-over outcomes in batches of up to `max`, retrying a failed write a few
/// times; after that the claims expire and the items run again (at-least-once).
async fn recorder<Q: Queue>(
    queue: Arc<Q>,
    stats: Arc<Stats>,
    max: usize,
    mut rx: mpsc::Receiver<Done<Q::Item, Q::Outcome>>,
) {
    let mut buf = Vec::new();
    while let Some(d) = rx.recv().await {
        buf.push(d);
        while buf.len() < max {
            match rx.try_recv() {
                Ok(d) => buf.push(d),
                Err(_) => break,
            }
        }
        for round in 0..RECORD_ROUNDS {
            match queue.record(&buf).await {
                Ok(lost) => {
                    note_recorded::<Q>(&stats, buf.len(), lost);
                    break;
                }
                Err(e) => {
                    tracing::warn!(queue = Q::NAME, error = format!("{e:#}"), round, "recording outcomes failed");
                    tokio::time::sleep(Duration::from_millis(200 << round)).await;
                }
            }
        }
        buf.clear();
    }
}

/// The hint's live part: the LISTEN connection, re-opened when it breaks.
struct HintState {
    hint: Hint,
    listener: Option<PgListener>,
    /// When to try opening the listener again.
    retry_at: Instant,
}

impl HintState {
    async fn open(hint: Hint) -> HintState {
        let listener = match &hint {
            Hint::Listen { db, channel } => listen(db, channel).await,
            _ => None,
        };
        HintState { hint, listener, retry_at: Instant::now() }
    }

    /// Resolves on a hint. Cancel-safe: the caller races it against its poll.
    async fn wait(&mut self, poll: Duration) {
        let HintState { hint, listener, retry_at } = self;
        match hint {
            Hint::None => std::future::pending().await,
            Hint::Notify(n) => n.notified().await,
            Hint::Listen { db, channel } => loop {
                if let Some(l) = listener.as_mut() {
                    if l.recv().await.is_ok() {
                        return;
                    }
                    // Gone: the caller polls meanwhile; listen again after a poll interval.
                    *listener = None;
                    *retry_at = Instant::now() + poll;
                }
                tokio::time::sleep_until(*retry_at).await;
                *listener = listen(db, channel).await;
                if listener.is_none() {
                    *retry_at = Instant::now() + poll;
                }
            },
        }
    }
}

async fn listen(db: &PgPool, channel: &str) -> Option<PgListener> {
    let mut l = PgListener::connect_with(db).await.ok()?;
    l.listen(channel).await.ok()?;
    Some(l)
}

#[cfg(test)]
mod tests;
