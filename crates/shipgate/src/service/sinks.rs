//! The sink worker: hands tracking numbers to the sinks a shipment's `channel` names
//! (carriers with the `Sink` capability, e.g. ecomdash, docs/carriers/ecomdash.md "ecomdash").
//!
//! Due submissions are claimed from Postgres under a lease (`FOR UPDATE SKIP LOCKED`),
//! grouped per sink connection and sent in batches (the adapter splits as the sink
//! needs, the connection's limits keep its calls in flight in check). Each item's
//! verdict is checked: a success is recorded, a transient failure retried with backoff,
//! a permanent one marked failed with the sink's message, visible in the shipment's
//! `sinks` and history. A refused account marks the connection misconfigured and parks
//! its items.
//! A `sink_flush` job (src/jobs) drives [`run_once`]; it is enqueued with the item.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::app::AppState;
use crate::carriers::{CallCx, CarrierError};
use crate::service::Result;
use crate::service::shipments::{channel_of, save_exchanges};
use crate::store::sinks::Claimed;
use crate::store::{self, Actor};

/// Give up after this many attempts (transient failures only).
pub const MAX_ATTEMPTS: i32 = 10;
const LEASE_SECS: f64 = 120.0;

fn backoff(attempts: i32) -> Duration {
    // 10 s, 20 s, 40 s ... capped at 1 h.
    Duration::from_secs((10u64 << attempts.clamp(0, 9) as u32).min(3600))
}

/// Claim and process one round of due submissions; returns how many were handled.
pub async fn run_once(state: &AppState) -> Result<usize> {
    let claimed = {
        let mut conn = state.db.acquire().await?;
        store::sinks::claim_due(&mut conn, 500, LEASE_SECS).await?
    };
    let n = claimed.len();
    let mut groups: BTreeMap<(String, String), Vec<Claimed>> = BTreeMap::new();
    for c in claimed {
        groups.entry((c.tenant_id.clone(), c.connection_id.clone())).or_default().push(c);
    }
    let tasks = groups.into_values().map(|items| process_group(state, items));
    for r in futures::future::join_all(tasks).await {
        if let Err(e) = r {
            tracing::warn!(error = format!("{e:#}"), "sink group failed");
        }
    }
    Ok(n)
}

async fn process_group(state: &AppState, rows: Vec<Claimed>) -> Result<()> {
    let Some(first) = rows.first() else { return Ok(()) };
    let (tenant, connection_id, sink) = (first.tenant_id.clone(), first.connection_id.clone(), first.sink.clone());
    let mut conn = state.db.acquire().await?;
    let connection = store::connections::get(&mut conn, &tenant, &connection_id).await?;
    // The connection must be one to the sink itself (the group shares one connection).
    let Some(connection) = connection.filter(|c| c.carrier == sink) else {
        let missing = format!("the {sink} connection does not exist");
        for r in &rows {
            store::sinks::mark_failed(&mut conn, &tenant, r.id, &missing).await?;
            sink_status(&mut conn, r, "failed", Some(&missing)).await?;
        }
        return Ok(());
    };
    if connection.status == "misconfigured" {
        // Parked until someone fixes the connection (PATCH clears the mark).
        for r in &rows {
            store::sinks::retry_later(
                &mut conn,
                &tenant,
                r.id,
                Utc::now() + Duration::from_secs(300),
                connection.status_detail.as_deref(),
                false,
            )
            .await?;
        }
        return Ok(());
    }
    let mut items = Vec::new();
    for r in &rows {
        let Some(s) = store::shipments::get(&mut conn, &tenant, &r.shipment_id).await? else { continue };
        let channel = channel_of(&s)?;
        let Some(target) = channel.as_ref().and_then(|c| c.target(&r.sink)) else {
            let gone = format!("the shipment's channel no longer names {}", r.sink);
            store::sinks::mark_failed(&mut conn, &tenant, r.id, &gone).await?;
            continue;
        };
        items.push(target.item(r.id.to_string(), r.tracking_number.clone(), s.booked_at, s.estimated_delivery));
    }
    drop(conn);
    if items.is_empty() {
        return Ok(());
    }
    let cx = CallCx::new();
    let outcome = match state.client(&connection) {
        Ok(client) => client.submit_tracking(&cx, &items).await,
        Err(e) => Err(e),
    };
    let mut tx = store::begin(&state.db).await?;
    save_exchanges(&mut tx, &tenant, None, cx.take()).await?;
    let by_key: BTreeMap<String, &Claimed> = rows.iter().map(|r| (r.id.to_string(), r)).collect();
    match outcome {
        Ok(results) => {
            for res in results {
                let Some(r) = by_key.get(&res.key) else { continue };
                if res.ok {
                    store::sinks::mark_submitted(&mut tx, &tenant, r.id).await?;
                    sink_status(&mut tx, r, "submitted", None).await?;
                    history(&mut tx, r, "sink_submitted", None).await?;
                } else if res.transient && r.attempts < MAX_ATTEMPTS {
                    let msg = res.message.clone().unwrap_or_else(|| "temporary failure".into());
                    store::sinks::retry_later(
                        &mut tx,
                        &tenant,
                        r.id,
                        Utc::now() + backoff(r.attempts),
                        Some(&msg),
                        true,
                    )
                    .await?;
                    sink_status(&mut tx, r, "pending", Some(&msg)).await?;
                } else {
                    let msg = res.message.clone().unwrap_or_else(|| format!("{sink} refused the item"));
                    store::sinks::mark_failed(&mut tx, &tenant, r.id, &msg).await?;
                    sink_status(&mut tx, r, "failed", Some(&msg)).await?;
                    history(&mut tx, r, "sink_failed", Some(&msg)).await?;
                }
            }
        }
        Err(CarrierError::Transient { message, retry_after }) => {
            for r in &rows {
                if r.attempts >= MAX_ATTEMPTS {
                    store::sinks::mark_failed(&mut tx, &tenant, r.id, &message).await?;
                    sink_status(&mut tx, r, "failed", Some(&message)).await?;
                    history(&mut tx, r, "sink_failed", Some(&message)).await?;
                } else {
                    let wait = retry_after.unwrap_or_else(|| backoff(r.attempts));
                    store::sinks::retry_later(&mut tx, &tenant, r.id, Utc::now() + wait, Some(&message), true).await?;
                    sink_status(&mut tx, r, "pending", Some(&message)).await?;
                }
            }
        }
        Err(CarrierError::Misconfigured { message }) => {
            store::connections::set_status(&mut tx, &tenant, &connection_id, "misconfigured", Some(&message), false)
                .await?;
            for r in &rows {
                store::sinks::retry_later(
                    &mut tx,
                    &tenant,
                    r.id,
                    Utc::now() + Duration::from_secs(300),
                    Some(&message),
                    false,
                )
                .await?;
                sink_status(&mut tx, r, "pending", Some(&message)).await?;
            }
        }
        Err(e) => {
            let message = e.message();
            for r in &rows {
                store::sinks::mark_failed(&mut tx, &tenant, r.id, &message).await?;
                sink_status(&mut tx, r, "failed", Some(&message)).await?;
                history(&mut tx, r, "sink_failed", Some(&message)).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn sink_status(conn: &mut sqlx::PgConnection, r: &Claimed, state: &str, error: Option<&str>) -> Result<()> {
    let mut v =
        json!({"state": state, "tracking_number": r.tracking_number, "attempts": r.attempts, "last_error": error});
    if state == "submitted" {
        v["submitted_at"] = json!(crate::domain::time::format(&Utc::now()));
    }
    Ok(store::sinks::set_shipment_sink_status(conn, &r.tenant_id, &r.shipment_id, &r.sink, &v).await?)
}

async fn history(conn: &mut sqlx::PgConnection, r: &Claimed, action: &str, error: Option<&str>) -> Result<()> {
    Ok(store::shipments::insert_history(
        conn,
        &r.tenant_id,
        &r.shipment_id,
        &Actor::System,
        action,
        &json!({"sink": r.sink, "connection_id": r.connection_id, "tracking_number": r.tracking_number, "error": error}),
    )
    .await?)
}

/// One run of the `sink_flush` job: submit everything due, then come back when the
/// next pending item is due (retries, parked items), or finish when none is left.
pub async fn run_job(state: &AppState) -> Result<crate::domain::job::Outcome> {
    // Bounded: items that fail go back with a later due time, so this ends quickly.
    for _ in 0..20 {
        if run_once(state).await? == 0 {
            break;
        }
    }
    let next = {
        let mut conn = state.db.acquire().await?;
        store::sinks::next_pending_at(&mut conn).await?
    };
    Ok(match next {
        Some(at) => crate::domain::job::Outcome::Repeat {
            after: (at - Utc::now()).to_std().unwrap_or_default().max(Duration::from_millis(200)),
        },
        None => crate::domain::job::Outcome::Done,
    })
}
