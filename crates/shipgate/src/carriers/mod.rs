//! Carrier adapters. One folder per carrier (client, wire types, mapping); this
//! module holds what they share: the capability table, the `CarrierClient` trait the
//! HTTP layer calls, the error classes every adapter maps its failures onto, and the
//! registry. A new carrier is one folder plus one arm in [`build_client`].

pub mod aftership;
pub mod ecmr;
pub mod ecomdash;
pub mod ecourier;
pub mod exchange;
pub mod limits;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{FieldError, Money, ShipmentPlan, Status};
pub use exchange::CallCx;
pub use limits::{Limits, LimitsConfig};
pub use token::{TokenCell, TokenStore};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Book,
    Update,
    Cancel,
    Quote,
    EstimatedDeliveryDates,
    RegisterTracking,
    Refresh,
    ReceivePushes,
    Retrack,
    Complete,
    Sink,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Book => "book",
            Capability::Update => "update",
            Capability::Cancel => "cancel",
            Capability::Quote => "quote",
            Capability::EstimatedDeliveryDates => "estimated_delivery_dates",
            Capability::RegisterTracking => "register_tracking",
            Capability::Refresh => "refresh",
            Capability::ReceivePushes => "receive_pushes",
            Capability::Retrack => "retrack",
            Capability::Complete => "complete",
            Capability::Sink => "sink",
        }
    }
}

/// One credential or setting field a connection takes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldSpec {
    pub name: &'static str,
    pub required: bool,
    pub description: &'static str,
}

const fn req(name: &'static str, description: &'static str) -> FieldSpec {
    FieldSpec { name, required: true, description }
}
const fn opt(name: &'static str, description: &'static str) -> FieldSpec {
    FieldSpec { name, required: false, description }
}

/// A carrier as `GET /v1/carriers` shows it (PRODUCT.md capability table as data).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CarrierInfo {
    #[schema(example = "ecourier")]
    pub slug: &'static str,
    #[schema(example = "e-Courier")]
    pub name: &'static str,
    /// False while the adapter is not built yet: connections cannot be created.
    pub available: bool,
    pub capabilities: Vec<Capability>,
    /// Alternative credential sets; a connection supplies exactly one of them.
    pub credential_sets: Vec<Vec<FieldSpec>>,
    pub settings: Vec<FieldSpec>,
    #[schema(example = json!(null))]
    pub default_base_url: Option<&'static str>,
}

pub fn catalog() -> Vec<CarrierInfo> {
    use Capability::*;
    vec![
        CarrierInfo {
            slug: "ecourier",
            name: "e-Courier",
            available: true,
            capabilities: vec![Book, Update, Cancel, Quote, Refresh],
            credential_sets: vec![
                vec![
                    req("website", "e-Courier website code"),
                    req("username", "API user"),
                    req("password", "API password"),
                ],
                vec![req("user_guid", "UserGUID issued directly by the courier")],
            ],
            settings: ecourier::SETTINGS.to_vec(),
            default_base_url: None,
        },
        CarrierInfo {
            slug: "ecmr",
            name: "eCMR.services",
            available: true,
            capabilities: vec![Book, Refresh],
            credential_sets: vec![vec![
                req("organization_id", "organisation id"),
                req("api_token", "organisation API token"),
            ]],
            settings: ecmr::SETTINGS.to_vec(),
            default_base_url: None,
        },
        CarrierInfo {
            slug: "aftership",
            name: "AfterShip",
            available: true,
            capabilities: vec![
                Update,
                Cancel,
                EstimatedDeliveryDates,
                RegisterTracking,
                Refresh,
                ReceivePushes,
                Retrack,
                Complete,
            ],
            credential_sets: vec![vec![
                req("api_key", "as-api-key"),
                opt("webhook_secret", "inbound webhook HMAC secret"),
            ]],
            settings: aftership::SETTINGS.to_vec(),
            default_base_url: Some("https://api.aftership.com/tracking/2024-04"),
        },
        CarrierInfo {
            slug: "ecomexpress",
            name: "Ecom Express",
            // Inbound only: no client; connections hold the push credentials.
            available: true,
            capabilities: vec![ReceivePushes],
            credential_sets: vec![vec![
                opt("username", "inbound Basic Auth user"),
                opt("password", "inbound Basic Auth password"),
            ]],
            settings: vec![],
            default_base_url: None,
        },
        CarrierInfo {
            slug: "ecomdash",
            name: "ecomdash",
            available: true,
            capabilities: vec![Sink],
            credential_sets: vec![vec![
                req("subscription_key", "Ocp-Apim-Subscription-Key"),
                req("integration_key", "ecd-subscription-key"),
            ]],
            settings: ecomdash::SETTINGS.to_vec(),
            default_base_url: Some("https://ecomdash.azure-api.net"),
        },
    ]
}

pub fn info(slug: &str) -> Option<CarrierInfo> {
    catalog().into_iter().find(|c| c.slug == slug)
}

/// Whether an available carrier has this capability (PRODUCT.md capability table).
pub fn supports(slug: &str, capability: Capability) -> bool {
    info(slug).is_some_and(|c| c.available && c.capabilities.contains(&capability))
}

/// How a carrier call failed, by what the caller should do about it (CARRIERS.md
/// "gateway behaviour" columns).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CarrierError {
    /// Down, slow or busy: try again later. Safe to retry only for idempotent calls.
    #[error("carrier temporarily unavailable: {message}")]
    Transient { message: String, retry_after: Option<Duration> },
    /// The carrier refused the request's content (validation, business rule).
    #[error("carrier rejected the request: {message}")]
    Rejected { message: String },
    /// The carrier refused to change an existing order (HTTP 409).
    #[error("carrier refused the change: {message}")]
    Conflict { message: String },
    /// The carrier does not know the object (lookup before retry relies on this).
    #[error("carrier does not know it: {message}")]
    NotFound { message: String },
    /// Credentials, account or endpoint are wrong: nothing works until a human fixes the connection.
    #[error("connection misconfigured: {message}")]
    Misconfigured { message: String },
    /// The carrier and we disagree on the wire format: a gateway bug, alert.
    #[error("carrier protocol error: {message}")]
    Protocol { message: String },
    #[error("capability not supported by this carrier: {0:?}")]
    Unsupported(Capability),
}

impl CarrierError {
    pub fn is_transient(&self) -> bool {
        matches!(self, CarrierError::Transient { .. })
    }
    /// When the carrier said to come back (Retry-After, rate-limit reset).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CarrierError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            CarrierError::Transient { .. } => "transient",
            CarrierError::Rejected { .. } => "rejected",
            CarrierError::Conflict { .. } => "conflict",
            CarrierError::NotFound { .. } => "not_found",
            CarrierError::Misconfigured { .. } => "misconfigured",
            CarrierError::Protocol { .. } => "protocol",
            CarrierError::Unsupported(_) => "unsupported",
        }
    }
    pub fn message(&self) -> String {
        match self {
            CarrierError::Transient { message, .. }
            | CarrierError::Rejected { message }
            | CarrierError::Conflict { message }
            | CarrierError::NotFound { message }
            | CarrierError::Misconfigured { message }
            | CarrierError::Protocol { message } => message.clone(),
            CarrierError::Unsupported(c) => format!("{} is not supported", c.as_str()),
        }
    }
}

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

/// One tracking number to hand to a sink (ecomdash submitTrackingInfo item).
#[derive(Debug, Clone)]
pub struct SinkItem {
    /// Our key for the item, echoed in its result.
    pub key: String,
    /// The sink's shipment id (ecomdash `ShipmentId`).
    pub sink_shipment_id: String,
    pub carrier_id: Option<String>,
    pub tracking_number: String,
    pub tracking_url: Option<String>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub estimated_delivery: Option<DateTime<Utc>>,
    pub line_item_ids: Option<Vec<String>>,
}

/// The sink's verdict on one item.
#[derive(Debug, Clone)]
pub struct SinkResult {
    pub key: String,
    pub ok: bool,
    /// Worth retrying (the sink's message says so).
    pub transient: bool,
    pub message: Option<String>,
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

/// A document the carrier holds for the shipment (eCMR's CMR PDF).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct DocumentLink {
    #[schema(example = "cmr")]
    pub kind: String,
    pub url: String,
}

/// A carrier's current view of a shipment.
#[derive(Debug, Clone, Default)]
pub struct TrackingSnapshot {
    /// Normalized status; None when the carrier's state has no mapping (kept raw).
    pub status: Option<(Status, Option<String>)>,
    pub carrier_status: Option<String>,
    pub events: Vec<CarrierEvent>,
    pub estimated_delivery: Option<DateTime<Utc>>,
    pub documents: Vec<DocumentLink>,
}

/// One carrier connection's client, built once per connection version.
#[async_trait]
pub trait CarrierClient: Send + Sync {
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

/// Settings every carrier accepts: the connection's rate limit and concurrency cap.
pub const LIMIT_SETTINGS: [&str; 2] = ["rate_limit_per_second", "max_concurrency"];

/// Check a connection's credentials and settings against the carrier's fields.
pub fn validate_connection(
    carrier: &CarrierInfo,
    credentials: &std::collections::BTreeMap<String, String>,
    settings: &serde_json::Map<String, serde_json::Value>,
    base_url: Option<&str>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let names: Vec<&str> = credentials.keys().map(String::as_str).collect();
    let fits = |set: &Vec<FieldSpec>| {
        set.iter().filter(|f| f.required).all(|f| names.contains(&f.name))
            && names.iter().all(|n| set.iter().any(|f| f.name == *n))
    };
    if !carrier.credential_sets.iter().any(fits) {
        let sets: Vec<String> = carrier
            .credential_sets
            .iter()
            .map(|s| {
                s.iter()
                    .map(|f| if f.required { f.name.to_owned() } else { format!("{}?", f.name) })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        errors.push(FieldError::new("credentials", format!("expected exactly one of: {{{}}}", sets.join("} or {"))));
    }
    for (k, v) in credentials {
        if v.is_empty() {
            errors.push(FieldError::new(format!("credentials.{k}"), "must not be empty"));
        }
    }
    for key in settings.keys() {
        if !carrier.settings.iter().any(|f| f.name == key) && !LIMIT_SETTINGS.contains(&key.as_str()) {
            errors.push(FieldError::new(format!("settings.{key}"), "unknown setting for this carrier"));
        }
    }
    // Every connection's limits are configurable (carriers::limits); a carrier's own
    // validator may narrow the range.
    for name in LIMIT_SETTINGS {
        if let Some(v) = settings.get(name)
            && !v.as_u64().is_some_and(|n| (1..=10_000).contains(&n))
            && !carrier.settings.iter().any(|f| f.name == name)
        {
            errors.push(FieldError::new(format!("settings.{name}"), "must be an integer from 1 to 10000"));
        }
    }
    for f in carrier.settings.iter().filter(|f| f.required) {
        if !settings.contains_key(f.name) {
            errors.push(FieldError::new(format!("settings.{}", f.name), "is required"));
        }
    }
    match base_url {
        Some(u) if reqwest::Url::parse(u).map(|u| !matches!(u.scheme(), "http" | "https")).unwrap_or(true) => {
            errors.push(FieldError::new("base_url", "must be an absolute http(s) URL"));
        }
        Some(_) => {}
        None if carrier.default_base_url.is_none() && carrier.slug != "ecomexpress" => {
            errors.push(FieldError::new("base_url", "is required for this carrier"));
        }
        None => {}
    }
    if carrier.slug == "ecourier" {
        errors.extend(ecourier::validate_settings(settings));
    }
    if carrier.slug == "ecomdash" {
        errors.extend(ecomdash::validate_settings(settings));
    }
    if carrier.slug == "ecmr" {
        errors.extend(ecmr::validate_settings(settings));
    }
    if carrier.slug == "aftership" {
        errors.extend(aftership::validate_settings(settings));
    }
    errors
}

/// A connection's limits: the carrier's documented defaults, overridable in settings
/// (`rate_limit_per_second`, `max_concurrency`).
pub fn limits_for(carrier: &str, settings: &serde_json::Map<String, serde_json::Value>) -> LimitsConfig {
    let setting =
        |name: &str| settings.get(name).and_then(serde_json::Value::as_u64).and_then(|n| u32::try_from(n).ok());
    let (rate, concurrency) = match carrier {
        // AfterShip 2024-04: 10 requests per second per account (CARRIERS.md).
        "aftership" => (Some(10), None),
        // ecomdash: at most 3 calls in flight per connection (CARRIERS.md).
        "ecomdash" => (None, Some(3)),
        _ => (None, None),
    };
    LimitsConfig {
        rate_per_second: setting("rate_limit_per_second").or(rate),
        max_concurrency: setting("max_concurrency").or(concurrency),
        ..LimitsConfig::default()
    }
}

/// Build the client for a connection, behind its circuit breaker.
pub fn build_client(cfg: ConnectionConfig, shared: &Shared) -> Result<Arc<dyn CarrierClient>, CarrierError> {
    let limits = cfg.limits.clone();
    let inner: Arc<dyn CarrierClient> = match cfg.carrier.as_str() {
        "ecourier" => Arc::new(ecourier::EcourierClient::new(cfg, shared)?),
        "ecomdash" => Arc::new(ecomdash::EcomdashClient::new(cfg, shared)?),
        "ecmr" => Arc::new(ecmr::EcmrClient::new(cfg, shared)?),
        "aftership" => Arc::new(aftership::AftershipClient::new(cfg, shared)?),
        other => {
            return Err(CarrierError::Misconfigured { message: format!("carrier {other} is not available yet") });
        }
    };
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
}
