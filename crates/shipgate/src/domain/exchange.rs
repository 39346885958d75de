//! What a carrier call leaves behind, in the gateway's vocabulary: the recorded
//! exchange (built by the carrier layer, stored by the store) and the documents a
//! carrier holds for a shipment. Both live here so that `carriers` and `store` meet in
//! the domain and never import each other (docs/architecture.md: http → service →
//! (carriers, store) → domain).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One HTTP exchange with a carrier, already redacted and size-capped by the carrier
/// layer (`carriers::exchange`), kept with the shipment it was made for.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub connection_id: String,
    pub carrier: &'static str,
    pub operation: &'static str,
    pub method: String,
    pub url: String,
    pub request_body: Option<String>,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub duration_ms: i32,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// A document the carrier holds for the shipment (eCMR's CMR PDF).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DocumentLink {
    #[schema(example = "cmr")]
    pub kind: String,
    pub url: String,
}
