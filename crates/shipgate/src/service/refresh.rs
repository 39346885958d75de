//! Refreshing one shipment from its carrier: the workflow behind
//! `POST /v1/shipments/{id}/refresh` and the tracking engine (src/tracking).
//!
//! The carrier is asked for the shipment's current state (e-Courier GetJsonOrder, eCMR
//! shipment details, AfterShip tracking + last checkpoint); new events are added and the
//! status moves forward only (`apply_snapshot`). A shipment still `pending` booking is
//! looked up first and booked only when the carrier does not have it: never a blind
//! second create (QUALITY reliability 6).

use crate::app::AppState;
use crate::carriers::{CallCx, CarrierError};
use crate::domain::{BookingState, Status};
use crate::service::shipments::lifecycle::booking_failed;
use crate::service::shipments::{Attempt, apply_snapshot, attempt_booking, save_exchanges, track_request};
use crate::service::{Error, Result};
use crate::store::Actor;
use crate::store::connections::ConnectionRow;
use crate::store::shipments::ShipmentRow;

/// What a refresh did.
#[derive(Debug)]
pub enum Refreshed {
    /// The carrier's view was applied.
    Tracked(ShipmentRow),
    /// The carrier never got the pending booking: it was booked now (or the attempt
    /// failed again, with the carrier's error).
    Booked(Attempt),
}

impl Refreshed {
    /// The shipment's status and subtag after the refresh.
    pub fn status(&self) -> (Status, Option<&str>) {
        match self {
            Refreshed::Tracked(r) => (r.status, r.subtag.as_deref()),
            Refreshed::Booked(a) => a.status(),
        }
    }
}

/// Refresh `row` through `connection`'s client. Exchanges are always kept; a carrier
/// failure is reported ([`Error::Carrier`]), not recorded on the shipment (the caller
/// decides: the API answers it, the engine backs off). A failed booking is refused
/// ([`crate::service::Refusal::BookingFailed`]): there is nothing at the carrier to track.
pub async fn refresh(
    state: &AppState,
    connection: &ConnectionRow,
    row: &ShipmentRow,
    actor: &Actor,
) -> Result<Refreshed> {
    if row.booking_state == Some(BookingState::Failed) {
        return Err(booking_failed(row.clone()));
    }
    let client = state.client(connection)?;
    let cx = CallCx::new();
    let snapshot = client.track(&cx, &track_request(row)).await;
    let tenant = row.tenant_id.as_str();
    match snapshot {
        Ok(snap) => {
            if row.booking_state == Some(BookingState::Pending) {
                // The carrier has it: the earlier attempt succeeded but its answer was lost.
                crate::service::booking::mark_found(state, row, actor).await?;
            }
            let updated = apply_snapshot(state, tenant, &row.id, &snap, "poll", actor, cx.take()).await?;
            Ok(Refreshed::Tracked(updated))
        }
        Err(CarrierError::NotFound { .. }) if row.booking_state == Some(BookingState::Pending) => {
            // Lookup says the carrier never got it: book it now.
            let mut conn = state.db.acquire().await?;
            save_exchanges(&mut conn, tenant, Some(&row.id), cx.take()).await?;
            drop(conn);
            Ok(Refreshed::Booked(attempt_booking(state, connection, row, None, actor).await?))
        }
        Err(e) => {
            let mut conn = state.db.acquire().await?;
            save_exchanges(&mut conn, tenant, Some(&row.id), cx.take()).await?;
            Err(Error::from(e))
        }
    }
}
