//! A shipment's documents: the list (kept files and the carrier's links together) and
//! the bytes of a kept one, served with its media type.

use axum::Json as AxumJson;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::ApiResult;
use crate::http::extract::{PathId, PathIds};
use crate::service::views::Document;
use crate::service::{Caller, shipments};

/// A shipment's documents.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentList {
    pub data: Vec<Document>,
}

/// List a shipment's documents
///
/// The documents the gateway keeps for this shipment (a proof of delivery's signature),
/// oldest first, then the links to documents the carrier holds (eCMR's CMR): one place to
/// look. A kept document's `url` is its download path here.
#[utoipa::path(get, path = "/v1/shipments/{id}/documents", tag = "shipments", operation_id = "list_shipment_documents",
    security(("api_key" = [])), params(("id" = String, Path, description = "Shipment id")),
    responses((status = 200, body = DocumentList, description = "The documents")))]
pub(super) async fn list_documents(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<AxumJson<DocumentList>> {
    Ok(AxumJson(DocumentList { data: shipments::documents(&state, &caller, &id).await? }))
}

/// Download a shipment's document
///
/// The document's bytes exactly as the carrier sent them (base64 decoded), with the media
/// type the content check established. 404 for a link to a carrier's document (get it
/// from the carrier's `url`) and for a document purged after the retention.
#[utoipa::path(get, path = "/v1/shipments/{id}/documents/{document_id}", tag = "shipments",
    operation_id = "get_shipment_document", security(("api_key" = [])),
    params(("id" = String, Path, description = "Shipment id"),
        ("document_id" = String, Path, description = "Document id (`doc_...`)")),
    responses((status = 200, description = "The document's bytes, with its media type",
        content(("image/png"), ("image/jpeg"), ("image/gif"), ("application/pdf"), ("application/octet-stream")),
        headers(("Content-Length" = i64, description = "The document's size in bytes")))))]
pub(super) async fn get_document(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(id, document_id): PathIds,
) -> ApiResult<Response> {
    let doc = shipments::document(&state, &caller, &id, &document_id).await?;
    let headers = [
        (header::CONTENT_TYPE, doc.content_type),
        // A signature is personal data: no shared cache keeps it, no browser sniffs it.
        (header::CACHE_CONTROL, "private, no-store".to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{document_id}\"")),
    ];
    Ok((headers, doc.bytes).into_response())
}
