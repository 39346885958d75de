//! Shipments: book or register (`POST`), list, read, update (forwarded to the
//! carrier), cancel, refresh, retrack, complete, and the tracking event, history and
//! exchange views. Each handler parses the request, calls one `service::shipments`
//! function and maps its answer; the request types are in [`body`].

mod body;
mod documents;

use axum::Json as AxumJson;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use body::{
    BookingFields, CompleteIn, ExchangeList, HistoryList, ListParams, PatchFields, ShipmentIn, ShipmentPage,
    ShipmentPatch, TrackingEventList,
};
pub use documents::DocumentList;
use documents::{__path_get_document, __path_list_documents, get_document, list_documents};

use super::extract::{Json, PathId, Query};
use super::json_out::JsonOut;
use super::{decode_cursor, encode_cursor};
use crate::app::AppState;
use crate::domain::{FieldError, Status};
use crate::error::{ApiError, ApiResult, Location};
use crate::service::shipments::{self, Created, ListFilter};
use crate::service::views::Shipment;
use crate::service::{self, Caller, PageRequest};

/// Book a shipment, or register a tracking number
///
/// Books the shipment with the connection's carrier, or, with `tracking_number` on a
/// tracking carrier (AfterShip), registers that number for tracking. 201: booked. 202:
/// the carrier is down or slow; the shipment is kept with `booking.state = pending` and
/// a durable job books it later, exactly once (`shipment.booked` or
/// `shipment.booking_failed` follows). 409/422 from the carrier: the shipment is kept
/// with `booking.state = failed` and the carrier's message, returned in the problem's
/// `shipment`.
///
/// A tracking number is registered once per connection: registering a number that
/// already has a live registration there (booking pending or booked; compared trimmed
/// and case-blind) answers 200 with that shipment, unchanged, and calls no carrier,
/// also when both requests arrive at once. Change it with PATCH. After a failed or
/// cancelled registration the number can be registered again (a new shipment).
#[utoipa::path(post, path = "/v1/shipments", tag = "shipments", operation_id = "create_shipment",
    security(("api_key" = [])), request_body = ShipmentIn, extensions(("x-carrier-call" = json!(true))),
    responses(
        (status = 200, body = Shipment, description = "This tracking number is already registered on this connection: the existing shipment, unchanged"),
        (status = 201, body = Shipment, description = "Booked (or registered); `Location` names the shipment",
            headers(("Location" = String, description = "`/v1/shipments/{id}`"))),
        (status = 202, body = Shipment, description = "The carrier is unavailable: kept `pending`, booked later by a job",
            headers(("Location" = String, description = "`/v1/shipments/{id}`"))),
        (status = 409, description = "The carrier refused the booking (`carrier_conflict`; the failed shipment is in `shipment`), the reference is taken (`reference_taken`), or the Idempotency-Key is in flight"),
        (status = 422, description = "A field is invalid (`validation_failed`), the carrier cannot book or register (`capability_not_supported`), or the carrier rejected the booking (`carrier_rejected`; the failed shipment is in `shipment`)"),
        (status = 502, description = "The carrier's answer could not be read; the failed shipment is in `shipment`")))]
async fn create_shipment(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<ShipmentIn>,
) -> ApiResult<Response> {
    let (status, shipment) = match shipments::create(&state, &caller, body.into()).await? {
        Created::Booked(s) => (StatusCode::CREATED, s),
        Created::Pending(s) => (StatusCode::ACCEPTED, s),
        Created::AlreadyRegistered(s) => (StatusCode::OK, s),
    };
    let location = format!("/v1/shipments/{}", shipment.id);
    Ok((status, [("location", location)], JsonOut(shipment)).into_response())
}

/// List shipments
///
/// Newest first, filtered by any of the parameters, one page at a time: pass the
/// answer's `next_cursor` as `cursor` for the next page (null on the last one).
#[utoipa::path(get, path = "/v1/shipments", tag = "shipments", operation_id = "list_shipments",
    security(("api_key" = [])), params(ListParams),
    responses((status = 200, body = ShipmentPage, description = "One page of shipments"),
        (status = 422, description = "A parameter is invalid (`validation_failed`, naming it)")))]
async fn list_shipments(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListParams>,
) -> ApiResult<JsonOut<ShipmentPage>> {
    let limit = q.limit.unwrap_or(20);
    let mut errors = Vec::new();
    if !(1..=100).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 100"));
    }
    let status = q.status.as_deref().map(Status::parse);
    if let Some(None) = status {
        let all: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        errors.push(FieldError::new("status", format!("must be one of {}", all.join(", "))));
    }
    // An unknown carrier is refused like an unknown status, not answered with an empty page.
    if let Some(c) = &q.carrier
        && !service::carriers::is_known(c)
    {
        errors.push(FieldError::new("carrier", format!("must be one of {}", service::carriers::slugs().join(", "))));
    }
    let time = |name: &str, v: &Option<String>, errors: &mut Vec<FieldError>| {
        v.as_deref().and_then(|s| match DateTime::parse_from_rfc3339(s) {
            Ok(t) if crate::domain::time::in_range(&t) => Some(t.with_timezone(&Utc)),
            Ok(_) => {
                errors.push(FieldError::new(name, crate::domain::time::RANGE_MESSAGE));
                None
            }
            Err(_) => {
                errors.push(FieldError::new(name, "must be an RFC 3339 time with offset"));
                None
            }
        })
    };
    let created_after = time("created_after", &q.created_after, &mut errors);
    let created_before = time("created_before", &q.created_before, &mut errors);
    let after = match q.cursor.as_deref().map(decode_cursor).transpose() {
        Ok(c) => c,
        Err(_) => {
            errors.push(FieldError::new("cursor", "is not a cursor this API issued"));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(Location::Query, errors));
    }
    let filter = ListFilter {
        status: status.flatten(),
        carrier: q.carrier.as_deref(),
        connection_id: q.connection_id.as_deref(),
        reference: q.reference.as_deref(),
        tracking_number: q.tracking_number.as_deref(),
        created_after,
        created_before,
    };
    let page = shipments::list(&state, &caller, &filter, &PageRequest { limit, after }).await?;
    Ok(JsonOut(ShipmentPage { data: page.items, next_cursor: page.next.as_deref().map(encode_cursor) }))
}

/// Read a shipment
///
/// The shipment as stored: route, goods, booking, normalized status and the last event.
#[utoipa::path(get, path = "/v1/shipments/{id}", tag = "shipments", operation_id = "get_shipment",
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")),
    responses((status = 200, body = Shipment, description = "The shipment")))]
async fn get_shipment(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<JsonOut<Shipment>> {
    Ok(JsonOut(shipments::get(&state, &caller, &id).await?))
}

/// Update a shipment
///
/// Absent fields are unchanged, `null` clears, a value replaces. On a booked shipment,
/// route and goods changes are forwarded to the carrier first (e-Courier SaveOrder); if
/// the carrier refuses (409) nothing changes here.
#[utoipa::path(patch, path = "/v1/shipments/{id}", tag = "shipments", operation_id = "update_shipment",
    security(("api_key" = [])), request_body = ShipmentPatch, extensions(("x-carrier-call" = json!(true))),
    params(("id" = String, Path, description = "Shipment id")),
    responses((status = 200, body = Shipment, description = "The updated shipment"),
        (status = 409, description = "The carrier refused the change (`carrier_conflict`), the shipment is cancelled (`shipment_cancelled`), or the Idempotency-Key is in flight")))]
async fn update_shipment(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(patch): Json<ShipmentPatch>,
) -> ApiResult<JsonOut<Shipment>> {
    Ok(JsonOut(shipments::update(&state, &caller, &id, patch.into()).await?))
}

/// Cancel a shipment
///
/// Cancels at the carrier (e-Courier: SaveOrder with OrderStatus X), then here
/// (`booking.state = cancelled`, status `exception`). Repeating it answers the cancelled
/// shipment again.
#[utoipa::path(post, path = "/v1/shipments/{id}/cancel", tag = "shipments", operation_id = "cancel_shipment",
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")),
    extensions(("x-carrier-call" = json!(true))),
    responses((status = 200, body = Shipment, description = "The cancelled shipment"),
        (status = 409, description = "The carrier refused to cancel (`carrier_conflict`), or the Idempotency-Key is in flight")))]
async fn cancel_shipment(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<JsonOut<Shipment>> {
    Ok(JsonOut(shipments::cancel(&state, &caller, &id).await?))
}

/// Refresh a shipment from the carrier
///
/// Asks the carrier for the shipment's current state (e-Courier GetJsonOrder): new
/// events are added and the status moves forward only. A shipment still `pending`
/// booking is looked up first and booked only if the carrier does not have it (never a
/// blind second create).
#[utoipa::path(post, path = "/v1/shipments/{id}/refresh", tag = "shipments", operation_id = "refresh_shipment",
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")),
    extensions(("x-carrier-call" = json!(true))),
    responses((status = 200, body = Shipment, description = "The refreshed shipment"),
        (status = 409, description = "The booking failed, there is nothing to track (`booking_failed`), or the Idempotency-Key is in flight")))]
async fn refresh_shipment(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<JsonOut<Shipment>> {
    Ok(JsonOut(shipments::refresh(&state, &caller, &id).await?))
}

/// Track an expired shipment again
///
/// Asks the carrier to track an expired shipment again (AfterShip only; other carriers:
/// 422 `capability_not_supported`) and applies its answer.
#[utoipa::path(post, path = "/v1/shipments/{id}/retrack", tag = "shipments", operation_id = "retrack_shipment",
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")),
    extensions(("x-carrier-call" = json!(true))),
    responses((status = 200, body = Shipment, description = "The shipment with the carrier's answer applied")))]
async fn retrack_shipment(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<JsonOut<Shipment>> {
    Ok(JsonOut(shipments::retrack(&state, &caller, &id).await?))
}

/// Mark a shipment completed
///
/// Marks the shipment completed at the carrier with a reason (AfterShip only; other
/// carriers: 422 `capability_not_supported`) and applies its answer.
#[utoipa::path(post, path = "/v1/shipments/{id}/complete", tag = "shipments", operation_id = "complete_shipment",
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")), request_body = CompleteIn,
    extensions(("x-carrier-call" = json!(true))),
    responses((status = 200, body = Shipment, description = "The shipment with the carrier's answer applied")))]
async fn complete_shipment(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(body): Json<CompleteIn>,
) -> ApiResult<JsonOut<Shipment>> {
    Ok(JsonOut(shipments::complete(&state, &caller, &id, body.reason).await?))
}

/// List a shipment's tracking events
///
/// Every scan or status the carrier reported for this shipment (pushed, polled or from
/// an API call), oldest first. Not to be confused with `GET /v1/events`, the outbound
/// event log.
#[utoipa::path(get, path = "/v1/shipments/{id}/events", tag = "shipments", operation_id = "list_shipment_events",
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")),
    responses((status = 200, body = TrackingEventList, description = "The tracking events, oldest first")))]
async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<AxumJson<TrackingEventList>> {
    Ok(AxumJson(TrackingEventList { data: shipments::tracking_events(&state, &caller, &id).await? }))
}

/// List a shipment's audit history
///
/// Every change to the shipment with who made it (API key, carrier push, poller,
/// system), oldest first.
#[utoipa::path(get, path = "/v1/shipments/{id}/history", tag = "shipments", operation_id = "list_shipment_history",
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")),
    responses((status = 200, body = HistoryList, description = "The history entries, oldest first")))]
async fn list_history(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<AxumJson<HistoryList>> {
    Ok(AxumJson(HistoryList { data: shipments::history(&state, &caller, &id).await? }))
}

/// List a shipment's carrier exchanges
///
/// Every request made to the carrier for this shipment and its answer, secrets
/// redacted and bodies size-capped, oldest first.
#[utoipa::path(get, path = "/v1/shipments/{id}/exchanges", tag = "shipments", operation_id = "list_shipment_exchanges",
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")),
    responses((status = 200, body = ExchangeList, description = "The exchanges, oldest first")))]
async fn list_exchanges(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<AxumJson<ExchangeList>> {
    Ok(AxumJson(ExchangeList { data: shipments::exchanges(&state, &caller, &id).await? }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_shipment, list_shipments))
        .routes(routes!(get_shipment, update_shipment))
        .routes(routes!(cancel_shipment))
        .routes(routes!(refresh_shipment))
        .routes(routes!(retrack_shipment))
        .routes(routes!(complete_shipment))
        .routes(routes!(list_events))
        .routes(routes!(list_history))
        .routes(routes!(list_exchanges))
        .routes(routes!(list_documents))
        .routes(routes!(get_document))
}
