//! Pending bookings (docs/product.md "Booking semantics"): a shipment whose carrier was down
//! or slow is kept `pending` and booked later by a `booking` job, exactly once.
//!
//! Exactly once at the carrier: if an earlier attempt may have reached the carrier (it
//! timed out, or the answer was lost), the carrier is asked first whether it has the
//! order (docs/quality.md reliability 6: "resolved by lookup or by idempotent resubmission,
//! never by a blind second create"); only a definite "not found" leads to a create, and
//! the create itself is idempotent on our key (e-Courier OrderNumber, eCMR reference,
//! AfterShip 4003 adoption).

use serde_json::{Value, json};

use crate::app::AppState;
use crate::carriers::{CallCx, Capability, CarrierError};
use crate::domain::BookingState;
use crate::domain::job::{Job, Outcome};
use crate::service::events::shipment_event;
use crate::service::shipments::{
    Attempt, apply_snapshot, attempt_booking, enqueue_sinks, save_exchanges, track_request,
};
use crate::service::{Error, Result};
use crate::store::connections::ConnectionRow;
use crate::store::shipments::{BookingUpdate, ShipmentRow};
use crate::store::{self, Actor};

/// One run of a `booking` job.
pub async fn run_job(state: &AppState, job: &Job) -> Result<Outcome> {
    let (Some(tenant), Some(shipment_id)) =
        (job.tenant_id.as_deref(), job.payload.get("shipment_id").and_then(Value::as_str))
    else {
        return Ok(Outcome::Fail { error: "booking job without tenant or shipment_id".into() });
    };
    let row = {
        let mut conn = state.db.acquire().await?;
        store::shipments::get(&mut conn, tenant, shipment_id).await?
    };
    let Some(row) = row else { return Ok(Outcome::Fail { error: format!("shipment {shipment_id} does not exist") }) };
    // Booked, cancelled or refused meanwhile (by the request itself, a refresh, a cancel):
    // nothing left to do. This is also the normal end of the safety-net job of a
    // shipment booked on its first attempt.
    // A dead booking job re-run from the dead letter revives the booking it gave up.
    let revived = row.booking_state == Some(BookingState::Failed)
        && row.booking_last_error.as_ref().and_then(|e| e.0.get("code")).and_then(Value::as_str)
            == Some("retries_exhausted");
    if row.booking_state != Some(BookingState::Pending) && !revived {
        return Ok(Outcome::Done);
    }
    let connection = {
        let mut conn = state.db.acquire().await?;
        store::connections::get(&mut conn, tenant, &row.connection_id).await?
    };
    let Some(connection) = connection else {
        give_up(state, &row, "the shipment's connection no longer exists").await?;
        return Ok(Outcome::Done);
    };
    let attempt = book_pending(state, &connection, &row, &Actor::System).await?;
    match attempt.error() {
        None => Ok(Outcome::Done),
        // Refused: `attempt_booking` marked it failed and emitted booking_failed (a
        // refused lookup is left to a refresh or a cancel).
        Some(e) if !e.is_transient() => Ok(Outcome::Done),
        Some(e) => {
            let error = format!("{}: {}", e.kind(), e.message());
            if job.is_last_attempt() {
                let reason = format!("gave up after {} attempts; last error: {error}", job.attempt);
                give_up(state, &row, &reason).await?;
            }
            Ok(Outcome::Retry { error, at_least: e.retry_after() })
        }
    }
}

/// Book a pending shipment: look it up first when an earlier attempt may have reached
/// the carrier, then create it only if the carrier does not have it. A lookup that fails
/// leaves the shipment as it was: a pending attempt with the carrier's error.
pub async fn book_pending(
    state: &AppState,
    connection: &ConnectionRow,
    row: &ShipmentRow,
    actor: &Actor,
) -> Result<Attempt> {
    let may_exist = row.booking_attempts > 0;
    if may_exist && crate::carriers::supports(&row.carrier, Capability::Refresh) {
        let client = match state.client(connection) {
            Ok(c) => c,
            Err(e) => return Ok(Attempt::Pending(row.clone(), e)),
        };
        let cx = CallCx::new();
        let found = client.track(&cx, &track_request(row)).await;
        match found {
            Ok(snap) => {
                // The carrier has it: an earlier attempt succeeded but its answer was lost.
                mark_found(state, row, actor).await?;
                let updated = apply_snapshot(state, &row.tenant_id, &row.id, &snap, "poll", actor, cx.take()).await?;
                return Ok(Attempt::Booked(Box::new(updated.try_into()?)));
            }
            Err(CarrierError::NotFound { .. }) => {
                let mut conn = state.db.acquire().await?;
                save_exchanges(&mut conn, &row.tenant_id, Some(&row.id), cx.take()).await?;
            }
            Err(e) => {
                let mut conn = state.db.acquire().await?;
                save_exchanges(&mut conn, &row.tenant_id, Some(&row.id), cx.take()).await?;
                return Ok(Attempt::Pending(row.clone(), e));
            }
        }
    }
    attempt_booking(state, connection, row, None, actor).await
}

/// The lookup found the order: booked, with the history saying how, and `shipment.booked`.
pub async fn mark_found(state: &AppState, row: &ShipmentRow, actor: &Actor) -> Result<()> {
    let mut tx = store::begin(&state.db).await?;
    let Some(locked) = store::shipments::get_for_update(&mut tx, &row.tenant_id, &row.id).await? else {
        return Ok(());
    };
    if locked.booking_state != Some(BookingState::Pending) {
        return Ok(());
    }
    store::shipments::set_booking(
        &mut tx,
        &row.tenant_id,
        &row.id,
        &BookingUpdate {
            state: BookingState::Booked,
            last_error: None,
            booked: true,
            tracking_number: row.tracking_number.as_deref().or(row.carrier_reference.as_deref()),
            carrier_reference: None,
            count_attempt: false,
        },
    )
    .await?;
    store::shipments::insert_history(
        &mut tx,
        &row.tenant_id,
        &row.id,
        actor,
        "booked",
        &json!({"found_by_lookup": true, "carrier_reference": row.carrier_reference}),
    )
    .await?;
    let updated = store::shipments::get(&mut tx, &row.tenant_id, &row.id).await?.ok_or(Error::NotFound("shipment"))?;
    store::events::emit(&mut tx, &row.tenant_id, &row.id, &[shipment_event("shipment.booked", &updated, Value::Null)?])
        .await?;
    enqueue_sinks(&mut tx, &updated, None).await?;
    Ok(tx.commit().await?)
}

/// Stop trying: the booking is `failed` with the reason, and `shipment.booking_failed`.
async fn give_up(state: &AppState, row: &ShipmentRow, reason: &str) -> Result<()> {
    let err =
        json!({"code": "retries_exhausted", "message": reason, "at": crate::domain::time::format(&chrono::Utc::now())});
    let mut tx = store::begin(&state.db).await?;
    let Some(locked) = store::shipments::get_for_update(&mut tx, &row.tenant_id, &row.id).await? else {
        return Ok(());
    };
    if locked.booking_state != Some(BookingState::Pending) {
        return Ok(());
    }
    store::shipments::set_booking(
        &mut tx,
        &row.tenant_id,
        &row.id,
        &BookingUpdate {
            state: BookingState::Failed,
            last_error: Some(&err),
            booked: false,
            tracking_number: None,
            carrier_reference: None,
            count_attempt: false,
        },
    )
    .await?;
    store::shipments::insert_history(&mut tx, &row.tenant_id, &row.id, &Actor::System, "booking_failed", &err).await?;
    let updated = store::shipments::get(&mut tx, &row.tenant_id, &row.id).await?.ok_or(Error::NotFound("shipment"))?;
    store::events::emit(
        &mut tx,
        &row.tenant_id,
        &row.id,
        &[shipment_event("shipment.booking_failed", &updated, json!({"error": err}))?],
    )
    .await?;
    Ok(tx.commit().await?)
}
