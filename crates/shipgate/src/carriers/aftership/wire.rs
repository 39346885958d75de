//! AfterShip Tracking API 2024-04 wire types (seed 002, CARRIERS.md "aftership").
//!
//! Envelope: `{meta:{code, message?, type?}, data:{...}}`. Create and update bodies are
//! wrapped in `{"tracking":{...}}`. Field names follow AfterShip's public generated SDKs
//! for 2024-04 (tracking-sdk-go `model/checkpoint.go`, `model/get_trackings_query.go`,
//! `model/estimated_delivery_date_request_origin_address.go`). Readers are lenient:
//! every field optional, unknown fields ignored, `null` accepted wherever a value is.

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------- requests ----------

#[derive(Debug, Serialize)]
pub struct TrackingEnvelope<T> {
    pub tracking: T,
}

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
}

/// Update: fields left `None` are left unchanged at AfterShip.
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

#[derive(Debug, Serialize)]
pub struct MarkCompleted<'a> {
    pub reason: &'a str,
}

#[derive(Debug, Serialize)]
pub struct PredictBatch<'a> {
    pub estimated_delivery_dates: &'a [Value],
}

// ---------- answers ----------

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

#[derive(Debug, Default, Clone, Deserialize)]
pub struct Tracking {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub tracking_number: Option<String>,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub subtag: Option<String>,
    #[serde(default)]
    pub subtag_message: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub checkpoints: Vec<Checkpoint>,
    #[serde(default)]
    pub expected_delivery: Option<String>,
    #[serde(default)]
    pub latest_estimated_delivery: Option<EddWindow>,
    #[serde(default)]
    pub custom_estimated_delivery_date: Option<EddWindow>,
    #[serde(default)]
    pub first_estimated_delivery: Option<EddWindow>,
    #[serde(default)]
    pub aftership_estimated_delivery_date: Option<EddDate>,
    #[serde(default)]
    pub courier_estimated_delivery_date: Option<EddDate>,
}

/// `latest_estimated_delivery`, `first_estimated_delivery`, `custom_estimated_delivery_date`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct EddWindow {
    #[serde(default)]
    pub datetime: Option<String>,
    #[serde(default)]
    pub datetime_min: Option<String>,
    #[serde(default)]
    pub datetime_max: Option<String>,
}

/// `aftership_estimated_delivery_date`, `courier_estimated_delivery_date`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct EddDate {
    #[serde(default)]
    pub estimated_delivery_date: Option<String>,
    #[serde(default)]
    pub estimated_delivery_date_min: Option<String>,
    #[serde(default)]
    pub estimated_delivery_date_max: Option<String>,
}

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
    /// 2024-04 SDKs name it `country_iso3`; later versions `country_region` (separate
    /// fields, not serde aliases, so an answer carrying both still reads).
    #[serde(default)]
    pub country_region: Option<String>,
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

/// `data` of a single-tracking answer.
#[derive(Debug, Deserialize)]
pub struct TrackingData {
    pub tracking: Tracking,
}

/// `data` of `GET /trackings`.
#[derive(Debug, Deserialize)]
pub struct TrackingList {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub trackings: Vec<Tracking>,
}

/// `data` of `GET /last_checkpoint/{id}`.
#[derive(Debug, Deserialize)]
pub struct LastCheckpoint {
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub subtag: Option<String>,
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
}

/// `data` of predict-batch.
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
