//! Asking a carrier without creating anything: a price and time quote for a plan, and
//! delivery-date predictions (AfterShip predict-batch, API 2024-04). The exchanges are
//! kept (with no shipment); nothing else is saved.

use serde_json::Value;

use crate::app::AppState;
use crate::carriers::{self, CallCx, Capability, CarrierError};
use crate::domain::{ShipmentPlan, check_plan};
use crate::service::views::{Estimate, EstimateResult, QuoteAnswer};
use crate::service::{Caller, Error, Result};
use crate::store::connections::ConnectionRow;

/// The connection a quote names: one the tenant has, else the field is refused.
async fn connection(state: &AppState, caller: &Caller, id: &str) -> Result<ConnectionRow> {
    match super::connections::load(state, &caller.tenant_id, id).await {
        Err(Error::NotFound(_)) => Err(Error::invalid("connection_id", "no such connection")),
        other => other,
    }
}

/// The carrier prices `plan` (same body as a booking) without creating anything.
pub async fn quote(state: &AppState, caller: &Caller, connection_id: &str, plan: &ShipmentPlan) -> Result<QuoteAnswer> {
    let connection = connection(state, caller, connection_id).await?;
    super::carriers::require(&connection.carrier, Capability::Quote)?;
    Error::check(check_plan(plan))?;
    let cx = CallCx::new();
    let result = match state.client(&connection) {
        Ok(client) => client.quote(&cx, plan).await,
        Err(e) => Err(e),
    };
    let mut conn = state.db.acquire().await?;
    super::shipments::save_exchanges(&mut conn, &caller.tenant_id, None, cx.take()).await?;
    Ok(QuoteAnswer { quote: result?, connection_id: connection.id, carrier: connection.carrier })
}

/// Delivery-date predictions for 1-5 items in the carrier's own shape, checked against
/// the carrier's contract before any call (an invalid item names its field).
pub async fn estimate(state: &AppState, caller: &Caller, connection_id: &str, items: &[Value]) -> Result<Estimate> {
    let connection = connection(state, caller, connection_id).await?;
    super::carriers::require(&connection.carrier, Capability::EstimatedDeliveryDates)?;
    let check = carriers::get(&connection.carrier).and_then(|c| c.check_estimate_items);
    Error::check(check.map(|check| check(items)).unwrap_or_default())?;
    let cx = CallCx::new();
    let result = match state.client(&connection) {
        Ok(client) => client.estimate_delivery(&cx, items).await,
        Err(e) => Err(e),
    };
    let mut conn = state.db.acquire().await?;
    super::shipments::save_exchanges(&mut conn, &caller.tenant_id, None, cx.take()).await?;
    let data = result.and_then(read_predictions)?;
    Ok(Estimate { connection_id: connection.id, carrier: connection.carrier, data })
}

fn read_predictions(answers: Vec<Value>) -> Result<Vec<EstimateResult>, CarrierError> {
    answers
        .into_iter()
        .map(|a| {
            serde_json::from_value(a).map_err(|e| CarrierError::Protocol {
                message: format!("predict-batch: unexpected AfterShip prediction: {e}"),
            })
        })
        .collect()
}
