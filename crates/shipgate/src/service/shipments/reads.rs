//! Coalesced reads of one shipment (docs/quality.md P4).
//!
//! Reading a shipment by id is one primary-key probe, cheap for Postgres; what costs is
//! the round trip around it. Measured on the bench's set-up (`bench/p4_cpu.sh`), a
//! `GET /readyz` (one `SELECT 1` through the pool) cost the gateway 41 µs of CPU, a
//! request that answers without the database 15 µs: the statement, its two socket hops
//! and the task wake-ups cost more than all the rest of a `GET /v1/shipments/{id}`
//! (54 µs). Reads that arrive while others are in flight are therefore read together:
//! a reader takes whatever is queued (at most [`GROUP_MAX`]) and reads every shipment of
//! the group in one statement ([`store::shipments::get_many`]), the way the inbound
//! scans are committed together (`service::inbound::batch`; both are a [`Lane`]).
//!
//! - **As fresh as a statement of its own.** A read is queued before the statement that
//!   answers it starts, and a statement sees every transaction committed before it
//!   started (read committed), so every write acknowledged before the request arrived
//!   is seen. Nothing is kept between groups: this is not a cache.
//! - **Nothing crosses tenants.** Each read is answered by the row of its own (tenant,
//!   id) pair, or not found.
//! - **A failed group fails only what it must.** When the database is away, every read
//!   of the group gets the outage (503). Any other error (a row that cannot be read, say)
//!   has every read of the group made again alone, so only the read it concerns fails.
//! - A quiet gateway reads each shipment alone, at once (a group of one is the single-row
//!   statement); under load the groups grow with the queue. `read_group_workers` readers
//!   (config) run per instance, each holding a connection of the short paths' stack
//!   (`store::warm`) only while its statement runs.

use std::collections::HashMap;

use tokio::sync::oneshot;

use crate::app::AppState;
use crate::service::lane::Lane;
use crate::service::{Error, Result};
use crate::store;
use crate::store::shipments::ShipmentDoc;

/// The most reads one statement answers.
const GROUP_MAX: usize = 128;

type Reply = oneshot::Sender<Result<Option<ShipmentDoc>>>;

/// One queued read and where its answer goes.
struct Item {
    tenant: String,
    id: String,
    reply: Reply,
}

/// The tenant's shipment `id`, read in the next group.
pub(crate) async fn one(state: &AppState, tenant: &str, id: &str) -> Result<Option<ShipmentDoc>> {
    let lane = Lane::get_or_start(&state.read_lane, state, state.config.read_group_workers, GROUP_MAX, || read_group);
    let (reply, answer) = oneshot::channel();
    if let Err(item) = lane.send(Item { tenant: tenant.to_owned(), id: id.to_owned(), reply }).await {
        // The readers are gone (the runtime is shutting down): read it here. Boxed, so the
        // statement's future does not enlarge every read's.
        return Box::pin(alone(state, &item.tenant, &item.id)).await;
    }
    answer.await.unwrap_or_else(|_| Err(Error::Internal(anyhow::anyhow!("the shipment's reader stopped"))))
}

async fn alone(state: &AppState, tenant: &str, id: &str) -> Result<Option<ShipmentDoc>> {
    Ok(state.warm.with(async |c| store::shipments::get_doc(c, tenant, id).await).await?)
}

async fn read_group(state: AppState, mut group: Vec<Item>) {
    metrics::histogram!("shipgate_read_group_size").record(group.len() as f64);
    if group.len() == 1 {
        let item = group.pop().expect("one item");
        let _ = item.reply.send(alone(&state, &item.tenant, &item.id).await);
        return;
    }
    let read = {
        let tenants: Vec<&str> = group.iter().map(|i| i.tenant.as_str()).collect();
        let ids: Vec<&str> = group.iter().map(|i| i.id.as_str()).collect();
        state.warm.with(async |c| store::shipments::get_many(c, &tenants, &ids).await).await
    };
    match read {
        Ok(rows) => answer(group, rows),
        Err(e) => match Error::from(e) {
            Error::DatabaseUnavailable => {
                for item in group {
                    let _ = item.reply.send(Err(Error::DatabaseUnavailable));
                }
            }
            e => {
                tracing::debug!(error = %e, size = group.len(), "a read group failed; reading its shipments one by one");
                metrics::counter!("shipgate_read_group_fallbacks_total").increment(1);
                for item in group {
                    let _ = item.reply.send(alone(&state, &item.tenant, &item.id).await);
                }
            }
        },
    }
}

/// Each read its own pair's row (a copy where a pair was asked for more than once), or
/// none.
fn answer(group: Vec<Item>, rows: Vec<ShipmentDoc>) {
    let mut waiting: HashMap<(String, String), Vec<Reply>> = HashMap::with_capacity(group.len());
    for item in group {
        waiting.entry((item.tenant, item.id)).or_default().push(item.reply);
    }
    for row in rows {
        // Moved out of the map: a pair is answered once even if a row came twice.
        let Some(mut replies) = waiting.remove(&(row.tenant_id.clone(), row.id.clone())) else { continue };
        let last = replies.pop();
        for reply in replies {
            let _ = reply.send(Ok(Some(row.clone())));
        }
        if let Some(reply) = last {
            let _ = reply.send(Ok(Some(row)));
        }
    }
    for reply in waiting.into_values().flatten() {
        let _ = reply.send(Ok(None));
    }
}
