//! `GET /v1/events`: every outbound event of the tenant in the order it was written,
//! for reconciliation against the webhooks a subscriber received (docs/api.md).

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Query;
use super::{decode_cursor, encode_cursor, page};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::service::events::{self, EVENT_TYPES, EventFilter};
use crate::service::views::Event;
use crate::service::{Caller, PageRequest};

page!(EventPage, Event, "outbound events, oldest first");

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
    caller: Caller,
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
        Some(c) => Some(
            decode_cursor(c)?
                .parse::<i64>()
                .map_err(|_| ApiError::query_field("cursor", "is not a cursor this API issued"))?,
        ),
        None => None,
    };
    let filter = EventFilter { shipment_id: q.shipment_id.as_deref(), event_type: q.event_type.as_deref() };
    let page = events::list(&state, &caller, filter, &PageRequest { limit, after }).await?;
    let next_cursor = page.next.map(|seq| encode_cursor(&seq.to_string()));
    Ok(axum::Json(EventPage { data: page.items, next_cursor }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}
