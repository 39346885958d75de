//! A shipment's documents as the API lists them (schema `DocumentOut`): the files the
//! gateway keeps (a proof of delivery's signature) and the links to documents the
//! carrier holds (eCMR's CMR), in one list so a client has one place to look.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::DocumentLink;
use crate::store::documents::DocumentRow;

// No doc comment: it would become the schema's description.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DocumentOut)]
pub struct Document {
    /// The id of a document the gateway keeps (`doc_...`); null for a link to a document
    /// the carrier holds.
    #[schema(example = "doc_01936f0c7a2b7c3d9e8f001122334455")]
    pub id: Option<String>,
    /// `signature` (proof of delivery), or the carrier's kind of a linked document (`cmr`).
    #[schema(example = "signature")]
    pub kind: String,
    /// True for a document the gateway keeps and serves; false for a carrier's link.
    pub stored: bool,
    /// The media type of a kept document; null for a link.
    #[schema(example = "image/png")]
    pub content_type: Option<String>,
    /// Bytes, of a kept document.
    pub size: Option<i64>,
    /// Where to get it: this API's path for a kept document (`GET` it with the API key),
    /// the carrier's URL for a link.
    #[schema(
        example = "/v1/shipments/shp_01936f0c7a2b7c3d9e8f001122334455/documents/doc_01936f0c7a2b7c3d9e8f001122334455"
    )]
    pub url: String,
    /// When the gateway stored it; null for a link.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub created_at: Option<DateTime<Utc>>,
}

impl From<DocumentRow> for Document {
    fn from(r: DocumentRow) -> Self {
        Document {
            url: format!("/v1/shipments/{}/documents/{}", r.shipment_id, r.id),
            id: Some(r.id),
            kind: r.kind,
            stored: true,
            content_type: Some(r.content_type),
            size: Some(i64::from(r.size)),
            created_at: Some(r.created_at),
        }
    }
}

impl From<DocumentLink> for Document {
    fn from(l: DocumentLink) -> Self {
        Document { id: None, kind: l.kind, stored: false, content_type: None, size: None, url: l.url, created_at: None }
    }
}

/// A kept document's bytes and media type (`GET /v1/shipments/{id}/documents/{document_id}`).
#[derive(Debug)]
pub struct DocumentContent {
    pub content_type: String,
    pub bytes: Vec<u8>,
}
