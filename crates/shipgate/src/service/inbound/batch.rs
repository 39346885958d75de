//! Group commit of concurrent scans (docs/quality.md P1).
//!
//! Every scan must be durable before its carrier is told so, and a durable commit is
//! the expensive part of a push (one WAL flush, two round trips). Scans that arrive
//! while others are being written are therefore queued and written together: a
//! committer takes whatever is queued (up to `inbound_commit_batch`), writes every
//! scan in one transaction with set-based statements that write what the lone scan's
//! statements ([`ingest::apply_scan`]) would ([`group`]), commits once, and only then
//! answers each waiting push.
//! With nothing queued a scan is written alone at once, so a quiet gateway adds no
//! wait; under load the group grows by itself with the queue.
//!
//! - **Each push is acknowledged only after the COMMIT that holds it**: the answer
//!   travels on a one-shot channel sent after `commit()` returned Ok.
//! - **A failed group fails only its own pushes**: when any statement of the group
//!   fails, the transaction is rolled back whole and every scan of the group is written
//!   again alone ([`ingest::ingest_scan`]), so the one bad scan gets its error and the
//!   others are stored. When the database is away, each gets the outage error (503,
//!   the carrier retries).
//! - **No deadlock between groups**: a group first reads and locks the shipments its
//!   tracking numbers already have, one statement per connection, in the order of
//!   (tenant, connection, tracking number); then the advisory lock of each new number,
//!   in the same order. Two groups sharing shipments so wait for each other in one
//!   direction only (and should anything else close a cycle, Postgres's deadlock check
//!   fails one group, whose scans are then written one by one). Scans of one shipment
//!   in one group are applied in arrival order, each seeing the row as the previous
//!   one left it.
//! - `inbound_commit_workers` committers run at once per instance (each holds one pool
//!   connection while it writes), so a slow group does not stop the next. They take
//!   their connections from a [`Warm`] stack of their own, capped at their number: the
//!   most recently used backend first and no on-release round trip, as the short request
//!   paths do (`store::warm`), without taking turns from those paths.
//!
//! The queue and its committers are a [`Lane`], started with the first scan; they end
//! when the last [`AppState`] handle is dropped (tests build many).

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::oneshot;

use super::group;
use super::ingest::{self, Applied};
use crate::app::AppState;
use crate::carriers::inbound::{Ingested, Scan};
use crate::service::lane::Lane;
use crate::service::{Error, Result};
use crate::store::warm::Warm;

/// One queued scan and where its answer goes.
struct Item {
    connection: Arc<crate::cache::Verifier>,
    scan: Scan,
    raw: Value,
    reply: oneshot::Sender<Result<Ingested>>,
}

/// Queue `scan` for the next group and wait for its answer (sent after its COMMIT).
pub(super) async fn submit(
    state: &AppState,
    connection: Arc<crate::cache::Verifier>,
    scan: Scan,
    raw: &Value,
) -> Result<Ingested> {
    let workers = state.config.inbound_commit_workers;
    let lane = Lane::get_or_start(&state.scan_lane, state, workers, state.config.inbound_commit_batch, || {
        // The committers' own stack, capped at their number (see the module doc).
        let warm = Warm::with_limit(state.db.clone(), workers);
        move |state: AppState, group: Vec<Item>| {
            let warm = warm.clone();
            async move { write_group(&state, &warm, group).await }
        }
    });
    let (reply, answer) = oneshot::channel();
    let item = Item { connection, scan, raw: raw.clone(), reply };
    if let Err(item) = lane.send(item).await {
        // The committers are gone (the runtime is shutting down): write it here.
        return ingest::ingest_scan(state, &item.connection.row, &item.scan, &item.raw).await;
    }
    answer.await.unwrap_or_else(|_| Err(Error::Internal(anyhow::anyhow!("the scan's committer stopped"))))
}

async fn write_group(state: &AppState, warm: &Warm, mut group: Vec<Item>) {
    metrics::histogram!("shipgate_inbound_group_size").record(group.len() as f64);
    if group.len() == 1 {
        let item = group.pop().expect("one item");
        let result = ingest::ingest_scan(state, &item.connection.row, &item.scan, &item.raw).await;
        let _ = item.reply.send(result);
        return;
    }
    // Lock order (see the module doc); stable, so one shipment's scans keep their order.
    group.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    match together(state, warm, &group).await {
        Ok(applied) => {
            for (item, applied) in group.into_iter().zip(applied) {
                let result = ingest::after_commit(state, &item.connection.row, &item.scan, &item.raw, applied).await;
                let _ = item.reply.send(result);
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, size = group.len(), "a scan group failed; writing its scans one by one");
            metrics::counter!("shipgate_inbound_group_fallbacks_total").increment(1);
            for item in group {
                let result = ingest::ingest_scan(state, &item.connection.row, &item.scan, &item.raw).await;
                let _ = item.reply.send(result);
            }
        }
    }
}

/// The order a group takes its locks in: tenant, connection, tracking number.
fn order_key(item: &Item) -> (&str, &str, &str) {
    let row = &item.connection.row;
    (&row.tenant_id, &row.id, &item.scan.tracking_number)
}

/// Every scan of the group in one transaction, set-based ([`group::write`]).
async fn together(state: &AppState, warm: &Warm, group: &[Item]) -> Result<Vec<Applied>> {
    let entries: Vec<group::Entry<'_>> =
        group.iter().map(|i| group::Entry { connection: &i.connection.row, scan: &i.scan, raw: &i.raw }).collect();
    warm.with(async |conn| group::write(state, conn, &entries).await).await
}
