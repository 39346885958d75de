//! `GET /v1/carriers`: the carriers table of docs/product.md as data.

use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::service;
use crate::service::views::CarrierInfo;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CarrierList {
    pub data: Vec<CarrierInfo>,
}

/// List carriers
///
/// Every carrier, its capabilities and the credential and setting fields a connection
/// to it takes.
#[utoipa::path(get, path = "/v1/carriers", tag = "carriers", operation_id = "list_carriers",
    security(("api_key" = [])),
    responses((status = 200, body = CarrierList, description = "Every carrier")))]
async fn list_carriers() -> Json<CarrierList> {
    Json(CarrierList { data: service::carriers::catalog() })
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_carriers))
}
