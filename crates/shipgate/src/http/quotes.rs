//! `POST /v1/quotes`: price and time from the carrier; nothing is saved there.

use axum::Json as AxumJson;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AuthContext;
use super::connections::{carrier_error, load as load_connection, require_capability};
use super::extract::Json;
use super::shipments::ShipmentIn;
use crate::app::AppState;
use crate::carriers::{CallCx, Capability, Quote};
use crate::domain::{ShipmentPlan, check_plan};
use crate::error::{ApiError, ApiResult};
use crate::service::shipments::save_exchanges;

#[derive(Debug, Serialize, ToSchema)]
pub struct QuoteOut {
    pub connection_id: String,
    pub carrier: String,
    pub quote: Quote,
}

/// Quote a shipment
///
/// Same body as booking; the carrier prices it without creating anything.
#[utoipa::path(post, path = "/v1/quotes", tag = "quotes", operation_id = "create_quote",
    security(("api_key" = [])), request_body = ShipmentIn, extensions(("x-carrier-call" = json!(true))),
    responses((status = 200, body = QuoteOut, description = "The carrier's quote")))]
async fn create_quote(
    State(state): State<AppState>,
    auth: AuthContext,
    Json(body): Json<ShipmentIn>,
) -> ApiResult<AxumJson<QuoteOut>> {
    let connection = load_connection(&state, &auth.tenant_id, &body.connection_id)
        .await
        .map_err(|_| ApiError::field("connection_id", "no such connection"))?;
    require_capability(&connection.carrier, Capability::Quote)?;
    let plan = ShipmentPlan {
        reference: body.reference,
        service: body.service,
        stops: body.stops,
        parcels: body.parcels,
        declared_value: body.declared_value,
        cod_amount: body.cod_amount,
        notes: body.notes,
    };
    let errors = check_plan(&plan);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let cx = CallCx::new();
    let result = match state.client(&connection) {
        Ok(client) => client.quote(&cx, &plan).await,
        Err(e) => Err(e),
    };
    let mut conn = state.db.acquire().await?;
    save_exchanges(&mut conn, &auth.tenant_id, None, cx.take()).await?;
    let quote = result.map_err(|e| carrier_error(&e, None))?;
    Ok(AxumJson(QuoteOut { connection_id: connection.id, carrier: connection.carrier, quote }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_quote))
}
