//! Webhook endpoints and their deliveries (PRODUCT.md "Webhook endpoint"; DTO
//! families after svix: `In` / `Patch` / `Out`).
//!
//! The signing secret (`whsec_…`) is generated here, shown once in the create (or
//! rotate) response, and stored sealed with `crate::crypto` (AAD binds tenant +
//! endpoint). A rotation keeps the old secret, sealed the same way, signing beside the
//! new one for `webhook_secret_overlap_hours`. URLs pass the SSRF guard at creation; the delivery client checks again
//! at connect time.
//!
//! Re-sending: `POST /v1/webhook-deliveries/{id}/retry` queues one delivery now;
//! `POST /v1/webhook-endpoints/{id}/replay {since}` queues every `failed` or
//! `cancelled` delivery of the endpoint created at or after `since`. Each allows one
//! more attempt (no new retry schedule), so a replay of a still-broken endpoint ends
//! quickly and can be run again.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AuthContext;
use super::extract::{Json, PathId, Query};
use super::{decode_cursor, encode_cursor, page};
use crate::app::AppState;
use crate::crypto::Purpose;
use crate::domain::FieldError;
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::store;
use crate::store::events::EVENT_TYPES;
use crate::store::webhooks::{AttemptRow, DeliveryRow, EndpointRow, EndpointUpdate, NewEndpoint};
use crate::webhooks::ssrf::{Guard, literal_ip};

page!(WebhookEndpointPage, WebhookEndpointOut, "webhook endpoints, newest first");
page!(WebhookDeliveryPage, WebhookDeliveryOut, "webhook deliveries, newest first, each with its attempts");

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

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointOut {
    #[schema(example = "whe_01936f0c7a2b7c3d9e8f001122334455")]
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why it is disabled (e.g. it answered 410 Gone).
    pub disabled_reason: Option<String>,
    /// The signing secret: only in the create response and after `rotate_secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=")]
    pub secret: Option<String>,
    /// After a rotation: until when the previous secret also signs deliveries. Absent
    /// when only the current secret signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpointOut {
    fn new(r: EndpointRow, secret: Option<String>) -> Self {
        WebhookEndpointOut {
            id: r.id,
            url: r.url,
            description: r.description,
            event_types: r.event_types,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            secret,
            previous_secret_expires_at: r.previous_secret_expires_at.filter(|t| *t > Utc::now()),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttemptOut {
    /// 1, 2, 3 ...
    pub attempt: i32,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    /// The subscriber's HTTP status, when it answered.
    pub response_status: Option<i32>,
    /// Null on success; `timeout`, `connect`, `ssrf_blocked`, `http_<status>`, `request`.
    pub error_code: Option<String>,
    /// At most 1 KiB of the response body.
    pub response_excerpt: Option<String>,
}

impl From<AttemptRow> for WebhookAttemptOut {
    fn from(a: AttemptRow) -> Self {
        WebhookAttemptOut {
            attempt: a.attempt,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            response_status: a.response_status,
            error_code: a.error_code,
            response_excerpt: a.response_excerpt,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryOut {
    #[schema(example = "whd_0193a1b2c3d4e5f6a7b8c9d0e1f2a3b4")]
    pub id: String,
    pub endpoint_id: String,
    /// The event (and `webhook-id` header) this delivery carries.
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `succeeded`, `failed` (after the last attempt, or 410) or `cancelled`
    /// (the endpoint was disabled).
    pub status: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<WebhookAttemptOut>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub updated_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub delivered_at: Option<DateTime<Utc>>,
}

fn delivery_out(d: DeliveryRow, attempts: Vec<AttemptRow>) -> WebhookDeliveryOut {
    WebhookDeliveryOut {
        id: d.id,
        endpoint_id: d.endpoint_id,
        event_id: d.event_id,
        event_type: d.event_type,
        status: d.state,
        next_attempt_at: d.next_attempt_at,
        last_status: d.last_status,
        last_error: d.last_error,
        attempts: attempts.into_iter().map(Into::into).collect(),
        created_at: d.created_at,
        updated_at: d.updated_at,
        delivered_at: d.delivered_at,
    }
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

fn check_event_types(types: &[String]) -> Option<FieldError> {
    types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())).map(|bad| {
        FieldError::new("event_types", format!("{bad:?} is not an event type; one of {}", EVENT_TYPES.join(", ")))
    })
}

fn check_description(d: Option<&str>) -> Option<FieldError> {
    d.filter(|d| d.len() > 500).map(|_| FieldError::new("description", "must be at most 500 characters"))
}

/// Refuse URLs that are not http(s) or point at a private, loopback, link-local or
/// metadata address — as a literal or through any address the name resolves to now
/// (QUALITY.md security). A name that does not resolve is accepted: the connect-time
/// guard decides when it does.
async fn check_url(guard: &Guard, raw: &str) -> Result<String, FieldError> {
    let bad = |m: &str| FieldError::new("url", m);
    if raw.len() > 2048 {
        return Err(bad("must be at most 2048 characters"));
    }
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain credentials; verify the signature instead"));
    }
    let Some(host) = url.host_str() else { return Err(bad("must name a host")) };
    let refused =
        |ip: IpAddr| bad(&format!("points to {ip}, a private or reserved address that webhooks may not reach"));
    if let Some(ip) = literal_ip(&url) {
        return guard.check(ip).map(|()| url.to_string()).map_err(|_| refused(ip));
    }
    let port = url.port_or_known_default().unwrap_or(443);
    if let Ok(Ok(addrs)) = tokio::time::timeout(Duration::from_secs(3), tokio::net::lookup_host((host, port))).await {
        for a in addrs {
            if !guard.permits(a.ip()) {
                return Err(refused(a.ip()));
            }
        }
    }
    Ok(url.to_string())
}

fn dedup(types: Vec<String>) -> Vec<String> {
    types.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
}

fn guard(state: &AppState) -> Guard {
    Guard::new(state.config.webhooks.allow_networks.clone())
}

/// Create a webhook endpoint
///
/// Events are POSTed to the URL signed per Standard Webhooks. The response carries the
/// signing secret (`whsec_...`), shown only this once.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", operation_id = "create_webhook_endpoint",
    security(("api_key" = [])), request_body = WebhookEndpointIn,
    responses(
        (status = 201, body = WebhookEndpointOut, description = "Created, with its signing secret; `Location` names it",
            headers(("Location" = String, description = "`/v1/webhook-endpoints/{id}`")))))]
async fn create_webhook_endpoint(
    State(state): State<AppState>,
    auth: AuthContext,
    Json(body): Json<WebhookEndpointIn>,
) -> ApiResult<impl IntoResponse> {
    let mut errors: Vec<FieldError> = Vec::new();
    errors.extend(check_event_types(&body.event_types));
    errors.extend(check_description(body.description.as_deref()));
    let url = match check_url(&guard(&state), &body.url).await {
        Ok(u) => Some(u),
        Err(e) => {
            errors.insert(0, e);
            None
        }
    };
    let Some(url) = url.filter(|_| errors.is_empty()) else { return Err(ApiError::validation(errors)) };
    let id = ids::new_id("whe");
    let (raw, text) = crate::webhooks::new_secret();
    let sealed = state.crypto.encrypt(&auth.tenant_id, &id, Purpose::WebhookSecret, &raw);
    let event_types = dedup(body.event_types);
    let mut conn = state.db.acquire().await?;
    let row = store::webhooks::insert_endpoint(
        &mut conn,
        &NewEndpoint {
            tenant_id: &auth.tenant_id,
            id: &id,
            url: &url,
            description: body.description.as_deref(),
            event_types: &event_types,
            secret_enc: &sealed,
            enabled: body.enabled.unwrap_or(true),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        [("location", format!("/v1/webhook-endpoints/{id}"))],
        axum::Json(WebhookEndpointOut::new(row, Some(text))),
    ))
}

/// List webhook endpoints
///
/// Newest first, one page at a time; secrets are never listed.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks", operation_id = "list_webhook_endpoints",
    security(("api_key" = [])), params(ListParams),
    responses((status = 200, body = WebhookEndpointPage, description = "One page of endpoints")))]
async fn list_webhook_endpoints(
    State(state): State<AppState>,
    auth: AuthContext,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<WebhookEndpointPage>> {
    let limit = page_limit(q.limit)?;
    let before = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut conn = state.db.acquire().await?;
    let mut rows = store::webhooks::list_endpoints(&mut conn, &auth.tenant_id, before.as_deref(), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| encode_cursor(&r.id)) } else { None };
    Ok(axum::Json(WebhookEndpointPage {
        data: rows.into_iter().map(|r| WebhookEndpointOut::new(r, None)).collect(),
        next_cursor,
    }))
}

async fn load(state: &AppState, tenant: &str, id: &str) -> ApiResult<EndpointRow> {
    if !ids::is_id("whe", id) {
        return Err(ApiError::NotFound("webhook endpoint"));
    }
    let mut conn = state.db.acquire().await?;
    store::webhooks::get_endpoint(&mut conn, tenant, id).await?.ok_or(ApiError::NotFound("webhook endpoint"))
}

/// Read a webhook endpoint
///
/// The endpoint without its secret.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", operation_id = "get_webhook_endpoint",
    security(("api_key" = [])), params(("id" = String, Path, description = "Webhook endpoint id")),
    responses((status = 200, body = WebhookEndpointOut, description = "The endpoint")))]
async fn get_webhook_endpoint(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<axum::Json<WebhookEndpointOut>> {
    Ok(axum::Json(WebhookEndpointOut::new(load(&state, &auth.tenant_id, &id).await?, None)))
}

/// Update a webhook endpoint
///
/// Changes the URL, description, event filter or `enabled`; `rotate_secret: true`
/// returns a new secret once, and the old one keeps signing beside it until
/// `previous_secret_expires_at` (`webhook_secret_overlap_hours`).
#[utoipa::path(patch, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", operation_id = "update_webhook_endpoint",
    security(("api_key" = [])), params(("id" = String, Path, description = "Webhook endpoint id")),
    request_body = WebhookEndpointPatch,
    responses((status = 200, body = WebhookEndpointOut, description = "The updated endpoint (with `secret` after a rotation)")))]
async fn update_webhook_endpoint(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
    Json(patch): Json<WebhookEndpointPatch>,
) -> ApiResult<axum::Json<WebhookEndpointOut>> {
    let row = load(&state, &auth.tenant_id, &id).await?;
    let mut errors: Vec<FieldError> = Vec::new();
    let url = match &patch.url {
        Some(u) => match check_url(&guard(&state), u).await {
            Ok(u) => u,
            Err(e) => {
                errors.push(e);
                String::new()
            }
        },
        None => row.url.clone(),
    };
    if let Some(t) = &patch.event_types {
        errors.extend(check_event_types(t));
    }
    errors.extend(check_description(patch.description.as_deref()));
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let description = patch.description.or(row.description.clone());
    let event_types = patch.event_types.map(dedup).unwrap_or(row.event_types.clone());
    let enabled = patch.enabled.unwrap_or(row.enabled);
    let disabled_reason = match (enabled, patch.enabled) {
        (true, _) => None,
        (false, Some(false)) if row.enabled => Some("disabled by the API".to_owned()),
        (false, _) => row.disabled_reason.clone(),
    };
    let rotated = (patch.rotate_secret == Some(true)).then(crate::webhooks::new_secret);
    let sealed =
        rotated.as_ref().map(|(raw, _)| state.crypto.encrypt(&auth.tenant_id, &id, Purpose::WebhookSecret, raw));
    let mut tx = state.db.begin().await?;
    let updated = store::webhooks::update_endpoint(
        &mut tx,
        &auth.tenant_id,
        &id,
        &EndpointUpdate {
            url: &url,
            description: description.as_deref(),
            event_types: &event_types,
            secret_enc: sealed.as_deref(),
            secret_overlap_secs: state.config.webhooks.secret_overlap.as_secs_f64(),
            enabled,
            disabled_reason: disabled_reason.as_deref(),
        },
    )
    .await?
    .ok_or(ApiError::NotFound("webhook endpoint"))?;
    if !enabled {
        store::webhooks::cancel_pending(&mut tx, &auth.tenant_id, &id).await?;
    }
    tx.commit().await?;
    Ok(axum::Json(WebhookEndpointOut::new(updated, rotated.map(|(_, text)| text))))
}

/// Delete a webhook endpoint
///
/// Deletes the endpoint and its delivery log.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", operation_id = "delete_webhook_endpoint",
    security(("api_key" = [])), params(("id" = String, Path, description = "Webhook endpoint id")),
    responses((status = 204, description = "Deleted")))]
async fn delete_webhook_endpoint(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    if !ids::is_id("whe", &id) {
        return Err(ApiError::NotFound("webhook endpoint"));
    }
    let mut conn = state.db.acquire().await?;
    if store::webhooks::delete_endpoint(&mut conn, &auth.tenant_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("webhook endpoint"))
    }
}

/// Cursor: the last row's queue sequence number, as digits.
fn decode_seq(c: &str) -> ApiResult<i64> {
    decode_cursor(c)?.parse().map_err(|_| ApiError::query_field("cursor", "is not a cursor this API issued"))
}

/// List an endpoint's deliveries
///
/// Newest first, one page at a time, each delivery with every attempt.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    security(("api_key" = [])), params(("id" = String, Path, description = "Webhook endpoint id"), DeliveryParams),
    responses((status = 200, body = WebhookDeliveryPage, description = "One page of deliveries")))]
async fn list_webhook_deliveries(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
    Query(q): Query<DeliveryParams>,
) -> ApiResult<axum::Json<WebhookDeliveryPage>> {
    let limit = page_limit(q.limit)?;
    if let Some(s) = &q.status
        && !["pending", "succeeded", "failed", "cancelled"].contains(&s.as_str())
    {
        return Err(ApiError::query_field("status", "must be one of pending, succeeded, failed, cancelled"));
    }
    let before = q.cursor.as_deref().map(decode_seq).transpose()?;
    let endpoint = load(&state, &auth.tenant_id, &id).await?;
    let mut conn = state.db.acquire().await?;
    let mut rows = store::webhooks::list_deliveries(
        &mut conn,
        &auth.tenant_id,
        &endpoint.id,
        q.status.as_deref(),
        before,
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| encode_cursor(&r.seq.to_string())) } else { None };
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut attempts: HashMap<String, Vec<AttemptRow>> = HashMap::new();
    for a in store::webhooks::attempts_of(&mut conn, &auth.tenant_id, &ids).await? {
        attempts.entry(a.delivery_id.clone()).or_default().push(a);
    }
    let data = rows
        .into_iter()
        .map(|r| {
            let a = attempts.remove(&r.id).unwrap_or_default();
            delivery_out(r, a)
        })
        .collect();
    Ok(axum::Json(WebhookDeliveryPage { data, next_cursor }))
}

fn endpoint_disabled(e: &EndpointRow) -> ApiError {
    ApiError::client(
        StatusCode::CONFLICT,
        "endpoint_disabled",
        "Webhook endpoint disabled",
        format!(
            "the endpoint is disabled ({}); enable it with PATCH first",
            e.disabled_reason.as_deref().unwrap_or("no reason recorded")
        ),
    )
}

/// Retry a webhook delivery
///
/// Sends one delivery again now: one more attempt, whatever its state.
#[utoipa::path(post, path = "/v1/webhook-deliveries/{id}/retry", tag = "webhooks", operation_id = "retry_webhook_delivery",
    security(("api_key" = [])), params(("id" = String, Path, description = "Webhook delivery id")),
    responses((status = 202, body = WebhookDeliveryOut, description = "Queued for an attempt now"),
        (status = 409, description = "The endpoint is disabled (`endpoint_disabled`), or the Idempotency-Key is in flight")))]
async fn retry_webhook_delivery(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<impl IntoResponse> {
    if !id.starts_with("whd_") || id.len() != 36 || !id[4..].bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound("webhook delivery"));
    }
    let mut tx = state.db.begin().await?;
    let endpoint_id = store::webhooks::delivery_endpoint(&mut tx, &auth.tenant_id, &id)
        .await?
        .ok_or(ApiError::NotFound("webhook delivery"))?;
    let endpoint = store::webhooks::get_endpoint(&mut tx, &auth.tenant_id, &endpoint_id)
        .await?
        .ok_or(ApiError::NotFound("webhook delivery"))?;
    if !endpoint.enabled {
        return Err(endpoint_disabled(&endpoint));
    }
    store::webhooks::retry_now(&mut tx, &auth.tenant_id, &id).await?;
    let row = store::webhooks::get_delivery(&mut tx, &auth.tenant_id, &id)
        .await?
        .ok_or(ApiError::NotFound("webhook delivery"))?;
    let attempts = store::webhooks::attempts_of(&mut tx, &auth.tenant_id, std::slice::from_ref(&id)).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, axum::Json(delivery_out(row, attempts))))
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
    auth: AuthContext,
    PathId(id): PathId,
    Json(body): Json<ReplayIn>,
) -> ApiResult<impl IntoResponse> {
    if !crate::domain::time::in_range(&body.since) {
        return Err(ApiError::field("since", crate::domain::time::RANGE_MESSAGE));
    }
    let endpoint = load(&state, &auth.tenant_id, &id).await?;
    if !endpoint.enabled {
        return Err(endpoint_disabled(&endpoint));
    }
    let mut conn = state.db.acquire().await?;
    let replayed = store::webhooks::replay_failed(&mut conn, &auth.tenant_id, &id, body.since).await?;
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
