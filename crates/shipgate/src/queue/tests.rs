//! The loop against an in-memory queue, on tokio's paused clock (time jumps ahead when
//! every task waits), so leases, polls and drains of seconds or hours take no real time.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use super::*;

#[derive(Debug, Clone)]
struct Item {
    id: u32,
    start_in: Option<Duration>,
    claimed_at: Instant,
}

#[derive(Default)]
struct Inner {
    due: Mutex<VecDeque<(u32, Option<Duration>)>>,
    work: Duration,
    lease: Duration,
    /// Items whose claim another worker took meanwhile.
    lose: Vec<u32>,
    running: AtomicUsize,
    most_running: AtomicUsize,
    asked: Mutex<Vec<usize>>,
    recorded: Mutex<Vec<(u32, &'static str)>>,
    record_calls: AtomicUsize,
    released: Mutex<Vec<u32>>,
    beats: AtomicUsize,
    /// The span each run and record happened in.
    spans: Mutex<Vec<String>>,
}

impl Inner {
    fn note_span(&self, step: &str) {
        let name = tracing::Span::current().metadata().map_or("none", |m| m.name());
        self.spans.lock().expect("spans").push(format!("{step} in {name}"));
    }
}

#[derive(Clone)]
struct Fake(Arc<Inner>);

impl Fake {
    fn new(items: impl IntoIterator<Item = u32>, work: Duration, lease: Duration) -> Fake {
        Fake(Arc::new(Inner {
            due: Mutex::new(items.into_iter().map(|i| (i, None)).collect()),
            work,
            lease,
            ..Inner::default()
        }))
    }

    fn push(&self, id: u32, start_in: Option<Duration>) {
        self.0.due.lock().expect("due").push_back((id, start_in));
    }

    fn recorded(&self) -> Vec<(u32, &'static str)> {
        self.0.recorded.lock().expect("recorded").clone()
    }

    async fn wait_recorded(&self, n: usize) {
        for _ in 0..100_000 {
            if self.recorded().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("only {} of {n} recorded", self.recorded().len());
    }
}

/// Counts a run as running until it ends or is cancelled.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Queue for Fake {
    const NAME: &'static str = "fake";
    type Item = Item;
    type Outcome = &'static str;

    async fn claim(&self, n: usize) -> anyhow::Result<Batch<Item>> {
        self.0.asked.lock().expect("asked").push(n);
        let mut due = self.0.due.lock().expect("due");
        let take = n.min(due.len());
        let claimed_at = Instant::now();
        let items: Vec<Item> = due.drain(..take).map(|(id, start_in)| Item { id, start_in, claimed_at }).collect();
        Ok(Batch { more: items.len() == n, items })
    }

    fn lease(&self, _: &Item) -> Duration {
        self.0.lease
    }

    fn starts_at(&self, item: &Item) -> Option<Instant> {
        item.start_in.map(|d| item.claimed_at + d)
    }

    fn span(&self, item: &Item) -> tracing::Span {
        tracing::info_span!("fake", id = item.id)
    }

    async fn run(&self, item: &Item) -> &'static str {
        let now = self.0.running.fetch_add(1, Ordering::SeqCst) + 1;
        let _running = Running(&self.0.running);
        self.0.most_running.fetch_max(now, Ordering::SeqCst);
        self.0.note_span("run");
        // Items take a little longer or shorter, so slots free up one by one.
        tokio::time::sleep(self.0.work + Duration::from_millis(u64::from(item.id % 7) * 13)).await;
        "done"
    }

    fn timed_out(&self, _: &Item, _: Duration) -> &'static str {
        "timed out"
    }

    async fn record(&self, done: &[Done<Item, &'static str>]) -> anyhow::Result<usize> {
        self.0.record_calls.fetch_add(1, Ordering::SeqCst);
        self.0.note_span("record");
        let mut lost = 0;
        let mut recorded = self.0.recorded.lock().expect("recorded");
        for d in done {
            if self.0.lose.contains(&d.item.id) {
                lost += 1;
            } else {
                recorded.push((d.item.id, d.outcome));
            }
        }
        Ok(lost)
    }

    async fn release(&self, item: &Item) {
        self.0.released.lock().expect("released").push(item.id);
    }

    fn heartbeat(&self, alive: bool) {
        if alive {
            self.0.beats.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn settings(slots: usize) -> Settings {
    Settings {
        slots,
        batch: slots,
        refill_at: 1,
        poll: Duration::from_secs(1),
        hint: Hint::None,
        maintain_every: Duration::from_secs(5),
        recording: Recording::Inline,
        drain: Duration::from_secs(30),
    }
}

fn spawn(fake: &Fake, settings: Settings) -> (watch::Sender<bool>, JoinHandle<()>) {
    let (stop, rx) = watch::channel(false);
    let worker = Worker::new(fake.clone(), settings, rx);
    (stop, tokio::spawn(worker.run()))
}

#[tokio::test(start_paused = true)]
async fn every_item_runs_once_with_never_more_in_flight_than_slots() {
    let fake = Fake::new(0..50, Duration::from_millis(100), Duration::from_secs(60));
    let (stop, worker) = spawn(&fake, settings(4));
    fake.wait_recorded(50).await;
    stop.send(true).expect("stop");
    worker.await.expect("worker");

    let mut ids: Vec<u32> = fake.recorded().iter().map(|r| r.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..50).collect::<Vec<_>>(), "each item recorded once");
    assert_eq!(fake.0.most_running.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn a_busy_queue_claims_only_once_enough_slots_are_free() {
    let fake = Fake::new(0..100, Duration::from_millis(100), Duration::from_secs(60));
    let (stop, worker) = spawn(&fake, Settings { refill_at: 4, ..settings(8) });
    fake.wait_recorded(100).await;
    stop.send(true).expect("stop");
    worker.await.expect("worker");
    let asked = fake.0.asked.lock().expect("asked").clone();
    assert!(asked.iter().all(|n| *n >= 4), "claims of at least 4: {asked:?}");
}

#[tokio::test(start_paused = true)]
async fn an_item_is_cut_off_before_its_lease_ends() {
    let fake = Fake::new([], Duration::from_secs(3600), Duration::from_secs(10));
    let started = Instant::now();
    let item = Item { id: 1, start_in: None, claimed_at: started };
    let stats = run_one(&fake, item).await;
    assert_eq!(fake.recorded(), vec![(1, "timed out")]);
    assert_eq!(stats.timed_out.load(Ordering::Relaxed), 1);
    // A tenth of a short lease is kept for recording.
    assert_eq!(started.elapsed().as_secs(), 9);
    assert_eq!(cutoff(Duration::from_secs(120)), Duration::from_secs(115), "at most LEASE_MARGIN");
}

#[tokio::test(start_paused = true)]
async fn an_outcome_whose_claim_was_lost_is_counted_and_dropped() {
    let fake = Fake(Arc::new(Inner {
        work: Duration::from_millis(1),
        lease: Duration::from_secs(60),
        lose: vec![7],
        ..Inner::default()
    }));
    let stats = run_one(&fake, Item { id: 7, start_in: None, claimed_at: Instant::now() }).await;
    assert_eq!(stats.lost.load(Ordering::Relaxed), 1);
    assert_eq!(stats.recorded.load(Ordering::Relaxed), 0);
    assert!(fake.recorded().is_empty());
}

#[tokio::test(start_paused = true)]
async fn on_shutdown_waiting_items_are_given_back_and_running_ones_finish() {
    let fake = Fake::new([], Duration::from_secs(2), Duration::from_secs(60));
    fake.push(1, None);
    fake.push(2, Some(Duration::from_secs(10)));
    let (stop, worker) = spawn(&fake, settings(4));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).expect("stop");
    worker.await.expect("worker");
    assert_eq!(fake.recorded(), vec![(1, "done")], "the running one finished and was recorded");
    assert_eq!(*fake.0.released.lock().expect("released"), vec![2], "the waiting one was given back");
}

#[tokio::test(start_paused = true)]
async fn the_drain_is_bounded() {
    let fake = Fake::new([1], Duration::from_secs(3600), Duration::from_secs(7200));
    let (stop, worker) = spawn(&fake, Settings { drain: Duration::from_secs(5), ..settings(4) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = Instant::now();
    stop.send(true).expect("stop");
    worker.await.expect("worker");
    assert_eq!(stopping.elapsed().as_secs(), 5, "stopped after the drain time");
    assert!(fake.recorded().is_empty(), "left for its lease to expire");
    assert_eq!(fake.0.running.load(Ordering::SeqCst), 0, "the run was cancelled");
}

#[tokio::test(start_paused = true)]
async fn a_hint_wakes_an_idle_worker_long_before_its_poll() {
    let fake = Fake::new([], Duration::from_millis(1), Duration::from_secs(60));
    let wake = Arc::new(Notify::new());
    let s = Settings { poll: Duration::from_secs(3600), hint: Hint::Notify(wake.clone()), ..settings(4) };
    let (stop, worker) = spawn(&fake, s);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let pushed = Instant::now();
    fake.push(1, None);
    wake.notify_one();
    fake.wait_recorded(1).await;
    assert!(pushed.elapsed() < Duration::from_secs(1), "{:?}", pushed.elapsed());
    stop.send(true).expect("stop");
    worker.await.expect("worker");
}

#[tokio::test(start_paused = true)]
async fn the_heartbeat_goes_on_while_every_slot_is_busy() {
    let fake = Fake::new([1], Duration::from_secs(20), Duration::from_secs(60));
    let (stop, worker) = spawn(&fake, settings(1));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let beats = fake.0.beats.load(Ordering::SeqCst);
    assert!(beats >= 9, "one per poll interval at least: {beats}");
    stop.send(true).expect("stop");
    worker.await.expect("worker");
}

#[tokio::test(start_paused = true)]
async fn batched_recording_writes_many_outcomes_per_call() {
    let fake = Fake::new(0..64, Duration::from_millis(5), Duration::from_secs(60));
    let (stop, worker) = spawn(&fake, Settings { recording: Recording::Batched { max: 1000 }, ..settings(64) });
    fake.wait_recorded(64).await;
    stop.send(true).expect("stop");
    worker.await.expect("worker");
    let calls = fake.0.record_calls.load(Ordering::SeqCst);
    assert!(calls < 64, "{calls} writes for 64 outcomes");
}

#[tokio::test(start_paused = true)]
async fn an_item_runs_and_is_recorded_in_its_span() {
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry());
    // Other tests run on threads without a subscriber: a second live dispatcher makes
    // tracing-core ask every registered one for a callsite's interest (see the carrier
    // call span test in carriers/exchange.rs), then the cached interest is recomputed.
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());
    tracing::callsite::rebuild_interest_cache();
    let fake = Fake::new([1], Duration::from_millis(1), Duration::from_secs(60));
    let (stop, worker) = spawn(&fake, settings(2));
    fake.wait_recorded(1).await;
    stop.send(true).expect("stop");
    worker.await.expect("worker");
    assert_eq!(*fake.0.spans.lock().expect("spans"), ["run in fake", "record in fake"]);
}
