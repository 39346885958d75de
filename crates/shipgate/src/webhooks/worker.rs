//! The dispatcher and the delivery worker (ARCHITECTURE.md rule 6; svix's worker and
//! hook0's output-worker were the models).
//!
//! - **Dispatcher**: fans undispatched events out into deliveries in one statement
//!   ([`store::webhooks::dispatch`]), polling every `webhook_poll_interval_ms`. No
//!   NOTIFY on `events`: a notifying commit takes Postgres's global notify-queue lock,
//!   which serialized the push ingest (QUALITY P1: 461 → 746 pushes/s without it,
//!   P2 p99 30 → 17 ms, bench/README.md); the poll is one indexed query.
//! - **Delivery worker**: claims due deliveries in order of due time under a lease,
//!   sends each with at most `webhook_concurrency` in flight, and hands results to a
//!   recorder that writes them in batches. No transaction is open across an HTTP call:
//!   the claim commits before sending, the record is a separate statement that only
//!   lands while the claim token still matches.
//! - Shutdown: stop claiming, let in-flight attempts finish, flush their results.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::ssrf::SsrfBlocked;
use crate::app::AppState;
use crate::crypto::Purpose;
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

/// Resolves when shutdown is requested; never when the `Workers` handle was merely
/// dropped (callers that do not keep it want the workers to run for the process).
async fn until_stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Fan out one batch of undispatched events. Returns (events, deliveries created).
pub async fn dispatch_once(state: &AppState) -> anyhow::Result<(i64, i64)> {
    let max_attempts = i32::try_from(state.config.webhooks.retry_schedule.len()).unwrap_or(i32::MAX - 1) + 1;
    let mut conn = state.db.acquire().await?;
    Ok(store::webhooks::dispatch(&mut conn, DISPATCH_BATCH, max_attempts).await?)
}

/// How often rotated-out secrets whose overlap ended are forgotten.
const SECRET_PURGE_EVERY: Duration = Duration::from_secs(60);

async fn dispatcher(state: AppState, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let poll = state.config.webhooks.poll_interval;
    let mut purged_at: Option<Instant> = None;
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
            Ok((events, deliveries)) => {
                if deliveries > 0 {
                    wake.notify_one();
                }
                if events == DISPATCH_BATCH {
                    continue; // more waiting
                }
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "webhook dispatch failed"),
        }
        tokio::select! {
            _ = until_stopped(&mut stop) => break,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// What the recorder needs besides the row update.
struct Recorded {
    outcome: Outcome,
    endpoint_id: String,
    /// 410 Gone: disable the endpoint.
    gone: bool,
}

async fn delivery_worker(state: AppState, client: reqwest::Client, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let settings = state.config.webhooks.clone();
    let concurrency = settings.concurrency;
    // A claim must outlive the request and the recorder's batching delay.
    let lease = settings.request_timeout + settings.connect_timeout + Duration::from_secs(30);
    let sem = Arc::new(Semaphore::new(concurrency));
    let (tx, rx) = mpsc::channel::<Recorded>(concurrency * 4);
    let recorder = tokio::spawn(recorder(state.clone(), rx));
    let client = Arc::new(client);
    let guard = super::ssrf::Guard::new(settings.allow_networks.clone());
    loop {
        if *stop.borrow() {
            break;
        }
        // Claim in batches: with every slot busy, wait until a quarter of them are free
        // rather than claiming one row per finished request.
        let free = sem.available_permits();
        let threshold = (concurrency.min(settings.batch_size as usize) / 4).max(1);
        if free < threshold {
            tokio::select! {
                p = sem.clone().acquire_many_owned(threshold as u32) => drop(p),
                _ = until_stopped(&mut stop) => break,
            }
            continue;
        }
        let n = free.min(settings.batch_size as usize) as i64;
        let token = Uuid::new_v4();
        let claimed = async {
            let mut conn = state.db.acquire().await?;
            store::webhooks::claim_due(&mut conn, n, lease.as_secs_f64() * 1e3, token).await
        }
        .await;
        let mut claimed = match claimed {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "webhook claim failed");
                tokio::select! {
                    _ = until_stopped(&mut stop) => break,
                    _ = tokio::time::sleep(settings.poll_interval) => {}
                }
                continue;
            }
        };
        if claimed.is_empty() {
            let wait = next_due_in(&state).await.unwrap_or(settings.poll_interval).min(settings.poll_interval);
            tokio::select! {
                _ = until_stopped(&mut stop) => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        // RETURNING has no order: send in order of due time.
        claimed.sort_by_key(|c| (c.due_at, c.seq));
        for c in claimed {
            let Ok(permit) = sem.clone().acquire_owned().await else { break };
            let (state, client, tx, guard) = (state.clone(), client.clone(), tx.clone(), guard.clone());
            tokio::spawn(async move {
                let r = attempt(&state, &client, &guard, c, token).await;
                let _ = tx.send(r).await;
                drop(permit);
            });
        }
    }
    // Drain: every in-flight attempt holds a permit until its result is queued.
    let _ = sem.acquire_many(concurrency as u32).await;
    drop(tx);
    let _ = recorder.await;
    tracing::info!("webhook delivery worker stopped");
}

/// How long until the next pending delivery is due (None: nothing pending).
async fn next_due_in(state: &AppState) -> Option<Duration> {
    let mut conn = state.db.acquire().await.ok()?;
    let at = store::webhooks::next_due(&mut conn).await.ok()??;
    Some((at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

async fn recorder(state: AppState, mut rx: mpsc::Receiver<Recorded>) {
    let mut buf: Vec<Recorded> = Vec::new();
    while let Some(r) = rx.recv().await {
        buf.push(r);
        while buf.len() < 1000 {
            match rx.try_recv() {
                Ok(r) => buf.push(r),
                Err(_) => break,
            }
        }
        // A failed write is retried a few times; after that the claims expire and the
        // deliveries are sent again (at-least-once).
        for round in 0..5 {
            match flush(&state, &buf).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, round, "recording webhook attempts failed");
                    tokio::time::sleep(Duration::from_millis(200 << round)).await;
                }
            }
        }
        buf.clear();
    }
}

async fn flush(state: &AppState, buf: &[Recorded]) -> sqlx::Result<()> {
    let outcomes: Vec<Outcome> = buf.iter().map(|r| r.outcome.clone()).collect();
    let mut tx = state.db.begin().await?;
    store::webhooks::record(&mut tx, &outcomes).await?;
    for r in buf.iter().filter(|r| r.gone) {
        store::webhooks::disable_endpoint(
            &mut tx,
            &r.outcome.tenant_id,
            &r.endpoint_id,
            "the endpoint answered 410 Gone",
        )
        .await?;
        tracing::info!(endpoint_id = %r.endpoint_id, "webhook endpoint disabled after 410 Gone");
    }
    tx.commit().await?;
    for r in buf {
        let outcome = match r.outcome.state {
            "pending" => "retry",
            other => other,
        };
        metrics::counter!("shipgate_webhook_deliveries_total", "outcome" => outcome).increment(1);
    }
    Ok(())
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

/// Send one claimed delivery and decide what happens next.
async fn attempt(
    state: &AppState,
    client: &reqwest::Client,
    guard: &super::ssrf::Guard,
    c: Claimed,
    token: Uuid,
) -> Recorded {
    let settings = &state.config.webhooks;
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
    let elapsed = t0.elapsed();
    metrics::histogram!("shipgate_webhook_attempt_duration_seconds", "result" => if result.is_ok() { "success" } else { "failure" })
        .record(elapsed.as_secs_f64());
    let (state_name, next_attempt_at, error_code) = match result {
        Ok(()) => ("succeeded", None, None),
        Err(code) if code == "endpoint_disabled" => ("cancelled", None, Some(code)),
        Err(code) if gone => ("failed", None, Some(code)),
        Err(code) => {
            let delay = (c.attempt < c.max_attempts)
                .then(|| super::retry_delay(&settings.retry_schedule, settings.retry_jitter, c.attempt))
                .flatten();
            match delay {
                Some(d) => {
                    // Never earlier than the subscriber's Retry-After.
                    let d = retry_after.map_or(d, |ra| d.max(ra));
                    let at = Utc::now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(1));
                    ("pending", Some(at), Some(code))
                }
                None => ("failed", None, Some(code)),
            }
        }
    };
    Recorded {
        outcome: Outcome {
            tenant_id: c.tenant_id,
            delivery_id: c.id,
            claim_token: token,
            attempt: c.attempt,
            state: state_name,
            next_attempt_at,
            started_at,
            duration_ms: i32::try_from(elapsed.as_millis()).unwrap_or(i32::MAX),
            response_status: status,
            error_code,
            response_excerpt: excerpt_text,
        },
        endpoint_id: c.endpoint_id,
        gone,
    }
}
