//! `POST /v1/estimated-delivery-dates`: AfterShip's delivery-date predictions
//! (predict-batch), 1-5 items validated here before any call.

use axum::Json as AxumJson;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AuthContext;
use super::connections::{carrier_error, load as load_connection, require_capability};
use super::extract::Json;
use crate::app::AppState;
use crate::carriers::{self, CallCx, Capability};
use crate::domain::FieldError;
use crate::error::{ApiError, ApiResult};
use crate::service::shipments::save_exchanges;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "connection_id": "con_01936f0c7a2b7c3d9e8f001122334455",
    "items": [{"slug": "fedex", "service_type_name": "FEDEX HOME DELIVERY",
               "origin_address": {"country_region": "USA", "state": "WA", "postal_code": "98108"},
               "destination_address": {"country_region": "USA", "state": "CA", "postal_code": "92019"},
               "pickup_time": "2026-11-23 15:00:00"}]
}))]
pub struct EstimateIn {
    /// An aftership connection; at most 64 characters.
    #[serde(deserialize_with = "crate::domain::limits::text::<64, _>")]
    #[schema(max_length = 64)]
    pub connection_id: String,
    /// 1-5 items in AfterShip's predict-batch shape: `slug`, `service_type_name?`,
    /// `origin_address`, `destination_address`, `weight?`, `package_count?`,
    /// `pickup_time?` / `estimated_pickup?`.
    #[schema(value_type = Vec<Object>, min_items = 1, max_items = 5)]
    pub items: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EstimateOut {
    pub connection_id: String,
    pub carrier: String,
    /// The carrier's predictions, one per item, in order.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
}

/// Predict delivery dates
///
/// AfterShip predict-batch: 1-5 items, validated before the call.
#[utoipa::path(post, path = "/v1/estimated-delivery-dates", tag = "quotes", operation_id = "estimate_delivery_dates",
    security(("api_key" = [])), request_body = EstimateIn, extensions(("x-carrier-call" = json!(true))),
    responses((status = 200, body = EstimateOut, description = "One prediction per item, in order")))]
async fn estimate(
    State(state): State<AppState>,
    auth: AuthContext,
    Json(body): Json<EstimateIn>,
) -> ApiResult<AxumJson<EstimateOut>> {
    let connection = load_connection(&state, &auth.tenant_id, &body.connection_id)
        .await
        .map_err(|_| ApiError::field("connection_id", "no such connection"))?;
    require_capability(&connection.carrier, Capability::EstimatedDeliveryDates)?;
    let errors: Vec<FieldError> = carriers::aftership::mapping::validate_estimate_items(&body.items);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let cx = CallCx::new();
    let result = match state.client(&connection) {
        Ok(client) => client.estimate_delivery(&cx, &body.items).await,
        Err(e) => Err(e),
    };
    let mut conn = state.db.acquire().await?;
    save_exchanges(&mut conn, &auth.tenant_id, None, cx.take()).await?;
    let data = result.map_err(|e| carrier_error(&e, None))?;
    Ok(AxumJson(EstimateOut { connection_id: connection.id, carrier: connection.carrier, data }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(estimate))
}
