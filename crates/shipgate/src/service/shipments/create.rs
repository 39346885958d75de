//! Book a shipment, or register a tracking number (docs/product.md "Booking semantics").
//!
//! The shipment is written first, in one statement with its history and its
//! `shipment.created` event; then the carrier is called
//! with no transaction open; then the outcome is recorded in one more statement when it
//! is booked (QUALITY P3: statement, carrier call, statement). A carrier that is down or
//! slow leaves the shipment `pending` for the job; one that refuses leaves it `failed`.

use chrono::{DurationRound as _, Utc};
use serde_json::json;

use super::{Attempt, attempt_booking, channel_json, check_channel, check_texts, is_unique_violation};
use crate::app::AppState;
use crate::carriers::{Capability, Channel};
use crate::domain::job;
use crate::domain::{BookingState, FieldError, Metadata, ShipmentPlan, check_plan};
use crate::service::connections::note_connection_outcome;
use crate::service::views::Shipment;
use crate::service::{Caller, Error, Result, carriers};
use crate::store::shipments::{Creation, NewShipment, ShipmentRow};
use crate::{ids, store};

/// A booking, or the registration of a tracking number the client already has.
#[derive(Debug)]
pub struct CreateShipment {
    /// The connection (`con_...`) whose carrier books it.
    pub connection_id: String,
    /// Register this number instead of booking (carriers that track numbers).
    pub tracking_number: Option<String>,
    pub plan: ShipmentPlan,
    pub metadata: Metadata,
    pub channel: Option<Channel>,
}

/// What came of a booking or registration that the carrier did not refuse.
#[derive(Debug)]
pub enum Created {
    /// Booked or registered.
    Booked(Shipment),
    /// The carrier is down or slow: kept `pending`, a job books it later, exactly once.
    Pending(Shipment),
    /// The number already has a live registration on the connection: that shipment,
    /// unchanged, and no carrier call.
    AlreadyRegistered(Shipment),
}

/// Book or register (see the module doc). A carrier's refusal is
/// [`Error::Carrier`] with the failed shipment.
pub async fn create(state: &AppState, caller: &Caller, req: CreateShipment) -> Result<Created> {
    let actor = caller.actor();
    let tenant = caller.tenant_id.as_str();
    let mut errors = Vec::new();
    check_texts(req.plan.reference.as_deref(), req.plan.notes.as_deref(), &req.metadata, &mut errors);
    check_channel(state, tenant, req.channel.as_ref(), &mut errors).await?;
    let connection =
        if ids::is_id("con", &req.connection_id) { state.connection(tenant, &req.connection_id).await? } else { None };
    let Some(connection) = connection else {
        errors.push(FieldError::new("connection_id", "no such connection"));
        return Err(Error::Invalid(errors));
    };
    // A registered number is compared trimmed (and case-blind: shipments_registration_uq).
    let tracking_number = req.tracking_number.as_deref().map(str::trim);
    if tracking_number.is_some() {
        carriers::require(&connection.carrier, Capability::RegisterTracking)?;
        if tracking_number.is_some_and(str::is_empty) {
            errors.push(FieldError::new("tracking_number", "must not be empty"));
        }
    } else {
        carriers::require(&connection.carrier, Capability::Book)?;
        errors.extend(check_plan(&req.plan));
    }
    Error::check(errors)?;
    if let Some(number) = tracking_number
        && let Some(existing) = registered(state, tenant, &connection.id, number).await?
    {
        return Ok(Created::AlreadyRegistered(existing.try_into()?));
    }

    let id = ids::new_id("shp");
    let order_number = super::order_number_for(&id);
    let channel = req.channel.as_ref().map(channel_json).transpose()?;
    let new = NewShipment {
        tenant_id: tenant,
        id: &id,
        connection_id: &connection.id,
        carrier: &connection.carrier,
        carrier_reference: Some(&order_number),
        tracking_number,
        plan: &req.plan,
        metadata: &req.metadata,
        channel: channel.as_deref(),
        booking_state: Some(BookingState::Pending),
    };
    // Postgres keeps microseconds: the event shows the same created_at as the row.
    let at = Utc::now().duration_trunc(chrono::Duration::microseconds(1)).unwrap_or_else(|_| Utc::now());
    let event_id = ids::new_id("evt");
    // The row as the insert writes it: the event is built from it, and the booking goes
    // on with it (the insert returns no row). Its JSON values are written once, as the
    // API shows them, for the insert and both events (`shipment.created`, `.booked`).
    let row = new.as_row(at);
    let shown = Shipment::try_from(row.clone())?;
    let event = crate::service::events::view_event_text(&shown, &[])?;
    let inserted = state
        .warm
        .with(async |c| {
            store::shipments::insert_with_history(
                c,
                &new,
                &Creation {
                    actor: &actor,
                    action: "created",
                    detail: &json!({"connection_id": connection.id, "reference": req.plan.reference}),
                    at,
                    event: (&event_id, &event),
                    json: shown.plan_json(),
                },
            )
            .await
        })
        .await;
    match inserted {
        Ok(()) => {}
        Err(e) => {
            // The same number registered at the same moment by another request (or with
            // a reference the other one took first): theirs is the registration.
            if let Some(number) = tracking_number
                && is_unique_violation(&e)
                && let Some(existing) = registered(state, tenant, &connection.id, number).await?
            {
                return Ok(Created::AlreadyRegistered(existing.try_into()?));
            }
            return Err(e.into());
        }
    }
    match attempt_booking(state, &connection, &row, Some(&shown), &actor).await? {
        Attempt::Booked(shipment) => Ok(Created::Booked(*shipment)),
        Attempt::Pending(row, e) => {
            note_connection_outcome(state, &connection, Some(&e)).await;
            // Kept: the booking job books it later (docs/product.md "Booking semantics").
            queue_booking(state, &row, at).await;
            Ok(Created::Pending(row.try_into()?))
        }
        Attempt::Failed(row, e) => {
            note_connection_outcome(state, &connection, Some(&e)).await;
            Err(Error::carrier(e, row))
        }
    }
}

/// The job that books a pending shipment later, due when the request that created it
/// has surely ended (`request_timeout` + 5 s). When it cannot be written now, the job
/// worker's sweep (`adopt_orphan_bookings`) gives the booking one within a minute, as it
/// does for a request that died before recording its attempt.
async fn queue_booking(state: &AppState, row: &ShipmentRow, created_at: chrono::DateTime<Utc>) {
    let run_at = created_at
        + chrono::Duration::from_std(state.config.request_timeout).unwrap_or_default()
        + chrono::Duration::seconds(5);
    let key = format!("booking:{}:{}", row.tenant_id, row.id);
    let result = async {
        let mut conn = state.db.acquire().await?;
        crate::service::jobs::enqueue(
            &mut conn,
            Some(&row.tenant_id),
            job::BOOKING,
            &json!({"shipment_id": row.id}),
            Some(&key),
            Some(run_at),
        )
        .await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(shipment_id = %row.id, error = %e, "booking job not queued; the sweep will adopt the booking");
    }
}

/// The live registration of `number` on the connection, if any.
async fn registered(state: &AppState, tenant: &str, connection_id: &str, number: &str) -> Result<Option<ShipmentRow>> {
    let mut conn = state.db.acquire().await?;
    Ok(store::shipments::get_registration(&mut conn, tenant, connection_id, number).await?)
}
