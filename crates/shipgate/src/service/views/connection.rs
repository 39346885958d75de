//! A connection as the API shows it (schema `ConnectionOut`): never its secrets.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::store::connections::ConnectionRow;

// No doc comment: it would become the schema's description.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ConnectionOut)]
pub struct Connection {
    #[schema(example = "con_01936f0c7a2b7c3d9e8f001122334455")]
    pub id: String,
    pub carrier: String,
    pub name: String,
    pub base_url: Option<String>,
    /// Names of the credential fields that are set (values are never returned).
    pub credentials_set: Vec<String>,
    #[schema(value_type = super::schema::Settings)]
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

impl Connection {
    /// The view of a row, with where its carrier pushes to (`inbound_url`, None for a
    /// carrier that does not push).
    pub(crate) fn new(r: ConnectionRow, inbound_url: Option<String>) -> Self {
        Connection {
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
            inbound_url,
            generated_credentials: None,
        }
    }
}
