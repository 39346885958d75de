//! Quotes and delivery-date predictions as the API shows them (schemas `QuoteOut`,
//! `EstimateOut`, `EstimateResult`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::Quote;

// No doc comment: it would become the schema's description.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = QuoteOut)]
pub struct QuoteAnswer {
    pub connection_id: String,
    pub carrier: String,
    pub quote: Quote,
}

// No doc comment: it would become the schema's description.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EstimateOut)]
pub struct Estimate {
    pub connection_id: String,
    pub carrier: String,
    /// The carrier's predictions, one per item, in order.
    pub data: Vec<EstimateResult>,
}

/// One prediction as AfterShip 2024-04 answers it (`EstimatedDeliveryDateResponse`): the
/// request echoed, and the dates (`YYYY-MM-DD`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct EstimateResult {
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub service_type_name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub origin_address: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub destination_address: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub weight: Option<Value>,
    #[serde(default)]
    pub package_count: Option<i64>,
    #[serde(default)]
    pub pickup_time: Option<String>,
    /// As sent, plus the `pickup_time` AfterShip derived from it.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub estimated_pickup: Option<Value>,
    #[serde(default)]
    #[schema(example = "2026-11-26")]
    pub estimated_delivery_date: Option<String>,
    /// AfterShip's confidence in the prediction.
    #[serde(default)]
    pub confidence_code: Option<f64>,
    #[serde(default)]
    pub estimated_delivery_date_min: Option<String>,
    #[serde(default)]
    pub estimated_delivery_date_max: Option<String>,
}
