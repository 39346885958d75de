//! An outbound event as `GET /v1/events` lists it (schema `EventOut`): the webhook
//! payload plus `shipment_id`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{BookingError, LastEvent, Shipment};
use crate::domain::Status;
use crate::store::events::EventRow;

/// One event, in the same shape as the webhook payload (plus `shipment_id`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EventOut)]
pub struct Event {
    /// Also the `webhook-id` of its deliveries.
    #[schema(example = "evt_01936f0c7a2b7c3d9e8f001122334455")]
    pub id: String,
    #[serde(rename = "type")]
    #[schema(example = "shipment.status_changed")]
    pub event_type: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub timestamp: DateTime<Utc>,
    /// The event's number within its shipment: 1, 2, 3 ...
    pub sequence: i32,
    pub shipment_id: String,
    /// `{shipment, ...}` as delivered.
    #[schema(value_type = EventData)]
    pub data: Value,
}

/// An event's payload: the shipment as it is after the event, plus what the event type
/// adds.
#[derive(ToSchema)]
#[allow(dead_code)] // the schema of a JSON value the store keeps; never built in Rust
pub struct EventData {
    shipment: Shipment,
    /// `shipment.status_changed`: the status before.
    previous_status: Option<Status>,
    /// `shipment.status_changed`: the subtag before.
    previous_subtag: Option<String>,
    /// `shipment.cancelled`: the booking state before.
    previous_booking_state: Option<String>,
    /// `shipment.event_added`: the tracking event.
    #[schema(value_type = Option<LastEvent>)]
    event: Option<serde_json::Value>,
    /// `shipment.booking_failed`: the carrier's refusal.
    #[schema(value_type = Option<BookingError>)]
    error: Option<serde_json::Value>,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event {
            id: r.id,
            event_type: r.event_type,
            timestamp: r.created_at,
            sequence: r.shipment_seq,
            shipment_id: r.shipment_id,
            data: r.data.0,
        }
    }
}
