//! One booking attempt: the carrier is called with no transaction open, then the
//! outcome is recorded. Booked: in one statement with its exchange, history and
//! `shipment.booked` event (QUALITY P3). Refused or failed: the booking state, the
//! carrier's error, the exchanges and the history in one transaction.

use chrono::Utc;
use serde_json::{Value, json};

use super::{apply_snapshot, channel_of, order_number_for, order_request, save_exchanges};
use crate::app::AppState;
use crate::carriers::{CallCx, CarrierError};
use crate::domain::{BookingState, Exchange, Status};
use crate::service::events::shipment_event;
use crate::service::views::{Booking, Shipment};
use crate::service::{Error, Result};
use crate::store::connections::ConnectionRow;
use crate::store::shipments::{BookingUpdate, ShipmentRow};
use crate::store::{self, Actor};

/// What a booking attempt left behind.
#[derive(Debug)]
pub enum Attempt {
    /// Booked (or registered): the shipment as recorded, as the API shows it (the
    /// booking's answer is written from the stored row's JSON, see
    /// [`store::shipments::mark_booked`]).
    Booked(Box<Shipment>),
    /// Not booked and still `pending`, with the carrier's error: the carrier is down or
    /// slow (a job books it later), or, in the booking job, the lookup before a second
    /// create failed.
    Pending(ShipmentRow, CarrierError),
    /// The carrier refused: kept `failed`, with its error.
    Failed(ShipmentRow, CarrierError),
}

impl Attempt {
    /// The shipment's status and subtag as recorded, whatever came of the attempt.
    pub fn status(&self) -> (Status, Option<&str>) {
        match self {
            Attempt::Booked(s) => (s.status, s.subtag.as_deref()),
            Attempt::Pending(r, _) | Attempt::Failed(r, _) => (r.status, r.subtag.as_deref()),
        }
    }

    /// The carrier's error, when the attempt did not book.
    pub fn error(&self) -> Option<&CarrierError> {
        match self {
            Attempt::Booked(_) => None,
            Attempt::Pending(_, e) | Attempt::Failed(_, e) => Some(e),
        }
    }
}

fn error_json(e: &CarrierError) -> Value {
    json!({"code": e.kind(), "message": e.message(), "at": crate::domain::time::format(&Utc::now())})
}

/// Try to book a shipment whose booking is pending (or register its tracking number).
/// Exchanges, outcome and history commit together. `shown`: `row` as the API shows it,
/// when the caller has it (a new booking wrote it for `shipment.created`); the
/// `shipment.booked` event is then built from it, with no second serialization of the
/// row's JSON values.
pub async fn attempt_booking(
    state: &AppState,
    connection: &ConnectionRow,
    row: &ShipmentRow,
    shown: Option<&Shipment>,
    actor: &Actor,
) -> Result<Attempt> {
    let cx = CallCx::new();
    let plan = row.plan();
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
    let booked = match outcome {
        Ok(booked) => booked,
        Err(e) => return record_failure(state, row, actor, e, exchanges).await,
    };
    // The common case (one exchange, no sink) is one statement and one commit (QUALITY
    // P3): the booked row, its exchange, history and shipment.booked event together.
    let updated = if exchanges.len() <= 1 && row.channel.is_none() {
        state.warm.with(async |c| record_booked(c, row, shown, &booked, actor, exchanges).await).await?
    } else {
        let mut tx = store::begin(&state.db).await?;
        let updated = record_booked(&mut tx, row, shown, &booked, actor, exchanges).await?;
        tx.commit().await?;
        updated
    };
    if let Some(snap) = &booked.snapshot {
        // The carrier answered with its view of the shipment (AfterShip's tracking).
        let updated = apply_snapshot(state, &row.tenant_id, &row.id, snap, "poll", actor, Vec::new()).await?;
        return Ok(Attempt::Booked(Box::new(updated.try_into()?)));
    }
    Ok(Attempt::Booked(Box::new(updated)))
}

/// Write a failed attempt: `pending` when the carrier may succeed later, else `failed`,
/// with the carrier's error and the exchanges, in one transaction.
async fn record_failure(
    state: &AppState,
    row: &ShipmentRow,
    actor: &Actor,
    e: CarrierError,
    exchanges: Vec<Exchange>,
) -> Result<Attempt> {
    let err = error_json(&e);
    let (state_name, action) = if e.is_transient() {
        (BookingState::Pending, "booking_pending")
    } else {
        (BookingState::Failed, "booking_failed")
    };
    let mut tx = store::begin(&state.db).await?;
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
    let updated = store::shipments::get(&mut tx, &row.tenant_id, &row.id).await?.ok_or(Error::NotFound("shipment"))?;
    if state_name == BookingState::Failed {
        crate::store::jobs::drop_queued_booking(&mut tx, &row.tenant_id, &row.id).await?;
        store::events::emit(
            &mut tx,
            &row.tenant_id,
            &row.id,
            &[shipment_event("shipment.booking_failed", &updated, json!({"error": err}))?],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(if state_name == BookingState::Failed { Attempt::Failed(updated, e) } else { Attempt::Pending(updated, e) })
}

/// Write a successful booking: its exchanges (the last one in the same statement), the
/// outcome and history, and the sink hand-over when the shipment has a channel. Returns
/// the shipment as recorded, as the API shows it.
async fn record_booked(
    conn: &mut sqlx::PgConnection,
    row: &ShipmentRow,
    shown: Option<&Shipment>,
    booked: &crate::carriers::Booked,
    actor: &Actor,
    mut exchanges: Vec<Exchange>,
) -> Result<Shipment> {
    let last = exchanges.pop();
    save_exchanges(conn, &row.tenant_id, Some(&row.id), exchanges).await?;
    let detail = json!({"carrier_reference": booked.carrier_reference, "tracking_number": booked.tracking_number});
    // Postgres keeps microseconds: the event shows the same times as the stored row.
    let at = chrono::DurationRound::duration_trunc(Utc::now(), chrono::Duration::microseconds(1))
        .unwrap_or_else(|_| Utc::now());
    // Without a sink the event is written by the same statement, built from the row as
    // it will be; with one, after the sink hand-over has changed the row.
    let event = if row.channel.is_some() {
        None
    } else {
        // What mark_booked changes, on the shipment as the API shows it.
        let mut will_be = match shown {
            Some(shown) => shown.clone(),
            None => Shipment::try_from(row.clone())?,
        };
        will_be.booking = Some(Booking {
            state: BookingState::Booked,
            attempts: row.booking_attempts + 1,
            last_error: None,
            booked_at: row.booked_at.or(Some(at)),
        });
        will_be.tracking_number = booked.tracking_number.clone().or(will_be.tracking_number);
        will_be.carrier_reference = Some(booked.carrier_reference.clone());
        if will_be.status == Status::Pending {
            will_be.status = Status::InfoReceived;
        }
        will_be.updated_at = at;
        Some((crate::ids::new_id("evt"), crate::service::events::view_event_text(&will_be, &[])?))
    };
    let updated = store::shipments::mark_booked(
        conn,
        &row.tenant_id,
        &row.id,
        booked.tracking_number.as_deref(),
        Some(&booked.carrier_reference),
        actor,
        &detail,
        last.as_ref(),
        &store::shipments::BookedEvent { at, event: event.as_ref().map(|(id, data)| (id.as_str(), data.as_str())) },
    )
    .await?;
    if updated.channel.is_none() {
        return updated.try_into();
    }
    // A channel (set at creation, or by another writer meanwhile): the sinks' hand-over
    // reads the row in the domain's types.
    let updated = updated.into_row().map_err(Error::internal)?;
    enqueue_sinks(conn, &updated, booked.tracking_number.as_deref()).await?;
    let updated = store::shipments::get(conn, &row.tenant_id, &row.id).await?.ok_or(Error::NotFound("shipment"))?;
    store::events::emit(conn, &row.tenant_id, &row.id, &[shipment_event("shipment.booked", &updated, Value::Null)?])
        .await?;
    updated.try_into()
}

fn registers(carrier: &str) -> bool {
    crate::carriers::supports(carrier, crate::carriers::Capability::RegisterTracking)
}

/// Queue the shipment's tracking number for the sinks its channel names, in the caller's
/// transaction: submitted once it has a number, again when the number changes.
pub async fn enqueue_sinks(
    conn: &mut sqlx::PgConnection,
    row: &ShipmentRow,
    tracking_number: Option<&str>,
) -> Result<()> {
    let Some(number) = tracking_number.or(row.tracking_number.as_deref()) else { return Ok(()) };
    let Some(channel) = channel_of(row)? else { return Ok(()) };
    for (sink, target) in channel.targets() {
        if store::sinks::enqueue(conn, &row.tenant_id, &row.id, sink, target.connection_id(), number).await? {
            crate::service::jobs::enqueue(conn, None, crate::domain::job::SINK_FLUSH, &Value::Null, Some("all"), None)
                .await?;
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
