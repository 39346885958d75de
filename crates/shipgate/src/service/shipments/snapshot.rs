//! Applying a carrier's view of a shipment (a refresh, a tracking push, the answer to a
//! registration): new events are added (deduplicated), the status moves forward only,
//! and every change is written to the history with its actor, in one transaction.

use serde_json::{Value, json};

use super::save_exchanges;
use crate::app::AppState;
use crate::carriers::{CarrierEvent, TrackingSnapshot};
use crate::domain::{Exchange, may_transition};
use crate::service::events::shipment_event;
use crate::service::{Error, Result};
use crate::store::shipments::{NewEvent, ShipmentRow};
use crate::store::{self, Actor};

/// A carrier event as the history and the events show it.
fn event_json(e: &CarrierEvent) -> Value {
    json!({
        "occurred_at": crate::domain::time::format(&e.occurred_at), "status": e.status, "subtag": e.subtag, "message": e.message,
        "location": e.location, "raw_code": e.raw_code, "actor": e.actor,
    })
}

/// Apply a carrier's view: new events are added (deduplicated), the status moves
/// forward only, and every change is written to the history with its actor.
pub async fn apply_snapshot(
    state: &AppState,
    tenant: &str,
    shipment_id: &str,
    snap: &TrackingSnapshot,
    source: &str,
    actor: &Actor,
    exchanges: Vec<Exchange>,
) -> Result<ShipmentRow> {
    let mut tx = store::begin(&state.db).await?;
    save_exchanges(&mut tx, tenant, Some(shipment_id), exchanges).await?;
    let row =
        store::shipments::get_for_update(&mut tx, tenant, shipment_id).await?.ok_or(Error::NotFound("shipment"))?;
    let before = (row.status, row.subtag.clone());
    let (mut status, mut subtag) = before.clone();

    let mut events: Vec<&CarrierEvent> = snap.events.iter().collect();
    events.sort_by_key(|e| e.occurred_at);
    let mut added = Vec::new();
    for e in events {
        let location = e.location.as_ref().and_then(|l| serde_json::to_value(l).ok());
        let inserted = store::shipments::insert_event(
            &mut tx,
            tenant,
            shipment_id,
            &NewEvent {
                occurred_at: e.occurred_at,
                status: e.status,
                subtag: e.subtag.as_deref(),
                message: e.message.as_deref(),
                location: location.as_ref(),
                raw_code: e.raw_code.as_deref(),
                raw_text: e.raw_text.as_deref(),
                actor: e.actor.as_deref(),
                source,
                dedup_key: &e.dedup_key,
            },
        )
        .await?;
        if inserted.is_some() {
            // A named person at the carrier did this: the audit history keeps them.
            if let Some(who) = &e.actor {
                store::shipments::insert_history(
                    &mut tx,
                    tenant,
                    shipment_id,
                    &Actor::Carrier(Some(who.clone())),
                    "carrier_event",
                    &event_json(e),
                )
                .await?;
            }
            // Events drive the status only when the carrier gives no current state of
            // its own (pushes); a snapshot's current state is more precise than the
            // events that led to it.
            if snap.status.is_none()
                && let Some(s) = e.status
                && may_transition(status, subtag.as_deref(), s, e.subtag.as_deref())
            {
                status = s;
                subtag = e.subtag.clone();
            }
            added.push(e);
        }
    }
    let mut kept = None;
    if let Some((s, t)) = &snap.status {
        if may_transition(status, subtag.as_deref(), *s, t.as_deref()) {
            status = *s;
            subtag = t.clone();
        } else if (*s, t.clone()) != (status, subtag.clone()) {
            kept = Some(json!({"reported": s, "reported_subtag": t, "kept": status, "kept_subtag": subtag}));
        }
    }
    let last_event = added.last().map(|e| event_json(e));
    if !snap.documents.is_empty() {
        store::shipments::set_documents(&mut tx, tenant, shipment_id, &snap.documents).await?;
    }
    if let Some(report) = &snap.proof {
        super::proof::keep(&mut tx, &row, report, state.config.document_max_bytes, actor).await?;
    }
    if let Some(at) = snap.estimated_delivery {
        store::shipments::set_estimated_delivery(&mut tx, tenant, shipment_id, at).await?;
    }
    if (status, subtag.clone()) != before {
        store::shipments::set_status(
            &mut tx,
            tenant,
            shipment_id,
            status,
            subtag.as_deref(),
            snap.carrier_status.as_deref(),
            last_event.as_ref(),
        )
        .await?;
        store::shipments::insert_history(
            &mut tx,
            tenant,
            shipment_id,
            actor,
            "status_changed",
            &json!({"from": before.0, "from_subtag": before.1, "to": status, "to_subtag": subtag, "carrier_status": snap.carrier_status}),
        )
        .await?;
    } else {
        store::shipments::touch_carrier_status(
            &mut tx,
            tenant,
            shipment_id,
            snap.carrier_status.as_deref(),
            last_event.as_ref(),
        )
        .await?;
    }
    if let Some(detail) = kept {
        // A late or stale report: recorded for ops, never applied.
        store::shipments::insert_history(&mut tx, tenant, shipment_id, actor, "status_regression_ignored", &detail)
            .await?;
    }
    if !added.is_empty() {
        let list: Vec<Value> = added.iter().map(|e| event_json(e)).collect();
        store::shipments::insert_history(
            &mut tx,
            tenant,
            shipment_id,
            actor,
            "events_added",
            &json!({"count": added.len(), "events": list}),
        )
        .await?;
    }
    let updated = store::shipments::get(&mut tx, tenant, shipment_id).await?.ok_or(Error::NotFound("shipment"))?;
    let mut outbound: Vec<_> = added
        .iter()
        .map(|e| shipment_event("shipment.event_added", &updated, json!({"event": event_json(e)})))
        .collect::<Result<_>>()?;
    if (status, subtag.clone()) != before {
        outbound.push(shipment_event(
            "shipment.status_changed",
            &updated,
            json!({"previous_status": before.0, "previous_subtag": before.1}),
        )?);
    }
    store::events::emit(&mut tx, tenant, shipment_id, &outbound).await?;
    tx.commit().await?;
    Ok(updated)
}
