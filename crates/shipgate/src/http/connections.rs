//! Carrier connections: a tenant's account with one carrier. Credentials are checked
//! against the carrier's fields, encrypted (AEAD bound to tenant + connection), never
//! returned and never logged; responses list which fields are set.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AuthContext;
use super::extract::{Json, PathId, Query};
use super::{decode_cursor, encode_cursor, page};
use crate::app::AppState;
use crate::carriers::{self, CallCx, Capability, CarrierError};
use crate::crypto::Purpose;
use crate::domain::FieldError;
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::service::connections::note_connection_outcome;
use crate::store;
use crate::store::connections::{ConnectionRow, ConnectionUpdate, NewConnection};

page!(ConnectionPage, ConnectionOut, "connections, newest first");

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
    #[schema(value_type = super::openapi::Credentials)]
    pub credentials: BTreeMap<String, String>,
    #[serde(default)]
    #[schema(value_type = super::openapi::Settings)]
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
    #[schema(value_type = Option<super::openapi::Credentials>)]
    pub credentials: Option<BTreeMap<String, String>>,
    /// Replaces all settings.
    #[schema(value_type = Option<super::openapi::Settings>)]
    pub settings: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionOut {
    #[schema(example = "con_01936f0c7a2b7c3d9e8f001122334455")]
    pub id: String,
    pub carrier: String,
    pub name: String,
    pub base_url: Option<String>,
    /// Names of the credential fields that are set (values are never returned).
    pub credentials_set: Vec<String>,
    #[schema(value_type = super::openapi::Settings)]
    pub settings: Map<String, Value>,
    /// `active`, or `misconfigured` after the carrier refused the credentials or account.
    pub status: String,
    pub status_detail: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub verified_at: Option<DateTime<Utc>>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub updated_at: DateTime<Utc>,
    /// Where the carrier pushes to (ecomexpress; aftership webhooks): absolute when the
    /// gateway's `public_base_url` is configured, else the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "/v1/inbound/ecomexpress/con_01936f0c7a2b7c3d9e8f001122334455")]
    pub inbound_url: Option<String>,
    /// Generated inbound credentials (ecomexpress created without credentials): shown
    /// in the create response only, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<HashMap<String, String>>)]
    pub generated_credentials: Option<BTreeMap<String, String>>,
}

/// The response for a row: the inbound URL filled in from the configuration.
pub(crate) fn out(state: &AppState, row: ConnectionRow) -> ConnectionOut {
    let inbound_url = super::inbound::inbound_url(state, &row.carrier, &row.id);
    ConnectionOut { inbound_url, ..ConnectionOut::from(row) }
}

impl From<ConnectionRow> for ConnectionOut {
    fn from(r: ConnectionRow) -> Self {
        ConnectionOut {
            id: r.id,
            carrier: r.carrier,
            name: r.name,
            base_url: r.base_url,
            credentials_set: r.credential_fields,
            settings: r.settings.0,
            status: r.status,
            status_detail: r.status_detail,
            verified_at: r.verified_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            inbound_url: None,
            generated_credentials: None,
        }
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

fn check_name(name: &str) -> Option<FieldError> {
    (name.trim().is_empty() || name.len() > 200).then(|| FieldError::new("name", "must be 1-200 characters"))
}

/// The published limits of `Credentials` and `Settings` (http/openapi.rs).
fn check_sizes(creds: &BTreeMap<String, String>, settings: &Map<String, Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if creds.len() > 20 {
        errors.push(FieldError::new("credentials", "at most 20 fields"));
    }
    for (k, v) in creds {
        if k.is_empty() || k.chars().count() > 64 || v.chars().count() > 4096 {
            errors.push(FieldError::new(
                format!("credentials.{}", k.chars().take(64).collect::<String>()),
                "names 1-64 characters, values at most 4096",
            ));
        }
    }
    if settings.len() > 50 {
        errors.push(FieldError::new("settings", "at most 50 keys"));
    }
    for (k, v) in settings {
        if k.is_empty() || k.chars().count() > 64 || v.to_string().chars().count() > 4096 {
            errors.push(FieldError::new(
                format!("settings.{}", k.chars().take(64).collect::<String>()),
                "keys 1-64 characters, values at most 4096 characters as JSON",
            ));
        }
    }
    errors
}

fn validate(
    carrier: &str,
    name: &str,
    base_url: Option<&str>,
    creds: &BTreeMap<String, String>,
    settings: &Map<String, Value>,
) -> ApiResult<()> {
    let info = carriers::get(carrier).ok_or_else(|| {
        let known: Vec<_> = carriers::all().iter().map(|c| c.slug).collect();
        ApiError::field("carrier", format!("unknown carrier; one of {}", known.join(", ")))
    })?;
    if !info.available {
        return Err(ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "carrier_not_available",
            "Carrier not available yet",
            format!("the {} adapter is not available in this version", info.name),
        ));
    }
    let mut errors: Vec<FieldError> = check_name(name).into_iter().collect();
    errors.extend(check_sizes(creds, settings));
    // The carrier's fields and rules, the base URL, and an inbound secret's strength.
    errors.extend(info.validate_connection(creds, settings, base_url));
    if errors.is_empty() { Ok(()) } else { Err(ApiError::validation(errors)) }
}

fn seal(
    state: &AppState,
    tenant: &str,
    id: &str,
    creds: &BTreeMap<String, String>,
) -> ApiResult<(Vec<u8>, Vec<String>)> {
    let plain = serde_json::to_vec(creds).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((state.crypto.encrypt(tenant, id, Purpose::Credentials, &plain), creds.keys().cloned().collect()))
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
        (status = 201, body = ConnectionOut, description = "Created; `Location` names the connection",
            headers(("Location" = String, description = "`/v1/connections/{id}`")))))]
async fn create_connection(
    State(state): State<AppState>,
    auth: AuthContext,
    Json(mut body): Json<ConnectionIn>,
) -> ApiResult<impl IntoResponse> {
    // A carrier whose credentials are ours to choose (an inbound-only one) gets strong
    // ones when none are given.
    let generate = carriers::get(&body.carrier).and_then(|c| c.generate_credentials);
    let generated = generate.filter(|_| body.credentials.is_empty()).map(|g| g());
    if let Some(g) = &generated {
        body.credentials = g.clone();
    }
    validate(&body.carrier, &body.name, body.base_url.as_deref(), &body.credentials, &body.settings)?;
    let id = ids::new_id("con");
    let (enc, fields) = seal(&state, &auth.tenant_id, &id, &body.credentials)?;
    let mut conn = state.db.acquire().await?;
    // The SQL knows the registry's carriers before this connection's first shipment.
    crate::service::registry::publish(&mut conn).await?;
    let row = store::connections::insert(
        &mut conn,
        &NewConnection {
            tenant_id: &auth.tenant_id,
            id: &id,
            carrier: &body.carrier,
            name: body.name.trim(),
            base_url: body.base_url.as_deref(),
            credentials_enc: &enc,
            credential_fields: &fields,
            settings: &body.settings,
        },
    )
    .await?;
    let out = ConnectionOut { generated_credentials: generated, ..out(&state, row) };
    Ok((StatusCode::CREATED, [("location", format!("/v1/connections/{id}"))], axum::Json(out)))
}

/// List connections
///
/// Newest first, one page at a time: pass the answer's `next_cursor` as `cursor`.
#[utoipa::path(get, path = "/v1/connections", tag = "connections", operation_id = "list_connections",
    security(("api_key" = [])), params(ListParams),
    responses((status = 200, body = ConnectionPage, description = "One page of connections")))]
async fn list_connections(
    State(state): State<AppState>,
    auth: AuthContext,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<ConnectionPage>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::query_field("limit", "must be between 1 and 100"));
    }
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut conn = state.db.acquire().await?;
    let mut rows = store::connections::list(&mut conn, &auth.tenant_id, after.as_deref(), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| encode_cursor(&r.id)) } else { None };
    Ok(axum::Json(ConnectionPage { data: rows.into_iter().map(|r| out(&state, r)).collect(), next_cursor }))
}

pub(crate) async fn load(state: &AppState, tenant: &str, id: &str) -> ApiResult<ConnectionRow> {
    if !ids::is_id("con", id) {
        return Err(ApiError::NotFound("connection"));
    }
    let mut conn = state.db.acquire().await?;
    store::connections::get(&mut conn, tenant, id).await?.ok_or(ApiError::NotFound("connection"))
}

/// Read a connection
///
/// The connection with the names of its credential fields (never their values).
#[utoipa::path(get, path = "/v1/connections/{id}", tag = "connections", operation_id = "get_connection",
    security(("api_key" = [])), params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = ConnectionOut, description = "The connection")))]
async fn get_connection(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<axum::Json<ConnectionOut>> {
    Ok(axum::Json(out(&state, load(&state, &auth.tenant_id, &id).await?)))
}

/// Update a connection
///
/// Changes the name, base URL, credentials (replaced as a whole) or settings (replaced
/// as a whole); absent fields are unchanged.
#[utoipa::path(patch, path = "/v1/connections/{id}", tag = "connections", operation_id = "update_connection",
    security(("api_key" = [])), params(("id" = String, Path, description = "Connection id")),
    request_body = ConnectionPatch,
    responses((status = 200, body = ConnectionOut, description = "The updated connection")))]
async fn update_connection(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
    Json(patch): Json<ConnectionPatch>,
) -> ApiResult<axum::Json<ConnectionOut>> {
    let row = load(&state, &auth.tenant_id, &id).await?;
    let name = patch.name.unwrap_or(row.name.clone());
    let base_url = patch.base_url.or(row.base_url.clone());
    let settings = patch.settings.unwrap_or(row.settings.0.clone());
    let credentials_changed = patch.credentials.is_some();
    let creds = match patch.credentials {
        Some(c) => c,
        None => state
            .credentials(&row)
            .map_err(ApiError::Internal)?
            .0
            .into_iter()
            .map(|(k, v)| (k, secrecy::ExposeSecret::expose_secret(&v).to_owned()))
            .collect(),
    };
    validate(&row.carrier, &name, base_url.as_deref(), &creds, &settings)?;
    let (enc, fields) = seal(&state, &auth.tenant_id, &id, &creds)?;
    let mut conn = state.db.acquire().await?;
    let updated = store::connections::update(
        &mut conn,
        &auth.tenant_id,
        &id,
        &ConnectionUpdate {
            name: name.trim(),
            base_url: base_url.as_deref(),
            credentials_enc: &enc,
            credential_fields: &fields,
            settings: &settings,
            credentials_changed,
        },
    )
    .await?
    .ok_or(ApiError::NotFound("connection"))?;
    state.forget_connection(&id);
    Ok(axum::Json(out(&state, updated)))
}

/// Delete a connection
///
/// Its shipments stay readable; its secrets are wiped.
#[utoipa::path(delete, path = "/v1/connections/{id}", tag = "connections", operation_id = "delete_connection",
    security(("api_key" = [])), params(("id" = String, Path, description = "Connection id")),
    responses((status = 204, description = "Deleted")))]
async fn delete_connection(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    if !ids::is_id("con", &id) {
        return Err(ApiError::NotFound("connection"));
    }
    let mut conn = state.db.acquire().await?;
    state.forget_connection(&id);
    if store::connections::delete(&mut conn, &auth.tenant_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("connection"))
    }
}

/// 422 `capability_not_supported` unless the carrier can do it (PRODUCT.md: asking a
/// carrier for a capability it lacks is never a 500).
pub(crate) fn require_capability(carrier: &str, capability: Capability) -> ApiResult<()> {
    if carriers::supports(carrier, capability) {
        return Ok(());
    }
    Err(ApiError::client(
        StatusCode::UNPROCESSABLE_ENTITY,
        "capability_not_supported",
        "Capability not supported",
        format!("carrier {carrier} does not support {}", capability.as_str()),
    ))
}

/// Map a carrier failure onto the API (shared by every resource).
pub(crate) fn carrier_problem(e: &CarrierError) -> (StatusCode, &'static str, &'static str) {
    match e {
        CarrierError::Transient { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "carrier_unavailable", "Carrier temporarily unavailable")
        }
        CarrierError::Rejected { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "carrier_rejected", "Carrier rejected the request")
        }
        CarrierError::Conflict { .. } => (StatusCode::CONFLICT, "carrier_conflict", "Carrier refused the change"),
        CarrierError::NotFound { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "carrier_not_found", "Carrier does not know this shipment")
        }
        CarrierError::Misconfigured { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "connection_misconfigured", "Connection misconfigured")
        }
        CarrierError::Protocol { .. } => {
            (StatusCode::BAD_GATEWAY, "carrier_protocol_error", "Unexpected answer from the carrier")
        }
        CarrierError::Unsupported(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "capability_not_supported", "Capability not supported")
        }
    }
}

pub(crate) fn carrier_error(e: &CarrierError, shipment: Option<Value>) -> ApiError {
    let (status, code, title) = carrier_problem(e);
    let retry_after = match e {
        CarrierError::Transient { retry_after, .. } => Some(retry_after.map(|d| d.as_secs().max(1)).unwrap_or(30)),
        _ => None,
    };
    ApiError::Carrier { status, code, title, detail: e.message(), retry_after, shipment }
}

/// Verify a connection's credentials
///
/// Proves the credentials with the carrier (e-Courier: Login, or RefreshGUID for a
/// directly issued GUID) and records the outcome in `status`.
#[utoipa::path(post, path = "/v1/connections/{id}/verify", tag = "connections", operation_id = "verify_connection",
    security(("api_key" = [])), params(("id" = String, Path, description = "Connection id")),
    extensions(("x-carrier-call" = json!(true))),
    responses((status = 200, body = ConnectionOut, description = "The carrier accepted the credentials"),
        (status = 422, description = "The carrier refused the credentials (`connection_misconfigured`)")))]
async fn verify_connection(
    State(state): State<AppState>,
    auth: AuthContext,
    PathId(id): PathId,
) -> ApiResult<axum::Json<ConnectionOut>> {
    let row = load(&state, &auth.tenant_id, &id).await?;
    if carriers::get(&row.carrier).is_some_and(|c| c.client.is_none()) {
        // Never called (inbound only): the credentials are ours, there is nothing at the
        // carrier to prove.
        return Ok(axum::Json(out(&state, row)));
    }
    let cx = CallCx::new();
    let outcome = match state.client(&row) {
        Ok(client) => client.verify(&cx).await,
        Err(e) => Err(e),
    };
    let mut conn = state.db.acquire().await?;
    for x in cx.take() {
        store::exchanges::insert(&mut conn, &auth.tenant_id, None, &x).await?;
    }
    drop(conn);
    note_connection_outcome(&state, &row, outcome.as_ref().err()).await;
    outcome.map_err(|e| carrier_error(&e, None))?;
    Ok(axum::Json(out(&state, load(&state, &auth.tenant_id, &id).await?)))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_connection, list_connections))
        .routes(routes!(get_connection, update_connection, delete_connection))
        .routes(routes!(verify_connection))
}
