//! Shipment workflows: book or register ([`create`]), update and cancel
//! ([`change`]), refresh, retrack and complete ([`lifecycle`]), the reads (this file),
//! and what they share: a booking attempt ([`attempt`]) and applying a carrier's view
//! of a shipment ([`snapshot`]), which the booking job, the tracking engine and inbound
//! pushes use too.

pub mod attempt;
pub mod change;
pub mod create;
pub mod lifecycle;
pub mod proof;
pub(crate) mod reads;
pub mod snapshot;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

pub use attempt::{Attempt, attempt_booking, enqueue_sinks};
pub use change::{ShipmentChanges, cancel, update};
pub use create::{CreateShipment, Created, create};
pub use lifecycle::{complete, refresh, retrack};
pub use snapshot::apply_snapshot;

use crate::app::AppState;
use crate::carriers::{Channel, OrderRequest, TrackRequest};
use crate::domain::{DocumentLink, Exchange, FieldError, Metadata, ShipmentPlan, Status};
use crate::ids;
use crate::service::views::{CarrierExchange, Document, DocumentContent, HistoryEntry, Shipment, TrackingEvent};
use crate::service::{Caller, Error, Page, PageRequest, Refusal, Result};
use crate::store;
use crate::store::connections::ConnectionRow;
use crate::store::shipments::{ShipmentDoc, ShipmentRow};

/// Which shipments a list shows; every filter given must match.
#[derive(Debug, Default, Clone)]
pub struct ListFilter<'a> {
    pub status: Option<Status>,
    pub carrier: Option<&'a str>,
    pub connection_id: Option<&'a str>,
    pub reference: Option<&'a str>,
    pub tracking_number: Option<&'a str>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// The tenant's shipment.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<Shipment> {
    Shipment::try_from(load_doc(state, &caller.tenant_id, id).await?)
}

/// The tenant's shipments, newest first, one page at a time (the key is the last id).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: &ListFilter<'_>,
    page: &PageRequest,
) -> Result<Page<Shipment>> {
    let f = store::shipments::ListFilter {
        status: filter.status,
        carrier: filter.carrier,
        connection_id: filter.connection_id,
        reference: filter.reference,
        tracking_number: filter.tracking_number,
        created_after: filter.created_after,
        created_before: filter.created_before,
        before_id: page.after.as_deref(),
    };
    let rows =
        state.warm.with(async |c| store::shipments::list(c, &caller.tenant_id, &f, page.limit + 1).await).await?;
    Page::try_of(rows, page.limit, |r| r.id.clone(), Shipment::try_from)
}

/// A shipment's tracking events, oldest first.
pub async fn tracking_events(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<TrackingEvent>> {
    load_doc(state, &caller.tenant_id, id).await?;
    let rows = state.warm.with(async |c| store::shipments::list_events(c, &caller.tenant_id, id).await).await?;
    Ok(rows.into_iter().map(TrackingEvent::from).collect())
}

/// A shipment's audit history, oldest first.
pub async fn history(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<HistoryEntry>> {
    load_doc(state, &caller.tenant_id, id).await?;
    let rows = state.warm.with(async |c| store::shipments::list_history(c, &caller.tenant_id, id).await).await?;
    Ok(rows.into_iter().map(HistoryEntry::from).collect())
}

/// A shipment's carrier exchanges, oldest first.
pub async fn exchanges(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<CarrierExchange>> {
    load_doc(state, &caller.tenant_id, id).await?;
    let mut conn = state.db.acquire().await?;
    let rows = store::exchanges::list_for_shipment(&mut conn, &caller.tenant_id, id).await?;
    Ok(rows.into_iter().map(CarrierExchange::from).collect())
}

/// A shipment's documents: the ones the gateway keeps (oldest first), then the links
/// to documents the carrier holds.
pub async fn documents(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<Document>> {
    let doc = load_doc(state, &caller.tenant_id, id).await?;
    let links: Vec<DocumentLink> = doc
        .documents
        .parse()
        .map_err(|e| Error::internal(anyhow::anyhow!("shipment {id}: its stored documents do not read: {e}")))?;
    let mut conn = state.db.acquire().await?;
    let kept = store::documents::list(&mut conn, &caller.tenant_id, id).await?;
    Ok(kept.into_iter().map(Document::from).chain(links.into_iter().map(Document::from)).collect())
}

/// One kept document's bytes and media type.
pub async fn document(state: &AppState, caller: &Caller, id: &str, document_id: &str) -> Result<DocumentContent> {
    load_doc(state, &caller.tenant_id, id).await?;
    if !ids::is_id("doc", document_id) {
        return Err(Error::NotFound("document"));
    }
    let mut conn = state.db.acquire().await?;
    let (doc, bytes) = store::documents::get(&mut conn, &caller.tenant_id, id, document_id)
        .await?
        .ok_or(Error::NotFound("document"))?;
    Ok(DocumentContent { content_type: doc.content_type, bytes })
}

// ---------- shared by the workflows ----------

/// The tenant's shipment row; an id of the wrong shape is simply not found.
pub(crate) async fn load(state: &AppState, tenant: &str, id: &str) -> Result<ShipmentRow> {
    let doc = load_doc(state, tenant, id).await?;
    let id = doc.id.clone();
    doc.into_row()
        .map_err(|e| Error::internal(anyhow::anyhow!("shipment {id}: a stored JSON column does not read: {e}")))
}

/// The tenant's shipment as the API shows it, its JSON columns as stored.
pub(crate) async fn load_doc(state: &AppState, tenant: &str, id: &str) -> Result<ShipmentDoc> {
    if !ids::is_id("shp", id) {
        return Err(Error::NotFound("shipment"));
    }
    reads::one(state, tenant, id).await?.ok_or(Error::NotFound("shipment"))
}

/// The connection behind a shipment, even if it was deleted since (then refused).
pub(crate) async fn connection_of(state: &AppState, row: &ShipmentRow) -> Result<ConnectionRow> {
    let mut conn = state.db.acquire().await?;
    store::connections::get(&mut conn, &row.tenant_id, &row.connection_id)
        .await?
        .ok_or_else(|| Error::refused(Refusal::ConnectionDeleted, "this shipment's connection was deleted"))
}

/// The texts a client sets, within the published limits.
pub(crate) fn check_texts(
    reference: Option<&str>,
    notes: Option<&str>,
    metadata: &Metadata,
    errors: &mut Vec<FieldError>,
) {
    if reference.is_some_and(|r| r.trim().is_empty() || r.len() > 100) {
        errors.push(FieldError::new("reference", "must be 1-100 characters"));
    }
    if notes.is_some_and(|n| n.len() > 2000) {
        errors.push(FieldError::new("notes", "must be at most 2000 characters"));
    }
    if metadata.len() > 50 {
        errors.push(FieldError::new("metadata", "at most 50 keys"));
    }
    for (k, v) in metadata {
        if k.is_empty() || k.len() > 40 || v.len() > 500 {
            errors.push(FieldError::new(format!("metadata.{k}"), "keys 1-40 characters, values at most 500"));
        }
    }
}

/// Each sink a channel names must be one of the tenant's connections to that sink.
pub(crate) async fn check_channel(
    state: &AppState,
    tenant: &str,
    channel: Option<&Channel>,
    errors: &mut Vec<FieldError>,
) -> Result<()> {
    for (sink, target) in channel.map(Channel::targets).unwrap_or_default() {
        let id = target.connection_id();
        let mut conn = state.db.acquire().await?;
        let ok = ids::is_id("con", id)
            && store::connections::get(&mut conn, tenant, id).await?.is_some_and(|c| c.carrier == sink);
        if !ok {
            errors.push(FieldError::new(format!("channel.{sink}.connection_id"), format!("no such {sink} connection")));
        }
    }
    Ok(())
}

/// Our order number at carriers that let the client choose one (e-Courier): stable
/// for the shipment's life, so a repeated create is an update, never a second order.
pub fn order_number_for(shipment_id: &str) -> String {
    format!("SG{}", shipment_id.trim_start_matches("shp_").to_ascii_uppercase())
}

/// The carrier's view of a stored shipment.
pub(crate) fn order_request<'a>(
    row: &'a ShipmentRow,
    order_number: &'a str,
    plan: &'a ShipmentPlan,
) -> OrderRequest<'a> {
    OrderRequest {
        shipment_id: &row.id,
        order_number,
        carrier_reference: row.carrier_reference.as_deref(),
        tracking_number: row.tracking_number.as_deref(),
        plan,
        metadata: &row.metadata.0,
    }
}

/// How a carrier finds the shipment for tracking: its order number, tracking number and
/// (AfterShip) courier slug.
pub(crate) fn track_request(row: &ShipmentRow) -> TrackRequest<'_> {
    TrackRequest {
        carrier_reference: row.carrier_reference.as_deref(),
        tracking_number: row.tracking_number.as_deref(),
        slug: row.service.as_deref(),
    }
}

/// Keep the carrier exchanges a call made, with the shipment it was made for.
pub(crate) async fn save_exchanges(
    conn: &mut sqlx::PgConnection,
    tenant: &str,
    shipment_id: Option<&str>,
    xs: Vec<Exchange>,
) -> Result<()> {
    for x in xs {
        store::exchanges::insert(conn, tenant, shipment_id, &x).await?;
    }
    Ok(())
}

/// The shipment's channel, read from the JSON the store keeps (the store does not know
/// the carrier registry's `Channel`).
pub(crate) fn channel_of(row: &ShipmentRow) -> Result<Option<Channel>> {
    row.channel.as_ref().map(|c| serde_json::from_str(c.0.get()).map_err(Error::internal)).transpose()
}

/// A channel as the store keeps it.
pub(crate) fn channel_json(channel: &Channel) -> Result<Box<RawValue>> {
    serde_json::value::to_raw_value(channel).map_err(Error::internal)
}

/// Whether a database error is a unique violation (a concurrent insert won).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}
