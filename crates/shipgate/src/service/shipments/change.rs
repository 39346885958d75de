//! Changing a shipment: update (forwarded to the carrier first when it is booked there)
//! and cancel (at the carrier first, then here). A carrier's refusal changes nothing
//! here but the history, which says it was refused.

use chrono::Utc;
use serde_json::json;

use super::{
    channel_json, channel_of, check_channel, check_texts, connection_of, enqueue_sinks, load, order_number_for,
    order_request, save_exchanges,
};
use crate::app::AppState;
use crate::carriers::{CallCx, Capability, CarrierError, Channel};
use crate::domain::{BookingState, Metadata, PlanPatch, Status, check_plan, may_transition};
use crate::service::events::shipment_event;
use crate::service::views::Shipment;
use crate::service::{Caller, Error, Refusal, Result, carriers};
use crate::store;
use crate::store::shipments::{BookingUpdate, DetailsUpdate, NewEvent};

/// What a `PATCH` changes: each field absent (unchanged), null (cleared) or a value.
#[derive(Debug, Default)]
pub struct ShipmentChanges {
    pub plan: PlanPatch,
    /// Replaces all metadata.
    pub metadata: Option<Metadata>,
    pub channel: Option<Option<Channel>>,
}

/// The fields a carrier is told about when they change on a booked shipment.
const CARRIER_FIELDS: [&str; 8] =
    ["service", "stops", "parcels", "declared_value", "cod_amount", "notes", "reference", "metadata"];

/// Update a shipment. On a booked shipment, route and goods changes are forwarded to
/// the carrier first (e-Courier SaveOrder); if the carrier refuses, nothing changes here.
pub async fn update(state: &AppState, caller: &Caller, id: &str, changes: ShipmentChanges) -> Result<Shipment> {
    let tenant = caller.tenant_id.as_str();
    let row = load(state, tenant, id).await?;
    if row.booking_state == Some(BookingState::Cancelled) {
        return Err(Error::refused(Refusal::ShipmentCancelled, "a cancelled shipment cannot be changed"));
    }
    let mut plan = row.plan();
    let mut changed = changes.plan.apply(&mut plan);
    let mut metadata = row.metadata.0.clone();
    if let Some(m) = changes.metadata {
        metadata = m;
        changed.push("metadata");
    }
    let mut channel = channel_of(&row)?;
    if let Some(c) = changes.channel {
        channel = c;
        changed.push("channel");
    }
    let mut errors = Vec::new();
    check_texts(plan.reference.as_deref(), plan.notes.as_deref(), &metadata, &mut errors);
    check_channel(state, tenant, channel.as_ref(), &mut errors).await?;
    if row.booking_state.is_some() && row.tracking_number.is_none() {
        errors.extend(check_plan(&plan));
    }
    Error::check(errors)?;
    let forward = crate::carriers::supports(&row.carrier, Capability::Update)
        && row.booking_state == Some(BookingState::Booked)
        && changed.iter().any(|f| CARRIER_FIELDS.contains(f));
    let cx = CallCx::new();
    let mut outcome = Ok(());
    if forward {
        let connection = connection_of(state, &row).await?;
        let order_number = order_number_for(&row.id);
        outcome = match state.client(&connection) {
            Ok(client) => client.update(&cx, &order_request(&row, &order_number, &plan)).await,
            Err(e) => Err(e),
        };
    }
    let actor = caller.actor();
    let mut tx = store::begin(&state.db).await?;
    save_exchanges(&mut tx, tenant, Some(id), cx.take()).await?;
    if let Err(e) = outcome {
        store::shipments::insert_history(
            &mut tx,
            tenant,
            id,
            &actor,
            "update_refused",
            &json!({"fields": changed, "code": e.kind(), "message": e.message()}),
        )
        .await?;
        tx.commit().await?;
        return Err(e.into());
    }
    let channel_stored = channel.as_ref().map(channel_json).transpose()?;
    store::shipments::set_details(
        &mut tx,
        tenant,
        id,
        &DetailsUpdate { plan: &plan, metadata: &metadata, channel: channel_stored.as_deref() },
    )
    .await?;
    store::shipments::insert_history(
        &mut tx,
        tenant,
        id,
        &actor,
        "updated",
        &json!({"fields": changed, "forwarded_to_carrier": forward}),
    )
    .await?;
    if changed.contains(&"channel") && row.booking_state == Some(BookingState::Booked) {
        let fresh = store::shipments::get(&mut tx, tenant, id).await?.ok_or(Error::NotFound("shipment"))?;
        enqueue_sinks(&mut tx, &fresh, None).await?;
    }
    let updated = store::shipments::get(&mut tx, tenant, id).await?.ok_or(Error::NotFound("shipment"))?;
    tx.commit().await?;
    updated.try_into()
}

/// Cancel at the carrier (e-Courier: SaveOrder with OrderStatus X), then here
/// (`booking.state = cancelled`, status `exception`). Cancelling again answers the
/// cancelled shipment.
pub async fn cancel(state: &AppState, caller: &Caller, id: &str) -> Result<Shipment> {
    let tenant = caller.tenant_id.as_str();
    let row = load(state, tenant, id).await?;
    if row.booking_state == Some(BookingState::Cancelled) {
        return row.try_into();
    }
    carriers::require(&row.carrier, Capability::Cancel)?;
    let cx = CallCx::new();
    // A failed booking left nothing at the carrier; a pending one may have (ambiguous
    // timeout), so it is cancelled there too.
    let outcome = if row.booking_state == Some(BookingState::Failed) {
        Ok(())
    } else {
        let connection = connection_of(state, &row).await?;
        let plan = row.plan();
        let order_number = order_number_for(&row.id);
        match state.client(&connection) {
            Ok(client) => match client.cancel(&cx, &order_request(&row, &order_number, &plan)).await {
                // Nothing at the carrier to cancel: the pending booking never arrived.
                Err(CarrierError::NotFound { .. }) => Ok(()),
                other => other,
            },
            Err(e) => Err(e),
        }
    };
    let actor = caller.actor();
    let mut tx = store::begin(&state.db).await?;
    save_exchanges(&mut tx, tenant, Some(id), cx.take()).await?;
    if let Err(e) = outcome {
        store::shipments::insert_history(
            &mut tx,
            tenant,
            id,
            &actor,
            "cancel_refused",
            &json!({"code": e.kind(), "message": e.message()}),
        )
        .await?;
        tx.commit().await?;
        return Err(e.into());
    }
    let locked = store::shipments::get_for_update(&mut tx, tenant, id).await?.ok_or(Error::NotFound("shipment"))?;
    store::shipments::set_booking(
        &mut tx,
        tenant,
        id,
        &BookingUpdate {
            state: BookingState::Cancelled,
            last_error: None,
            booked: false,
            tracking_number: None,
            carrier_reference: None,
            count_attempt: false,
        },
    )
    .await?;
    let subtag = "Exception_020";
    let event = json!({"occurred_at": crate::domain::time::format(&Utc::now()), "status": Status::Exception, "subtag": subtag, "message": "Cancelled via API"});
    store::shipments::insert_event(
        &mut tx,
        tenant,
        id,
        &NewEvent {
            occurred_at: Utc::now(),
            status: Some(Status::Exception),
            subtag: Some(subtag),
            message: Some("Cancelled via API"),
            location: None,
            raw_code: None,
            raw_text: None,
            actor: None,
            source: "api",
            dedup_key: "api:cancel",
        },
    )
    .await?;
    if may_transition(locked.status, locked.subtag.as_deref(), Status::Exception, Some(subtag)) {
        store::shipments::set_status(&mut tx, tenant, id, Status::Exception, Some(subtag), None, Some(&event)).await?;
    }
    let previous = json!({"previous_booking_state": locked.booking_state});
    store::shipments::insert_history(&mut tx, tenant, id, &actor, "cancelled", &previous).await?;
    let updated = store::shipments::get(&mut tx, tenant, id).await?.ok_or(Error::NotFound("shipment"))?;
    let mut outbound = vec![shipment_event("shipment.cancelled", &updated, previous)?];
    if (updated.status, updated.subtag.as_deref()) != (locked.status, locked.subtag.as_deref()) {
        outbound.push(shipment_event(
            "shipment.status_changed",
            &updated,
            json!({"previous_status": locked.status, "previous_subtag": locked.subtag}),
        )?);
    }
    store::events::emit(&mut tx, tenant, id, &outbound).await?;
    tx.commit().await?;
    updated.try_into()
}
