//! Webhook endpoints and their deliveries (docs/product.md "Webhook endpoint"; DTO
//! families after svix: `In` / `Patch` / `Out`). The secrets, the SSRF guard and the
//! re-sends are `service::webhooks`'; here the requests and the pages.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Json, PathId, Query};
use super::{decode_cursor, encode_cursor, page};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::service::views::{WebhookDelivery, WebhookEndpoint};
use crate::service::webhooks::{self, EndpointChanges, EndpointDraft};
use crate::service::{Caller, PageRequest};

page!(WebhookEndpointPage, WebhookEndpoint, "webhook endpoints, newest first");
page!(WebhookDeliveryPage, WebhookDelivery, "webhook deliveries, newest first, each with its attempts");

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://erp.example.com/hooks/shipgate", "description": "ERP",
    "event_types": ["shipment.status_changed"]}))]
pub struct WebhookEndpointIn {
    /// http(s) URL that receives signed POSTs; private and loopback addresses are
    /// refused. At most 2048 characters.
    #[serde(deserialize_with = "crate::domain::limits::text::<2048, _>")]
    #[schema(max_length = 2048)]
    pub url: String,
    /// At most 500 characters.
    #[serde(default, deserialize_with = "crate::domain::limits::opt_text::<500, _>")]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Event types to send (empty or absent: all); see `GET /v1/events` `type`.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointPatch {
    /// At most 2048 characters.
    #[serde(default, deserialize_with = "crate::domain::limits::opt_text::<2048, _>")]
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// At most 500 characters.
    #[serde(default, deserialize_with = "crate::domain::limits::opt_text::<500, _>")]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Replaces the filter (empty: all).
    pub event_types: Option<Vec<String>>,
    /// Enabling clears `disabled_reason`; disabling cancels pending deliveries.
    pub enabled: Option<bool>,
    /// Generate a new signing secret; it is returned once in this response. The old one
    /// keeps signing beside it for `webhook_secret_overlap_hours` (default 24): each
    /// delivery carries both signatures until `previous_secret_expires_at`.
    pub rotate_secret: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1-100 (default 20).
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// `pending`, `succeeded`, `failed` or `cancelled`.
    pub status: Option<String>,
    /// Page size, 1-100 (default 20).
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    /// Replay failed and cancelled deliveries created at or after this time.
    #[schema(value_type = String, format = DateTime)]
    pub since: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayOut {
    /// How many deliveries were queued again.
    pub replayed: u64,
}

fn page_limit(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::query_field("limit", "must be between 1 and 100"));
    }
    Ok(limit)
}

/// Cursor: the last row's queue sequence number, as digits.
fn decode_seq(c: &str) -> ApiResult<i64> {
    decode_cursor(c)?.parse().map_err(|_| ApiError::query_field("cursor", "is not a cursor this API issued"))
}

/// Create a webhook endpoint
///
/// Events are POSTed to the URL signed per Standard Webhooks. The response carries the
/// signing secret (`whsec_...`), shown only this once.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", operation_id = "create_webhook_endpoint",
    security(("api_key" = [])), request_body = WebhookEndpointIn,
    responses(
        (status = 201, body = WebhookEndpoint, description = "Created, with its signing secret; `Location` names it",
            headers(("Location" = String, description = "`/v1/webhook-endpoints/{id}`")))))]
async fn create_webhook_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<WebhookEndpointIn>,
) -> ApiResult<impl IntoResponse> {
    let draft = EndpointDraft {
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        enabled: body.enabled,
    };
    let created = webhooks::create_endpoint(&state, &caller, draft).await?;
    let location = format!("/v1/webhook-endpoints/{}", created.id);
    Ok((StatusCode::CREATED, [("location", location)], axum::Json(created)))
}

/// List webhook endpoints
///
/// Newest first, one page at a time; secrets are never listed.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks", operation_id = "list_webhook_endpoints",
    security(("api_key" = [])), params(ListParams),
    responses((status = 200, body = WebhookEndpointPage, description = "One page of endpoints")))]
async fn list_webhook_endpoints(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<WebhookEndpointPage>> {
    let limit = page_limit(q.limit)?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = webhooks::list_endpoints(&state, &caller, &PageRequest { limit, after }).await?;
    Ok(axum::Json(WebhookEndpointPage { data: page.items, next_cursor: page.next.as_deref().map(encode_cursor) }))
}

/// Read a webhook endpoint
///
/// The endpoint without its secret.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", operation_id = "get_webhook_endpoint",
    security(("api_key" = [])), params(("id" = String, Path, description = "Webhook endpoint id")),
    responses((status = 200, body = WebhookEndpoint, description = "The endpoint")))]
async fn get_webhook_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<axum::Json<WebhookEndpoint>> {
    Ok(axum::Json(webhooks::get_endpoint(&state, &caller, &id).await?))
}

/// Update a webhook endpoint
///
/// Changes the URL, description, event filter or `enabled`; `rotate_secret: true`
/// returns a new secret once, and the old one keeps signing beside it until
/// `previous_secret_expires_at` (`webhook_secret_overlap_hours`).
#[utoipa::path(patch, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", operation_id = "update_webhook_endpoint",
    security(("api_key" = [])), params(("id" = String, Path, description = "Webhook endpoint id")),
    request_body = WebhookEndpointPatch,
    responses((status = 200, body = WebhookEndpoint, description = "The updated endpoint (with `secret` after a rotation)")))]
async fn update_webhook_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(patch): Json<WebhookEndpointPatch>,
) -> ApiResult<axum::Json<WebhookEndpoint>> {
    let changes = EndpointChanges {
        url: patch.url,
        description: patch.description,
        event_types: patch.event_types,
        enabled: patch.enabled,
        rotate_secret: patch.rotate_secret == Some(true),
    };
    Ok(axum::Json(webhooks::update_endpoint(&state, &caller, &id, changes).await?))
}

/// Delete a webhook endpoint
///
/// Deletes the endpoint and its delivery log.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", operation_id = "delete_webhook_endpoint",
    security(("api_key" = [])), params(("id" = String, Path, description = "Webhook endpoint id")),
    responses((status = 204, description = "Deleted")))]
async fn delete_webhook_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    webhooks::delete_endpoint(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List an endpoint's deliveries
///
/// Newest first, one page at a time, each delivery with every attempt.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    security(("api_key" = [])), params(("id" = String, Path, description = "Webhook endpoint id"), DeliveryParams),
    responses((status = 200, body = WebhookDeliveryPage, description = "One page of deliveries")))]
async fn list_webhook_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Query(q): Query<DeliveryParams>,
) -> ApiResult<axum::Json<WebhookDeliveryPage>> {
    let limit = page_limit(q.limit)?;
    if let Some(s) = &q.status
        && !["pending", "succeeded", "failed", "cancelled"].contains(&s.as_str())
    {
        return Err(ApiError::query_field("status", "must be one of pending, succeeded, failed, cancelled"));
    }
    let after = q.cursor.as_deref().map(decode_seq).transpose()?;
    let page =
        webhooks::list_deliveries(&state, &caller, &id, q.status.as_deref(), &PageRequest { limit, after }).await?;
    let next_cursor = page.next.map(|seq| encode_cursor(&seq.to_string()));
    Ok(axum::Json(WebhookDeliveryPage { data: page.items, next_cursor }))
}

/// Retry a webhook delivery
///
/// Sends one delivery again now: one more attempt, whatever its state.
#[utoipa::path(post, path = "/v1/webhook-deliveries/{id}/retry", tag = "webhooks", operation_id = "retry_webhook_delivery",
    security(("api_key" = [])), params(("id" = String, Path, description = "Webhook delivery id")),
    responses((status = 202, body = WebhookDelivery, description = "Queued for an attempt now"),
        (status = 409, description = "The endpoint is disabled (`endpoint_disabled`), or the Idempotency-Key is in flight")))]
async fn retry_webhook_delivery(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::ACCEPTED, axum::Json(webhooks::retry_delivery(&state, &caller, &id).await?)))
}

/// Replay an endpoint's failed deliveries
///
/// Queues every failed or cancelled delivery of this endpoint created at or after
/// `since` for one more attempt now.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/replay", tag = "webhooks", operation_id = "replay_webhook_endpoint",
    security(("api_key" = [])), params(("id" = String, Path, description = "Webhook endpoint id")),
    request_body = ReplayIn,
    responses((status = 202, body = ReplayOut, description = "Queued"),
        (status = 409, description = "The endpoint is disabled (`endpoint_disabled`), or the Idempotency-Key is in flight")))]
async fn replay_webhook_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(body): Json<ReplayIn>,
) -> ApiResult<impl IntoResponse> {
    let replayed = webhooks::replay(&state, &caller, &id, body.since).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(ReplayOut { replayed })))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook_endpoint, list_webhook_endpoints))
        .routes(routes!(get_webhook_endpoint, update_webhook_endpoint, delete_webhook_endpoint))
        .routes(routes!(list_webhook_deliveries))
        .routes(routes!(replay_webhook_endpoint))
        .routes(routes!(retry_webhook_delivery))
}
