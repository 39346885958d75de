//! Booking attempts and tracking updates for one shipment.

use chrono::Utc;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::carriers::Channel;
use crate::carriers::{CallCx, CarrierError, CarrierEvent, OrderRequest, TrackingSnapshot};
use crate::domain::Exchange;
use crate::domain::{BookingState, ShipmentPlan, Status, may_transition};
use crate::service::events::shipment_event;
use crate::store::connections::ConnectionRow;
use crate::store::shipments::{BookingUpdate, NewEvent, ShipmentRow};
use crate::store::{self, Actor};

/// Our order number at carriers that let the client choose one (e-Courier): stable
/// for the shipment's life, so a repeated create is an update, never a second order.
pub fn order_number_for(shipment_id: &str) -> String {
    format!("SG{}", shipment_id.trim_start_matches("shp_").to_ascii_uppercase())
}

/// The carrier's view of a stored shipment.
pub fn order_request<'a>(row: &'a ShipmentRow, order_number: &'a str, plan: &'a ShipmentPlan) -> OrderRequest<'a> {
    OrderRequest {
        shipment_id: &row.id,
        order_number,
        carrier_reference: row.carrier_reference.as_deref(),
        tracking_number: row.tracking_number.as_deref(),
        plan,
        metadata: &row.metadata.0,
    }
}

/// How a carrier finds the shipment for tracking: its order number, tracking number and
/// (AfterShip) courier slug.
pub fn track_request(row: &ShipmentRow) -> crate::carriers::TrackRequest<'_> {
    crate::carriers::TrackRequest {
        carrier_reference: row.carrier_reference.as_deref(),
        tracking_number: row.tracking_number.as_deref(),
        slug: row.service.as_deref(),
    }
}

pub fn plan_of(row: &ShipmentRow) -> ShipmentPlan {
    ShipmentPlan {
        reference: row.reference.clone(),
        service: row.service.clone(),
        stops: row.stops.0.clone(),
        parcels: row.parcels.0.clone(),
        declared_value: row.declared_value.as_ref().map(|m| m.0.clone()),
        cod_amount: row.cod_amount.as_ref().map(|m| m.0.clone()),
        notes: row.notes.clone(),
    }
}

/// The shipment's channel, read from the JSON the store keeps (the store does not know
/// the carrier registry's `Channel`).
pub fn channel_of(row: &ShipmentRow) -> sqlx::Result<Option<Channel>> {
    row.channel
        .as_ref()
        .map(|c| serde_json::from_str(c.0.get()).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()
}

/// A channel as the store keeps it.
pub fn channel_json(channel: &Channel) -> sqlx::Result<Box<serde_json::value::RawValue>> {
    serde_json::value::to_raw_value(channel).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

pub async fn save_exchanges(
    conn: &mut sqlx::PgConnection,
    tenant: &str,
    shipment_id: Option<&str>,
    xs: Vec<Exchange>,
) -> sqlx::Result<()> {
    for x in xs {
        store::exchanges::insert(conn, tenant, shipment_id, &x).await?;
    }
    Ok(())
}

fn error_json(e: &CarrierError) -> Value {
    json!({"code": e.kind(), "message": e.message(), "at": crate::domain::time::format(&Utc::now())})
}

/// Try to book a shipment whose booking is pending. Returns the updated row and the
/// carrier error, if any. Exchanges, outcome and history commit together.
pub async fn attempt_booking(
    state: &AppState,
    connection: &ConnectionRow,
    row: &ShipmentRow,
    actor: &Actor,
) -> sqlx::Result<(ShipmentRow, Option<CarrierError>)> {
    let cx = CallCx::new();
    let plan = plan_of(row);
    let order_number = order_number_for(&row.id);
    let outcome = match state.client(connection) {
        // A tracking number the client already has is registered (AfterShip), not booked.
        Ok(client) if row.tracking_number.is_some() && registers(&row.carrier) => {
            client.register(&cx, &order_request(row, &order_number, &plan)).await
        }
        Ok(client) => client.book(&cx, &order_request(row, &order_number, &plan)).await,
        Err(e) => Err(e),
    };
    let exchanges = cx.take();
    let booked = match &outcome {
        Ok(booked) => booked,
        Err(e) => return record_failure(state, row, actor, e, exchanges).await,
    };
    // The common case (one exchange, no sink) is one statement and one commit (QUALITY
    // P3): the booked row, its exchange, history and shipment.booked event together.
    let updated = if exchanges.len() <= 1 && row.channel.is_none() {
        let mut conn = state.db.acquire().await?;
        record_booked(&mut conn, row, booked, actor, exchanges).await?
    } else {
        let mut tx = state.db.begin().await?;
        let updated = record_booked(&mut tx, row, booked, actor, exchanges).await?;
        tx.commit().await?;
        updated
    };
    if let Some(snap) = &booked.snapshot {
        // The carrier answered with its view of the shipment (AfterShip's tracking).
        let updated = apply_snapshot(state, &row.tenant_id, &row.id, snap, "poll", actor, Vec::new()).await?;
        return Ok((updated, None));
    }
    Ok((updated, None))
}

/// Write a failed attempt: `pending` when the carrier may succeed later, else `failed`,
/// with the carrier's error and the exchanges, in one transaction.
async fn record_failure(
    state: &AppState,
    row: &ShipmentRow,
    actor: &Actor,
    e: &CarrierError,
    exchanges: Vec<Exchange>,
) -> sqlx::Result<(ShipmentRow, Option<CarrierError>)> {
    let err = error_json(e);
    let (state_name, action) = if e.is_transient() {
        (BookingState::Pending, "booking_pending")
    } else {
        (BookingState::Failed, "booking_failed")
    };
    let mut tx = state.db.begin().await?;
    save_exchanges(&mut tx, &row.tenant_id, Some(&row.id), exchanges).await?;
    store::shipments::set_booking(
        &mut tx,
        &row.tenant_id,
        &row.id,
        &BookingUpdate {
            state: state_name,
            last_error: Some(&err),
            booked: false,
            tracking_number: None,
            carrier_reference: None,
            count_attempt: true,
        },
    )
    .await?;
    store::shipments::insert_history(&mut tx, &row.tenant_id, &row.id, actor, action, &err).await?;
    let updated = store::shipments::get(&mut tx, &row.tenant_id, &row.id).await?.ok_or(sqlx::Error::RowNotFound)?;
    if state_name == BookingState::Failed {
        crate::store::jobs::drop_queued_booking(&mut tx, &row.tenant_id, &row.id).await?;
        store::events::emit(
            &mut tx,
            &row.tenant_id,
            &row.id,
            &[shipment_event("shipment.booking_failed", &updated, json!({"error": err}))],
        )
        .await?;
    }
    tx.commit().await?;
    Ok((updated, Some(e.clone())))
}

/// Write a successful booking: its exchanges (the last one in the same statement), the
/// outcome and history, and the sink hand-over when the shipment has a channel.
async fn record_booked(
    conn: &mut sqlx::PgConnection,
    row: &ShipmentRow,
    booked: &crate::carriers::Booked,
    actor: &Actor,
    mut exchanges: Vec<Exchange>,
) -> sqlx::Result<ShipmentRow> {
    let last = exchanges.pop();
    save_exchanges(conn, &row.tenant_id, Some(&row.id), exchanges).await?;
    let detail = json!({"carrier_reference": booked.carrier_reference, "tracking_number": booked.tracking_number});
    // Postgres keeps microseconds: the event shows the same times as the stored row.
    let at = chrono::DurationRound::duration_trunc(Utc::now(), chrono::Duration::microseconds(1))
        .unwrap_or_else(|_| Utc::now());
    // Without a sink the event is written by the same statement, built from the row as
    // it will be; with one, after the sink hand-over has changed the row.
    let event = row.channel.is_none().then(|| {
        let mut will_be = row.clone();
        will_be.booking_state = Some(BookingState::Booked);
        will_be.booking_last_error = None;
        will_be.booking_attempts += 1;
        will_be.booked_at = will_be.booked_at.or(Some(at));
        will_be.tracking_number = booked.tracking_number.clone().or(will_be.tracking_number);
        will_be.carrier_reference = Some(booked.carrier_reference.clone());
        if will_be.status == Status::Pending {
            will_be.status = Status::InfoReceived;
        }
        will_be.updated_at = at;
        (crate::ids::new_id("evt"), shipment_event("shipment.booked", &will_be, Value::Null).data)
    });
    let updated = store::shipments::mark_booked(
        conn,
        &row.tenant_id,
        &row.id,
        booked.tracking_number.as_deref(),
        Some(&booked.carrier_reference),
        actor,
        &detail,
        last.as_ref(),
        &store::shipments::BookedEvent { at, event: event.as_ref().map(|(id, data)| (id.as_str(), data)) },
    )
    .await?;
    if updated.channel.is_none() {
        return Ok(updated);
    }
    enqueue_sinks(conn, &updated, booked.tracking_number.as_deref()).await?;
    let updated = store::shipments::get(conn, &row.tenant_id, &row.id).await?.ok_or(sqlx::Error::RowNotFound)?;
    store::events::emit(conn, &row.tenant_id, &row.id, &[shipment_event("shipment.booked", &updated, Value::Null)])
        .await?;
    Ok(updated)
}

fn registers(carrier: &str) -> bool {
    crate::carriers::supports(carrier, crate::carriers::Capability::RegisterTracking)
}

fn event_json(e: &CarrierEvent) -> Value {
    json!({
        "occurred_at": crate::domain::time::format(&e.occurred_at), "status": e.status, "subtag": e.subtag, "message": e.message,
        "location": e.location, "raw_code": e.raw_code, "actor": e.actor,
    })
}

/// Queue the shipment's tracking number for the sinks its channel names, in the caller's
/// transaction: submitted once it has a number, again when the number changes.
pub async fn enqueue_sinks(
    conn: &mut sqlx::PgConnection,
    row: &ShipmentRow,
    tracking_number: Option<&str>,
) -> sqlx::Result<()> {
    let Some(number) = tracking_number.or(row.tracking_number.as_deref()) else { return Ok(()) };
    let Some(channel) = channel_of(row)? else { return Ok(()) };
    for (sink, target) in channel.targets() {
        if store::sinks::enqueue(conn, &row.tenant_id, &row.id, sink, target.connection_id(), number).await? {
            crate::jobs::enqueue(conn, None, crate::jobs::kinds::SINK_FLUSH, &Value::Null, Some("all"), None).await?;
            store::sinks::set_shipment_sink_status(
                conn,
                &row.tenant_id,
                &row.id,
                sink,
                &json!({"state": "pending", "tracking_number": number, "attempts": 0}),
            )
            .await?;
        }
    }
    Ok(())
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
) -> sqlx::Result<ShipmentRow> {
    let mut tx = state.db.begin().await?;
    save_exchanges(&mut tx, tenant, Some(shipment_id), exchanges).await?;
    let row = store::shipments::get_for_update(&mut tx, tenant, shipment_id).await?.ok_or(sqlx::Error::RowNotFound)?;
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
    let updated = store::shipments::get(&mut tx, tenant, shipment_id).await?.ok_or(sqlx::Error::RowNotFound)?;
    let mut outbound: Vec<_> = added
        .iter()
        .map(|e| shipment_event("shipment.event_added", &updated, json!({"event": event_json(e)})))
        .collect();
    if (status, subtag.clone()) != before {
        outbound.push(shipment_event(
            "shipment.status_changed",
            &updated,
            json!({"previous_status": before.0, "previous_subtag": before.1}),
        ));
    }
    store::events::emit(&mut tx, tenant, shipment_id, &outbound).await?;
    tx.commit().await?;
    Ok(updated)
}
