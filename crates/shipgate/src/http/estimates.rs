//! `POST /v1/estimated-delivery-dates`: AfterShip's delivery-date predictions
//! (predict-batch, API 2024-04): 1-5 items, checked against the carrier's own contract
//! before any call (`service::quotes::estimate`).
//!
//! The item and answer shapes are AfterShip 2024-04's own (aftership-tracking-sdk 2.0.2
//! `EstimatedDeliveryDateRequest` / `EstimatedDeliveryDateResponse`), so an integrator
//! can pass what AfterShip documents: addresses carry `country` (ISO 3166-1 alpha-3);
//! 2025-01's `country_region` is refused with a hint.

use axum::Json as AxumJson;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Json;
use crate::app::AppState;
use crate::error::ApiResult;
use crate::service::views::Estimate;
use crate::service::{Caller, quotes};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "connection_id": "con_01936f0c7a2b7c3d9e8f001122334455",
    "items": [{"slug": "fedex", "service_type_name": "FEDEX HOME DELIVERY",
               "origin_address": {"country": "USA", "state": "WA", "postal_code": "98108"},
               "destination_address": {"country": "USA", "state": "CA", "postal_code": "92019"},
               "pickup_time": "2026-11-23 15:00:00"}]
}))]
pub struct EstimateIn {
    /// An aftership connection; at most 64 characters.
    #[serde(deserialize_with = "crate::domain::limits::text::<64, _>")]
    #[schema(max_length = 64)]
    pub connection_id: String,
    /// 1-5 items in AfterShip 2024-04's predict-batch shape.
    #[schema(min_items = 1, max_items = 5)]
    pub items: Vec<EstimateItem>,
}

/// One prediction request (AfterShip 2024-04 `EstimatedDeliveryDate`). `slug`,
/// `origin_address`, `destination_address` and either `pickup_time` or
/// `estimated_pickup` are required.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EstimateItem {
    /// AfterShip courier slug, e.g. `fedex`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_text::<100, _>"
    )]
    #[schema(example = "fedex")]
    #[schema(max_length = 100)]
    pub slug: Option<String>,
    /// AfterShip's code of the carrier's service, e.g. `FEDEX HOME DELIVERY`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_text::<200, _>"
    )]
    #[schema(max_length = 200)]
    pub service_type_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_address: Option<EstimateAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_address: Option<EstimateAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<EstimateWeight>,
    /// Number of packages, 1 to 1000.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_count::<1, 1000, _>"
    )]
    #[schema(minimum = 1, maximum = 1000)]
    pub package_count: Option<u32>,
    /// Local pickup time at the origin, `YYYY-MM-DD HH:mm:ss`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_text::<19, _>"
    )]
    #[schema(example = "2026-11-23 15:00:00")]
    #[schema(max_length = 19)]
    pub pickup_time: Option<String>,
    /// When the pickup time is not known: the order time and the merchant's processing rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_pickup: Option<EstimatedPickup>,
}

/// An origin or destination (AfterShip 2024-04 `OriginAddressEstimatedDeliveryDateRequest`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EstimateAddress {
    /// ISO 3166-1 alpha-3, required (e.g. `USA`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_text::<3, _>"
    )]
    #[schema(example = "USA")]
    #[schema(max_length = 3)]
    pub country: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_text::<100, _>"
    )]
    #[schema(max_length = 100)]
    pub state: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_text::<100, _>"
    )]
    #[schema(max_length = 100)]
    pub city: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_text::<20, _>"
    )]
    #[schema(max_length = 20)]
    pub postal_code: Option<String>,
    /// The whole address as one line.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_text::<500, _>"
    )]
    #[schema(max_length = 500)]
    pub raw_location: Option<String>,
    /// Not a 2024-04 field: read only to refuse it with a hint (2025-01 renamed
    /// `country` to `country_region`), never forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub country_region: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EstimateWeight {
    /// e.g. `kg`, `lb`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_text::<10, _>"
    )]
    #[schema(example = "kg")]
    #[schema(max_length = 10)]
    pub unit: Option<String>,
    /// Greater than 0, at most 100000.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_positive::<100000, _>"
    )]
    #[schema(example = 1.5, exclusive_minimum = 0, maximum = 100000)]
    pub value: Option<f64>,
}

/// AfterShip 2024-04 `EstimatedPickupEstimatedDeliveryDateRequest`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EstimatedPickup {
    /// Local order time at the origin, `YYYY-MM-DD HH:mm:ss` (required).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_text::<19, _>"
    )]
    #[schema(example = "2026-11-23 09:30:00")]
    #[schema(max_length = 19)]
    pub order_time: Option<String>,
    /// Cut-off time, `HH:mm:ss` (AfterShip's default 18:00:00).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_text::<8, _>"
    )]
    #[schema(example = "18:00:00")]
    #[schema(max_length = 8)]
    pub order_cutoff_time: Option<String>,
    /// Operating weekdays, 1 (Monday) to 7 (Sunday).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_list::<7, _, _>"
    )]
    #[schema(example = json!([1, 2, 3, 4, 5]), max_items = 7)]
    pub business_days: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_processing_time: Option<OrderProcessingTime>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderProcessingTime {
    /// `day`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_text::<10, _>"
    )]
    #[schema(example = "day")]
    #[schema(max_length = 10)]
    pub unit: Option<String>,
    /// Whole days, 0 to 365.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_count::<0, 365, _>"
    )]
    #[schema(example = 0, minimum = 0, maximum = 365)]
    pub value: Option<u32>,
}

/// Predict delivery dates
///
/// AfterShip predict-batch (API 2024-04): 1-5 items, validated before the call; an
/// invalid item names its field (e.g. `items[0].origin_address.country`, which is
/// ISO 3166-1 alpha-3).
#[utoipa::path(post, path = "/v1/estimated-delivery-dates", tag = "quotes", operation_id = "estimate_delivery_dates",
    security(("api_key" = [])), request_body = EstimateIn, extensions(("x-carrier-call" = json!(true))),
    responses((status = 200, body = Estimate, description = "One prediction per item, in order")))]
async fn estimate(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<EstimateIn>,
) -> ApiResult<AxumJson<Estimate>> {
    let items: Vec<Value> = body.items.iter().map(|i| serde_json::to_value(i).unwrap_or(Value::Null)).collect();
    Ok(AxumJson(quotes::estimate(&state, &caller, &body.connection_id, &items).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(estimate))
}
