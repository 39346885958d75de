//! Reconciliation (docs/product.md "Reconciliation"): walk a carrier's own list of a
//! connection's shipments (eCMR's shipment overview, AfterShip's tracking list) page by
//! page and compare it with ours.
//!
//! - **Carrier-only** shipments (on the list, not ours) are reported, and imported as
//!   booked shipments when the run was asked to (`import`), history actor `reconcile`;
//!   the tracking engine then polls them like any other.
//! - **Status disagreements** are fixed forward only, through the same monotonic path a
//!   poll takes (`apply_snapshot`); a carrier status behind ours is reported, not applied.
//! - Shipments we think **active** that the list no longer shows (booked, not terminal,
//!   created before the run and unseen by it) are reported, never deleted.
//!
//! A run is a durable job (`reconcile`). Each page's effects and the run's progress
//! (cursor, counts, samples) commit in one transaction, written only while the job holds
//! its claim, so a run killed in the middle resumes at the next page and repeats nothing;
//! a run gives its worker slot back every [`SLICE`] and carries on at once. Every call goes
//! through the connection's client, so the connection's rate limit paces the walk.

use std::time::{Duration, Instant};

use chrono::{DurationRound as _, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::carriers::{self, CallCx, Capability, ListPage, Listed, TrackingSnapshot};
use crate::domain::job::{self, Job, Outcome};
use crate::domain::{BookingState, ShipmentPlan, is_terminal, may_transition};
use crate::ids;
use crate::service::views::Reconciliation;
use crate::service::{Caller, Error, Refusal, Result};
use crate::store::reconciliations::{NewReconciliation, ReconciliationRow};
use crate::store::shipments::{Creation, NewShipment};
use crate::store::{self, Actor};

/// How long one run walks before it gives its worker slot back (and is claimed again at
/// once): the job's lease covers a slice, not a whole 10,000-shipment walk.
pub const SLICE: Duration = Duration::from_secs(20);

/// Entries a report keeps per list (the counts are always exact).
pub const SAMPLE: usize = 1000;

/// A run's report as it grows page by page (`reconciliations.report`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    /// Shipments on the carrier's list so far.
    pub seen: u64,
    /// How many the carrier says it holds.
    pub total_at_carrier: Option<u64>,
    /// Listed and ours.
    pub matched: u64,
    /// Listed, not ours.
    pub carrier_only: u64,
    /// Of those, imported as shipments (`import: true`).
    pub imported: u64,
    /// Ours with another status at the carrier.
    pub status_disagreements: u64,
    /// Of those, moved forward to the carrier's status.
    pub fixed_forward: u64,
    /// Ours, active, and not on the carrier's list (known once the walk is complete).
    pub missing_at_carrier: u64,
    /// List calls made (a page repeated after a restart counts twice).
    pub calls: u64,
    pub carrier_only_sample: Vec<Value>,
    pub disagreement_sample: Vec<Value>,
    pub missing_sample: Vec<Value>,
}

fn push_sample(list: &mut Vec<Value>, v: Value) {
    if list.len() < SAMPLE {
        list.push(v);
    }
}

/// What `POST /v1/connections/{id}/reconcile` answers.
#[derive(Debug)]
pub struct Started {
    pub job_id: String,
    pub reconciliation: Reconciliation,
}

/// Start a reconciliation of the caller's connection (or answer the one already running).
pub async fn start(state: &AppState, caller: &Caller, connection_id: &str, import: bool) -> Result<Started> {
    let row = super::connections::load(state, &caller.tenant_id, connection_id).await?;
    let rec = begin(state, &row.tenant_id, &row.id, &row.carrier, import, "api").await?;
    Ok(Started { job_id: format!("job_{}", rec.job_id), reconciliation: rec.into() })
}

/// The connection's runs, newest first (the first is its last report).
pub async fn list(state: &AppState, caller: &Caller, connection_id: &str, limit: i64) -> Result<Vec<Reconciliation>> {
    let row = super::connections::load(state, &caller.tenant_id, connection_id).await?;
    let mut conn = state.db.acquire().await?;
    let rows = store::reconciliations::list(&mut conn, &row.tenant_id, &row.id, limit).await?;
    Ok(rows.into_iter().map(Reconciliation::from).collect())
}

/// The run a `reconcile` job walks, as its progress (`GET /v1/jobs/{id}`).
pub async fn progress(state: &AppState, tenant: &str, job_id: i64) -> Result<Option<Reconciliation>> {
    let mut conn = state.db.acquire().await?;
    let row = store::reconciliations::by_job(&mut conn, job_id).await?;
    Ok(row.filter(|r| r.tenant_id == tenant).map(Reconciliation::from))
}

async fn begin(
    state: &AppState,
    tenant: &str,
    connection_id: &str,
    carrier: &str,
    import: bool,
    trigger: &str,
) -> Result<ReconciliationRow> {
    if !carriers::supports(carrier, Capability::Reconcile) {
        return Err(Error::refused(
            Refusal::CapabilityNotSupported,
            format!("{carrier} offers no list of shipments to reconcile with"),
        ));
    }
    let mut tx = store::begin(&state.db).await?;
    if let Some(running) = store::reconciliations::running(&mut tx, tenant, connection_id).await? {
        return Ok(running);
    }
    let unique = format!("reconcile:{tenant}:{connection_id}");
    let payload = json!({"connection_id": connection_id});
    let job_id = super::jobs::enqueue(&mut tx, Some(tenant), job::RECONCILE, &payload, Some(&unique), None).await?;
    let id = ids::new_id("rec");
    let new = NewReconciliation { tenant_id: tenant, id: &id, connection_id, job_id, import, trigger };
    match store::reconciliations::insert(&mut tx, &new).await {
        Ok(()) => {}
        // Started by another request at the same moment: theirs is the run.
        Err(e) if super::shipments::is_unique_violation(&e) => {
            drop(tx);
            let mut conn = state.db.acquire().await?;
            return store::reconciliations::by_job(&mut conn, job_id)
                .await?
                .ok_or_else(|| Error::internal(anyhow::anyhow!("reconciliation of job {job_id} vanished")));
        }
        Err(e) => return Err(e.into()),
    }
    let row = store::reconciliations::by_job(&mut tx, job_id)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("reconciliation of job {job_id} not written")))?;
    tx.commit().await?;
    Ok(row)
}

/// The periodic job: start the runs connections ask for (`reconcile_every_hours`).
pub async fn run_schedule(state: &AppState) -> Result<Outcome> {
    let due = {
        let mut conn = state.db.acquire().await?;
        store::reconciliations::due_scheduled(&mut conn).await?
    };
    for c in due {
        let Some(row) = ({
            let mut conn = state.db.acquire().await?;
            store::connections::get(&mut conn, &c.tenant_id, &c.connection_id).await?
        }) else {
            continue;
        };
        if let Err(e) = begin(state, &row.tenant_id, &row.id, &row.carrier, false, "schedule").await {
            tracing::warn!(connection_id = %row.id, error = %e, "scheduled reconciliation not started");
        }
    }
    Ok(Outcome::Repeat { after: Duration::from_secs(900) })
}

/// Run (a slice of) the reconciliation a `reconcile` job walks.
pub async fn run_job(state: &AppState, job: &Job) -> Result<Outcome> {
    let rec = {
        let mut conn = state.db.acquire().await?;
        store::reconciliations::by_job(&mut conn, job.id).await?
    };
    let Some(rec) = rec else { return Ok(Outcome::Fail { error: "no reconciliation for this job".into() }) };
    if rec.state != "running" {
        return Ok(Outcome::Done);
    }
    match walk(state, job, &rec).await {
        Err(e) if job.is_last_attempt() => {
            finish(state, &rec, None, Some(&format!("{e}"))).await?;
            Err(e)
        }
        other => other,
    }
}

async fn finish(state: &AppState, rec: &ReconciliationRow, report: Option<&Report>, error: Option<&str>) -> Result<()> {
    let mut conn = state.db.acquire().await?;
    let latest = store::reconciliations::by_job(&mut conn, rec.job_id).await?;
    let report = match report {
        Some(r) => serde_json::to_value(r).map_err(Error::internal)?,
        None => latest.map(|l| l.report.0).unwrap_or_default(),
    };
    let outcome = if error.is_some() { "failed" } else { "succeeded" };
    store::reconciliations::finish(&mut conn, rec, outcome, &report, error).await?;
    Ok(())
}

async fn walk(state: &AppState, job: &Job, rec: &ReconciliationRow) -> Result<Outcome> {
    let tenant = rec.tenant_id.as_str();
    let connection = {
        let mut conn = state.db.acquire().await?;
        store::connections::get(&mut conn, tenant, &rec.connection_id).await?
    };
    let Some(connection) = connection else {
        finish(state, rec, None, Some("the connection was deleted")).await?;
        return Ok(Outcome::Done);
    };
    let client = state.client(&connection)?;
    let mut report: Report = serde_json::from_value(rec.report.0.clone()).unwrap_or_default();
    let mut cursor = rec.cursor.clone();
    let began = Instant::now();
    loop {
        let cx = CallCx::new();
        let page = client.list_page(&cx, cursor.as_deref()).await;
        {
            let mut conn = state.db.acquire().await?;
            super::shipments::save_exchanges(&mut conn, tenant, None, cx.take()).await?;
        }
        report.calls += 1;
        let page = match page {
            Ok(p) => p,
            Err(e) if e.is_transient() => return Err(Error::from(e)),
            Err(e) => {
                let message = format!("{e}");
                super::connections::note_connection_outcome(state, &connection, Some(&e)).await;
                finish(state, rec, Some(&report), Some(&message)).await?;
                return Ok(Outcome::Fail { error: message });
            }
        };
        if !page_done(state, job, rec, &connection.carrier, &page, &mut report).await? {
            // Our claim ran out and another worker has the job: it carries on.
            return Ok(Outcome::Retry { error: "the claim was lost mid-walk".into(), at_least: None });
        }
        match page.next {
            None => {
                missing(state, rec, &mut report).await?;
                finish(state, rec, Some(&report), None).await?;
                return Ok(Outcome::Done);
            }
            Some(next) => cursor = Some(next),
        }
        if began.elapsed() >= SLICE {
            return Ok(Outcome::Postpone { after: Duration::ZERO });
        }
    }
}

/// Apply one page: forward fixes first (each its own transaction, idempotent), then the
/// page's marks, imports and the run's progress in one transaction. False when the
/// job's claim was lost (nothing of the page's transaction is kept).
async fn page_done(
    state: &AppState,
    job: &Job,
    rec: &ReconciliationRow,
    carrier: &str,
    page: &ListPage,
    report: &mut Report,
) -> Result<bool> {
    let tenant = rec.tenant_id.as_str();
    let refs: Vec<String> = page.items.iter().map(|i| i.carrier_reference.clone()).collect();
    let numbers: Vec<String> = page.items.iter().filter_map(|i| i.tracking_number.clone()).collect();
    let known = {
        let mut conn = state.db.acquire().await?;
        store::reconciliations::find_known(&mut conn, tenant, &rec.connection_id, &refs, &numbers).await?
    };
    let find = |item: &Listed| {
        known.iter().find(|k| {
            k.carrier_reference.as_deref() == Some(&item.carrier_reference)
                || (item.tracking_number.is_some() && k.tracking_number == item.tracking_number)
        })
    };
    let mut fixed = Vec::new();
    let mut unknown = Vec::new();
    for item in &page.items {
        let Some(ours) = find(item) else {
            unknown.push(item);
            continue;
        };
        let Some((status, subtag)) = &item.status else { continue };
        if (*status, subtag.as_deref()) == (ours.status, ours.subtag.as_deref())
            || (*status == ours.status && subtag.is_none())
        {
            continue;
        }
        let forward = may_transition(ours.status, ours.subtag.as_deref(), *status, subtag.as_deref());
        if forward {
            let snap = TrackingSnapshot {
                status: Some((*status, subtag.clone())),
                carrier_status: item.carrier_status.clone(),
                ..TrackingSnapshot::default()
            };
            super::shipments::apply_snapshot(
                state,
                tenant,
                &ours.id,
                &snap,
                "reconcile",
                &Actor::Reconcile,
                Vec::new(),
            )
            .await?;
            fixed.push(ours.id.clone());
        }
        report.status_disagreements += 1;
        report.fixed_forward += u64::from(forward);
        push_sample(
            &mut report.disagreement_sample,
            json!({"shipment_id": ours.id, "ours": ours.status, "ours_subtag": ours.subtag, "carrier": status,
                   "carrier_subtag": subtag, "carrier_status": item.carrier_status, "fixed": forward}),
        );
    }
    report.seen += page.items.len() as u64;
    report.matched += (page.items.len() - unknown.len()) as u64;
    report.carrier_only += unknown.len() as u64;
    report.total_at_carrier = page.total.or(report.total_at_carrier);

    let mut tx = store::begin(&state.db).await?;
    let mut seen: Vec<String> = known.iter().map(|k| k.id.clone()).collect();
    for item in unknown {
        let mut entry = json!({"carrier_reference": item.carrier_reference, "tracking_number": item.tracking_number,
                               "carrier_status": item.carrier_status});
        if rec.import {
            let id = import(&mut tx, rec, carrier, item).await?;
            entry["shipment_id"] = json!(id);
            seen.push(id);
            report.imported += 1;
        }
        push_sample(&mut report.carrier_only_sample, entry);
    }
    store::reconciliations::mark_seen(&mut tx, tenant, &seen).await?;
    let progress = serde_json::to_value(&*report).map_err(Error::internal)?;
    if !store::reconciliations::save_page(&mut tx, rec, job.claim_token, page.next.as_deref(), &progress).await? {
        return Ok(false);
    }
    tx.commit().await?;
    if !fixed.is_empty() {
        tracing::info!(fixed = fixed.len(), "reconciliation moved shipments forward");
    }
    Ok(true)
}

/// A carrier-only shipment as a booked shipment of ours, with the carrier's status.
async fn import(tx: &mut sqlx::PgConnection, rec: &ReconciliationRow, carrier: &str, item: &Listed) -> Result<String> {
    let id = ids::new_id("shp");
    let plan = ShipmentPlan {
        reference: None,
        service: item.slug.clone(),
        stops: Vec::new(),
        parcels: Vec::new(),
        declared_value: None,
        cod_amount: None,
        notes: None,
    };
    let metadata = Default::default();
    let new = NewShipment {
        tenant_id: &rec.tenant_id,
        id: &id,
        connection_id: &rec.connection_id,
        carrier,
        carrier_reference: Some(&item.carrier_reference),
        tracking_number: item.tracking_number.as_deref(),
        plan: &plan,
        metadata: &metadata,
        channel: None,
        booking_state: Some(BookingState::Booked),
    };
    let at = Utc::now().duration_trunc(chrono::Duration::microseconds(1)).unwrap_or_else(|_| Utc::now());
    let event_id = ids::new_id("evt");
    let shown = super::views::Shipment::try_from(new.as_row(at))?;
    let event = super::events::view_event_text(&shown, &[])?;
    let detail = json!({"source": "reconcile", "reconciliation_id": rec.id, "carrier_status": item.carrier_status});
    let creation = Creation {
        actor: &Actor::Reconcile,
        action: "imported",
        detail: &detail,
        at,
        event: (&event_id, &event),
        json: shown.plan_json(),
    };
    store::shipments::insert_with_history(&mut *tx, &new, &creation).await?;
    // On a carrier where a shipment of ours is a registered tracking number, the import
    // is that registration: registering the number again later finds it (issue 8's "one
    // shipment per number and connection").
    if carriers::supports(carrier, Capability::RegisterTracking) {
        store::shipments::keep_as_registration(&mut *tx, &rec.tenant_id, &id).await?;
    }
    if let Some((status, subtag)) = &item.status {
        store::shipments::set_status(
            &mut *tx,
            &rec.tenant_id,
            &id,
            *status,
            subtag.as_deref(),
            item.carrier_status.as_deref(),
            None,
        )
        .await?;
    }
    Ok(id)
}

/// Once the whole list is walked: our active shipments it did not show.
async fn missing(state: &AppState, rec: &ReconciliationRow, report: &mut Report) -> Result<()> {
    let mut conn = state.db.acquire().await?;
    let unseen =
        store::reconciliations::unseen_since(&mut conn, &rec.tenant_id, &rec.connection_id, rec.started_at, 100_000)
            .await?;
    for k in unseen.iter().filter(|k| !is_terminal(k.status, k.subtag.as_deref())) {
        report.missing_at_carrier += 1;
        push_sample(
            &mut report.missing_sample,
            json!({"shipment_id": k.id, "carrier_reference": k.carrier_reference, "status": k.status}),
        );
    }
    Ok(())
}
