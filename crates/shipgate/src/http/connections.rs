//! Carrier connections: a tenant's account with one carrier. Credentials are
//! write-only: checked, encrypted and stored by `service::connections`; answers list
//! which fields are set.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Json, PathId, Query};
use super::{decode_cursor, encode_cursor, page};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::service::connections::{self, ConnectionChanges, ConnectionDraft};
use crate::service::views::Connection;
use crate::service::views::schema::{Credentials, Settings};
use crate::service::{Caller, PageRequest};

page!(ConnectionPage, Connection, "connections, newest first");

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "carrier": "ecourier", "name": "Orlando couriers", "base_url": "https://post.example.e-courier.com/example",
    "credentials": {"website": "example", "username": "user1", "password": "pass1"},
    "settings": {"customer_code": "Alpha"}
}))]
pub struct ConnectionIn {
    /// Carrier slug from `GET /v1/carriers`; at most 32 characters.
    #[serde(deserialize_with = "crate::domain::limits::text::<32, _>")]
    #[schema(max_length = 32)]
    pub carrier: String,
    /// 1-200 characters.
    #[serde(deserialize_with = "crate::domain::limits::text::<200, _>")]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The carrier's base URL for this account (required where the carrier has no
    /// default); at most 2048 characters.
    #[serde(default, deserialize_with = "crate::domain::limits::opt_text::<2048, _>")]
    #[schema(max_length = 2048)]
    pub base_url: Option<String>,
    /// One of the carrier's credential sets; values are write-only. For `ecomexpress`
    /// it may be omitted: a strong username and password are generated and returned
    /// once, in this create response.
    #[serde(default)]
    #[schema(value_type = Credentials)]
    pub credentials: BTreeMap<String, String>,
    #[serde(default)]
    #[schema(value_type = Settings)]
    pub settings: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPatch {
    /// 1-200 characters.
    #[serde(default, deserialize_with = "crate::domain::limits::opt_text::<200, _>")]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// At most 2048 characters.
    #[serde(default, deserialize_with = "crate::domain::limits::opt_text::<2048, _>")]
    #[schema(max_length = 2048)]
    pub base_url: Option<String>,
    /// Replaces the whole credential set.
    #[schema(value_type = Option<Credentials>)]
    pub credentials: Option<BTreeMap<String, String>>,
    /// Replaces all settings.
    #[schema(value_type = Option<Settings>)]
    pub settings: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1-100 (default 20).
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl From<ConnectionIn> for ConnectionDraft {
    fn from(b: ConnectionIn) -> Self {
        ConnectionDraft {
            carrier: b.carrier,
            name: b.name,
            base_url: b.base_url,
            credentials: b.credentials,
            settings: b.settings,
        }
    }
}

/// Create a connection
///
/// A tenant's account with one carrier. Credentials are validated against the carrier's
/// credential fields (`GET /v1/carriers`) and stored encrypted; they are never returned.
/// An `ecomexpress` connection created without credentials gets generated inbound
/// credentials, returned once in `generated_credentials`.
#[utoipa::path(post, path = "/v1/connections", tag = "connections", operation_id = "create_connection",
    security(("api_key" = [])), request_body = ConnectionIn,
    responses(
        (status = 201, body = Connection, description = "Created; `Location` names the connection",
            headers(("Location" = String, description = "`/v1/connections/{id}`")))))]
async fn create_connection(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<ConnectionIn>,
) -> ApiResult<impl IntoResponse> {
    let created = connections::create(&state, &caller, body.into()).await?;
    let location = format!("/v1/connections/{}", created.id);
    Ok((StatusCode::CREATED, [("location", location)], axum::Json(created)))
}

/// List connections
///
/// Newest first, one page at a time: pass the answer's `next_cursor` as `cursor`.
#[utoipa::path(get, path = "/v1/connections", tag = "connections", operation_id = "list_connections",
    security(("api_key" = [])), params(ListParams),
    responses((status = 200, body = ConnectionPage, description = "One page of connections")))]
async fn list_connections(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<ConnectionPage>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::query_field("limit", "must be between 1 and 100"));
    }
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = connections::list(&state, &caller, &PageRequest { limit, after }).await?;
    Ok(axum::Json(ConnectionPage { data: page.items, next_cursor: page.next.as_deref().map(encode_cursor) }))
}

/// Read a connection
///
/// The connection with the names of its credential fields (never their values).
#[utoipa::path(get, path = "/v1/connections/{id}", tag = "connections", operation_id = "get_connection",
    security(("api_key" = [])), params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = Connection, description = "The connection")))]
async fn get_connection(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Connection>> {
    Ok(axum::Json(connections::get(&state, &caller, &id).await?))
}

/// Update a connection
///
/// Changes the name, base URL, credentials (replaced as a whole) or settings (replaced
/// as a whole); absent fields are unchanged.
#[utoipa::path(patch, path = "/v1/connections/{id}", tag = "connections", operation_id = "update_connection",
    security(("api_key" = [])), params(("id" = String, Path, description = "Connection id")),
    request_body = ConnectionPatch,
    responses((status = 200, body = Connection, description = "The updated connection")))]
async fn update_connection(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(patch): Json<ConnectionPatch>,
) -> ApiResult<axum::Json<Connection>> {
    let changes = ConnectionChanges {
        name: patch.name,
        base_url: patch.base_url,
        credentials: patch.credentials,
        settings: patch.settings,
    };
    Ok(axum::Json(connections::update(&state, &caller, &id, changes).await?))
}

/// Delete a connection
///
/// Its shipments stay readable; its secrets are wiped.
#[utoipa::path(delete, path = "/v1/connections/{id}", tag = "connections", operation_id = "delete_connection",
    security(("api_key" = [])), params(("id" = String, Path, description = "Connection id")),
    responses((status = 204, description = "Deleted")))]
async fn delete_connection(State(state): State<AppState>, caller: Caller, PathId(id): PathId) -> ApiResult<StatusCode> {
    connections::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Verify a connection's credentials
///
/// Proves the credentials with the carrier (e-Courier: Login, or RefreshGUID for a
/// directly issued GUID) and records the outcome in `status`.
#[utoipa::path(post, path = "/v1/connections/{id}/verify", tag = "connections", operation_id = "verify_connection",
    security(("api_key" = [])), params(("id" = String, Path, description = "Connection id")),
    extensions(("x-carrier-call" = json!(true))),
    responses((status = 200, body = Connection, description = "The carrier accepted the credentials"),
        (status = 422, description = "The carrier refused the credentials (`connection_misconfigured`)")))]
async fn verify_connection(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Connection>> {
    Ok(axum::Json(connections::verify(&state, &caller, &id).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_connection, list_connections))
        .routes(routes!(get_connection, update_connection, delete_connection))
        .routes(routes!(verify_connection))
}
