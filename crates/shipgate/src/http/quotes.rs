//! `POST /v1/quotes`: price and time from the carrier; nothing is saved there.

use axum::Json as AxumJson;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Json;
use super::shipments::ShipmentIn;
use crate::app::AppState;
use crate::error::ApiResult;
use crate::service::views::QuoteAnswer;
use crate::service::{Caller, quotes};

/// Quote a shipment
///
/// Same body as booking; the carrier prices it without creating anything.
#[utoipa::path(post, path = "/v1/quotes", tag = "quotes", operation_id = "create_quote",
    security(("api_key" = [])), request_body = ShipmentIn, extensions(("x-carrier-call" = json!(true))),
    responses((status = 200, body = QuoteAnswer, description = "The carrier's quote")))]
async fn create_quote(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<ShipmentIn>,
) -> ApiResult<AxumJson<QuoteAnswer>> {
    Ok(AxumJson(quotes::quote(&state, &caller, &body.fields.connection_id, &body.plan).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_quote))
}
