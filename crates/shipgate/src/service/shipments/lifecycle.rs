//! Asking the carrier about a shipment on a client's request: refresh (its current
//! state), retrack (track an expired shipment again) and complete (mark it completed
//! with a reason). The carrier's answer is applied like any snapshot.

use serde_json::json;

use super::{Attempt, apply_snapshot, connection_of, load, save_exchanges, track_request};
use crate::app::AppState;
use crate::carriers::{CallCx, Capability, CompleteReason};
use crate::domain::BookingState;
use crate::service::connections::note_connection_outcome;
use crate::service::refresh::{self, Refreshed};
use crate::service::views::Shipment;
use crate::service::{Caller, Error, Refusal, Result, carriers};
use crate::store;
use crate::store::shipments::ShipmentRow;

/// Refresh a shipment from its carrier (`service::refresh`): new events are added and
/// the status moves forward only; a shipment still `pending` is looked up first and
/// booked only if the carrier does not have it. A booking that fails again is the
/// carrier's error with the shipment.
pub async fn refresh(state: &AppState, caller: &Caller, id: &str) -> Result<Shipment> {
    let row = load(state, &caller.tenant_id, id).await?;
    carriers::require(&row.carrier, Capability::Refresh)?;
    if row.booking_state == Some(BookingState::Failed) {
        return Err(booking_failed(row));
    }
    let connection = connection_of(state, &row).await?;
    match refresh::refresh(state, &connection, &row, &caller.actor()).await {
        Ok(Refreshed::Tracked(row)) => row.try_into(),
        Ok(Refreshed::Booked(Attempt::Booked(shipment))) => Ok(*shipment),
        Ok(Refreshed::Booked(Attempt::Pending(row, e) | Attempt::Failed(row, e))) => Err(Error::carrier(e, row)),
        Err(Error::Carrier { error, shipment }) => {
            note_connection_outcome(state, &connection, Some(&error)).await;
            Err(Error::Carrier { error, shipment })
        }
        Err(e) => Err(e),
    }
}

/// Refused: the carrier never accepted this shipment.
pub(crate) fn booking_failed(row: ShipmentRow) -> Error {
    match Shipment::try_from(row) {
        Ok(s) => Error::Refused {
            refusal: Refusal::BookingFailed,
            detail: "the carrier never accepted this shipment; there is nothing to track".into(),
            shipment: Some(Box::new(s)),
        },
        Err(e) => e,
    }
}

/// Ask the carrier to track an expired shipment again, and apply its answer.
pub async fn retrack(state: &AppState, caller: &Caller, id: &str) -> Result<Shipment> {
    let row = load(state, &caller.tenant_id, id).await?;
    carriers::require(&row.carrier, Capability::Retrack)?;
    carrier_lifecycle(state, caller, row, None).await
}

/// Mark the shipment completed at the carrier with a reason, and apply its answer.
pub async fn complete(state: &AppState, caller: &Caller, id: &str, reason: CompleteReason) -> Result<Shipment> {
    let row = load(state, &caller.tenant_id, id).await?;
    carriers::require(&row.carrier, Capability::Complete)?;
    carrier_lifecycle(state, caller, row, Some(reason)).await
}

/// Retrack (`reason` None) or mark completed, then apply the carrier's answer.
async fn carrier_lifecycle(
    state: &AppState,
    caller: &Caller,
    row: ShipmentRow,
    reason: Option<CompleteReason>,
) -> Result<Shipment> {
    let tenant = caller.tenant_id.as_str();
    let connection = connection_of(state, &row).await?;
    let client = state.client(&connection)?;
    let cx = CallCx::new();
    let req = track_request(&row);
    let result = match reason {
        None => client.retrack(&cx, &req).await,
        Some(r) => client.complete(&cx, &req, r).await,
    };
    let actor = caller.actor();
    match result {
        Ok(snap) => {
            let updated = apply_snapshot(state, tenant, &row.id, &snap, "api", &actor, cx.take()).await?;
            let mut conn = state.db.acquire().await?;
            let action = if reason.is_some() { "completed" } else { "retracked" };
            store::shipments::insert_history(&mut conn, tenant, &row.id, &actor, action, &json!({"reason": reason}))
                .await?;
            updated.try_into()
        }
        Err(e) => {
            let mut conn = state.db.acquire().await?;
            save_exchanges(&mut conn, tenant, Some(&row.id), cx.take()).await?;
            Err(e.into())
        }
    }
}
