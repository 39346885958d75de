//! The dispatcher and the delivery worker (docs/architecture.md rule 6; svix's worker and
//! hook0's output-worker were the models).
//!
//! - **Dispatcher**: fans new events out into deliveries, polling every
//!   `webhook_poll_interval_ms`: one cursor over (writing transaction, seq) moves past
//!   the events of transactions that have all ended ([`store::webhooks::dispatch`]); no
//!   event row is updated. An open transaction anywhere in the cluster holds back the
//!   events written after it began (never loses one): the lag is the gauge
//!   `shipgate_webhook_dispatch_lag_seconds`, and a warning names that transaction. No
//!   NOTIFY on `events`: a notifying commit takes Postgres's global notify-queue lock,
//!   which serialized the push ingest (QUALITY P1: 461 → 746 pushes/s without it,
//!   P2 p99 30 → 17 ms, bench/README.md); the poll is one indexed query.
//! - **Delivery worker**: claims due deliveries in order of due time under a lease,
//!   sends each with at most `webhook_concurrency` in flight, and hands results to a
//!   recorder that writes them in batches. No transaction is open across an HTTP call:
//!   the claim commits before sending, the record is a separate statement that only
//!   lands while the claim token still matches. The loop is the one every queue runs
//!   ([`crate::queue`]); what is the delivery queue's own is here: the claim in order
//!   of due time, the idle wait until the next delivery is due, the signed send, the
//!   retry schedule, and the batched write of attempts.
//! - Shutdown: stop claiming, let in-flight attempts finish (up to the drain time),
//!   flush their results.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::ssrf::SsrfBlocked;
use crate::app::AppState;
use crate::crypto::Purpose;
use crate::queue::{Batch, Done, Hint, Queue, Recording, Settings, Worker, stopped};
use crate::store;
use crate::store::webhooks::{Claimed, Outcome};

/// Events fanned out per dispatcher statement.
const DISPATCH_BATCH: i64 = 500;
/// Response bytes kept per attempt.
const EXCERPT_BYTES: usize = 1024;

/// The running webhook workers; [`Workers::shutdown`] drains them.
pub struct Workers {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Stop claiming, finish in-flight deliveries and record them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for h in self.handles {
            let _ = h.await;
        }
    }
}

/// Start the dispatcher and the delivery worker.
pub fn spawn(state: AppState) -> anyhow::Result<Workers> {
    let (stop, stop_rx) = watch::channel(false);
    let wake = Arc::new(Notify::new());
    let client = super::client(&state.config.webhooks)?;
    let handles = vec![
        tokio::spawn(dispatcher(state.clone(), wake.clone(), stop_rx.clone())),
        tokio::spawn(delivery_worker(state, client, wake, stop_rx)),
    ];
    Ok(Workers { stop, handles })
}

/// What one dispatch round did.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// Events fanned out, and the deliveries created for them.
    pub events: i64,
    pub deliveries: i64,
    /// Another instance held the dispatch cursor: this round did nothing.
    pub skipped: bool,
    /// How long the next event still to fan out has waited (zero when none waits).
    pub lag: Duration,
    /// The id of the oldest transaction that was open when the round began: events
    /// written after it began wait until it ends.
    pub oldest_open_xid: String,
}

/// Fan out one batch of the events whose writing transactions have all ended, in one
/// transaction that holds the dispatch cursor (see [`store::webhooks::dispatch`]).
pub async fn dispatch_once(state: &AppState) -> anyhow::Result<Round> {
    let max_attempts = i32::try_from(state.config.webhooks.retry_schedule.len()).unwrap_or(i32::MAX - 1) + 1;
    let mut tx = store::begin(&state.db).await?;
    let Some(cursor) = store::webhooks::lock_dispatch_cursor(&mut tx).await? else {
        return Ok(Round { skipped: true, ..Round::default() });
    };
    let done = store::webhooks::dispatch(&mut tx, &cursor, DISPATCH_BATCH, max_attempts).await?;
    let lag = store::webhooks::dispatch_lag(&mut tx, &done.txid, done.seq).await?.unwrap_or(0.0);
    tx.commit().await?;
    Ok(Round {
        events: done.events,
        deliveries: done.deliveries,
        skipped: false,
        lag: Duration::try_from_secs_f64(lag).unwrap_or_default(),
        oldest_open_xid: cursor.horizon,
    })
}

/// A dispatch lag above this, with no backlog to drain, is logged (at most once per
/// [`LAG_WARN_EVERY`]).
const LAG_WARN: Duration = Duration::from_secs(60);
const LAG_WARN_EVERY: Duration = Duration::from_secs(60);

/// Report a round's lag: the gauge, and a warning when an open transaction holds events back.
fn note_lag(round: &Round, warned_at: &mut Option<Instant>) {
    if round.skipped {
        return;
    }
    metrics::gauge!("shipgate_webhook_dispatch_lag_seconds").set(round.lag.as_secs_f64());
    if round.lag >= LAG_WARN && round.events < DISPATCH_BATCH && warned_at.is_none_or(|t| t.elapsed() >= LAG_WARN_EVERY)
    {
        *warned_at = Some(Instant::now());
        tracing::warn!(
            lag_seconds = round.lag.as_secs(),
            oldest_open_xid = %round.oldest_open_xid,
            "webhook dispatch is waiting for an open transaction: events written after it began are fanned out when it ends \
             (find it with: SELECT pid, xact_start, state FROM pg_stat_activity WHERE backend_xid = '<oldest_open_xid>'::xid8::xid)"
        );
    }
}

/// How often rotated-out secrets whose overlap ended are forgotten.
const SECRET_PURGE_EVERY: Duration = Duration::from_secs(60);

async fn dispatcher(state: AppState, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let poll = state.config.webhooks.poll_interval;
    let mut purged_at: Option<Instant> = None;
    let mut warned_at: Option<Instant> = None;
    while !*stop.borrow() {
        if purged_at.is_none_or(|t| t.elapsed() >= SECRET_PURGE_EVERY) {
            purged_at = Some(Instant::now());
            // Expired ones no longer sign (the claim ignores them); this only stops
            // keeping them. Safe on every instance.
            let purged =
                async { store::webhooks::drop_expired_previous_secrets(&mut *state.db.acquire().await?).await };
            if let Err(e) = purged.await {
                tracing::warn!(error = %e, "dropping expired previous webhook secrets failed");
            }
        }
        match dispatch_once(&state).await {
            Ok(round) => {
                note_lag(&round, &mut warned_at);
                if round.deliveries > 0 {
                    wake.notify_one();
                }
                if round.events == DISPATCH_BATCH {
                    continue; // more waiting
                }
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "webhook dispatch failed"),
        }
        tokio::select! {
            // A dropped `Workers` handle does not stop it: callers that do not keep it
            // want the workers to run for the process.
            _ = stopped(&mut stop) => break,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// What the recorder needs besides the row update.
struct Recorded {
    outcome: Outcome,
    /// 410 Gone: disable the endpoint.
    gone: bool,
}

/// A claimed delivery and the claim's token.
struct Delivery {
    row: Claimed,
    token: Uuid,
}

/// The delivery queue as the claim/lease loop ([`crate::queue`]) sees it; its
/// statements are in `store::webhooks`.
struct Deliveries {
    state: AppState,
    client: reqwest::Client,
    guard: super::ssrf::Guard,
    lease: Duration,
}

impl Queue for Deliveries {
    const NAME: &'static str = "webhooks";
    type Item = Delivery;
    type Outcome = Recorded;

    async fn claim(&self, n: usize) -> anyhow::Result<Batch<Delivery>> {
        let token = Uuid::new_v4();
        let mut conn = self.state.db.acquire().await?;
        let mut claimed =
            store::webhooks::claim_due(&mut conn, n as i64, self.lease.as_secs_f64() * 1e3, token).await?;
        drop(conn);
        // RETURNING has no order: send in order of due time.
        claimed.sort_by_key(|c| (c.due_at, c.seq));
        // Claim again at once after any delivery: more may have become due meanwhile.
        let more = !claimed.is_empty();
        Ok(Batch { items: claimed.into_iter().map(|row| Delivery { row, token }).collect(), more })
    }

    fn lease(&self, _: &Delivery) -> Duration {
        self.lease
    }

    fn span(&self, d: &Delivery) -> tracing::Span {
        let c = &d.row;
        tracing::info_span!("webhook_attempt", tenant_id = %c.tenant_id, delivery_id = %c.id,
            endpoint_id = %c.endpoint_id, event_type = %c.event_type, attempt = c.attempt)
    }

    async fn run(&self, d: &Delivery) -> Recorded {
        attempt(&self.state, &self.client, &self.guard, d).await
    }

    fn timed_out(&self, d: &Delivery, budget: Duration) -> Recorded {
        // Only a send that outlives its own timeouts gets here: count it as one.
        let started_at = Utc::now() - chrono::Duration::from_std(budget).unwrap_or_default();
        let attempt = Attempt {
            result: Err("timeout".to_owned()),
            started_at,
            took: budget,
            status: None,
            excerpt: None,
            retry_after: None,
            gone: false,
        };
        decide(&self.state.config.webhooks, d, attempt)
    }

    async fn record(&self, done: &[Done<Delivery, Recorded>]) -> anyhow::Result<usize> {
        Ok(flush(&self.state, done).await?)
    }

    async fn idle_wait(&self, poll: Duration) -> Duration {
        next_due_in(&self.state).await.unwrap_or(poll).min(poll)
    }
}

async fn delivery_worker(state: AppState, client: reqwest::Client, wake: Arc<Notify>, stop: watch::Receiver<bool>) {
    let settings = state.config.webhooks.clone();
    let concurrency = settings.concurrency;
    let worker = Settings {
        slots: concurrency,
        batch: settings.batch_size as usize,
        // Claim in batches: with every slot busy, wait until a quarter of them are free
        // rather than claiming one row per finished request.
        refill_at: (concurrency.min(settings.batch_size as usize) / 4).max(1),
        poll: settings.poll_interval,
        hint: Hint::Notify(wake),
        maintain_every: Duration::MAX,
        recording: Recording::Batched { max: RECORD_BATCH },
        drain: state.config.shutdown_drain,
    };
    let queue = Deliveries {
        guard: super::ssrf::Guard::new(settings.allow_networks.clone()),
        // A claim must outlive the request and the recorder's batching delay.
        lease: settings.request_timeout + settings.connect_timeout + Duration::from_secs(30),
        state,
        client,
    };
    Worker::new(queue, worker, stop).run().await;
}

/// Most attempts written per statement.
const RECORD_BATCH: usize = 1000;

/// How long until the next pending delivery is due (None: nothing pending).
async fn next_due_in(state: &AppState) -> Option<Duration> {
    let mut conn = state.db.acquire().await.ok()?;
    let at = store::webhooks::next_due(&mut conn).await.ok()??;
    Some((at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

/// Write a batch of attempts (and disable endpoints that answered 410) in one
/// transaction. Returns how many were dropped because their claim was lost.
async fn flush(state: &AppState, done: &[Done<Delivery, Recorded>]) -> sqlx::Result<usize> {
    let outcomes: Vec<Outcome> = done.iter().map(|d| d.outcome.outcome.clone()).collect();
    let mut tx = store::begin(&state.db).await?;
    let recorded = store::webhooks::record(&mut tx, &outcomes).await?;
    for d in done.iter().filter(|d| d.outcome.gone) {
        store::webhooks::disable_endpoint(
            &mut tx,
            &d.item.row.tenant_id,
            &d.item.row.endpoint_id,
            "the endpoint answered 410 Gone",
        )
        .await?;
        tracing::info!(endpoint_id = %d.item.row.endpoint_id, "webhook endpoint disabled after 410 Gone");
    }
    tx.commit().await?;
    for o in &outcomes {
        let outcome = match o.state {
            "pending" => "retry",
            other => other,
        };
        metrics::counter!("shipgate_webhook_deliveries_total", "outcome" => outcome).increment(1);
    }
    Ok(outcomes.len().saturating_sub(usize::try_from(recorded).unwrap_or(usize::MAX)))
}

/// The error code stored for a transport failure.
fn transport_code(e: &reqwest::Error) -> &'static str {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.downcast_ref::<SsrfBlocked>().is_some() {
            return "ssrf_blocked";
        }
        src = s.source();
    }
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    }
}

/// Up to [`EXCERPT_BYTES`] of the body, without reading the rest.
async fn excerpt(mut resp: reqwest::Response) -> Option<String> {
    let mut buf = Vec::new();
    while buf.len() < EXCERPT_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    if buf.is_empty() {
        return None;
    }
    buf.truncate(EXCERPT_BYTES);
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    // Lossy decoding of a cut multi-byte char may grow it past the limit.
    while s.len() > EXCERPT_BYTES {
        s.pop();
    }
    Some(s.replace('\0', ""))
}

/// What one send came to, before deciding what happens next.
struct Attempt {
    result: Result<(), String>,
    started_at: chrono::DateTime<Utc>,
    took: Duration,
    status: Option<i32>,
    excerpt: Option<String>,
    retry_after: Option<Duration>,
    /// 410 Gone.
    gone: bool,
}

/// Send one claimed delivery and decide what happens next.
async fn attempt(state: &AppState, client: &reqwest::Client, guard: &super::ssrf::Guard, d: &Delivery) -> Recorded {
    let c = &d.row;
    let started_at = Utc::now();
    let t0 = Instant::now();
    let mut status = None;
    let mut excerpt_text = None;
    let mut retry_after = None;
    let mut gone = false;
    let result: Result<(), String> = async {
        if !c.enabled {
            return Err("endpoint_disabled".to_owned());
        }
        let secret = state
            .crypto
            .decrypt(&c.tenant_id, &c.endpoint_id, Purpose::WebhookSecret, &c.secret_enc)
            .map_err(|_| "secret_unreadable".to_owned())?;
        let url = reqwest::Url::parse(&c.url).map_err(|_| "invalid_url".to_owned())?;
        // Literal IPs never reach the guarded resolver: check them here.
        guard.check_url(&url).map_err(|_| "ssrf_blocked".to_owned())?;
        let body =
            super::payload_bytes(&c.event_id, &c.event_type, c.event_created_at, c.shipment_seq, &c.event_data.0);
        // During a rotation's overlap the previous secret signs too (Standard Webhooks
        // allows several signatures); one that no longer decrypts is left out.
        let previous = c.previous_secret_enc.as_ref().and_then(|enc| {
            match state.crypto.decrypt(&c.tenant_id, &c.endpoint_id, Purpose::WebhookSecret, enc) {
                Ok(p) => Some(p),
                Err(_) => {
                    tracing::warn!(endpoint_id = %c.endpoint_id, "previous webhook secret unreadable; signing with the current one only");
                    None
                }
            }
        });
        let ts = started_at.timestamp();
        let mut secrets: Vec<&[u8]> = vec![&secret];
        secrets.extend(previous.as_deref());
        let signature = super::signatures(&secrets, &c.event_id, ts, &body);
        let resp = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &c.event_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| transport_code(&e).to_owned())?;
        let code = resp.status().as_u16();
        status = Some(i32::from(code));
        if code == 429 || code == 503 {
            retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| super::parse_retry_after(v, Utc::now()));
        }
        excerpt_text = excerpt(resp).await;
        if (200..300).contains(&code) {
            return Ok(());
        }
        gone = code == 410;
        Err(format!("http_{code}"))
    }
    .await;
    let took = t0.elapsed();
    metrics::histogram!("shipgate_webhook_attempt_duration_seconds", "result" => if result.is_ok() { "success" } else { "failure" })
        .record(took.as_secs_f64());
    let attempt = Attempt { result, started_at, took, status, excerpt: excerpt_text, retry_after, gone };
    decide(&state.config.webhooks, d, attempt)
}

/// Succeeded, cancelled (endpoint disabled), failed (410 Gone, or the schedule is
/// exhausted) or pending again after the schedule's next delay.
fn decide(settings: &crate::config::WebhookSettings, d: &Delivery, a: Attempt) -> Recorded {
    let c = &d.row;
    let (state_name, next_attempt_at, error_code) = match a.result {
        Ok(()) => ("succeeded", None, None),
        Err(code) if code == "endpoint_disabled" => ("cancelled", None, Some(code)),
        Err(code) if a.gone => ("failed", None, Some(code)),
        Err(code) => {
            let delay = (c.attempt < c.max_attempts)
                .then(|| super::retry_delay(&settings.retry_schedule, settings.retry_jitter, c.attempt))
                .flatten();
            match delay {
                Some(delay) => {
                    // Never earlier than the subscriber's Retry-After.
                    let delay = a.retry_after.map_or(delay, |ra| delay.max(ra));
                    let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::days(1));
                    ("pending", Some(at), Some(code))
                }
                None => ("failed", None, Some(code)),
            }
        }
    };
    tracing::debug!(
        state = state_name,
        status = a.status,
        error_code = error_code.as_deref(),
        ms = a.took.as_millis() as u64,
        "webhook attempt"
    );
    Recorded {
        outcome: Outcome {
            tenant_id: c.tenant_id.clone(),
            delivery_id: c.id.clone(),
            claim_token: d.token,
            attempt: c.attempt,
            state: state_name,
            next_attempt_at,
            started_at: a.started_at,
            duration_ms: i32::try_from(a.took.as_millis()).unwrap_or(i32::MAX),
            response_status: a.status,
            error_code,
            response_excerpt: a.excerpt,
        },
        gone: a.gone,
    }
}
