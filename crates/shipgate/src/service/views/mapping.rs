//! The status-mapping table and the codes seen without a mapping, as the API shows
//! them (schemas `StatusMappingOut`, `UnmappedOut`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Status;
use crate::store::inbound::{MappingRow, UnmappedRow};

// No doc comment: it would become the schema's description.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StatusMappingOut)]
pub struct StatusMapping {
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

impl From<MappingRow> for StatusMapping {
    fn from(r: MappingRow) -> Self {
        StatusMapping {
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

// No doc comment: it would become the schema's description.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UnmappedOut)]
pub struct Unmapped {
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

impl From<UnmappedRow> for Unmapped {
    fn from(r: UnmappedRow) -> Self {
        Unmapped {
            carrier: r.carrier,
            code: r.code,
            last_text: r.last_text,
            count: r.count,
            first_seen: r.first_seen,
            last_seen: r.last_seen,
        }
    }
}
