//! The client side of a carrier: the [`CarrierClient`] trait the service layer calls,
//! what goes in and out of it in the gateway's vocabulary, what a client is built from,
//! and the circuit breaker every client is wrapped in.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use utoipa::ToSchema;

use super::exchange::CallCx;
use super::limits::Limits;
use super::sink::{SinkItem, SinkResult};
use super::token::TokenStore;
use super::{Capability, CarrierError};
use crate::domain::{Money, ProofReport, ShipmentPlan, Status};

/// What to book, register, update or cancel: the shipment as a carrier sees it.
pub struct OrderRequest<'a> {
    pub shipment_id: &'a str,
    /// Our stable order number at the carrier (idempotent create-or-update).
    pub order_number: &'a str,
    /// The carrier's own id once known (e.g. AfterShip's tracking id).
    pub carrier_reference: Option<&'a str>,
    pub tracking_number: Option<&'a str>,
    pub plan: &'a ShipmentPlan,
    pub metadata: &'a crate::domain::Metadata,
}

#[derive(Debug, Clone)]
pub struct Booked {
    pub carrier_reference: String,
    pub tracking_number: Option<String>,
    /// The carrier's view right after the call, when it answers with one.
    pub snapshot: Option<TrackingSnapshot>,
}

/// `POST /v1/shipments/{id}/complete` reasons (AfterShip mark-as-completed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompleteReason {
    Delivered,
    Lost,
    ReturnedToSender,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Quote {
    pub amount: Option<Money>,
    pub service: Option<String>,
    /// When the carrier can pick up, as the carrier wrote it and parsed (when it can be).
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub ready_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub due_at: Option<DateTime<Utc>>,
    pub ready_at_raw: Option<String>,
    pub due_at_raw: Option<String>,
}

pub struct TrackRequest<'a> {
    pub carrier_reference: Option<&'a str>,
    pub tracking_number: Option<&'a str>,
    /// The courier slug where the carrier needs one (AfterShip); our `service`.
    pub slug: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CarrierEvent {
    pub occurred_at: DateTime<Utc>,
    /// None when the carrier's code has no mapping: kept raw, status unchanged.
    pub status: Option<Status>,
    pub subtag: Option<String>,
    pub message: Option<String>,
    pub location: Option<Location>,
    pub raw_code: Option<String>,
    pub raw_text: Option<String>,
    /// Who did it at the carrier (eCMR history `by`), when the carrier says.
    pub actor: Option<String>,
    pub dedup_key: String,
}

/// A document the carrier holds for the shipment: the domain's type (stored by the
/// store, filled in by the carriers), named here too for the adapters.
pub use crate::domain::DocumentLink;

/// A carrier's current view of a shipment.
#[derive(Debug, Clone, Default)]
pub struct TrackingSnapshot {
    /// Normalized status; None when the carrier's state has no mapping (kept raw).
    pub status: Option<(Status, Option<String>)>,
    pub carrier_status: Option<String>,
    pub events: Vec<CarrierEvent>,
    pub estimated_delivery: Option<DateTime<Utc>>,
    pub documents: Vec<DocumentLink>,
    /// Proof of delivery, when the carrier reports one (e-Courier's POD).
    pub proof: Option<ProofReport>,
}

/// One shipment on a carrier's own list (eCMR's shipment overview, AfterShip's tracking
/// list), what reconciliation compares with ours.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// The carrier's id for it: what a booked shipment of ours keeps as
    /// `carrier_reference` (eCMR's tracking number, AfterShip's tracking id).
    pub carrier_reference: String,
    pub tracking_number: Option<String>,
    /// Normalized status; None when the carrier's state has no mapping (kept raw).
    pub status: Option<(Status, Option<String>)>,
    pub carrier_status: Option<String>,
    /// The courier slug where the carrier needs one to track it (AfterShip); our `service`.
    pub slug: Option<String>,
}

/// One page of a carrier's list.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub items: Vec<Listed>,
    /// Where the next page starts (opaque to the caller; a page number for both carriers
    /// so far); None on the last page.
    pub next: Option<String>,
    /// How many the carrier says it holds, when it says.
    pub total: Option<u64>,
}

/// One carrier connection's client, built once per connection version.
#[async_trait]
pub trait CarrierClient: Send + Sync {
    /// The circuit breaker's state on this instance, where the client has one.
    fn breaker(&self) -> Option<super::limits::BreakerState> {
        None
    }
    /// Prove the credentials with the cheapest authenticated call.
    async fn verify(&self, cx: &CallCx) -> Result<(), CarrierError>;
    async fn book(&self, _cx: &CallCx, _req: &OrderRequest<'_>) -> Result<Booked, CarrierError> {
        Err(CarrierError::Unsupported(Capability::Book))
    }
    async fn update(&self, _cx: &CallCx, _req: &OrderRequest<'_>) -> Result<(), CarrierError> {
        Err(CarrierError::Unsupported(Capability::Update))
    }
    async fn cancel(&self, _cx: &CallCx, _req: &OrderRequest<'_>) -> Result<(), CarrierError> {
        Err(CarrierError::Unsupported(Capability::Cancel))
    }
    async fn quote(&self, _cx: &CallCx, _plan: &ShipmentPlan) -> Result<Quote, CarrierError> {
        Err(CarrierError::Unsupported(Capability::Quote))
    }
    async fn track(&self, _cx: &CallCx, _req: &TrackRequest<'_>) -> Result<TrackingSnapshot, CarrierError> {
        Err(CarrierError::Unsupported(Capability::Refresh))
    }
    /// Register an existing tracking number (AfterShip create tracking).
    async fn register(&self, _cx: &CallCx, _req: &OrderRequest<'_>) -> Result<Booked, CarrierError> {
        Err(CarrierError::Unsupported(Capability::RegisterTracking))
    }
    async fn retrack(&self, _cx: &CallCx, _req: &TrackRequest<'_>) -> Result<TrackingSnapshot, CarrierError> {
        Err(CarrierError::Unsupported(Capability::Retrack))
    }
    async fn complete(
        &self,
        _cx: &CallCx,
        _req: &TrackRequest<'_>,
        _reason: CompleteReason,
    ) -> Result<TrackingSnapshot, CarrierError> {
        Err(CarrierError::Unsupported(Capability::Complete))
    }
    /// Delivery-date predictions for 1-5 items (AfterShip predict-batch), items already
    /// validated by the caller; answers the carrier's items.
    async fn estimate_delivery(
        &self,
        _cx: &CallCx,
        _items: &[serde_json::Value],
    ) -> Result<Vec<serde_json::Value>, CarrierError> {
        Err(CarrierError::Unsupported(Capability::EstimatedDeliveryDates))
    }
    /// Hand tracking numbers to a sink (ecomdash); one result per item, in order.
    async fn submit_tracking(&self, _cx: &CallCx, _items: &[SinkItem]) -> Result<Vec<SinkResult>, CarrierError> {
        Err(CarrierError::Unsupported(Capability::Sink))
    }
    /// One page of the carrier's own list of the connection's shipments (reconciliation),
    /// from `cursor` (None: the first page).
    async fn list_page(&self, _cx: &CallCx, _cursor: Option<&str>) -> Result<ListPage, CarrierError> {
        Err(CarrierError::Unsupported(Capability::Reconcile))
    }
}

/// Everything a client is built from: one connection, decrypted.
pub struct ConnectionConfig {
    pub tenant_id: String,
    pub connection_id: String,
    pub carrier: String,
    pub base_url: Option<String>,
    pub credentials: Credentials,
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub token_store: Arc<dyn TokenStore>,
    /// Rate limit, concurrency cap, 429 gate and breaker of this connection.
    pub limits: Arc<Limits>,
}

/// Decrypted credential fields; values never print.
#[derive(Clone, Default)]
pub struct Credentials(pub std::collections::BTreeMap<String, SecretString>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Credentials {
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.0.get(name)
    }
}

/// Shared by every client: one HTTP connection pool, timeouts, log caps.
#[derive(Clone)]
pub struct Shared {
    pub http: reqwest::Client,
    pub exchange_body_limit: usize,
}

/// Build the client for a connection from its carrier's descriptor, behind its
/// circuit breaker.
pub fn build_client(cfg: ConnectionConfig, shared: &Shared) -> Result<Arc<dyn CarrierClient>, CarrierError> {
    let limits = cfg.limits.clone();
    let build = super::get(&cfg.carrier).and_then(|c| c.client);
    let Some(build) = build else {
        return Err(CarrierError::Misconfigured { message: format!("carrier {} is not available yet", cfg.carrier) });
    };
    let inner = build(cfg, shared)?;
    Ok(Arc::new(Guarded { inner, limits }))
}

/// The circuit breaker around every operation of a client: fail fast while open, and
/// count only transient failures (a carrier's validation error says nothing about
/// its health).
struct Guarded {
    inner: Arc<dyn CarrierClient>,
    limits: Arc<Limits>,
}

impl Guarded {
    fn done<T>(&self, r: Result<T, CarrierError>) -> Result<T, CarrierError> {
        match &r {
            Err(CarrierError::Unsupported(_)) => {}
            Err(e) => self.limits.record(e.is_transient()),
            Ok(_) => self.limits.record(false),
        }
        r
    }
}

#[async_trait]
impl CarrierClient for Guarded {
    fn breaker(&self) -> Option<super::limits::BreakerState> {
        Some(self.limits.breaker_state())
    }
    async fn verify(&self, cx: &CallCx) -> Result<(), CarrierError> {
        self.limits.check_breaker()?;
        self.done(self.inner.verify(cx).await)
    }
    async fn book(&self, cx: &CallCx, req: &OrderRequest<'_>) -> Result<Booked, CarrierError> {
        self.limits.check_breaker()?;
        self.done(self.inner.book(cx, req).await)
    }
    async fn update(&self, cx: &CallCx, req: &OrderRequest<'_>) -> Result<(), CarrierError> {
        self.limits.check_breaker()?;
        self.done(self.inner.update(cx, req).await)
    }
    async fn cancel(&self, cx: &CallCx, req: &OrderRequest<'_>) -> Result<(), CarrierError> {
        self.limits.check_breaker()?;
        self.done(self.inner.cancel(cx, req).await)
    }
    async fn quote(&self, cx: &CallCx, plan: &ShipmentPlan) -> Result<Quote, CarrierError> {
        self.limits.check_breaker()?;
        self.done(self.inner.quote(cx, plan).await)
    }
    async fn track(&self, cx: &CallCx, req: &TrackRequest<'_>) -> Result<TrackingSnapshot, CarrierError> {
        self.limits.check_breaker()?;
        self.done(self.inner.track(cx, req).await)
    }
    async fn register(&self, cx: &CallCx, req: &OrderRequest<'_>) -> Result<Booked, CarrierError> {
        self.limits.check_breaker()?;
        self.done(self.inner.register(cx, req).await)
    }
    async fn retrack(&self, cx: &CallCx, req: &TrackRequest<'_>) -> Result<TrackingSnapshot, CarrierError> {
        self.limits.check_breaker()?;
        self.done(self.inner.retrack(cx, req).await)
    }
    async fn complete(
        &self,
        cx: &CallCx,
        req: &TrackRequest<'_>,
        reason: CompleteReason,
    ) -> Result<TrackingSnapshot, CarrierError> {
        self.limits.check_breaker()?;
        self.done(self.inner.complete(cx, req, reason).await)
    }
    async fn estimate_delivery(
        &self,
        cx: &CallCx,
        items: &[serde_json::Value],
    ) -> Result<Vec<serde_json::Value>, CarrierError> {
        self.limits.check_breaker()?;
        self.done(self.inner.estimate_delivery(cx, items).await)
    }
    async fn submit_tracking(&self, cx: &CallCx, items: &[SinkItem]) -> Result<Vec<SinkResult>, CarrierError> {
        self.limits.check_breaker()?;
        self.done(self.inner.submit_tracking(cx, items).await)
    }
    async fn list_page(&self, cx: &CallCx, cursor: Option<&str>) -> Result<ListPage, CarrierError> {
        self.limits.check_breaker()?;
        self.done(self.inner.list_page(cx, cursor).await)
    }
}
