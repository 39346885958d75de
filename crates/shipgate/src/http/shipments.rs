//! Shipments: book or register (`POST`), list, read, update (forwarded to the
//! carrier), cancel, refresh, and the event / history / exchange views.

use axum::Json as AxumJson;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, DurationRound as _, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AuthContext;
use super::connections::{carrier_error, require_capability};
use super::extract::{Json, PathId, Query};
use super::{decode_cursor, encode_cursor, page};
use crate::app::AppState;
use crate::carriers::{self, CallCx, Capability, CarrierError, Channel, CompleteReason, DocumentLink, ShipmentSinks};
use crate::domain::{
    BookingState, FieldError, Metadata, Money, Parcel, ShipmentPlan, Status, Stop, check_plan, may_transition,
};
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::service::connections::note_connection_outcome;
use crate::service::refresh::{self, RefreshError, Refreshed};
use crate::service::shipments::{
    apply_snapshot, attempt_booking, channel_json, channel_of, order_number_for, order_request, plan_of, save_exchanges,
};
use crate::store::connections::ConnectionRow;
use crate::store::shipments::{BookingJob, Creation, DetailsUpdate, NewEvent, NewShipment, ShipmentRow};
use crate::store::{self, Actor};
use crate::{jobs, service};

// ---------- API types ----------

page!(ShipmentPage, ShipmentOut, "shipments, newest first");

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "connection_id": "con_01936f0c7a2b7c3d9e8f001122334455",
    "reference": "SO-1001",
    "service": "Route",
    "stops": [
        {"sequence": 1, "type": "pickup", "name": "James Madison",
         "address": {"line1": "2251 Orange Blossom Trail", "city": "Orlando", "state": "FL", "postal_code": "32804", "country": "US"},
         "phone": "3015551212", "scheduled_at": "2026-11-23T06:00:00-05:00"},
        {"sequence": 2, "type": "delivery", "name": "Bryan Moore",
         "address": {"line1": "2253 Orange Blossom Trail", "city": "Orlando", "state": "FL", "postal_code": "32804", "country": "US"},
         "scheduled_at": "2026-11-23T17:00:00-05:00"}
    ],
    "parcels": [{"reference": "test1234barcode", "quantity": 1, "weight": {"value": 2.5, "unit": "lb"}}],
    "metadata": {"erp_order": "4711"}
}))]
pub struct ShipmentIn {
    /// The connection (`con_...`) whose carrier books it; at most 64 characters.
    #[serde(deserialize_with = "crate::domain::limits::text::<64, _>")]
    #[schema(max_length = 64)]
    pub connection_id: String,
    /// Your reference, unique per tenant when given; 1-100 characters.
    #[serde(default, deserialize_with = "crate::domain::limits::opt_text::<100, _>")]
    #[schema(min_length = 1, max_length = 100)]
    pub reference: Option<String>,
    /// Register an existing tracking number instead of booking (tracking carriers); at
    /// most 100 characters.
    #[serde(default, deserialize_with = "crate::domain::limits::opt_text::<100, _>")]
    #[schema(max_length = 100)]
    pub tracking_number: Option<String>,
    /// The carrier's service level (e-Courier service, AfterShip courier slug); at most
    /// 100 characters.
    #[serde(default, deserialize_with = "crate::domain::limits::opt_text::<100, _>")]
    #[schema(max_length = 100)]
    pub service: Option<String>,
    /// The route, at most 50 stops.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub stops: Vec<Stop>,
    /// The goods, at most 100 parcel lines.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub parcels: Vec<Parcel>,
    pub declared_value: Option<Money>,
    pub cod_amount: Option<Money>,
    /// At most 2000 characters.
    #[serde(default, deserialize_with = "crate::domain::limits::opt_text::<2000, _>")]
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
    #[serde(default)]
    #[schema(value_type = super::openapi::Metadata)]
    pub metadata: Metadata,
    pub channel: Option<Channel>,
}

/// Absent: unchanged; `null`: cleared; a value: replaced.
fn double<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentPatch {
    /// 1-100 characters; null clears it.
    #[serde(default, deserialize_with = "crate::domain::limits::patch_text::<100, _>")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub reference: Option<Option<String>>,
    /// At most 100 characters; null clears it.
    #[serde(default, deserialize_with = "crate::domain::limits::patch_text::<100, _>")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub service: Option<Option<String>>,
    /// Replaces the route; at most 50 stops.
    #[schema(max_items = 50)]
    pub stops: Option<Vec<Stop>>,
    /// Replaces the goods; at most 100 parcel lines.
    #[schema(max_items = 100)]
    pub parcels: Option<Vec<Parcel>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<Money>)]
    pub declared_value: Option<Option<Money>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<Money>)]
    pub cod_amount: Option<Option<Money>>,
    /// At most 2000 characters; null clears it.
    #[serde(default, deserialize_with = "crate::domain::limits::patch_text::<2000, _>")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub notes: Option<Option<String>>,
    /// Replaces all metadata.
    #[schema(value_type = Option<super::openapi::Metadata>)]
    pub metadata: Option<Metadata>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<Channel>)]
    pub channel: Option<Option<Channel>>,
}

/// The booking with the carrier: for a booking carrier the order, for a tracking
/// number registered on a tracking carrier (AfterShip) the registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct Booking {
    /// pending | booked | failed | cancelled
    #[schema(value_type = String, example = "booked")]
    pub state: BookingState,
    /// Attempts made so far.
    pub attempts: i32,
    /// The carrier's last refusal or failure; null once booked.
    #[schema(value_type = Option<BookingError>)]
    pub last_error: Option<Value>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub booked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentOut {
    #[schema(example = "shp_01936f0c7a2b7c3d9e8f001122334455")]
    pub id: String,
    pub reference: Option<String>,
    pub connection_id: String,
    #[schema(example = "ecourier")]
    pub carrier: String,
    /// The carrier's order number for this shipment.
    pub carrier_reference: Option<String>,
    pub tracking_number: Option<String>,
    pub service: Option<String>,
    pub stops: Vec<Stop>,
    pub parcels: Vec<Parcel>,
    pub declared_value: Option<Money>,
    pub cod_amount: Option<Money>,
    pub notes: Option<String>,
    #[schema(value_type = super::openapi::Metadata)]
    pub metadata: Metadata,
    /// As the shipment's `channel` was given (the store keeps its JSON).
    #[schema(value_type = Option<Channel>)]
    pub channel: Option<Box<RawValue>>,
    /// The booking (or, for a registered tracking number, the registration) with the
    /// carrier. Null only for a shipment a carrier's push created for an unknown AWB:
    /// nothing was booked or registered through the gateway.
    pub booking: Option<Booking>,
    pub status: Status,
    #[schema(example = "InfoReceived_001")]
    pub subtag: Option<String>,
    /// The carrier's own status code, as last seen.
    pub carrier_status: Option<String>,
    /// The latest tracking event (by when it happened), as recorded when it arrived.
    #[schema(value_type = Option<LastEvent>)]
    pub last_event: Option<Value>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub estimated_delivery: Option<DateTime<Utc>>,
    /// What each sink (`channel`) made of this shipment; `{}` when it reports to none.
    #[schema(value_type = ShipmentSinks)]
    pub sinks: serde_json::Map<String, Value>,
    /// Documents the carrier holds (eCMR's CMR).
    pub documents: Vec<DocumentLink>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub updated_at: DateTime<Utc>,
}

impl From<ShipmentRow> for ShipmentOut {
    fn from(r: ShipmentRow) -> Self {
        ShipmentOut {
            booking: r.booking_state.map(|state| Booking {
                state,
                attempts: r.booking_attempts,
                last_error: r.booking_last_error.map(|j| j.0),
                booked_at: r.booked_at,
            }),
            status: r.status,
            id: r.id,
            reference: r.reference,
            connection_id: r.connection_id,
            carrier: r.carrier,
            carrier_reference: r.carrier_reference,
            tracking_number: r.tracking_number,
            service: r.service,
            stops: r.stops.0,
            parcels: r.parcels.0,
            declared_value: r.declared_value.map(|j| j.0),
            cod_amount: r.cod_amount.map(|j| j.0),
            notes: r.notes,
            metadata: r.metadata.0,
            channel: r.channel.map(|j| j.0),
            subtag: r.subtag,
            carrier_status: r.carrier_status,
            last_event: r.last_event.map(|j| j.0),
            estimated_delivery: r.estimated_delivery,
            sinks: r.sinks.0,
            documents: r.documents.0,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn out_json(row: ShipmentRow) -> Value {
    serde_json::to_value(ShipmentOut::from(row)).unwrap_or(Value::Null)
}

/// A shipment's latest tracking event as kept on the shipment (`last_event`).
#[derive(ToSchema)]
#[allow(dead_code)] // the schema of a JSON value the store keeps; never built in Rust
pub struct LastEvent {
    #[schema(value_type = String, format = DateTime)]
    occurred_at: DateTime<Utc>,
    /// Normalized status; null when the carrier's code has no mapping yet.
    status: Option<Status>,
    #[schema(example = "InTransit_001")]
    subtag: Option<String>,
    message: Option<String>,
    location: Option<crate::carriers::Location>,
    /// The carrier's own code and text.
    raw_code: Option<String>,
    raw_text: Option<String>,
    /// Who did it at the carrier, when the carrier says.
    actor: Option<String>,
    /// push | poll | api
    source: Option<String>,
    dedup_key: Option<String>,
}

/// A carrier's refusal or failure of a booking attempt.
#[derive(ToSchema)]
#[allow(dead_code)] // the schema of a JSON value the store keeps; never built in Rust
pub struct BookingError {
    /// `rejected`, `conflict`, `transient`, `misconfigured`, `protocol`, ...
    #[schema(example = "rejected")]
    code: String,
    /// The carrier's message.
    message: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    at: Option<DateTime<Utc>>,
}

/// One tracking event of a shipment: a scan or status the carrier reported.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackingEventOut {
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub occurred_at: DateTime<Utc>,
    #[schema(value_type = Option<String>)]
    pub status: Option<Status>,
    pub subtag: Option<String>,
    pub message: Option<String>,
    #[schema(value_type = Option<crate::carriers::Location>)]
    pub location: Option<Value>,
    pub raw_code: Option<String>,
    pub raw_text: Option<String>,
    /// Who did it at the carrier, when the carrier says (eCMR).
    pub actor: Option<String>,
    /// push | poll | api
    pub source: String,
    pub dedup_key: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryOut {
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub at: DateTime<Utc>,
    /// api_key | carrier_push | poller | system | carrier
    pub actor_type: String,
    pub actor_id: Option<String>,
    /// `created`, `booked`, `booking_failed`, `updated`, `update_refused`, `cancelled`,
    /// `cancel_refused`, `events_added`, `status_changed`, `retracked`, `completed`,
    /// `sink_submitted`, `sink_failed`, ...
    #[schema(example = "status_changed")]
    pub action: String,
    /// What changed, by action: e.g. `status_changed`: `{from, from_subtag, to,
    /// to_subtag, carrier_status}`; `updated`: `{fields, forwarded_to_carrier}`;
    /// `events_added`: `{count, events}`; `booking_failed`: `{code, message, at}`.
    #[schema(value_type = Object)]
    pub detail: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeOut {
    pub id: i64,
    pub connection_id: String,
    pub carrier: String,
    pub operation: String,
    pub method: String,
    pub url: String,
    /// Request body with secrets redacted, size-capped.
    pub request_body: Option<String>,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub duration_ms: i32,
    pub error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub created_at: DateTime<Utc>,
}

/// A shipment's tracking events, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackingEventList {
    pub data: Vec<TrackingEventOut>,
}

/// A shipment's history entries, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryList {
    pub data: Vec<HistoryOut>,
}

/// A shipment's carrier exchanges, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeList {
    pub data: Vec<ExchangeOut>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Normalized status, e.g. `in_transit`.
    pub status: Option<String>,
    pub carrier: Option<String>,
    pub connection_id: Option<String>,
    pub reference: Option<String>,
    pub tracking_number: Option<String>,
    /// RFC 3339.
    pub created_after: Option<String>,
    /// RFC 3339.
    pub created_before: Option<String>,
    /// Page size, 1-100 (default 20).
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteIn {
    pub reason: CompleteReason,
}

// ---------- helpers ----------

fn check_texts(reference: Option<&str>, notes: Option<&str>, metadata: &Metadata, errors: &mut Vec<FieldError>) {
    if reference.is_some_and(|r| r.trim().is_empty() || r.len() > 100) {
        errors.push(FieldError::new("reference", "must be 1-100 characters"));
    }
    if notes.is_some_and(|n| n.len() > 2000) {
        errors.push(FieldError::new("notes", "must be at most 2000 characters"));
    }
    if metadata.len() > 50 {
        errors.push(FieldError::new("metadata", "at most 50 keys"));
    }
    for (k, v) in metadata {
        if k.is_empty() || k.len() > 40 || v.len() > 500 {
            errors.push(FieldError::new(format!("metadata.{k}"), "keys 1-40 characters, values at most 500"));
        }
    }
}

/// Each sink a channel names must be one of the tenant's connections to that sink.
async fn check_channel(
    state: &AppState,
    tenant: &str,
    channel: Option<&Channel>,
    errors: &mut Vec<FieldError>,
) -> ApiResult<()> {
    for (sink, target) in channel.map(Channel::targets).unwrap_or_default() {
        let id = target.connection_id();
        let mut conn = state.db.acquire().await?;
        let ok = ids::is_id("con", id)
            && store::connections::get(&mut conn, tenant, id).await?.is_some_and(|c| c.carrier == sink);
        if !ok {
            errors.push(FieldError::new(format!("channel.{sink}.connection_id"), format!("no such {sink} connection")));
        }
    }
    Ok(())
}

async fn load(state: &AppState, tenant: &str, id: &str) -> ApiResult<ShipmentRow> {
    if !ids::is_id("shp", id) {
        return Err(ApiError::NotFound("shipment"));
    }
    let mut conn = state.db.acquire().await?;
    store::shipments::get(&mut conn, tenant, id).await?.ok_or(ApiError::NotFound("shipment"))
}

/// The connection behind a shipment, even if it was deleted since (then: 422).
async fn connection_of(state: &AppState, row: &ShipmentRow) -> ApiResult<ConnectionRow> {
    let mut conn = state.db.acquire().await?;
    store::connections::get(&mut conn, &row.tenant_id, &row.connection_id).await?.ok_or_else(|| {
        ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "connection_deleted",
            "Connection deleted",
            "this shipment's connection was deleted",
        )
    })
}

fn created(row: ShipmentRow) -> Response {
    let id = row.id.clone();
    (StatusCode::CREATED, [("location", format!("/v1/shipments/{id}"))], AxumJson(ShipmentOut::from(row)))
        .into_response()
}

/// The answer to a booking attempt (PRODUCT.md "Booking semantics").
fn booking_response(row: ShipmentRow, error: Option<CarrierError>) -> Response {
    match error {
        None => created(row),
        Some(e) => carrier_error(&e, Some(out_json(row))).into_response(),
    }
}

// ---------- handlers ----------

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
        (status = 200, body = ShipmentOut, description = "This tracking number is already registered on this connection: the existing shipment, unchanged"),
        (status = 201, body = ShipmentOut, description = "Booked (or registered); `Location` names the shipment",
            headers(("Location" = String, description = "`/v1/shipments/{id}`"))),
        (status = 202, body = ShipmentOut, description = "The carrier is unavailable: kept `pending`, booked later by a job",
            headers(("Location" = String, description = "`/v1/shipments/{id}`"))),
        (status = 409, description = "The carrier refused the booking (`carrier_conflict`; the failed shipment is in `shipment`), the reference is taken (`reference_taken`), or the Idempotency-Key is in flight"),
        (status = 422, description = "A field is invalid (`validation_failed`), the carrier cannot book or register (`capability_not_supported`), or the carrier rejected the booking (`carrier_rejected`; the failed shipment is in `shipment`)"),
        (status = 502, description = "The carrier's answer could not be read; the failed shipment is in `shipment`")))]
async fn create_shipment(
    State(state): State<AppState>,
    auth: AuthContext,
    Json(body): Json<ShipmentIn>,
) -> ApiResult<Response> {
    let actor = Actor::ApiKey(auth.key_id.clone());
    let mut errors = Vec::new();
    check_texts(body.reference.as_deref(), body.notes.as_deref(), &body.metadata, &mut errors);
    check_channel(&state, &auth.tenant_id, body.channel.as_ref(), &mut errors).await?;
    let connection = if ids::is_id("con", &body.connection_id) {
        state.connection(&auth.tenant_id, &body.connection_id).await?
    } else {
        None
    };
    let Some(connection) = connection else {
        errors.push(FieldError::new("connection_id", "no such connection"));
        return Err(ApiError::validation(errors));
    };
    let plan = ShipmentPlan {
        reference: body.reference.clone(),
        service: body.service.clone(),
        stops: body.stops.clone(),
        parcels: body.parcels.clone(),
        declared_value: body.declared_value.clone(),
        cod_amount: body.cod_amount.clone(),
        notes: body.notes.clone(),
    };
    // A registered number is compared trimmed (and case-blind: shipments_registration_uq).
    let tracking_number = body.tracking_number.as_deref().map(str::trim);
    if tracking_number.is_some() {
        require_capability(&connection.carrier, Capability::RegisterTracking)?;
        if tracking_number.is_some_and(str::is_empty) {
            errors.push(FieldError::new("tracking_number", "must not be empty"));
        }
    } else {
        require_capability(&connection.carrier, Capability::Book)?;
        errors.extend(check_plan(&plan));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if let Some(number) = tracking_number
        && let Some(existing) = registered(&state, &auth.tenant_id, &connection.id, number).await?
    {
        return Ok(already_registered(existing));
    }

    let id = ids::new_id("shp");
    let order_number = order_number_for(&id);
    let channel = body.channel.as_ref().map(channel_json).transpose()?;
    let new = NewShipment {
        tenant_id: &auth.tenant_id,
        id: &id,
        reference: body.reference.as_deref(),
        connection_id: &connection.id,
        carrier: &connection.carrier,
        carrier_reference: Some(&order_number),
        tracking_number,
        service: body.service.as_deref(),
        stops: &body.stops,
        parcels: &body.parcels,
        declared_value: body.declared_value.as_ref(),
        cod_amount: body.cod_amount.as_ref(),
        notes: body.notes.as_deref(),
        metadata: &body.metadata,
        channel: channel.as_deref(),
        booking_state: Some(BookingState::Pending),
    };
    // Postgres keeps microseconds: the event shows the same created_at as the row.
    let at = Utc::now().duration_trunc(chrono::Duration::microseconds(1)).unwrap_or_else(|_| Utc::now());
    let event_id = ids::new_id("evt");
    let event = service::events::shipment_event("shipment.created", &new.as_row(at), Value::Null).data;
    let policy = jobs::kinds::policy(jobs::kinds::BOOKING);
    let inserted = {
        let mut conn = state.db.acquire().await?;
        store::shipments::insert_with_history(
            &mut conn,
            &new,
            &Creation {
                actor: &actor,
                action: "created",
                detail: &json!({"connection_id": connection.id, "reference": body.reference}),
                at,
                event: (&event_id, &event),
                // If this request dies before its attempt is recorded, the job books it.
                booking_job: Some(BookingJob {
                    run_at: at
                        + chrono::Duration::from_std(state.config.request_timeout).unwrap_or_default()
                        + chrono::Duration::seconds(5),
                    max_attempts: policy.max_attempts,
                    lease_secs: i32::try_from(policy.lease.as_secs()).unwrap_or(120),
                }),
            },
        )
        .await
    };
    let row = match inserted {
        Ok(row) => row,
        Err(e) => {
            // The same number registered at the same moment by another request (or with
            // a reference the other one took first): theirs is the registration.
            if let Some(number) = tracking_number
                && is_unique_violation(&e)
                && let Some(existing) = registered(&state, &auth.tenant_id, &connection.id, number).await?
            {
                return Ok(already_registered(existing));
            }
            return Err(e.into());
        }
    };
    let (row, error) = attempt_booking(&state, &connection, &row, &actor).await?;
    if let Some(e) = &error {
        note_connection_outcome(&state, &connection, Some(e)).await;
        if e.is_transient() {
            // Kept: the booking job books it later (PRODUCT.md "Booking semantics").
            return Ok(accepted(row));
        }
    }
    Ok(booking_response(row, error))
}

/// The live registration of `number` on the connection, if any.
async fn registered(
    state: &AppState,
    tenant: &str,
    connection_id: &str,
    number: &str,
) -> ApiResult<Option<ShipmentRow>> {
    let mut conn = state.db.acquire().await?;
    Ok(store::shipments::get_registration(&mut conn, tenant, connection_id, number).await?)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

/// 200: the number is already registered on this connection; the existing shipment,
/// unchanged, and nothing sent to the carrier.
fn already_registered(row: ShipmentRow) -> Response {
    let id = row.id.clone();
    (StatusCode::OK, [("location", format!("/v1/shipments/{id}"))], AxumJson(ShipmentOut::from(row))).into_response()
}

fn accepted(row: ShipmentRow) -> Response {
    let id = row.id.clone();
    (StatusCode::ACCEPTED, [("location", format!("/v1/shipments/{id}"))], AxumJson(ShipmentOut::from(row)))
        .into_response()
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
    auth: AuthContext,
    Query(q): Query<ListParams>,
) -> ApiResult<AxumJson<ShipmentPage>> {
    let limit = q.limit.unwrap_or(20);
    let mut errors = Vec::new();
    if !(1..=100).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 100"));
    }
    if let Some(s) = &q.status
        && Status::parse(s).is_none()
    {
        let all: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        errors.push(FieldError::new("status", format!("must be one of {}", all.join(", "))));
    }
    // An unknown carrier is refused like an unknown status, not answered with an empty page.
    if let Some(c) = &q.carrier
        && crate::carriers::info(c).is_none()
    {
        let known: Vec<String> = crate::carriers::catalog().into_iter().map(|c| c.slug.to_owned()).collect();
        errors.push(FieldError::new("carrier", format!("must be one of {}", known.join(", "))));
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
    let before_id = match q.cursor.as_deref().map(decode_cursor).transpose() {
        Ok(c) => c,
        Err(_) => {
            errors.push(FieldError::new("cursor", "is not a cursor this API issued"));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(crate::error::Location::Query, errors));
    }
    let filter = store::shipments::ListFilter {
        status: q.status.as_deref().and_then(Status::parse),
        carrier: q.carrier.as_deref(),
        connection_id: q.connection_id.as_deref(),
        reference: q.reference.as_deref(),
        tracking_number: q.tracking_number.as_deref(),
        created_after,
        created_before,
        before_id: before_id.as_deref(),
    };
    let mut conn = state.db.acquire().await?;
    let mut rows = store::shipments::list(&mut conn, &auth.tenant_id, &filter, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| encode_cursor(&r.id)) } else { None };
    Ok(AxumJson(ShipmentPage { data: rows.into_iter().map(ShipmentOut::from).collect(), next_cursor }))
}

/// Read a shipment
///
/// The shipment as stored: route, goods, booking, normalized status and the last event.
#[utoipa::path(get, path = "/v1/shipments/{id}", tag = "shipments", operation_id = "get_shipment",
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")),
    responses((status = 200, body = ShipmentOut, description = "The shipment")))]
async fn get_shipment(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<AxumJson<ShipmentOut>> {
    Ok(AxumJson(load(&state, &auth.tenant_id, &id).await?.into()))
}

/// Update a shipment
///
/// Absent fields are unchanged, `null` clears, a value replaces. On a booked shipment,
/// route and goods changes are forwarded to the carrier first (e-Courier SaveOrder); if
/// the carrier refuses (409) nothing changes here.
#[utoipa::path(patch, path = "/v1/shipments/{id}", tag = "shipments", operation_id = "update_shipment",
    security(("api_key" = [])), request_body = ShipmentPatch, extensions(("x-carrier-call" = json!(true))),
    params(("id" = String, Path, description = "Shipment id")),
    responses((status = 200, body = ShipmentOut, description = "The updated shipment"),
        (status = 409, description = "The carrier refused the change (`carrier_conflict`), the shipment is cancelled (`shipment_cancelled`), or the Idempotency-Key is in flight")))]
async fn update_shipment(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
    Json(patch): Json<ShipmentPatch>,
) -> ApiResult<AxumJson<ShipmentOut>> {
    let row = load(&state, &auth.tenant_id, &id).await?;
    if row.booking_state == Some(BookingState::Cancelled) {
        return Err(ApiError::client(
            StatusCode::CONFLICT,
            "shipment_cancelled",
            "Shipment cancelled",
            "a cancelled shipment cannot be changed",
        ));
    }
    let mut plan = plan_of(&row);
    let mut changed = Vec::new();
    macro_rules! apply {
        ($field:ident, $target:expr) => {
            if let Some(v) = patch.$field {
                $target = v;
                changed.push(stringify!($field));
            }
        };
    }
    apply!(reference, plan.reference);
    apply!(service, plan.service);
    apply!(stops, plan.stops);
    apply!(parcels, plan.parcels);
    apply!(declared_value, plan.declared_value);
    apply!(cod_amount, plan.cod_amount);
    apply!(notes, plan.notes);
    let mut metadata = row.metadata.0.clone();
    apply!(metadata, metadata);
    let mut channel = channel_of(&row)?;
    apply!(channel, channel);
    let mut errors = Vec::new();
    check_texts(plan.reference.as_deref(), plan.notes.as_deref(), &metadata, &mut errors);
    check_channel(&state, &auth.tenant_id, channel.as_ref(), &mut errors).await?;
    if row.booking_state.is_some() && row.tracking_number.is_none() {
        errors.extend(check_plan(&plan));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let carrier_fields =
        ["service", "stops", "parcels", "declared_value", "cod_amount", "notes", "reference", "metadata"];
    let can_update = carriers::supports(&row.carrier, Capability::Update);
    let forward = can_update
        && row.booking_state == Some(BookingState::Booked)
        && changed.iter().any(|f| carrier_fields.contains(f));
    let cx = CallCx::new();
    let mut outcome = Ok(());
    if forward {
        require_capability(&row.carrier, Capability::Update)?;
        let connection = connection_of(&state, &row).await?;
        let order_number = order_number_for(&row.id);
        outcome = match state.client(&connection) {
            Ok(client) => client.update(&cx, &order_request(&row, &order_number, &plan)).await,
            Err(e) => Err(e),
        };
    }
    let mut tx = state.db.begin().await?;
    save_exchanges(&mut tx, &auth.tenant_id, Some(&id), cx.take()).await?;
    if let Err(e) = &outcome {
        store::shipments::insert_history(
            &mut tx,
            &auth.tenant_id,
            &id,
            &Actor::ApiKey(auth.key_id.clone()),
            "update_refused",
            &json!({"fields": changed, "code": e.kind(), "message": e.message()}),
        )
        .await?;
        tx.commit().await?;
        return Err(carrier_error(e, None));
    }
    let channel_stored = channel.as_ref().map(channel_json).transpose()?;
    store::shipments::set_details(
        &mut tx,
        &auth.tenant_id,
        &id,
        &DetailsUpdate {
            reference: plan.reference.as_deref(),
            service: plan.service.as_deref(),
            stops: &plan.stops,
            parcels: &plan.parcels,
            declared_value: plan.declared_value.as_ref(),
            cod_amount: plan.cod_amount.as_ref(),
            notes: plan.notes.as_deref(),
            metadata: &metadata,
            channel: channel_stored.as_deref(),
        },
    )
    .await?;
    store::shipments::insert_history(
        &mut tx,
        &auth.tenant_id,
        &id,
        &Actor::ApiKey(auth.key_id.clone()),
        "updated",
        &json!({"fields": changed, "forwarded_to_carrier": forward}),
    )
    .await?;
    if changed.contains(&"channel") && row.booking_state == Some(BookingState::Booked) {
        let fresh =
            store::shipments::get(&mut tx, &auth.tenant_id, &id).await?.ok_or(ApiError::NotFound("shipment"))?;
        crate::service::shipments::enqueue_sinks(&mut tx, &fresh, None).await?;
    }
    let updated = store::shipments::get(&mut tx, &auth.tenant_id, &id).await?.ok_or(ApiError::NotFound("shipment"))?;
    tx.commit().await?;
    Ok(AxumJson(updated.into()))
}

/// Cancel a shipment
///
/// Cancels at the carrier (e-Courier: SaveOrder with OrderStatus X), then here
/// (`booking.state = cancelled`, status `exception`). Repeating it answers the cancelled
/// shipment again.
#[utoipa::path(post, path = "/v1/shipments/{id}/cancel", tag = "shipments", operation_id = "cancel_shipment",
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")),
    extensions(("x-carrier-call" = json!(true))),
    responses((status = 200, body = ShipmentOut, description = "The cancelled shipment"),
        (status = 409, description = "The carrier refused to cancel (`carrier_conflict`), or the Idempotency-Key is in flight")))]
async fn cancel_shipment(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<AxumJson<ShipmentOut>> {
    let row = load(&state, &auth.tenant_id, &id).await?;
    if row.booking_state == Some(BookingState::Cancelled) {
        return Ok(AxumJson(row.into()));
    }
    require_capability(&row.carrier, Capability::Cancel)?;
    let cx = CallCx::new();
    // A failed booking left nothing at the carrier; a pending one may have (ambiguous
    // timeout), so it is cancelled there too.
    let outcome = if row.booking_state == Some(BookingState::Failed) {
        Ok(())
    } else {
        let connection = connection_of(&state, &row).await?;
        let plan = plan_of(&row);
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
    let actor = Actor::ApiKey(auth.key_id.clone());
    let mut tx = state.db.begin().await?;
    save_exchanges(&mut tx, &auth.tenant_id, Some(&id), cx.take()).await?;
    if let Err(e) = &outcome {
        store::shipments::insert_history(
            &mut tx,
            &auth.tenant_id,
            &id,
            &actor,
            "cancel_refused",
            &json!({"code": e.kind(), "message": e.message()}),
        )
        .await?;
        tx.commit().await?;
        return Err(carrier_error(e, None));
    }
    let locked =
        store::shipments::get_for_update(&mut tx, &auth.tenant_id, &id).await?.ok_or(ApiError::NotFound("shipment"))?;
    store::shipments::set_booking(
        &mut tx,
        &auth.tenant_id,
        &id,
        &store::shipments::BookingUpdate {
            state: BookingState::Cancelled,
            last_error: None,
            booked: false,
            tracking_number: None,
            carrier_reference: None,
            count_attempt: false,
        },
    )
    .await?;
    let current = locked.status;
    let subtag = "Exception_020";
    let event = json!({"occurred_at": crate::domain::time::format(&Utc::now()), "status": Status::Exception, "subtag": subtag, "message": "Cancelled via API"});
    store::shipments::insert_event(
        &mut tx,
        &auth.tenant_id,
        &id,
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
    if may_transition(current, locked.subtag.as_deref(), Status::Exception, Some(subtag)) {
        store::shipments::set_status(
            &mut tx,
            &auth.tenant_id,
            &id,
            Status::Exception,
            Some(subtag),
            None,
            Some(&event),
        )
        .await?;
    }
    store::shipments::insert_history(
        &mut tx,
        &auth.tenant_id,
        &id,
        &actor,
        "cancelled",
        &json!({"previous_booking_state": locked.booking_state}),
    )
    .await?;
    let updated = store::shipments::get(&mut tx, &auth.tenant_id, &id).await?.ok_or(ApiError::NotFound("shipment"))?;
    let mut outbound = vec![service::events::shipment_event(
        "shipment.cancelled",
        &updated,
        json!({"previous_booking_state": locked.booking_state}),
    )];
    if (updated.status, updated.subtag.as_deref()) != (locked.status, locked.subtag.as_deref()) {
        outbound.push(service::events::shipment_event(
            "shipment.status_changed",
            &updated,
            json!({"previous_status": locked.status, "previous_subtag": locked.subtag}),
        ));
    }
    store::events::emit(&mut tx, &auth.tenant_id, &id, &outbound).await?;
    tx.commit().await?;
    Ok(AxumJson(updated.into()))
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
    responses((status = 200, body = ShipmentOut, description = "The refreshed shipment"),
        (status = 409, description = "The booking failed, there is nothing to track (`booking_failed`), or the Idempotency-Key is in flight")))]
async fn refresh_shipment(State(state): State<AppState>, auth: AuthContext, PathId(id): PathId) -> ApiResult<Response> {
    let row = load(&state, &auth.tenant_id, &id).await?;
    require_capability(&row.carrier, Capability::Refresh)?;
    if row.booking_state == Some(BookingState::Failed) {
        return Err(booking_failed(row));
    }
    let connection = connection_of(&state, &row).await?;
    let actor = Actor::ApiKey(auth.key_id.clone());
    match refresh::refresh(&state, &connection, &row, &actor).await {
        Ok(Refreshed::Tracked(row)) | Ok(Refreshed::Booked(row, None)) => {
            Ok(AxumJson(ShipmentOut::from(row)).into_response())
        }
        Ok(Refreshed::Booked(row, Some(e))) => Ok(booking_response(row, Some(e))),
        Err(RefreshError::BookingFailed(row)) => Err(booking_failed(*row)),
        Err(RefreshError::Carrier(e)) => {
            note_connection_outcome(&state, &connection, Some(&e)).await;
            Err(carrier_error(&e, None))
        }
        Err(RefreshError::Db(e)) => Err(e.into()),
    }
}

fn booking_failed(row: ShipmentRow) -> ApiError {
    ApiError::Carrier {
        status: StatusCode::CONFLICT,
        code: "booking_failed",
        title: "Booking failed",
        detail: "the carrier never accepted this shipment; there is nothing to track".into(),
        retry_after: None,
        shipment: Some(out_json(row)),
    }
}

/// Track an expired shipment again
///
/// Asks the carrier to track an expired shipment again (AfterShip only; other carriers:
/// 422 `capability_not_supported`) and applies its answer.
#[utoipa::path(post, path = "/v1/shipments/{id}/retrack", tag = "shipments", operation_id = "retrack_shipment",
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")),
    extensions(("x-carrier-call" = json!(true))),
    responses((status = 200, body = ShipmentOut, description = "The shipment with the carrier's answer applied")))]
async fn retrack_shipment(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<AxumJson<ShipmentOut>> {
    let row = load(&state, &auth.tenant_id, &id).await?;
    require_capability(&row.carrier, Capability::Retrack)?;
    carrier_lifecycle(&state, &auth, row, None).await
}

/// Mark a shipment completed
///
/// Marks the shipment completed at the carrier with a reason (AfterShip only; other
/// carriers: 422 `capability_not_supported`) and applies its answer.
#[utoipa::path(post, path = "/v1/shipments/{id}/complete", tag = "shipments", operation_id = "complete_shipment",
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")), request_body = CompleteIn,
    extensions(("x-carrier-call" = json!(true))),
    responses((status = 200, body = ShipmentOut, description = "The shipment with the carrier's answer applied")))]
async fn complete_shipment(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
    Json(body): Json<CompleteIn>,
) -> ApiResult<AxumJson<ShipmentOut>> {
    let row = load(&state, &auth.tenant_id, &id).await?;
    require_capability(&row.carrier, Capability::Complete)?;
    carrier_lifecycle(&state, &auth, row, Some(body.reason)).await
}

/// Retrack (`reason` None) or mark completed, then apply the carrier's answer.
async fn carrier_lifecycle(
    state: &AppState,
    auth: &AuthContext,
    row: ShipmentRow,
    reason: Option<CompleteReason>,
) -> ApiResult<AxumJson<ShipmentOut>> {
    let connection = connection_of(state, &row).await?;
    let client = state.client(&connection).map_err(|e| carrier_error(&e, None))?;
    let cx = CallCx::new();
    let req = service::shipments::track_request(&row);
    let result = match reason {
        None => client.retrack(&cx, &req).await,
        Some(r) => client.complete(&cx, &req, r).await,
    };
    let actor = Actor::ApiKey(auth.key_id.clone());
    match result {
        Ok(snap) => {
            let updated = apply_snapshot(state, &auth.tenant_id, &row.id, &snap, "api", &actor, cx.take()).await?;
            let mut conn = state.db.acquire().await?;
            let action = if reason.is_some() { "completed" } else { "retracked" };
            store::shipments::insert_history(
                &mut conn,
                &auth.tenant_id,
                &row.id,
                &actor,
                action,
                &json!({"reason": reason}),
            )
            .await?;
            Ok(AxumJson(updated.into()))
        }
        Err(e) => {
            let mut conn = state.db.acquire().await?;
            save_exchanges(&mut conn, &auth.tenant_id, Some(&row.id), cx.take()).await?;
            Err(carrier_error(&e, None))
        }
    }
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
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<AxumJson<TrackingEventList>> {
    load(&state, &auth.tenant_id, &id).await?;
    let mut conn = state.db.acquire().await?;
    let rows = store::shipments::list_events(&mut conn, &auth.tenant_id, &id).await?;
    Ok(AxumJson(TrackingEventList {
        data: rows
            .into_iter()
            .map(|r| TrackingEventOut {
                id: r.id,
                occurred_at: r.occurred_at,
                status: r.status,
                subtag: r.subtag,
                message: r.message,
                location: r.location.map(|j| j.0),
                raw_code: r.raw_code,
                raw_text: r.raw_text,
                actor: r.actor,
                source: r.source,
                dedup_key: r.dedup_key,
                created_at: r.created_at,
            })
            .collect(),
    }))
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
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<AxumJson<HistoryList>> {
    load(&state, &auth.tenant_id, &id).await?;
    let mut conn = state.db.acquire().await?;
    let rows = store::shipments::list_history(&mut conn, &auth.tenant_id, &id).await?;
    Ok(AxumJson(HistoryList {
        data: rows
            .into_iter()
            .map(|r| HistoryOut {
                id: r.id,
                at: r.at,
                actor_type: r.actor_type,
                actor_id: r.actor_id,
                action: r.action,
                detail: r.detail.0,
            })
            .collect(),
    }))
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
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<AxumJson<ExchangeList>> {
    load(&state, &auth.tenant_id, &id).await?;
    let mut conn = state.db.acquire().await?;
    let rows = store::exchanges::list_for_shipment(&mut conn, &auth.tenant_id, &id).await?;
    Ok(AxumJson(ExchangeList {
        data: rows
            .into_iter()
            .map(|r| ExchangeOut {
                id: r.id,
                connection_id: r.connection_id,
                carrier: r.carrier,
                operation: r.operation,
                method: r.method,
                url: r.url,
                request_body: r.request_body,
                response_status: r.response_status,
                response_body: r.response_body,
                duration_ms: r.duration_ms,
                error: r.error,
                created_at: r.created_at,
            })
            .collect(),
    }))
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
}
