//! Sinks: carriers the gateway hands tracking numbers to (a channel such as ecomdash),
//! in the gateway's vocabulary. Which sinks a shipment reports to is its `channel`
//! ([`super::Channel`], one field per sink carrier); each field's type is the sink
//! carrier's own and says where the number goes ([`SinkTarget`]).

use chrono::{DateTime, Utc};
use utoipa::ToSchema;

/// One tracking number to hand to a sink (ecomdash submitTrackingInfo item).
#[derive(Debug, Clone)]
pub struct SinkItem {
    /// Our key for the item, echoed in its result.
    pub key: String,
    /// The sink's shipment id (ecomdash `ShipmentId`).
    pub sink_shipment_id: String,
    pub carrier_id: Option<String>,
    pub tracking_number: String,
    pub tracking_url: Option<String>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub estimated_delivery: Option<DateTime<Utc>>,
    pub line_item_ids: Option<Vec<String>>,
}

/// The sink's verdict on one item.
#[derive(Debug, Clone)]
pub struct SinkResult {
    pub key: String,
    pub ok: bool,
    /// Worth retrying (the sink's message says so).
    pub transient: bool,
    pub message: Option<String>,
}

/// One sink carrier's entry in a shipment's `channel`: where the sink learns the
/// shipment's tracking number.
pub trait SinkTarget: Send + Sync {
    /// The tenant's connection to the sink.
    fn connection_id(&self) -> &str;
    /// The item handed to the sink for `tracking_number` (`key` comes back in its result).
    fn item(
        &self,
        key: String,
        tracking_number: String,
        shipped_at: Option<DateTime<Utc>>,
        estimated_delivery: Option<DateTime<Utc>>,
    ) -> SinkItem;
}

/// One sink's handling of the shipment's tracking number.
#[derive(ToSchema)]
#[allow(dead_code)] // the schema of a JSON value the store keeps; never built in Rust
pub struct SinkStatus {
    /// `pending`, `submitted` or `failed`.
    #[schema(example = "submitted")]
    state: String,
    /// The tracking number submitted.
    tracking_number: Option<String>,
    attempts: i32,
    last_error: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    submitted_at: Option<DateTime<Utc>>,
}
