//! Carrier status codes → normalized status (docs/product.md "Status"): the built-in table
//! (seeded from docs/carriers/ by a migration) merged with the tenant's overrides, and the
//! codes seen without a mapping.

use crate::app::AppState;
use crate::carriers;
use crate::domain::{FieldError, Status};
use crate::service::views::{StatusMapping, Unmapped};
use crate::service::{Caller, Error, Result};
use crate::store;
use crate::store::inbound::MappingIn;

/// One override as a front end asks for it.
#[derive(Debug)]
pub struct MappingOverride {
    /// A carrier that pushes status codes.
    pub carrier: String,
    pub code: String,
    /// Empty, or the code the shipment must already have seen for this row to apply.
    pub after_code: String,
    /// A normalized status's name.
    pub status: String,
    /// A subtag of `status`.
    pub subtag: Option<String>,
    pub description: String,
}

/// The carriers whose pushed codes go through this table.
fn mapped_carriers() -> Vec<&'static str> {
    carriers::all().iter().filter(|c| c.available && c.status_mappings).map(|c| c.slug).collect()
}

fn code_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// `attempt_fail` → `AttemptFail`, the tag's name in its subtags.
fn camel(status: Status) -> String {
    status.as_str().split('_').map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect()
}

/// Subtags are AfterShip's `<Tag>_<3 digits>` (docs/carriers/aftership.md "Tags"), and must belong to
/// the tag they are given with.
fn subtag_ok(status: Status, subtag: &str) -> bool {
    subtag
        .strip_prefix(&camel(status))
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|n| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Each override checked, with its status parsed; or every refused field.
fn validate(mappings: &[MappingOverride]) -> Result<Vec<Status>> {
    let mut errors = Vec::new();
    let mut statuses = Vec::new();
    if mappings.is_empty() || mappings.len() > 500 {
        errors.push(FieldError::new("mappings", "must have 1-500 entries"));
    }
    for (i, m) in mappings.iter().enumerate() {
        let f = |name: &str| format!("mappings[{i}].{name}");
        if !carriers::get(&m.carrier).is_some_and(|c| c.available && c.status_mappings) {
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
                        format!("must be a subtag of {} such as {}_001", s.as_str(), camel(s)),
                    ));
                }
                statuses.push(s);
            }
        }
    }
    Error::check(errors)?;
    Ok(statuses)
}

/// The merged table (an override replaces the default with the same carrier, code and
/// after_code), of one carrier or all.
pub async fn list(state: &AppState, caller: &Caller, carrier: Option<&str>) -> Result<Vec<StatusMapping>> {
    let mut conn = state.db.acquire().await?;
    let rows = store::inbound::list_mappings(&mut conn, &caller.tenant_id, carrier).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Create or replace overrides; the answer is the merged table of the carriers touched.
/// They apply to scans received from now on (stored events keep their status).
pub async fn put(state: &AppState, caller: &Caller, mappings: &[MappingOverride]) -> Result<Vec<StatusMapping>> {
    let statuses = validate(mappings)?;
    let mut tx = store::begin(&state.db).await?;
    for (m, status) in mappings.iter().zip(statuses) {
        store::inbound::upsert_override(
            &mut tx,
            &caller.tenant_id,
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
    state.inbound.mappings.evict_tenant(&caller.tenant_id);
    let mut carriers: Vec<&str> = mappings.iter().map(|m| m.carrier.as_str()).collect();
    carriers.sort_unstable();
    carriers.dedup();
    let mut conn = state.db.acquire().await?;
    let mut data = Vec::new();
    for c in carriers {
        data.extend(
            store::inbound::list_mappings(&mut conn, &caller.tenant_id, Some(c)).await?.into_iter().map(Into::into),
        );
    }
    Ok(data)
}

/// Codes that arrived with no mapping (kept raw; the status did not move), with how
/// often and when they were last seen.
pub async fn unmapped(state: &AppState, caller: &Caller, carrier: Option<&str>) -> Result<Vec<Unmapped>> {
    let mut conn = state.db.acquire().await?;
    let rows = store::inbound::list_unmapped(&mut conn, &caller.tenant_id, carrier).await?;
    Ok(rows.into_iter().map(Into::into).collect())
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
