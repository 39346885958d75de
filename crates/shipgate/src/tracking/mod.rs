//! The tracking engine: every non-terminal shipment on a connection whose carrier
//! refreshes by polling (the carriers table of docs/product.md) is refreshed on a schedule that
//! adapts to its state ([`schedule`]), spread over time, within each connection's rate
//! limit, across any number of instances.
//!
//! - **Schedule.** `shipments.poll_next_at` (migration 20261122000010). Its trigger puts a
//!   shipment on the schedule when it becomes trackable and takes it off at a terminal
//!   state, whoever writes the row; the engine sets the next time after each poll.
//! - **Claim.** Each round an instance claims due shipments per connection with
//!   `FOR UPDATE SKIP LOCKED`, moving their `poll_next_at` to the end of a lease and
//!   stamping a claim token in the same statement: no other instance takes them, and a
//!   dead instance's claims are due again when the lease ends (docs/architecture.md rule 6).
//!   A poll's result is written only while the token is still on the row. The loop
//!   (rounds, slots, cut-off before the lease ends, drain) is the one every queue runs,
//!   [`crate::queue`]; the pacing and the horizon are this engine's claim.
//! - **Pace across instances.** A connection's calls are spaced `cost / rate` seconds
//!   apart through one Postgres row per connection holding the next free call slot (a
//!   GCRA): a claim takes consecutive slots under the row lock, at most `horizon` ahead,
//!   and each refresh waits for its slot. However many instances run, together they send
//!   at most `rate × rate_share` calls per second. The in-process limiter
//!   (`carriers::limits`) stays as the second guard, and a 429 still backs off.
//! - **Expiry.** A polled shipment whose status has not changed for `max_age` becomes
//!   `expired` (history + `shipment.status_changed`), which ends its polling.
//! - **Memory** is bounded by `batch_size` and `max_outstanding`, never by the number of
//!   active shipments: nothing loads the schedule as a whole.
//!
//! Hand-written rather than a crate: the pace must be shared through Postgres (instances
//! are stateless, docs/architecture.md rule 12), which no in-process limiter does.

pub mod schedule;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

use crate::app::AppState;
use crate::carriers::{self, CarrierError};
use crate::config::TrackingConfig;
use crate::domain::Status;
use crate::queue::{Batch, Done, Hint, Queue, Recording, Settings, Worker};
use crate::service::connections::note_connection_outcome;
use crate::service::refresh::{self, Refreshed};
use crate::service::{Error, Refusal};
use crate::store::connections::ConnectionRow;
use crate::store::tracking::Claimed;
use crate::store::{self, Actor};
use schedule::{PollState, next_poll};

/// How often expiry and the backlog gauge run (both scan more than the due index).
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);
const GAUGE_EVERY: Duration = Duration::from_secs(5);
/// Most shipments expired per statement batch.
const EXPIRE_BATCH: i64 = 500;

/// HTTP calls one refresh makes, which is what a carrier's rate limit counts (its
/// descriptor's `polling`; e.g. a read of the tracking and of its last checkpoint).
pub fn calls_per_refresh(carrier: &str) -> u32 {
    carriers::get(carrier).and_then(|c| c.polling).map_or(1, |p| p.calls_per_refresh)
}

/// The polling pace of a connection, calls per second: its configured or documented rate
/// limit times `rate_share`, or the default pace when it has none.
pub fn pace_of(cfg: &TrackingConfig, connection: &ConnectionRow) -> f64 {
    match carriers::limits_for(&connection.carrier, &connection.settings.0).rate_per_second {
        Some(rate) if rate > 0 => f64::from(rate) * cfg.rate_share,
        _ => cfg.default_rate_per_second,
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub claimed: usize,
    pub expired: usize,
}

/// The tracking engine: the claim/lease loop ([`crate::queue`]) over the poll schedule.
pub struct Engine {
    worker: Worker<Polls>,
}

impl Engine {
    /// An engine on `state`'s database; it stops claiming when `shutdown` turns true.
    /// Publishes the first-poll delay for the schedule trigger.
    pub async fn new(state: AppState, shutdown: watch::Receiver<bool>) -> anyhow::Result<Engine> {
        let cfg = state.config.tracking.clone();
        let mut conn = state.db.acquire().await?;
        store::tracking::save_settings(&mut conn, cfg.first_poll.as_secs_f64(), cfg.jitter).await?;
        // Which carriers are polled, from the registry (their shipments follow a change).
        crate::service::registry::publish(&mut conn).await?;
        drop(conn);
        let slots = cfg.max_outstanding as usize;
        let settings = Settings {
            slots,
            batch: slots,
            refill_at: 1,
            // One claim per round: the pace, not free slots, decides how much is claimed.
            poll: cfg.round,
            hint: Hint::None,
            maintain_every: Duration::ZERO,
            recording: Recording::Inline,
            drain: state.config.shutdown_drain,
        };
        let polls = Polls { state, cfg, shutdown: shutdown.clone(), housekeeping: Mutex::new(Housekeeping::default()) };
        Ok(Engine { worker: Worker::new(polls, settings, shutdown) })
    }

    /// Claims held by this instance (waiting for their slot or in flight).
    pub fn outstanding(&self) -> usize {
        self.worker.in_flight()
    }

    /// One round: expire stale shipments (at most once a minute), then claim due
    /// shipments of every connection within its pace and start their refreshes.
    pub async fn run_round(&mut self) -> anyhow::Result<Round> {
        let expired = self.worker.queue().housekeeping().await?;
        let claimed = self.worker.claim_once().await?.count;
        Ok(Round { claimed, expired })
    }

    /// Wait until every claimed refresh has finished (tests; shutdown drain).
    pub async fn settle(&mut self) {
        self.worker.settle().await;
    }

    /// Rounds until shutdown, then drain: refreshes in flight finish, claims still
    /// waiting for their slot are given back.
    pub async fn run(self) {
        self.worker.run().await;
    }
}

/// Start the engine on its own task.
pub fn spawn(state: AppState, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match Engine::new(state, shutdown).await {
            Ok(engine) => engine.run().await,
            Err(e) => tracing::error!(error = format!("{e:#}"), "tracking engine could not start"),
        }
    })
}

/// When expiry and the backlog gauge last ran.
#[derive(Default)]
struct Housekeeping {
    expired_at: Option<Instant>,
    gauged_at: Option<Instant>,
}

/// The poll schedule as the claim/lease loop sees it; its statements are in
/// `store::tracking`.
struct Polls {
    state: AppState,
    cfg: TrackingConfig,
    shutdown: watch::Receiver<bool>,
    housekeeping: Mutex<Housekeeping>,
}

/// One claimed shipment: its connection, the claim, and its call slot.
struct Poll {
    connection: Arc<ConnectionRow>,
    claimed: Claimed,
    token: Uuid,
    starts_at: tokio::time::Instant,
}

/// What a refresh decided: when to poll next and the failures so far. Nothing to write
/// (the shipment is gone) and an error both leave the claim to its lease.
type PollOutcome = anyhow::Result<Option<Next>>;

struct Next {
    after: Duration,
    failures: i32,
}

impl Polls {
    /// Expire stale shipments (at most once a minute) and update the backlog gauge (at
    /// most every 5 s); both scan more than the due index. Returns how many expired.
    async fn housekeeping(&self) -> anyhow::Result<usize> {
        let (expire, gauge) = {
            let mut h = self.housekeeping.lock().map_err(|_| anyhow::anyhow!("housekeeping lock poisoned"))?;
            let expire = h.expired_at.is_none_or(|t| t.elapsed() >= HOUSEKEEPING_EVERY);
            let gauge = h.gauged_at.is_none_or(|t| t.elapsed() >= GAUGE_EVERY);
            if expire {
                h.expired_at = Some(Instant::now());
            }
            if gauge {
                h.gauged_at = Some(Instant::now());
            }
            (expire, gauge)
        };
        let expired = if expire { expire_stale(&self.state, &self.cfg).await? } else { 0 };
        if gauge {
            let mut conn = self.state.db.acquire().await?;
            let due = store::tracking::due_count(&mut conn).await?;
            metrics::gauge!("shipgate_tracking_due_backlog").set(due as f64);
        }
        Ok(expired)
    }

    /// Claim what the connection's pace allows (at most `room`), each with its slot.
    async fn claim_connection(&self, connection: Arc<ConnectionRow>, room: usize) -> anyhow::Result<Vec<Poll>> {
        let slot = f64::from(calls_per_refresh(&connection.carrier)) / pace_of(&self.cfg, &connection);
        let mut tx = store::begin(&self.state.db).await?;
        let (start, db_now) = store::tracking::lock_pace(&mut tx, &connection.tenant_id, &connection.id).await?;
        let ahead = (start - db_now).to_std().unwrap_or_default();
        let free = self.cfg.horizon.saturating_sub(ahead).as_secs_f64() / slot;
        let limit = (free.floor() as usize).min(room).min(self.cfg.batch_size as usize);
        if limit == 0 {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let token = Uuid::new_v4();
        let lease = (self.cfg.horizon + self.cfg.lease).as_secs_f64();
        let claimed = store::tracking::claim_due(
            &mut tx,
            &connection.tenant_id,
            &connection.id,
            limit as i64,
            lease,
            token,
            start,
            slot,
        )
        .await?;
        tx.commit().await?;
        let now = tokio::time::Instant::now();
        Ok(claimed
            .into_iter()
            .map(|c| Poll {
                starts_at: now + ahead + Duration::from_secs_f64(slot * c.ord as f64),
                connection: connection.clone(),
                claimed: c,
                token,
            })
            .collect())
    }
}

impl Queue for Polls {
    const NAME: &'static str = "tracking";
    type Item = Poll;
    type Outcome = PollOutcome;

    /// Due shipments of every connection, each connection within its pace.
    async fn claim(&self, n: usize) -> anyhow::Result<Batch<Poll>> {
        let connections = {
            let mut conn = self.state.db.acquire().await?;
            store::tracking::due_connections(&mut conn).await?
        };
        let mut polls = Vec::new();
        for connection in connections {
            if *self.shutdown.borrow() || polls.len() >= n {
                break;
            }
            polls.extend(self.claim_connection(Arc::new(connection), n - polls.len()).await?);
        }
        // Outstanding claims: those held before this round (slots not free) and these.
        let outstanding = (self.cfg.max_outstanding as usize).saturating_sub(n) + polls.len();
        metrics::gauge!("shipgate_tracking_outstanding").set(outstanding as f64);
        // Rounds, not a refill on every free slot: the pace decides what is due.
        Ok(Batch { items: polls, more: false })
    }

    fn lease(&self, _: &Poll) -> Duration {
        self.cfg.horizon + self.cfg.lease
    }

    fn starts_at(&self, p: &Poll) -> Option<tokio::time::Instant> {
        Some(p.starts_at)
    }

    fn span(&self, p: &Poll) -> tracing::Span {
        tracing::info_span!("tracking_refresh", tenant_id = %p.claimed.tenant_id, shipment_id = %p.claimed.id,
            connection_id = %p.connection.id, carrier = %p.connection.carrier)
    }

    async fn run(&self, p: &Poll) -> PollOutcome {
        self.refresh(p).await
    }

    fn timed_out(&self, _: &Poll, budget: Duration) -> PollOutcome {
        Err(anyhow::anyhow!("refresh cut off after {} s, before its lease ends", budget.as_secs()))
    }

    async fn record(&self, done: &[Done<Poll, PollOutcome>]) -> anyhow::Result<usize> {
        let mut lost = 0;
        for d in done {
            let c = &d.item.claimed;
            match &d.outcome {
                Ok(None) => {}
                Ok(Some(next)) => {
                    let mut conn = self.state.db.acquire().await?;
                    let kept = store::tracking::finish(
                        &mut conn,
                        &c.tenant_id,
                        &c.id,
                        d.item.token,
                        next.after.as_secs_f64(),
                        next.failures,
                    )
                    .await?;
                    lost += usize::from(!kept);
                }
                Err(e) => {
                    metrics::counter!("shipgate_tracking_polls_total", "outcome" => "error").increment(1);
                    // The claim stays until its lease ends, then the shipment is due again.
                    tracing::warn!(error = format!("{e:#}"), "tracking poll failed");
                }
            }
        }
        Ok(lost)
    }

    /// Not started (shutdown before its slot): give it back so another instance polls
    /// it now.
    async fn release(&self, p: &Poll) {
        let released = async {
            let mut conn = self.state.db.acquire().await?;
            store::tracking::release(&mut conn, &p.claimed.tenant_id, &p.claimed.id, p.token).await
        };
        if let Err(e) = released.await {
            tracing::warn!(error = %e, "could not release tracking claim");
        }
    }

    async fn maintain(&self) {
        if let Err(e) = self.housekeeping().await {
            tracing::warn!(error = format!("{e:#}"), "tracking housekeeping failed");
        }
    }
}

impl Polls {
    /// Refresh one shipment and decide when it is polled next.
    async fn refresh(&self, p: &Poll) -> PollOutcome {
        let c = &p.claimed;
        let row = {
            let mut conn = self.state.db.acquire().await?;
            store::shipments::get(&mut conn, &c.tenant_id, &c.id).await?
        };
        let Some(row) = row else { return Ok(None) };
        let before = (row.status, row.subtag.clone());
        let result = refresh::refresh(&self.state, &p.connection, &row, &Actor::Poller).await;
        let (outcome, after, failures, retry_after) = match &result {
            Ok(r) => {
                let now = r.status();
                let changed = now != (before.0, before.1.as_deref());
                let outcome = match r {
                    Refreshed::Booked(..) => "booked",
                    Refreshed::Tracked(_) if changed => "changed",
                    Refreshed::Tracked(_) => "unchanged",
                };
                (outcome, now.0, 0, None)
            }
            Err(Error::Carrier { error: e, .. }) => {
                if matches!(e, CarrierError::Misconfigured { .. }) {
                    // Stop polling the connection until someone fixes it (as the API does).
                    note_connection_outcome(&self.state, &p.connection, Some(e)).await;
                }
                let retry_after = match e {
                    CarrierError::Transient { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let outcome = if e.is_transient() { "transient" } else { "failed" };
                (outcome, row.status, c.poll_failures.saturating_add(1), retry_after)
            }
            Err(Error::Refused { refusal: Refusal::BookingFailed, .. }) => {
                ("failed", row.status, c.poll_failures.saturating_add(1), None)
            }
            Err(e) => return Err(anyhow::anyhow!("refresh: {e}")),
        };
        metrics::counter!("shipgate_tracking_polls_total", "outcome" => outcome).increment(1);
        let idle = if after != before.0 {
            Duration::ZERO
        } else {
            (chrono::Utc::now() - c.status_changed_at).to_std().unwrap_or_default()
        };
        let next =
            next_poll(&self.cfg, &PollState { status: after, idle, failures, retry_after }, rand::random::<f64>());
        Ok(Some(Next { after: next, failures }))
    }
}

/// Expire polled shipments whose status has not changed for `max_age`: status
/// `expired` (subtag Expired_001, AfterShip's "no further updates"), a history entry and
/// a `shipment.status_changed` event, one transaction per batch. Returns how many.
pub async fn expire_stale(state: &AppState, cfg: &TrackingConfig) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let mut tx = store::begin(&state.db).await?;
        let stale = store::tracking::lock_stale(&mut tx, cfg.max_age.as_secs_f64(), EXPIRE_BATCH).await?;
        if stale.is_empty() {
            tx.rollback().await?;
            break;
        }
        for (tenant, id) in &stale {
            let Some(before) = store::shipments::get(&mut tx, tenant, id).await? else { continue };
            let subtag = "Expired_001";
            store::shipments::set_status(&mut tx, tenant, id, Status::Expired, Some(subtag), None, None).await?;
            store::shipments::insert_history(
                &mut tx,
                tenant,
                id,
                &Actor::System,
                "status_changed",
                &json!({"from": before.status, "from_subtag": before.subtag, "to": Status::Expired,
                        "to_subtag": subtag, "reason": "no status change within the tracking max age",
                        "max_age_days": cfg.max_age.as_secs_f64() / 86400.0}),
            )
            .await?;
            let after = store::shipments::get(&mut tx, tenant, id).await?.ok_or(sqlx::Error::RowNotFound)?;
            let event = crate::service::events::shipment_event(
                "shipment.status_changed",
                &after,
                json!({"previous_status": before.status, "previous_subtag": before.subtag}),
            )?;
            store::events::emit(&mut tx, tenant, id, &[event]).await?;
        }
        tx.commit().await?;
        total += stale.len();
        metrics::counter!("shipgate_tracking_expired_total").increment(stale.len() as u64);
        if (stale.len() as i64) < EXPIRE_BATCH {
            break;
        }
    }
    if total > 0 {
        tracing::info!(expired = total, "stale shipments expired");
    }
    Ok(total)
}
