//! The carrier descriptor: everything the rest of the gateway asks about a carrier, as one
//! `static` per carrier folder (`carriers/<name>/descriptor.rs`), listed in the registry
//! (`carriers/mod.rs`). HTTP, service, tracking, jobs and the SQL the gateway writes at
//! start ask a descriptor, never a carrier's name (`docs/adding-a-carrier.md`).
//!
//! Data plus function pointers rather than a `Carrier` trait: most answers are facts
//! (name, fields, limits, whether and how it is polled), a struct literal shows a
//! carrier's whole profile on one screen, and an `Option` says "does not do this" where
//! a trait's default method would hide it. Descriptors are built at compile time, need
//! nothing registered at start, and a test walks all of them (the registry's checks that
//! capabilities and hooks agree). What differs in behaviour is a function the carrier's
//! folder provides (its client, its settings rules, its inbound parser).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::client::{CarrierClient, ConnectionConfig, Shared};
use super::error::CarrierError;
use super::inbound::Inbound;
use super::limits::LimitsConfig;
use crate::domain::FieldError;

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
    /// Its own list of the connection's shipments can be walked and compared with ours
    /// (`POST /v1/connections/{id}/reconcile`).
    Reconcile,
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
            Capability::Reconcile => "reconcile",
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

/// A required field.
pub const fn req(name: &'static str, description: &'static str) -> FieldSpec {
    FieldSpec { name, required: true, description }
}

/// An optional field.
pub const fn opt(name: &'static str, description: &'static str) -> FieldSpec {
    FieldSpec { name, required: false, description }
}

/// A carrier as `GET /v1/carriers` shows it (the carriers table of docs/product.md as data).
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

/// Where a connection's calls go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseUrl {
    /// Every account has its own (an e-Courier site, an eCMR installation): the
    /// connection must give it.
    Required,
    /// One public API; a connection may override it (a sandbox, a proxy).
    Default(&'static str),
    /// Nothing is called (the carrier only pushes); one given is still checked.
    Unused,
}

/// A carrier's documented limits, each overridable per connection
/// (`rate_limit_per_second`, `max_concurrency`; `carriers::limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DefaultLimits {
    pub rate_per_second: Option<u32>,
    pub max_concurrency: Option<u32>,
}

impl DefaultLimits {
    /// The limits of a connection with these `settings`.
    pub fn config(self, settings: &Map<String, Value>) -> LimitsConfig {
        let setting = |name: &str| settings.get(name).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
        LimitsConfig {
            rate_per_second: setting("rate_limit_per_second").or(self.rate_per_second),
            max_concurrency: setting("max_concurrency").or(self.max_concurrency),
            ..LimitsConfig::default()
        }
    }
}

/// How the tracking engine polls a carrier (`src/tracking`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    /// HTTP calls one refresh makes, which is what the carrier's rate limit counts.
    pub calls_per_refresh: u32,
}

/// A periodic renewal a connection needs to keep working (`service::keepalive`): a
/// connection holding `credential` whose token was not renewed for `idle_days` is
/// verified again, which renews it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    pub credential: &'static str,
    pub idle_days: i32,
}

/// A carrier's own rules on some input: the field errors (empty when it passes).
pub type Rules<T> = fn(&T) -> Vec<FieldError>;

/// Builds a connection's client (the circuit breaker is put around it by
/// [`super::build_client`]).
pub type BuildClient = fn(ConnectionConfig, &Shared) -> Result<Arc<dyn CarrierClient>, CarrierError>;

/// Everything the gateway asks about one carrier.
pub struct Carrier {
    /// The carrier's id in the API (`connections.carrier`), the URL of its pushes
    /// (`/v1/inbound/<slug>/...`) and its key in a shipment's `channel`.
    pub slug: &'static str,
    pub name: &'static str,
    /// False while the adapter is not built yet: listed, but no connection can be made.
    pub available: bool,
    /// What it can do (the carriers table of docs/product.md); the registry's tests check that
    /// the hooks below agree with it.
    pub capabilities: &'static [Capability],
    /// Alternative credential sets; a connection supplies exactly one of them.
    pub credential_sets: &'static [&'static [FieldSpec]],
    pub settings: &'static [FieldSpec],
    pub base_url: BaseUrl,
    pub limits: DefaultLimits,
    /// The carrier's own rules on a connection's credentials, checked before the
    /// generic ones (which credential set fits, no empty value).
    pub check_credentials: Rules<BTreeMap<String, String>>,
    /// The carrier's own rules on a connection's settings (ranges, formats), checked
    /// after the generic ones (known names, the limit settings, required ones).
    pub check_settings: Rules<Map<String, Value>>,
    /// Credentials generated for a connection created without any (an inbound-only
    /// carrier whose credentials are ours to choose), returned once.
    pub generate_credentials: Option<fn() -> BTreeMap<String, String>>,
    /// Its client; None for a carrier the gateway never calls.
    pub client: Option<BuildClient>,
    /// Polled by the tracking engine (carriers with `Refresh`).
    pub polling: Option<Polling>,
    pub keep_alive: Option<KeepAlive>,
    /// Where and how it pushes to the gateway (carriers with `ReceivePushes`).
    pub inbound: Option<&'static Inbound>,
    /// Its pushed status codes go through the status-mapping table
    /// (`/v1/status-mappings` accepts rows only for such carriers).
    pub status_mappings: bool,
    /// Checks the items of `POST /v1/estimated-delivery-dates` before the call
    /// (carriers with `EstimatedDeliveryDates`).
    pub check_estimate_items: Option<Rules<[Value]>>,
}

/// For a carrier without rules of its own.
pub fn no_rules<T: ?Sized>(_: &T) -> Vec<FieldError> {
    Vec::new()
}

/// Settings every carrier accepts: the connection's rate limit and concurrency cap.
pub const LIMIT_SETTINGS: [&str; 2] = ["rate_limit_per_second", "max_concurrency"];

/// The setting of a scheduled reconciliation (carriers with `Reconcile`): every so many
/// hours, 1-720; absent (the default) means never.
pub const RECONCILE_SETTING: &str = "reconcile_every_hours";

impl Carrier {
    pub fn info(&self) -> CarrierInfo {
        CarrierInfo {
            slug: self.slug,
            name: self.name,
            available: self.available,
            capabilities: self.capabilities.to_vec(),
            credential_sets: self.credential_sets.iter().map(|s| s.to_vec()).collect(),
            settings: self.settings.to_vec(),
            default_base_url: match self.base_url {
                BaseUrl::Default(url) => Some(url),
                BaseUrl::Required | BaseUrl::Unused => None,
            },
        }
    }

    /// Whether it is available and has this capability (the carriers table of docs/product.md).
    pub fn supports(&self, capability: Capability) -> bool {
        self.available && self.capabilities.contains(&capability)
    }

    /// A connection's limits: the carrier's documented defaults, overridable in settings
    /// (`rate_limit_per_second`, `max_concurrency`).
    pub fn limits(&self, settings: &Map<String, Value>) -> LimitsConfig {
        self.limits.config(settings)
    }

    /// Check a connection's credentials, settings and base URL against this carrier.
    pub fn validate_connection(
        &self,
        credentials: &BTreeMap<String, String>,
        settings: &Map<String, Value>,
        base_url: Option<&str>,
    ) -> Vec<FieldError> {
        let mut errors = (self.check_credentials)(credentials);
        let names: Vec<&str> = credentials.keys().map(String::as_str).collect();
        let fits = |set: &&[FieldSpec]| {
            set.iter().filter(|f| f.required).all(|f| names.contains(&f.name))
                && names.iter().all(|n| set.iter().any(|f| f.name == *n))
        };
        if !self.credential_sets.iter().any(fits) {
            let sets: Vec<String> = self
                .credential_sets
                .iter()
                .map(|s| {
                    s.iter()
                        .map(|f| if f.required { f.name.to_owned() } else { format!("{}?", f.name) })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .collect();
            errors
                .push(FieldError::new("credentials", format!("expected exactly one of: {{{}}}", sets.join("} or {"))));
        }
        for (k, v) in credentials {
            if v.is_empty() {
                errors.push(FieldError::new(format!("credentials.{k}"), "must not be empty"));
            }
        }
        for key in settings.keys() {
            if key == RECONCILE_SETTING {
                if !self.capabilities.contains(&Capability::Reconcile) {
                    errors.push(FieldError::new(format!("settings.{key}"), "this carrier cannot reconcile"));
                } else if !settings[key].as_u64().is_some_and(|n| (1..=720).contains(&n)) {
                    errors.push(FieldError::new(format!("settings.{key}"), "must be an integer from 1 to 720 (hours)"));
                }
            } else if !self.settings.iter().any(|f| f.name == key) && !LIMIT_SETTINGS.contains(&key.as_str()) {
                errors.push(FieldError::new(format!("settings.{key}"), "unknown setting for this carrier"));
            }
        }
        // Every connection's limits are configurable (carriers::limits); a carrier's own
        // rules may narrow the range.
        for name in LIMIT_SETTINGS {
            if let Some(v) = settings.get(name)
                && !v.as_u64().is_some_and(|n| (1..=10_000).contains(&n))
                && !self.settings.iter().any(|f| f.name == name)
            {
                errors.push(FieldError::new(format!("settings.{name}"), "must be an integer from 1 to 10000"));
            }
        }
        for f in self.settings.iter().filter(|f| f.required) {
            if !settings.contains_key(f.name) {
                errors.push(FieldError::new(format!("settings.{}", f.name), "is required"));
            }
        }
        match base_url {
            Some(u) if reqwest::Url::parse(u).map(|u| !matches!(u.scheme(), "http" | "https")).unwrap_or(true) => {
                errors.push(FieldError::new("base_url", "must be an absolute http(s) URL"));
            }
            Some(_) => {}
            None if self.base_url == BaseUrl::Required => {
                errors.push(FieldError::new("base_url", "is required for this carrier"));
            }
            None => {}
        }
        errors.extend((self.check_settings)(settings));
        if let Some(inbound) = self.inbound {
            errors.extend(inbound.auth.weak_secret(credentials));
        }
        errors
    }
}
