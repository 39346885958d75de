//! Answers in AfterShip 2024-04's own shapes: the `{meta, data}` envelope, the error
//! metas, and every model the routes answer with, field for field as the official SDK
//! pinned to 2024-04 (`aftership-tracking-sdk` 2.0.2, `tracking/models/*.py`) has them.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::state::{StoredCheckpoint, StoredTracking};

/// The 2024-04 Tracking model's fields, in its order (SDK 2.0.2 `models/tracking.py`).
/// No 2024-07+ field (e.g. `courier_estimated_delivery_date`) belongs here.
pub const TRACKING_FIELDS: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "last_updated_at",
    "tracking_number",
    "slug",
    "active",
    "custom_fields",
    "customer_name",
    "transit_time",
    "origin_country_iso3",
    "origin_state",
    "origin_city",
    "origin_postal_code",
    "origin_raw_location",
    "destination_country_iso3",
    "destination_state",
    "destination_city",
    "destination_postal_code",
    "destination_raw_location",
    "courier_destination_country_iso3",
    "emails",
    "expected_delivery",
    "note",
    "order_id",
    "order_id_path",
    "order_date",
    "shipment_package_count",
    "shipment_pickup_date",
    "shipment_delivery_date",
    "shipment_type",
    "shipment_weight",
    "shipment_weight_unit",
    "signed_by",
    "smses",
    "source",
    "tag",
    "subtag",
    "subtag_message",
    "title",
    "tracked_count",
    "last_mile_tracking_supported",
    "language",
    "unique_token",
    "checkpoints",
    "subscribed_smses",
    "subscribed_emails",
    "return_to_sender",
    "order_promised_delivery_date",
    "delivery_type",
    "pickup_location",
    "pickup_note",
    "courier_tracking_link",
    "first_attempted_at",
    "courier_redirect_link",
    "tracking_account_number",
    "tracking_key",
    "tracking_ship_date",
    "on_time_status",
    "on_time_difference",
    "order_tags",
    "aftership_estimated_delivery_date",
    "custom_estimated_delivery_date",
    "order_number",
    "first_estimated_delivery",
    "latest_estimated_delivery",
    "shipment_tags",
    "courier_connection_id",
    "next_couriers",
    "tracking_origin_country",
    "tracking_destination_country",
    "tracking_postal_code",
    "tracking_state",
    "carbon_emissions",
    "location_id",
    "shipping_method",
    "failed_delivery_attempts",
    "signature_requirement",
];

/// `PartialUpdateTracking` (the retrack answer), in the SDK's order: no `tag`.
pub const PARTIAL_UPDATE_FIELDS: &[&str] = &[
    "id",
    "tracking_number",
    "slug",
    "tracking_account_number",
    "tracking_origin_country",
    "tracking_destination_country",
    "tracking_key",
    "tracking_ship_date",
    "tracking_postal_code",
    "tracking_state",
    "active",
];

/// `PartialDeleteTracking` (the delete answer), in the SDK's order: no `tag`, no `active`.
pub const PARTIAL_DELETE_FIELDS: &[&str] = &[
    "id",
    "tracking_number",
    "slug",
    "tracking_account_number",
    "tracking_key",
    "tracking_ship_date",
    "tracking_origin_country",
    "tracking_destination_country",
    "tracking_postal_code",
    "tracking_state",
];

/// Fields `GET /trackings/{id}?fields=` may name (seed 002, Retrieve a tracking).
pub const SELECTABLE_TRACKING_FIELDS: &[&str] = &[
    "tracking_postal_code",
    "tracking_ship_date",
    "tracking_account_number",
    "tracking_key",
    "tracking_origin_country",
    "tracking_destination_country",
    "tracking_state",
    "title",
    "order_id",
    "tag",
    "checkpoints",
];

/// Fields `GET /last_checkpoint/{id}?fields=` may name (seed 002, Get last checkpoint).
/// `coordinates` is the pre-2024-04 name of the checkpoint's `coordinate`.
pub const SELECTABLE_CHECKPOINT_FIELDS: &[&str] = &[
    "slug",
    "created_at",
    "checkpoint_time",
    "city",
    "coordinates",
    "country_iso3",
    "country_name",
    "message",
    "state",
    "tag",
    "zip",
];

/// An AfterShip error answer: HTTP status and `meta {code, message, type}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub http: u16,
    pub code: u32,
    pub kind: String,
    pub message: String,
}

// Codes, types and messages: AfterShip Tracking API "Request Errors" (2024-04 quickstart;
// the same table is in the 2.0.2 SDK README "Error List").
impl ApiError {
    pub fn new(http: u16, code: u32, kind: &str, message: impl Into<String>) -> Self {
        ApiError { http, code, kind: kind.to_owned(), message: message.into() }
    }
    fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self::new(400, code, "BadRequest", message)
    }
    pub fn invalid_json() -> Self {
        Self::bad_request(4001, "Invalid JSON data.")
    }
    /// A body that is JSON but not of the request model's shape (unknown field, wrong
    /// type). AfterShip answers these with meta 400 "Schema validation error" (seen in
    /// AfterShip/aftership-sdk-php issue #51: an update body carrying `id` and
    /// `tracking_number`, which the update model lacks, got "BadRequest: 400 - Schema
    /// validation error"). We add which field, after a colon.
    pub fn schema(detail: impl std::fmt::Display) -> Self {
        Self::bad_request(400, format!("Schema validation error: {detail}"))
    }
    pub fn already_exists() -> Self {
        Self::bad_request(4003, "Tracking already exists.")
    }
    /// HTTP 404, meta type `BadRequest`, as the error table lists it.
    pub fn does_not_exist() -> Self {
        Self::new(404, 4004, "BadRequest", "Tracking does not exist.")
    }
    pub fn number_invalid() -> Self {
        Self::bad_request(4005, "The value of tracking_number is invalid.")
    }
    pub fn tracking_required() -> Self {
        Self::bad_request(4006, "tracking object is required.")
    }
    pub fn number_required() -> Self {
        Self::bad_request(4007, "tracking_number is required.")
    }
    pub fn value_invalid(field: &str) -> Self {
        Self::bad_request(4008, format!("The value of {field} is invalid."))
    }
    pub fn value_required(field: &str) -> Self {
        Self::bad_request(4009, format!("{field} is required."))
    }
    pub fn slug_invalid() -> Self {
        Self::bad_request(4010, "The value of slug is invalid.")
    }
    pub fn retrack_still_active() -> Self {
        Self::bad_request(4013, "Retrack is not allowed. You can only retrack an inactive tracking.")
    }
    pub fn id_invalid() -> Self {
        Self::bad_request(4015, "The value of id is invalid.")
    }
    pub fn retrack_limit() -> Self {
        Self::bad_request(4016, "Retrack is not allowed. You can only retrack each shipment once.")
    }
    pub fn number_format_invalid() -> Self {
        Self::bad_request(4017, "The format of tracking_number is invalid.")
    }
    pub fn unauthorized() -> Self {
        Self::new(401, 401, "Unauthorized", "The API key is invalid.")
    }
    pub fn not_found() -> Self {
        Self::new(404, 404, "NotFound", "The URI requested is invalid or the resource requested does not exist.")
    }
    pub fn too_many_requests() -> Self {
        Self::new(
            429,
            429,
            "TooManyRequests",
            "You have exceeded the API call rate limit. The default limit is 10 requests per second.",
        )
    }
    pub fn internal() -> Self {
        Self::new(500, 500, "InternalError", "Something went wrong on AfterShip's end.")
    }

    /// The error envelope: `meta` with all three keys (`message` and `type` "only exist if
    /// the response status is not 2xx", seed 002) and an empty `data`.
    pub fn body(&self) -> Value {
        json!({
            "meta": {"code": self.code, "message": self.message, "type": self.kind},
            "data": {}
        })
    }
}

/// A success envelope: `meta` carries only the code.
pub fn ok(code: u16, data: Value) -> Value {
    json!({"meta": {"code": code}, "data": data})
}

/// AfterShip's timestamp form, e.g. `2024-05-01T08:00:00+00:00`.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(ts(t)))
}

/// The full 2024-04 Tracking: every model field, `null` where nothing is known.
pub fn tracking(t: &StoredTracking, now: DateTime<Utc>) -> Map<String, Value> {
    TRACKING_FIELDS.iter().map(|&f| (f.to_owned(), tracking_field(t, f, now))).collect()
}

/// The Tracking restricted to `fields` (plus the identifying `id`, `tracking_number` and
/// `slug`, which a client needs to know what it got).
pub fn tracking_selected(t: &StoredTracking, fields: &[String], now: DateTime<Utc>) -> Map<String, Value> {
    TRACKING_FIELDS
        .iter()
        .filter(|&&f| matches!(f, "id" | "tracking_number" | "slug") || fields.iter().any(|s| s == f))
        .map(|&f| (f.to_owned(), tracking_field(t, f, now)))
        .collect()
}

fn list_or_empty(t: &StoredTracking, name: &str) -> Value {
    t.fields.get(name).filter(|v| v.is_array()).cloned().unwrap_or_else(|| json!([]))
}

fn tracking_field(t: &StoredTracking, name: &str, now: DateTime<Utc>) -> Value {
    match name {
        "id" => json!(t.id),
        "created_at" => json!(ts(t.created_at)),
        "updated_at" | "last_updated_at" => json!(ts(t.updated_at)),
        "tracking_number" => json!(t.tracking_number),
        "slug" => json!(t.slug),
        "active" => json!(t.active),
        // Days from pickup to delivery (or to now while undelivered); null before pickup
        // (SDK 2.0.2 `get_trackings` doc of `transit_time`).
        "transit_time" => match t.picked_up_at {
            Some(p) => json!((t.delivered_at.unwrap_or(now) - p).num_days()),
            None => Value::Null,
        },
        "courier_destination_country_iso3" => t.fields.get("destination_country_iso3").cloned().unwrap_or(Value::Null),
        "emails" | "smses" | "shipment_tags" => list_or_empty(t, name),
        "subscribed_emails" | "subscribed_smses" | "order_tags" => json!([]),
        "next_couriers" => match t.fields.get("next_couriers").and_then(Value::as_array) {
            // The request's {slug, tracking_number} plus the model's `source`.
            Some(items) => Value::Array(
                items
                    .iter()
                    .map(
                        |c| json!({"slug": c.get("slug"), "tracking_number": c.get("tracking_number"), "source": null}),
                    )
                    .collect(),
            ),
            None => json!([]),
        },
        "expected_delivery" => t.expected_delivery.as_ref().map_or(Value::Null, |d| json!(d)),
        "shipment_pickup_date" => opt_ts(t.picked_up_at),
        "shipment_delivery_date" => opt_ts(t.delivered_at),
        "signed_by" => match t.delivered_at {
            Some(_) if t.tag == "Delivered" => t.fields.get("customer_name").cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        },
        "source" => json!("api"),
        "tag" => json!(t.tag),
        "subtag" => json!(t.subtag),
        "subtag_message" => json!(t.subtag_message),
        // "By default this field shows the tracking_number" (seed 002, Create a tracking).
        "title" => t.fields.get("title").cloned().unwrap_or_else(|| json!(t.tracking_number)),
        "tracked_count" => json!(t.tracked_count),
        "unique_token" => json!("deprecated"),
        "checkpoints" => Value::Array(t.checkpoints.iter().map(|c| checkpoint(c, &t.slug)).collect()),
        "return_to_sender" => json!(t.subtag == "Exception_011"),
        "failed_delivery_attempts" => json!(0),
        _ => t.fields.get(name).cloned().unwrap_or(Value::Null),
    }
}

/// A 2024-04 Checkpoint (SDK 2.0.2 `models/checkpoint.py`): `coordinate`, not the older
/// `coordinates` (2024-04 migration guide).
pub fn checkpoint(c: &StoredCheckpoint, slug: &str) -> Value {
    let location = [c.city.as_deref(), c.state.as_deref(), c.country_iso3.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
    json!({
        "created_at": ts(c.created_at),
        "slug": slug,
        "checkpoint_time": ts(c.checkpoint_time),
        "location": if location.is_empty() { Value::Null } else { json!(location) },
        "city": c.city,
        "state": c.state,
        "zip": c.zip,
        "coordinate": null,
        "country_iso3": c.country_iso3,
        "country_name": null,
        "message": c.message,
        "tag": c.tag,
        "subtag": c.subtag,
        "subtag_message": c.subtag_message,
        "raw_tag": null,
        "events": []
    })
}

fn partial(t: &StoredTracking, names: &[&str], now: DateTime<Utc>) -> Value {
    Value::Object(names.iter().map(|&f| (f.to_owned(), tracking_field(t, f, now))).collect())
}

/// The retrack answer's `PartialUpdateTracking`.
pub fn partial_update(t: &StoredTracking, now: DateTime<Utc>) -> Value {
    partial(t, PARTIAL_UPDATE_FIELDS, now)
}

/// The delete answer's `PartialDeleteTracking`.
pub fn partial_delete(t: &StoredTracking, now: DateTime<Utc>) -> Value {
    partial(t, PARTIAL_DELETE_FIELDS, now)
}

/// `GetCheckpointByTrackingIdResponse`: the tracking's identity and status with its last
/// checkpoint (`{}` while it has none), optionally restricted to `fields`.
pub fn last_checkpoint(t: &StoredTracking, fields: Option<&[String]>) -> Value {
    let checkpoint = match t.checkpoints.last() {
        Some(c) => {
            let mut full = checkpoint(c, &t.slug);
            if let (Some(fields), Some(obj)) = (fields, full.as_object_mut()) {
                obj.retain(|k, _| fields.iter().any(|f| f == k || (f == "coordinates" && k == "coordinate")));
            }
            full
        }
        None => json!({}),
    };
    json!({
        "id": t.id,
        "tracking_number": t.tracking_number,
        "slug": t.slug,
        "tag": t.tag,
        "subtag": t.subtag,
        "subtag_message": t.subtag_message,
        "checkpoint": checkpoint
    })
}
