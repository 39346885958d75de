//! Storing carrier pushes, whatever the carrier: a push arrives parsed into the
//! gateway's vocabulary by its carrier's folder (`carriers::inbound::Push`).
//!
//! - A **scan** (a raw status code on one tracking number) is written in one
//!   transaction: the raw push (deduplicated on connection, tracking number and scan
//!   id), the shipment (found by tracking number or created), the tracking event with
//!   the status the carrier's status-mapping table gives the code, the forward-only
//!   status, history and outbound events. The caller acknowledges only after
//!   [`ingest_scan`] returned Ok, that is after COMMIT.
//! - A **tracking update** (the carrier's whole view) is applied like a refresh's
//!   snapshot to the connection's shipment with that number, then its event id is
//!   recorded ([`ingest_tracking`]).
//!
//! The scans' table keeps the first pushing carrier's column names (`awb`,
//! `status_update_number`): they hold the tracking number and the scan id.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use sqlx::PgConnection;

use crate::app::AppState;
use crate::cache::Mappings;
use crate::carriers::inbound::{Ingested, Scan, TrackingUpdate};
use crate::domain::{ShipmentPlan, Status, may_transition};
use crate::service::Result;
use crate::service::events::shipment_event;
use crate::store::connections::ConnectionRow;
use crate::store::shipments::{NewEvent, NewShipment, ShipmentRow};
use crate::store::{self, Actor};

pub(super) fn event_json(
    s: &Scan,
    status: Option<Status>,
    subtag: Option<&str>,
    location: Option<&Value>,
    dedup_key: &str,
) -> Value {
    json!({
        "occurred_at": crate::domain::time::format(&s.occurred_at), "status": status, "subtag": subtag, "message": s.message,
        "location": location, "raw_code": s.code, "raw_text": s.code_text, "actor": s.actor,
        "source": "push", "dedup_key": dedup_key,
    })
}

/// Whether this scan is at least as new as the shipment's last event (a late scan is
/// kept in the events and history but does not become `last_event`).
pub(super) fn is_latest(row: &ShipmentRow, at: DateTime<Utc>) -> bool {
    row.last_event
        .as_ref()
        .and_then(|j| j.0.get("occurred_at"))
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .is_none_or(|last| at >= last.with_timezone(&Utc))
}

/// What [`apply_scan`] did inside its transaction; [`after_commit`] turns it into the
/// answer once the transaction committed.
pub(super) enum Applied {
    /// Stored and applied; `unmapped` when the code had no mapping (counted after COMMIT).
    Stored { shipment_id: String, unmapped: bool },
    /// The scan was stored before (for this shipment): nothing was written.
    Duplicate { shipment_id: String },
}

/// Store one scan alone (see the module doc); `raw` is the push as received. Returns
/// after COMMIT. Concurrent scans are committed together by [`super::batch`], which
/// falls back to this path for a lone scan and for the scans of a failed group.
///
/// Round trips for a scan of a known shipment: BEGIN, the shipment row (locked), one
/// statement for raw push + event + status + history, the outbound events, COMMIT.
/// The mapping comes from [`MappingCache`](crate::cache::MappingCache); only a code with an "after" rule costs one
/// more query.
pub(super) async fn ingest_scan(
    state: &AppState,
    connection: &ConnectionRow,
    scan: &Scan,
    raw: &Value,
) -> Result<Ingested> {
    let mappings = state.inbound.mappings.get(&state.db, &connection.tenant_id, &connection.carrier).await?;
    let mut tx = store::begin(&state.db).await?;
    let (applied, _) = apply_scan(&mut tx, connection, &mappings, scan, raw, None).await?;
    tx.commit().await?;
    after_commit(state, connection, scan, raw, applied).await
}

/// Write one scan in the caller's transaction: the shipment found by tracking number
/// and locked (or created), the raw push, event, status, history and outbound events.
/// Nothing outside the transaction is touched, so a group of scans can share it and
/// be rolled back together. `locked`: the shipment when the caller already holds its
/// row lock in this transaction. Returns what was done and the shipment row as it now
/// is (for the next scan of the same number in the transaction).
pub(super) async fn apply_scan(
    tx: &mut PgConnection,
    connection: &ConnectionRow,
    mappings: &Mappings,
    scan: &Scan,
    raw: &Value,
    locked: Option<ShipmentRow>,
) -> Result<(Applied, Option<ShipmentRow>)> {
    let tenant = connection.tenant_id.as_str();
    let carrier = connection.carrier.as_str();
    let number = scan.tracking_number.as_str();
    let (row, created) = shipment_for(&mut *tx, connection, scan, locked).await?;
    let after_codes = mappings.after_codes(&scan.code);
    let seen = if after_codes.is_empty() || created {
        Vec::new()
    } else {
        // The group's lookup, for a group of one.
        store::scan_groups::seen_codes(&mut *tx, &[tenant], &[row.id.as_str()], &after_codes)
            .await?
            .into_iter()
            .map(|(_, code)| code)
            .collect()
    };
    let mapping = mappings.resolve(&scan.code, &seen);
    let before = (row.status, row.subtag.clone());
    let moves = mapping.as_ref().filter(|(s, t)| may_transition(before.0, before.1.as_deref(), *s, t.as_deref()));
    let dedup_key = format!("{carrier}:{}", scan.scan_id);
    let (status, subtag) = (mapping.as_ref().map(|m| m.0), mapping.as_ref().and_then(|m| m.1.as_deref()));
    let location = scan.location.as_ref().and_then(|l| serde_json::to_value(l).ok());
    let ev_json = event_json(scan, status, subtag, location.as_ref(), &dedup_key);
    let latest = is_latest(&row, scan.occurred_at);
    let mut history = vec![("events_added", json!({"count": 1, "events": [ev_json.clone()]}))];
    if let Some((s, t)) = moves {
        history.push((
            "status_changed",
            json!({"from": before.0, "from_subtag": before.1, "to": s, "to_subtag": t, "carrier_status": scan.code}),
        ));
    }
    let event = NewEvent {
        occurred_at: scan.occurred_at,
        status,
        subtag,
        message: scan.message.as_deref(),
        location: location.as_ref(),
        raw_code: Some(&scan.code),
        raw_text: scan.code_text.as_deref(),
        actor: scan.actor.as_deref(),
        source: "push",
        dedup_key: &dedup_key,
    };
    let updated = store::inbound::record_push(
        &mut *tx,
        &store::inbound::PushWrite {
            tenant_id: tenant,
            connection_id: &connection.id,
            awb: number,
            status_update_number: &scan.scan_id,
            shipment_id: &row.id,
            payload: raw,
            event: &event,
            status: moves.map(|(s, t)| (*s, t.as_deref())),
            carrier_status: latest.then_some(scan.code.as_str()),
            last_event: latest.then_some(&ev_json),
            history: &history,
            events: if moves.is_some() { 2 } else { 1 },
        },
    )
    .await?;
    // None: stored before, nothing was written (a shipment cannot have been created
    // here, since the earlier push committed it together with its raw row).
    let Some(updated) = updated else {
        return Ok((Applied::Duplicate { shipment_id: row.id.clone() }, Some(row)));
    };
    // shipment.created, if it was created here, was written with the row.
    let mut events = Vec::new();
    events.push(shipment_event("shipment.event_added", &updated, json!({"event": ev_json}))?);
    if moves.is_some() {
        events.push(shipment_event(
            "shipment.status_changed",
            &updated,
            json!({"previous_status": before.0, "previous_subtag": before.1}),
        )?);
    }
    store::events::emit_counted(&mut *tx, tenant, &row.id, &events).await?;
    if mapping.is_none() {
        store::inbound::note_unmapped(&mut *tx, tenant, carrier, &scan.code, scan.code_text.as_deref()).await?;
    }
    Ok((Applied::Stored { shipment_id: row.id, unmapped: mapping.is_none() }, Some(updated)))
}

/// The shipment a scan is for, locked for the caller's transaction: `locked` when the
/// caller already holds it, else the connection's (or the tenant's) shipment with the
/// tracking number, else a new one created with its history and `shipment.created`
/// event (true when created).
pub(super) async fn shipment_for(
    tx: &mut PgConnection,
    connection: &ConnectionRow,
    scan: &Scan,
    locked: Option<ShipmentRow>,
) -> Result<(ShipmentRow, bool)> {
    let tenant = connection.tenant_id.as_str();
    let carrier = connection.carrier.as_str();
    let number = scan.tracking_number.as_str();
    let mut found = match locked {
        Some(row) => Some(row),
        None => store::shipments::get_by_tracking_for_update(&mut *tx, tenant, number, &connection.id).await?,
    };
    if found.is_none() {
        store::inbound::lock_awb(&mut *tx, tenant, number).await?;
        found = store::shipments::get_by_tracking_for_update(&mut *tx, tenant, number, &connection.id).await?;
    }
    let (row, created) = match found {
        Some(row) => (row, false),
        None => {
            // Unknown tracking number: accepted and kept as a shipment of this connection
            // (docs/carriers/: "the shipment may be registered later").
            let id = crate::ids::new_id("shp");
            let new = NewShipment {
                tenant_id: tenant,
                id: &id,
                connection_id: &connection.id,
                carrier,
                carrier_reference: None,
                tracking_number: Some(number),
                plan: &ShipmentPlan::default(),
                metadata: &scan.metadata,
                channel: None,
                booking_state: None,
            };
            // Postgres keeps microseconds: the event shows the same created_at as the row.
            let at = chrono::DurationRound::duration_trunc(chrono::Utc::now(), chrono::Duration::microseconds(1))
                .unwrap_or_else(|_| chrono::Utc::now());
            let event_id = crate::ids::new_id("evt");
            let row = new.as_row(at);
            let shown = crate::service::views::Shipment::try_from(row.clone())?;
            let created_event = crate::service::events::view_event_text(&shown, &[])?;
            let mut detail = serde_json::Map::new();
            detail.insert("source".into(), format!("{carrier}_push").into());
            detail.insert(scan.names.tracking_number.into(), number.into());
            detail.insert(scan.names.scan_id.into(), scan.scan_id.clone().into());
            store::shipments::insert_with_history(
                &mut *tx,
                &new,
                &store::shipments::Creation {
                    actor: &Actor::CarrierPush,
                    action: "created",
                    detail: &Value::Object(detail),
                    at,
                    event: (&event_id, &created_event),
                    json: shown.plan_json(),
                },
            )
            .await?;
            (row, true)
        }
    };
    Ok((row, created))
}

/// What follows a COMMIT that held [`apply_scan`]'s writes: the metric of an unmapped
/// code, and for a repeated scan id the check whether its payload changed.
pub(super) async fn after_commit(
    state: &AppState,
    connection: &ConnectionRow,
    scan: &Scan,
    raw: &Value,
    applied: Applied,
) -> Result<Ingested> {
    let carrier = connection.carrier.as_str();
    match applied {
        Applied::Stored { shipment_id, unmapped } => {
            if unmapped {
                metrics::counter!("shipgate_unmapped_codes_total", "carrier" => carrier.to_owned()).increment(1);
            }
            Ok(Ingested::Applied { shipment_id })
        }
        Applied::Duplicate { shipment_id } => {
            // The first payload stays the one applied; a changed one is kept and counted
            // so ops see a carrier resending changed scans (issue 10).
            let number = scan.tracking_number.as_str();
            let mut conn = state.db.acquire().await?;
            if store::inbound::record_changed_repush(
                &mut conn,
                &connection.tenant_id,
                &shipment_id,
                &connection.id,
                number,
                &scan.scan_id,
                raw,
            )
            .await?
            {
                metrics::counter!("shipgate_inbound_changed_repushes_total", "carrier" => carrier.to_owned())
                    .increment(1);
                tracing::warn!(connection_id = %connection.id, tracking_number = %number, scan_id = %scan.scan_id,
                    "repeated scan id with a different payload; the first one stays applied");
            }
            Ok(Ingested::Duplicate)
        }
    }
}

/// Apply a tracking update: skip a seen event id; apply the snapshot to the
/// connection's shipment with its number through `apply_snapshot` (idempotent: events
/// deduplicated, status forward-only), then record the event id with the push. Recording
/// after applying means a failure in between is retried by the carrier and applied
/// again harmlessly, never lost.
pub(super) async fn ingest_tracking(
    state: &AppState,
    connection: &ConnectionRow,
    update: &TrackingUpdate,
    raw: &Value,
) -> Result<Ingested> {
    let tenant = connection.tenant_id.as_str();
    let mut conn = state.db.acquire().await?;
    if store::inbound::webhook_seen(&mut conn, tenant, &connection.id, &update.event_id).await? {
        return Ok(Ingested::Duplicate);
    }
    let number = update.tracking_number.as_deref();
    let shipment = match number {
        Some(n) => store::inbound::shipment_on_connection(&mut conn, tenant, &connection.id, n).await?,
        None => None,
    };
    drop(conn);
    if let Some(id) = &shipment {
        crate::service::shipments::apply_snapshot(
            state,
            tenant,
            id,
            &update.snapshot,
            "push",
            &Actor::CarrierPush,
            Vec::new(),
        )
        .await?;
    }
    let mut conn = state.db.acquire().await?;
    let fresh = store::inbound::keep_webhook(
        &mut conn,
        tenant,
        &connection.id,
        &update.event_id,
        update.event.as_deref(),
        number,
        shipment.as_deref(),
        raw,
    )
    .await?;
    Ok(match (fresh, shipment) {
        (false, _) => Ingested::Duplicate,
        (true, Some(shipment_id)) => Ingested::Applied { shipment_id },
        (true, None) => Ingested::Unapplied,
    })
}
