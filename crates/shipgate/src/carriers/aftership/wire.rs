//! AfterShip Tracking API **2024-04** wire types (seed 002, docs/carriers/aftership.md "aftership").
//!
//! The reference for every field is AfterShip's official Python SDK pinned to this
//! version, `aftership-tracking-sdk` 2.0.2 (the last release on `/tracking/2024-04`):
//! its `tracking/models/*.py` (request and answer models) and `tracking/api/*.py` (which
//! model each operation sends and answers). Fields that first appear in 2024-07,
//! 2024-10 or 2025-01 (`courier_estimated_delivery_date`, `country_region`, cursor
//! pagination) are not read or written here. `docs/carriers/aftership.md` lists every
//! field with its source and the test that covers it.
//!
//! Envelope: `{meta:{code, message?, type?}, data:{...}}`. Create and update bodies are
//! wrapped in `{"tracking":{...}}` (SDK `api/tracking.py`: `json.dumps({"tracking":
//! body})`); mark-as-completed and predict-batch bodies are not. Readers are lenient:
//! every field optional, unknown fields ignored, `null` accepted wherever a value is.

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------- requests ----------

#[derive(Debug, Serialize)]
pub struct TrackingEnvelope<T> {
    pub tracking: T,
}

/// `POST /trackings` `{tracking: ...}`: the fields we set, a subset of the SDK's
/// `TrackingCreateTrackingRequest` (models/tracking_create_tracking_request.py).
#[derive(Debug, Default, Serialize)]
pub struct CreateTracking {
    pub tracking_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_promised_delivery_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smses: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `PUT /trackings/{id}` `{tracking: ...}`: a subset of the SDK's
/// `TrackingUpdateTrackingByIdRequest` (models/tracking_update_tracking_by_id_request.py).
/// Fields left `None` are left unchanged at AfterShip (seed: update).
#[derive(Debug, Default, Serialize)]
pub struct UpdateTracking {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smses: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_promised_delivery_date: Option<String>,
}

/// `POST /trackings/{id}/mark-as-completed` (SDK `MarkTrackingCompletedByIdRequest`, unwrapped).
#[derive(Debug, Serialize)]
pub struct MarkCompleted<'a> {
    pub reason: &'a str,
}

/// `POST /estimated-delivery-date/predict-batch` (SDK `PredictBatchRequest`, unwrapped).
/// The items are checked by `mapping::validate_estimate_items` before they leave.
#[derive(Debug, Serialize)]
pub struct PredictBatch<'a> {
    pub estimated_delivery_dates: &'a [Value],
}

// ---------- answers ----------

/// SDK `MetaV1`.
#[derive(Debug, Default, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub meta: Meta,
    #[serde(default)]
    pub data: Option<Value>,
}

/// The parts of the SDK's `Tracking` (models/tracking.py) the gateway reads: create,
/// get, update, mark-as-completed and list answer it, and webhooks carry it as `msg`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Tracking {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub tracking_number: Option<String>,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub subtag: Option<String>,
    #[serde(default)]
    pub subtag_message: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub checkpoints: Vec<Checkpoint>,
    /// The carrier's expected delivery: `YYYY-MM-DD`, `YYYY-MM-DDTHH:mm:ss` or with a zone.
    #[serde(default)]
    pub expected_delivery: Option<String>,
    /// SDK `LatestEstimatedDeliveryTracking`.
    #[serde(default)]
    pub latest_estimated_delivery: Option<EddWindow>,
    /// SDK `CustomEstimatedDeliveryDateTracking`.
    #[serde(default)]
    pub custom_estimated_delivery_date: Option<EddWindow>,
    /// SDK `FirstEstimatedDeliveryTracking`.
    #[serde(default)]
    pub first_estimated_delivery: Option<EddWindow>,
    /// SDK `AftershipEstimatedDeliveryDateTracking`.
    #[serde(default)]
    pub aftership_estimated_delivery_date: Option<EddDate>,
}

/// `latest_estimated_delivery`, `first_estimated_delivery`, `custom_estimated_delivery_date`:
/// `{type, source?, datetime, datetime_min, datetime_max}`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct EddWindow {
    #[serde(default)]
    pub datetime: Option<String>,
    #[serde(default)]
    pub datetime_min: Option<String>,
    #[serde(default)]
    pub datetime_max: Option<String>,
}

/// `aftership_estimated_delivery_date`: `{estimated_delivery_date, confidence_code,
/// estimated_delivery_date_min, estimated_delivery_date_max}`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct EddDate {
    #[serde(default)]
    pub estimated_delivery_date: Option<String>,
    #[serde(default)]
    pub estimated_delivery_date_min: Option<String>,
    #[serde(default)]
    pub estimated_delivery_date_max: Option<String>,
}

/// SDK `Checkpoint` (models/checkpoint.py), the fields we map to an event.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Checkpoint {
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub checkpoint_time: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub zip: Option<String>,
    /// ISO 3166-1 alpha-3 (2024-04; `country_region` replaces it in later versions).
    #[serde(default)]
    pub country_iso3: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub subtag: Option<String>,
    #[serde(default)]
    pub subtag_message: Option<String>,
    #[serde(default)]
    pub raw_tag: Option<String>,
}

/// `data` of a single-tracking answer (SDK `DataTrackingResponseV1`).
#[derive(Debug, Deserialize)]
pub struct TrackingData {
    pub tracking: Tracking,
}

/// What retrack and delete answer in 2024-04: a *partial* tracking (SDK
/// `PartialUpdateTracking` / `PartialDeleteTracking`: ids, number, slug, the
/// additional `tracking_*` fields and, for retrack, `active`), never `tag` or
/// checkpoints.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct PartialTracking {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub tracking_number: Option<String>,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
}

/// `data` of retrack and delete.
#[derive(Debug, Deserialize)]
pub struct PartialTrackingData {
    pub tracking: PartialTracking,
}

/// `data` of `GET /trackings` in 2024-04: page-numbered, the paging fields beside the
/// list (SDK `api/tracking.py` `get_trackings` reads `count`, `page`, `limit` and
/// `trackings` from `data`; the cursor `pagination` object is 2024-10).
#[derive(Debug, Deserialize)]
pub struct TrackingList {
    #[serde(default)]
    pub page: Option<u64>,
    #[serde(default)]
    pub limit: Option<u64>,
    /// Trackings matching the query, over all pages.
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub trackings: Vec<Tracking>,
}

/// `data` of `GET /last_checkpoint/{id}` (SDK `GetCheckpointByTrackingIdResponse`).
#[derive(Debug, Deserialize)]
pub struct LastCheckpoint {
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub subtag: Option<String>,
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
}

/// `data` of predict-batch (SDK `PredictBatchResponse`).
#[derive(Debug, Deserialize)]
pub struct PredictAnswer {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub estimated_delivery_dates: Vec<Value>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Field names of the SDK 2.0.2 request models, for checking what we send: a body
/// field outside these lists is one the 2024-04 API does not define.
pub mod sdk_2024_04 {
    /// `TrackingCreateTrackingRequest` (models/tracking_create_tracking_request.py).
    pub const CREATE_FIELDS: [&str; 41] = [
        "tracking_number",
        "slug",
        "title",
        "order_id",
        "order_id_path",
        "custom_fields",
        "language",
        "order_promised_delivery_date",
        "delivery_type",
        "pickup_location",
        "pickup_note",
        "tracking_account_number",
        "tracking_key",
        "tracking_ship_date",
        "emails",
        "smses",
        "customer_name",
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
        "note",
        "slug_group",
        "order_date",
        "order_number",
        "shipment_type",
        "shipment_tags",
        "courier_connection_id",
        "next_couriers",
        "tracking_origin_country",
        "tracking_destination_country",
        "tracking_postal_code",
        "tracking_state",
        "location_id",
        "shipping_method",
    ];
    /// `TrackingUpdateTrackingByIdRequest` (models/tracking_update_tracking_by_id_request.py).
    pub const UPDATE_FIELDS: [&str; 36] = [
        "smses",
        "emails",
        "title",
        "customer_name",
        "order_id",
        "order_id_path",
        "custom_fields",
        "note",
        "language",
        "order_promised_delivery_date",
        "delivery_type",
        "pickup_location",
        "pickup_note",
        "slug",
        "tracking_account_number",
        "tracking_key",
        "tracking_ship_date",
        "order_number",
        "order_date",
        "shipment_type",
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
        "tracking_origin_country",
        "tracking_destination_country",
        "tracking_postal_code",
        "tracking_state",
        "location_id",
        "shipping_method",
    ];
    /// `EstimatedDeliveryDateRequest` (models/estimated_delivery_date_request.py).
    pub const ESTIMATE_FIELDS: [&str; 8] = [
        "slug",
        "service_type_name",
        "origin_address",
        "destination_address",
        "weight",
        "package_count",
        "pickup_time",
        "estimated_pickup",
    ];
    /// `OriginAddressEstimatedDeliveryDateRequest` / `DestinationAddress...` (2025-01 renames
    /// `country` to `country_region`).
    pub const ADDRESS_FIELDS: [&str; 5] = ["country", "state", "city", "postal_code", "raw_location"];
    /// `WeightEstimatedDeliveryDateRequest`.
    pub const WEIGHT_FIELDS: [&str; 2] = ["unit", "value"];
    /// `EstimatedPickupEstimatedDeliveryDateRequest`.
    pub const ESTIMATED_PICKUP_FIELDS: [&str; 4] =
        ["order_time", "order_cutoff_time", "business_days", "order_processing_time"];
    /// `OrderProcessingTimeEstimatedPickupEstimatedDeliveryDateRequest`.
    pub const PROCESSING_TIME_FIELDS: [&str; 2] = ["unit", "value"];
    /// `MarkTrackingCompletedByIdRequest`.
    pub const MARK_COMPLETED_FIELDS: [&str; 1] = ["reason"];
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_and_update_bodies_use_only_2024_04_request_fields() {
        let create = CreateTracking {
            tracking_number: "FX1".into(),
            slug: Some("fedex".into()),
            title: Some("t".into()),
            order_id: Some("o".into()),
            order_promised_delivery_date: Some("2026-11-25".into()),
            customer_name: Some("c".into()),
            emails: Some(vec!["a@x.io".into()]),
            smses: Some(vec!["+1301".into()]),
            language: Some("en".into()),
            note: Some("n".into()),
        };
        let v = serde_json::to_value(TrackingEnvelope { tracking: create }).expect("json");
        let keys: Vec<&String> = v["tracking"].as_object().expect("wrapped").keys().collect();
        assert_eq!(keys.len(), 10);
        assert!(keys.iter().all(|k| sdk_2024_04::CREATE_FIELDS.contains(&k.as_str())), "{keys:?}");
        let update = UpdateTracking {
            title: Some("t".into()),
            order_id: Some("o".into()),
            note: Some("n".into()),
            emails: Some(vec![]),
            smses: Some(vec![]),
            customer_name: Some("c".into()),
            language: Some("en".into()),
            order_promised_delivery_date: Some("2026-11-25".into()),
        };
        let v = serde_json::to_value(TrackingEnvelope { tracking: update }).expect("json");
        let keys: Vec<&String> = v["tracking"].as_object().expect("wrapped").keys().collect();
        assert_eq!(keys.len(), 8);
        assert!(keys.iter().all(|k| sdk_2024_04::UPDATE_FIELDS.contains(&k.as_str())), "{keys:?}");
        let v = serde_json::to_value(MarkCompleted { reason: "LOST" }).expect("json");
        assert_eq!(v, json!({"reason": "LOST"}));
    }

    #[test]
    fn reads_2024_04_answers() {
        let list: TrackingList = serde_json::from_value(json!({
            "page": 1, "limit": 100, "count": 1, "keyword": "", "slug": "fedex", "origin": [], "destination": [],
            "tag": null, "created_at_min": "2026-10-01T00:00:00+00:00", "created_at_max": "2026-11-30T00:00:00+00:00",
            "last_updated_at": null, "return_to_sender": [], "courier_destination_country_iso3": [],
            "trackings": [{"id": "a1", "tracking_number": "FX1", "slug": "fedex", "tag": "InTransit",
                "expected_delivery": "2026-11-27", "checkpoints": null}]
        }))
        .expect("2024-04 list");
        assert_eq!((list.page, list.limit, list.count), (Some(1), Some(100), Some(1)));
        assert_eq!(list.trackings[0].expected_delivery.as_deref(), Some("2026-11-27"));
        let partial: PartialTrackingData = serde_json::from_value(json!({"tracking": {"id": "a1",
            "tracking_number": "FX1", "slug": "fedex", "tracking_account_number": null, "active": true}}))
        .expect("partial");
        assert_eq!(partial.tracking.active, Some(true));
    }
}
