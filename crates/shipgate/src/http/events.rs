//! `GET /v1/events`: every outbound event of the tenant in the order it was written,
//! for reconciliation against the webhooks a subscriber received (PRODUCT.md REST API).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AuthContext;
use super::extract::Query;
use super::{decode_cursor, encode_cursor, page};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::store;
use crate::store::events::{EVENT_TYPES, EventRow};

page!(EventPage, EventOut, "outbound events, oldest first");

/// One event, in the same shape as the webhook payload (plus `shipment_id`).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
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
    shipment: super::shipments::ShipmentOut,
    /// `shipment.status_changed`: the status before.
    previous_status: Option<crate::domain::Status>,
    /// `shipment.status_changed`: the subtag before.
    previous_subtag: Option<String>,
    /// `shipment.cancelled`: the booking state before.
    previous_booking_state: Option<String>,
    /// `shipment.event_added`: the tracking event.
    #[schema(value_type = Option<super::shipments::LastEvent>)]
    event: Option<serde_json::Value>,
    /// `shipment.booking_failed`: the carrier's refusal.
    #[schema(value_type = Option<super::shipments::BookingError>)]
    error: Option<serde_json::Value>,
}

impl From<EventRow> for EventOut {
    fn from(r: EventRow) -> Self {
        EventOut {
            id: r.id,
            event_type: r.event_type,
            timestamp: r.created_at,
            sequence: r.shipment_seq,
            shipment_id: r.shipment_id,
            data: r.data.0,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Only this shipment's events.
    pub shipment_id: Option<String>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Page size, 1-100 (default 20).
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// List outbound events
///
/// Every event the gateway emitted for the tenant (what webhooks deliver), oldest first
/// in a stable order, for reconciliation against the webhooks a subscriber received.
/// Not to be confused with a shipment's tracking events
/// (`GET /v1/shipments/{id}/events`).
#[utoipa::path(get, path = "/v1/events", tag = "webhooks", operation_id = "list_events",
    security(("api_key" = [])), params(EventParams),
    responses((status = 200, body = EventPage, description = "One page of events")))]
async fn list_events(
    State(state): State<AppState>,
    auth: AuthContext,
    Query(q): Query<EventParams>,
) -> ApiResult<axum::Json<EventPage>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::query_field("limit", "must be between 1 and 100"));
    }
    if let Some(t) = &q.event_type
        && !EVENT_TYPES.contains(&t.as_str())
    {
        return Err(ApiError::query_field("type", format!("not an event type; one of {}", EVENT_TYPES.join(", "))));
    }
    let after = match q.cursor.as_deref() {
        Some(c) => decode_cursor(c)?
            .parse::<i64>()
            .map_err(|_| ApiError::query_field("cursor", "is not a cursor this API issued"))?,
        None => 0,
    };
    let mut conn = state.db.acquire().await?;
    let mut rows = store::events::list(
        &mut conn,
        &auth.tenant_id,
        after,
        q.shipment_id.as_deref(),
        q.event_type.as_deref(),
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| encode_cursor(&r.seq.to_string())) } else { None };
    Ok(axum::Json(EventPage { data: rows.into_iter().map(EventOut::from).collect(), next_cursor }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}
