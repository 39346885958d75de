//! Group commit of concurrent scans (docs/quality.md P1).
//!
//! Every scan must be durable before its carrier is told so, and a durable commit is
//! the expensive part of a push (one WAL flush, two round trips). Scans that arrive
//! while others are being written are therefore queued and written together: a
//! committer takes whatever is queued (up to `inbound_commit_batch`), writes every
//! scan in one transaction with set-based statements that write what the lone scan's
//! statements ([`ingest::apply_scan`]) would ([`group`]), commits once, and only then
//! answers each waiting push.
//! With nothing queued a scan is written at once as a group of one, so a quiet gateway
//! adds no wait; under load the group grows by itself with the queue.
//!
//! A group is written first without locks and without a transaction of its own
//! ([`group::write`]): its shipments read in one statement, the scans applied in memory,
//! then one statement that locks the shipments, checks none changed since the read,
//! writes every row and commits. Two round trips, against five for the careful way
//! (BEGIN, lock, keep, finish, COMMIT), which is taken when a shipment is new, a code
//! is unmapped, or the check finds a shipment changed or a scan stored meanwhile.
//!
//! - **Each push is acknowledged only after the commit that holds it**: the answer
//!   travels on a one-shot channel sent after the writing statement (or `commit()`)
//!   returned Ok.
//! - **A failed group fails only its own pushes**: when any statement of the group
//!   fails, nothing of it is kept (one statement, or one transaction rolled back whole)
//!   and every scan of the group is written again alone ([`ingest::ingest_scan`]), so
//!   the one bad scan gets its error and the others are stored. When the database is
//!   away, each gets the outage error (503, the carrier retries).
//! - **No deadlock between groups**: a group first locks the shipments its tracking
//!   numbers already have, in the order of (tenant, connection, tracking number) (the
//!   careful way: one statement per connection; without locks: the writing statement's
//!   first step, before any row is written); then the advisory lock of each new number,
//!   in the same order. Two groups sharing shipments so wait for each other in one
//!   direction only (and should anything else close a cycle, Postgres's deadlock check
//!   fails one group, whose scans are then written again). Scans of one shipment in one
//!   group are applied in arrival order, each seeing the row as the previous one left it.
//! - `inbound_commit_workers` committers run at once per instance, so a slow group does
//!   not stop the next. Each holds a connection of its own while it writes, from a small
//!   pool beside the main one (`store::side_pool`, at most one connection per
//!   committer) whose sessions plan every statement generically (`plan_cache_mode`,
//!   set at connect: see [`group::write`]), parked in a [`Warm`] stack: the most
//!   recently used backend first and no on-release round trip, as the short request
//!   paths do (`store::warm`), without taking turns from those paths.
//!
//! The queue and its committers are a [`Lane`], started with the first scan; they end
//! when the last [`AppState`] handle is dropped (tests build many).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;

use super::group;
use super::ingest::{self, Applied};
use crate::app::AppState;
use crate::carriers::inbound::{Ingested, Scan};
use crate::service::lane::Lane;
use crate::service::{Error, Result};
use crate::store::{self, warm::Warm};

/// One queued scan and where its answer goes.
struct Item {
    connection: Arc<crate::cache::Verifier>,
    scan: Scan,
    raw: Value,
    reply: oneshot::Sender<Result<Ingested>>,
    /// When the scan was queued (its wait shows in the group's phase timings).
    queued: Instant,
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
        // The committers' own connections, parked most recent first (see the module doc).
        let pool = store::side_pool(&state.db, workers as u32, &[("plan_cache_mode", "force_generic_plan")]);
        let warm = Warm::with_limit(pool, workers);
        move |state: AppState, group: Vec<Item>| {
            let warm = warm.clone();
            async move { write_group(&state, &warm, group).await }
        }
    });
    let (reply, answer) = oneshot::channel();
    let item = Item { connection, scan, raw: raw.clone(), reply, queued: Instant::now() };
    if let Err(item) = lane.send(item).await {
        // The committers are gone (the runtime is shutting down): write it here.
        return ingest::ingest_scan(state, &item.connection.row, &item.scan, &item.raw).await;
    }
    answer.await.unwrap_or_else(|_| Err(Error::Internal(anyhow::anyhow!("the scan's committer stopped"))))
}

async fn write_group(state: &AppState, warm: &Warm, mut group: Vec<Item>) {
    let taken = Instant::now();
    let queue = group.iter().map(|i| taken.saturating_duration_since(i.queued)).max().unwrap_or_default();
    metrics::histogram!("shipgate_inbound_group_size").record(group.len() as f64);
    // Lock order (see the module doc); stable, so one shipment's scans keep their order.
    group.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    let mut phases = Phases { size: group.len(), queue, ..Phases::default() };
    match together(state, warm, &group, &mut phases).await {
        Ok(applied) => {
            let answering = Instant::now();
            for (item, applied) in group.into_iter().zip(applied) {
                let result = ingest::after_commit(state, &item.connection.row, &item.scan, &item.raw, applied).await;
                let _ = item.reply.send(result);
            }
            phases.answer = answering.elapsed();
            phases.record();
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

/// Where a group's time went, from its oldest scan's arrival to the last answer: what
/// ops (and bench/) read to tell a slow commit from a full queue or a slow pool.
/// Histograms `shipgate_inbound_group_phase_seconds{phase}` and, at debug level, one
/// log line per group (target `shipgate::inbound::timing`) with the wall-clock time.
#[derive(Default)]
struct Phases {
    size: usize,
    /// The longest a scan of the group waited in the queue for a committer.
    queue: Duration,
    /// Waiting for the committer's connection.
    acquire: Duration,
    /// The group's statements, BEGIN to before COMMIT.
    statements: Duration,
    /// The COMMIT (the durable WAL flush).
    commit: Duration,
    /// Answering the group's pushes after the commit.
    answer: Duration,
}

impl Phases {
    fn record(&self) {
        let phases = [
            ("queue", self.queue),
            ("acquire", self.acquire),
            ("statements", self.statements),
            ("commit", self.commit),
            ("answer", self.answer),
        ];
        for (phase, d) in phases {
            metrics::histogram!("shipgate_inbound_group_phase_seconds", "phase" => phase).record(d.as_secs_f64());
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        tracing::debug!(target: "shipgate::inbound::timing", size = self.size, queue_ms = ms(self.queue),
            acquire_ms = ms(self.acquire), statements_ms = ms(self.statements), commit_ms = ms(self.commit),
            answer_ms = ms(self.answer), "scan group");
    }
}

/// The order a group takes its locks in: tenant, connection, tracking number.
fn order_key(item: &Item) -> (&str, &str, &str) {
    let row = &item.connection.row;
    (&row.tenant_id, &row.id, &item.scan.tracking_number)
}

/// Every scan of the group in one transaction, set-based ([`group::write`]).
async fn together(state: &AppState, warm: &Warm, group: &[Item], phases: &mut Phases) -> Result<Vec<Applied>> {
    let entries: Vec<group::Entry<'_>> =
        group.iter().map(|i| group::Entry { connection: &i.connection.row, scan: &i.scan, raw: &i.raw }).collect();
    let asked = Instant::now();
    let (applied, commit) = warm
        .with(async |conn| {
            phases.acquire = asked.elapsed();
            group::write(state, conn, &entries).await
        })
        .await?;
    phases.commit = commit;
    phases.statements = asked.elapsed().saturating_sub(phases.acquire + commit);
    Ok(applied)
}
