//! Retention by partition (issue 13): the append-only tables are partitioned by month
//! (migration 20261130000040, `store::partitions`). Housekeeping keeps the next months'
//! partitions ready and drops the months that are entirely past their table's
//! retention: a `DROP TABLE` of a partition takes milliseconds and leaves no dead rows
//! behind, where the `DELETE` it replaces visits every row and leaves each one for
//! vacuum (bench/README.md "Retention: dropping partitions").
//!
//! | table | retention | by the time of |
//! |---|---|---|
//! | `events` (outbound), `webhook_attempts` | `outbound_event_retention_days` | the event; the attempt's delivery |
//! | `tracking_events`, `inbound_pushes` | `tracking_event_retention_days` | the shipment's creation |
//! | `carrier_exchanges` | `exchange_retention_days` | the exchange |
//!
//! A month is dropped once all of it is older than the retention, so rows are kept at
//! least as long as the retention and at most a month longer. The deliveries of a month's
//! events are deleted first, in short transactions (no foreign key ties them to the
//! events: a referenced partition could not be dropped).
//!
//! Every instance runs this (housekeeping); each table's partitions change in one
//! transaction under an advisory lock on that table, so instances take turns and the
//! later one finds the work done. The default partition is never dropped: what it holds
//! is reported, rows past the retention among them, so nothing is lost silently.
//! `DETACH PARTITION ... CONCURRENTLY` (which would spare the parent its ACCESS
//! EXCLUSIVE lock) is not allowed while a table has a default partition (PG 15 docs,
//! ALTER TABLE "DETACH PARTITION"), so the drop waits at most
//! [`DDL_LOCK_TIMEOUT_MS`] for its lock and is tried again next round.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::{Acquire as _, PgPool};

use crate::config::Config;
use crate::store;
use crate::store::partitions::{self, Partition, Table};

/// Months created ahead of the current one.
pub const MONTHS_AHEAD: u32 = 3;
/// Longest a partition change waits for its table lock.
pub const DDL_LOCK_TIMEOUT_MS: u32 = 1_000;
/// Default-partition rows are counted up to this many.
const DEFAULT_ROWS_CAP: i64 = 10_000;
/// Deliveries deleted per transaction before their events' month is dropped.
const DELIVERY_BATCH: i64 = 5_000;

/// What maintenance did to one table.
#[derive(Debug, Clone, Default)]
pub struct TableReport {
    pub table: &'static str,
    /// The table's retention, in days.
    pub retention_days: u32,
    /// Partitions created and dropped by this run.
    pub created: Vec<String>,
    pub dropped: Vec<String>,
    /// Webhook deliveries deleted with their events' month (`events` only).
    pub deliveries_deleted: u64,
    /// Rows in the default partition (counted up to 10,000), and how many of them are past
    /// the retention: no month holds them, so no drop removes them.
    pub default_rows: i64,
    pub default_rows_past_retention: i64,
    /// What failed; the rest of the table's work went on and the next run tries again.
    pub errors: Vec<String>,
    /// How long the table's maintenance took, the part of it spent deleting deliveries,
    /// and the part spent in the `DROP TABLE` statements.
    pub took: Duration,
    pub deleting_deliveries: Duration,
    pub dropping: Duration,
}

/// How long a table's rows are kept, in days.
pub fn retention_days(config: &Config, table: &Table) -> u32 {
    match table.name {
        "events" | "webhook_attempts" => config.outbound_event_retention_days,
        "tracking_events" | "inbound_pushes" => config.tracking_event_retention_days,
        _ => config.exchange_retention_days,
    }
}

/// Month partitions of `partitions` that hold nothing newer than `cutoff`.
fn expired(partitions: &[Partition], cutoff: DateTime<Utc>) -> Vec<&Partition> {
    partitions.iter().filter(|p| !p.is_default && p.upper_at.is_some_and(|u| u <= cutoff)).collect()
}

/// Create the months from `now`'s through [`MONTHS_AHEAD`] later and drop those past each
/// table's retention, as of `now` (the caller's clock: housekeeping passes the current
/// time). Never fails as a whole: each table's report lists what failed.
pub async fn maintain(db: &PgPool, config: &Config, now: DateTime<Utc>) -> Vec<TableReport> {
    let mut reports = Vec::new();
    for table in partitions::TABLES {
        let started = Instant::now();
        let days = retention_days(config, &table);
        let cutoff = now - chrono::Duration::days(i64::from(days));
        let mut report = TableReport { table: table.name, retention_days: days, ..TableReport::default() };
        if let Err(e) = change(db, &table, now, cutoff, &mut report).await {
            report.errors.push(format!("{e:#}"));
        }
        let counted = async {
            let mut conn = db.acquire().await?;
            partitions::default_rows(&mut conn, &table, cutoff, DEFAULT_ROWS_CAP).await
        };
        match counted.await {
            Ok((held, past)) => (report.default_rows, report.default_rows_past_retention) = (held, past),
            Err(e) => report.errors.push(format!("counting the default partition's rows: {e}")),
        }
        report.took = started.elapsed();
        reports.push(report);
    }
    reports
}

async fn change(
    db: &PgPool,
    table: &Table,
    now: DateTime<Utc>,
    cutoff: DateTime<Utc>,
    report: &mut TableReport,
) -> sqlx::Result<()> {
    let mut conn = db.acquire().await?;
    // Expired months whose deliveries are all gone: every event in them was fanned out
    // (behind the dispatch cursor, which only moves forward) before their deliveries were
    // deleted, so none can appear later.
    let mut settled = Vec::new();
    if *table == partitions::EVENTS {
        // Before the lock, in short transactions: a month's deliveries can be many.
        let started = Instant::now();
        for p in expired(&partitions::list(&mut conn, table).await?, cutoff) {
            let (Some(from), Some(to)) = (&p.lower, &p.upper) else { continue };
            if !store::webhooks::undispatched_between(&mut conn, from, to).await? {
                settled.push(p.name.clone());
            }
            report.deliveries_deleted += delete_deliveries(&mut conn, p).await?;
        }
        report.deleting_deliveries = started.elapsed();
    }
    drop(conn);
    let mut tx = store::begin(db).await?;
    // The advisory lock first: waiting for another instance's turn is not bounded.
    partitions::lock(&mut tx, table).await?;
    partitions::set_lock_timeout(&mut tx, DDL_LOCK_TIMEOUT_MS).await?;
    // Listed again under the lock: another instance may have changed them meanwhile.
    let existing = partitions::list(&mut tx, table).await?;
    let first = partitions::month_start(now);
    for month in (0..=MONTHS_AHEAD).map(|i| partitions::add_months(first, i)) {
        let name = table.month_partition(month);
        if existing.iter().any(|p| p.name == name) {
            continue;
        }
        // In a savepoint: a refused month (the default partition holds rows of it, or a
        // lock wait ran out) leaves the others to do.
        #[allow(clippy::disallowed_methods)] // a savepoint: sqlx's guard rolls a cancelled one back
        let mut sp = tx.begin().await?;
        match partitions::create_month(&mut sp, table, month).await {
            Ok(_) => {
                sp.commit().await?;
                report.created.push(name);
            }
            Err(e) => {
                sp.rollback().await?;
                report.errors.push(format!("creating {name}: {e}"));
            }
        }
    }
    for p in expired(&existing, cutoff) {
        #[allow(clippy::disallowed_methods)] // a savepoint: sqlx's guard rolls a cancelled one back
        let mut sp = tx.begin().await?;
        if *table == partitions::EVENTS && !settled.contains(&p.name) {
            // Deliveries the dispatcher may have written since the batches above.
            report.deliveries_deleted += delete_deliveries(&mut sp, p).await?;
        }
        let started = Instant::now();
        let dropped = partitions::drop_partition(&mut sp, table, &p.name).await;
        report.dropping += started.elapsed();
        match dropped {
            Ok(()) => {
                sp.commit().await?;
                report.dropped.push(p.name.clone());
            }
            Err(e) => {
                sp.rollback().await?;
                report.errors.push(format!("dropping {}: {e}", p.name));
            }
        }
    }
    tx.commit().await
}

/// Delete the webhook deliveries of the events in partition `p`, tenant by tenant, in
/// batches that each start where the previous one ended.
async fn delete_deliveries(conn: &mut sqlx::PgConnection, p: &Partition) -> sqlx::Result<u64> {
    let (Some(from), Some(to)) = (&p.lower, &p.upper) else { return Ok(0) };
    let mut deleted = 0;
    for tenant in store::tenants::all_ids(conn).await? {
        let mut start = from.clone();
        loop {
            let (n, last) = store::webhooks::delete_for_events(conn, &tenant, &start, to, DELIVERY_BATCH).await?;
            deleted += n as u64;
            match last {
                Some(last) if n == DELIVERY_BATCH => start = last,
                _ => break,
            }
        }
    }
    Ok(deleted)
}
