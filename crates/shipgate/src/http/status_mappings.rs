//! Carrier status codes → normalized status (PRODUCT.md "Status"): the built-in table
//! (seeded from CARRIERS.md by a migration) merged with the tenant's overrides, and the
//! codes seen without a mapping.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AuthContext;
use super::extract::{Json, Query};
use crate::app::AppState;
use crate::domain::{FieldError, Status};
use crate::error::{ApiError, ApiResult};
use crate::store;
use crate::store::inbound::{MappingIn, MappingRow, UnmappedRow};

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusMappingOut {
    #[schema(example = "ecomexpress")]
    pub carrier: String,
    /// The carrier's code (Ecom Express `reason_code_number`).
    #[schema(example = "999")]
    pub code: String,
    /// Applies only when the shipment already had an event with this code ("999 after a
    /// 777"); such a row wins over the plain one. Empty: always applies.
    #[schema(example = "")]
    pub after_code: String,
    pub status: Status,
    #[schema(example = "Delivered_001")]
    pub subtag: Option<String>,
    pub description: String,
    /// `default` (built in) or `tenant` (your override).
    #[schema(example = "default")]
    pub source: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<MappingRow> for StatusMappingOut {
    fn from(r: MappingRow) -> Self {
        StatusMappingOut {
            status: r.tag,
            carrier: r.carrier,
            code: r.code,
            after_code: r.after_code,
            subtag: r.subtag,
            description: r.description,
            source: r.source,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusMappingList {
    pub data: Vec<StatusMappingOut>,
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
pub struct UnmappedOut {
    pub carrier: String,
    pub code: String,
    /// The carrier's text for the code, as last seen.
    pub last_text: Option<String>,
    /// How many scans arrived with it.
    pub count: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub first_seen: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub last_seen: DateTime<Utc>,
}

impl From<UnmappedRow> for UnmappedOut {
    fn from(r: UnmappedRow) -> Self {
        UnmappedOut {
            carrier: r.carrier,
            code: r.code,
            last_text: r.last_text,
            count: r.count,
            first_seen: r.first_seen,
            last_seen: r.last_seen,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnmappedList {
    pub data: Vec<UnmappedOut>,
}

/// The `carrier` filter names a known carrier: an unknown one is a 422, not an empty list.
fn check_carrier_filter(q: &MappingParams) -> ApiResult<()> {
    match &q.carrier {
        Some(c) if crate::carriers::info(c).is_none() => {
            let known: Vec<&str> = crate::carriers::all().iter().map(|c| c.slug).collect();
            Err(ApiError::query_field("carrier", format!("must be one of {}", known.join(", "))))
        }
        _ => Ok(()),
    }
}

/// The carriers whose pushed codes go through this table.
fn mapped_carriers() -> Vec<&'static str> {
    crate::carriers::all().iter().filter(|c| c.available && c.status_mappings).map(|c| c.slug).collect()
}

fn code_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Subtags are AfterShip's `<Tag>_<3 digits>` (CARRIERS.md "Tags"), and must belong to
/// the tag they are given with.
fn subtag_ok(status: Status, subtag: &str) -> bool {
    let camel: String = status.as_str().split('_').map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect();
    subtag
        .strip_prefix(&camel)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|n| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()))
}

fn validate(body: &StatusMappingsPut) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if body.mappings.is_empty() || body.mappings.len() > 500 {
        errors.push(FieldError::new("mappings", "must have 1-500 entries"));
    }
    for (i, m) in body.mappings.iter().enumerate() {
        let f = |name: &str| format!("mappings[{i}].{name}");
        if !crate::carriers::get(&m.carrier).is_some_and(|c| c.available && c.status_mappings) {
            errors.push(FieldError::new(
                f("carrier"),
                format!("must be a carrier that pushes status codes ({})", mapped_carriers().join(", ")),
            ));
        }
        if !code_ok(&m.code) {
            errors.push(FieldError::new(f("code"), "must be 1-64 letters, digits, '-', '_' or '.'"));
        }
        if !m.after_code.is_empty() && !code_ok(&m.after_code) {
            errors.push(FieldError::new(f("after_code"), "must be empty or 1-64 letters, digits, '-', '_' or '.'"));
        }
        if m.description.len() > 200 {
            errors.push(FieldError::new(f("description"), "must be at most 200 characters"));
        }
        match Status::parse(&m.status) {
            None => {
                let all: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                errors.push(FieldError::new(f("status"), format!("must be one of {}", all.join(", "))));
            }
            Some(s) => {
                if let Some(t) = &m.subtag
                    && !subtag_ok(s, t)
                {
                    errors.push(FieldError::new(
                        f("subtag"),
                        format!("must be a subtag of {} such as {}", s.as_str(), example_subtag(s)),
                    ));
                }
            }
        }
    }
    errors
}

fn example_subtag(s: Status) -> String {
    let camel: String = s.as_str().split('_').map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect();
    format!("{camel}_001")
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
    auth: AuthContext,
    Query(q): Query<MappingParams>,
) -> ApiResult<axum::Json<StatusMappingList>> {
    check_carrier_filter(&q)?;
    let mut conn = state.db.acquire().await?;
    let rows = store::inbound::list_mappings(&mut conn, &auth.tenant_id, q.carrier.as_deref()).await?;
    Ok(axum::Json(StatusMappingList { data: rows.into_iter().map(Into::into).collect() }))
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
    auth: AuthContext,
    Json(body): Json<StatusMappingsPut>,
) -> ApiResult<axum::Json<StatusMappingList>> {
    let errors = validate(&body);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut tx = state.db.begin().await?;
    for m in &body.mappings {
        // Checked by `validate`.
        let Some(status) = Status::parse(&m.status) else { continue };
        store::inbound::upsert_override(
            &mut tx,
            &auth.tenant_id,
            &MappingIn {
                carrier: &m.carrier,
                code: &m.code,
                after_code: &m.after_code,
                tag: status,
                subtag: m.subtag.as_deref(),
                description: &m.description,
            },
        )
        .await?;
    }
    tx.commit().await?;
    state.inbound.mappings.evict_tenant(&auth.tenant_id);
    let mut carriers: Vec<&str> = body.mappings.iter().map(|m| m.carrier.as_str()).collect();
    carriers.sort_unstable();
    carriers.dedup();
    let mut conn = state.db.acquire().await?;
    let mut data = Vec::new();
    for c in carriers {
        data.extend(
            store::inbound::list_mappings(&mut conn, &auth.tenant_id, Some(c)).await?.into_iter().map(Into::into),
        );
    }
    Ok(axum::Json(StatusMappingList { data }))
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
    auth: AuthContext,
    Query(q): Query<MappingParams>,
) -> ApiResult<axum::Json<UnmappedList>> {
    check_carrier_filter(&q)?;
    let mut conn = state.db.acquire().await?;
    let rows = store::inbound::list_unmapped(&mut conn, &auth.tenant_id, q.carrier.as_deref()).await?;
    Ok(axum::Json(UnmappedList { data: rows.into_iter().map(Into::into).collect() }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_status_mappings, put_status_mappings)).routes(routes!(list_unmapped_codes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtags_must_belong_to_their_tag() {
        assert!(subtag_ok(Status::Exception, "Exception_011"));
        assert!(subtag_ok(Status::OutForDelivery, "OutForDelivery_001"));
        assert!(!subtag_ok(Status::Delivered, "Exception_011"));
        assert!(!subtag_ok(Status::Delivered, "Delivered_1"));
    }
}
