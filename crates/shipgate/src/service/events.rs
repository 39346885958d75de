//! Building outbound events (PRODUCT.md "Webhook endpoint"): every event's `data`
//! carries the shipment as the API shows it after the change, plus what changed.

use serde_json::{Value, json};

use crate::store::events::NewEvent;
use crate::store::shipments::ShipmentRow;

/// The shipment as `GET /v1/shipments/{id}` shows it.
pub fn shipment_json(row: &ShipmentRow) -> Value {
    serde_json::to_value(crate::http::shipments::ShipmentOut::from(row.clone())).unwrap_or(Value::Null)
}

/// An event about `row`: `{shipment, ...extra}` (`extra` must be an object or null).
pub fn shipment_event(event_type: &'static str, row: &ShipmentRow, extra: Value) -> NewEvent {
    let mut data = json!({"shipment": shipment_json(row)});
    if let (Some(map), Value::Object(extra)) = (data.as_object_mut(), extra) {
        map.extend(extra);
    }
    NewEvent { event_type, data }
}
