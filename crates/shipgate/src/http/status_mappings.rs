//! Carrier status codes → normalized status (docs/product.md "Status"): the built-in table
//! merged with the tenant's overrides, and the codes seen without a mapping
//! (`service::status_mappings` checks and stores them).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Json, Query};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::service::status_mappings::{self, MappingOverride};
use crate::service::views::{StatusMapping, Unmapped};
use crate::service::{self, Caller};

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusMappingList {
    pub data: Vec<StatusMapping>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MappingParams {
    /// Only this carrier's codes.
    pub carrier: Option<String>,
}

/// One override.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"carrier": "ecomexpress", "code": "1450", "status": "attempt_fail", "subtag": "AttemptFail_001", "description": "address not found"}))]
pub struct StatusMappingIn {
    /// A carrier that pushes status codes (`ecomexpress`); at most 32 characters.
    #[serde(deserialize_with = "crate::domain::limits::text::<32, _>")]
    #[schema(max_length = 32)]
    pub carrier: String,
    /// 1-64 letters, digits, `-`, `_` or `.`.
    #[serde(deserialize_with = "crate::domain::limits::text::<64, _>")]
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$")]
    pub code: String,
    /// Empty, or 1-64 letters, digits, `-`, `_` or `.`.
    #[serde(default, deserialize_with = "crate::domain::limits::text::<64, _>")]
    #[schema(max_length = 64, pattern = "^[A-Za-z0-9._-]*$")]
    pub after_code: String,
    /// A normalized status (`Status`).
    #[serde(deserialize_with = "crate::domain::limits::text::<32, _>")]
    #[schema(max_length = 32, example = "attempt_fail")]
    pub status: String,
    /// A subtag of `status`, e.g. `AttemptFail_001`; at most 64 characters.
    #[serde(default, deserialize_with = "crate::domain::limits::opt_text::<64, _>")]
    #[schema(max_length = 64)]
    pub subtag: Option<String>,
    /// At most 200 characters.
    #[serde(default, deserialize_with = "crate::domain::limits::text::<200, _>")]
    #[schema(max_length = 200)]
    pub description: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusMappingsPut {
    /// Overrides to create or replace (1-500).
    #[schema(min_items = 1, max_items = 500)]
    pub mappings: Vec<StatusMappingIn>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnmappedList {
    pub data: Vec<Unmapped>,
}

/// The `carrier` filter names a known carrier: an unknown one is a 422, not an empty list.
fn check_carrier_filter(q: &MappingParams) -> ApiResult<()> {
    match &q.carrier {
        Some(c) if !service::carriers::is_known(c) => {
            Err(ApiError::query_field("carrier", format!("must be one of {}", service::carriers::slugs().join(", "))))
        }
        _ => Ok(()),
    }
}

impl From<StatusMappingIn> for MappingOverride {
    fn from(m: StatusMappingIn) -> Self {
        MappingOverride {
            carrier: m.carrier,
            code: m.code,
            after_code: m.after_code,
            status: m.status,
            subtag: m.subtag,
            description: m.description,
        }
    }
}

/// List status mappings
///
/// The status mapping table: built-in defaults merged with your overrides (an override
/// replaces the default with the same carrier, code and after_code).
#[utoipa::path(get, path = "/v1/status-mappings", tag = "status-mappings", operation_id = "list_status_mappings",
    security(("api_key" = [])), params(MappingParams),
    responses((status = 200, body = StatusMappingList, description = "The merged table")))]
async fn list_status_mappings(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<MappingParams>,
) -> ApiResult<axum::Json<StatusMappingList>> {
    check_carrier_filter(&q)?;
    Ok(axum::Json(StatusMappingList { data: status_mappings::list(&state, &caller, q.carrier.as_deref()).await? }))
}

/// Create or replace status mapping overrides
///
/// The answer is the merged table of the carriers touched. Applies to scans received
/// from now on (stored events keep their status).
#[utoipa::path(put, path = "/v1/status-mappings", tag = "status-mappings", operation_id = "put_status_mappings",
    security(("api_key" = [])), request_body = StatusMappingsPut,
    responses((status = 200, body = StatusMappingList, description = "The merged table of the carriers touched")))]
async fn put_status_mappings(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<StatusMappingsPut>,
) -> ApiResult<axum::Json<StatusMappingList>> {
    let mappings: Vec<MappingOverride> = body.mappings.into_iter().map(Into::into).collect();
    Ok(axum::Json(StatusMappingList { data: status_mappings::put(&state, &caller, &mappings).await? }))
}

/// List unmapped status codes
///
/// Codes that arrived with no mapping (kept raw; the status did not move), with how
/// often and when they were last seen. Map them with `PUT /v1/status-mappings`.
#[utoipa::path(get, path = "/v1/status-mappings/unmapped", tag = "status-mappings", operation_id = "list_unmapped_codes",
    security(("api_key" = [])), params(MappingParams),
    responses((status = 200, body = UnmappedList, description = "The unmapped codes")))]
async fn list_unmapped_codes(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<MappingParams>,
) -> ApiResult<axum::Json<UnmappedList>> {
    check_carrier_filter(&q)?;
    Ok(axum::Json(UnmappedList { data: status_mappings::unmapped(&state, &caller, q.carrier.as_deref()).await? }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_status_mappings, put_status_mappings)).routes(routes!(list_unmapped_codes))
}
