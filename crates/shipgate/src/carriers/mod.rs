//! Carriers: the registry (this file) and one folder per carrier.
//!
//! Each folder (`carriers/<name>/`) holds a carrier's descriptor, client, wire types,
//! mapping and, where it pushes, its inbound parser; it exports one [`Carrier`]
//! descriptor (`carriers::descriptor`) that says everything the rest of the gateway
//! asks about it. This file is the one place that lists carriers: a carrier is its
//! module line and its entry in [`REGISTRY`] (and, for a sink, its field in
//! [`Channel`]). Everything else asks the registry: [`get`], [`all`], [`catalog`].
//! `docs/adding-a-carrier.md` says how to add one; `tests/carrier_names.rs` checks that
//! no other module names one.
//!
//! What the carriers share: [`descriptor`] (the descriptor and the capability table),
//! [`client`] (the `CarrierClient` trait the services call and its request and answer
//! types), [`error`] (the failure classes every adapter maps onto), [`inbound`] (pushes
//! in the gateway's vocabulary), [`sink`] (channels), and the plumbing every client
//! uses: [`exchange`] (recorded calls), [`limits`], [`token`].

pub mod client;
pub mod descriptor;
pub mod error;
pub mod exchange;
pub mod inbound;
pub mod limits;
pub mod sink;
pub mod token;

pub mod aftership;
pub mod ecmr;
pub mod ecomdash;
pub mod ecomexpress;
pub mod ecourier;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use client::{
    Booked, CarrierClient, CarrierEvent, CompleteReason, ConnectionConfig, Credentials, DocumentLink, ListPage, Listed,
    Location, OrderRequest, Quote, Shared, TrackRequest, TrackingSnapshot, build_client,
};
pub use descriptor::{Capability, Carrier, CarrierInfo, FieldSpec, LIMIT_SETTINGS};
pub use error::CarrierError;
pub use exchange::CallCx;
pub use limits::{BreakerState, Limits, LimitsConfig};
pub use sink::{SinkItem, SinkResult, SinkStatus, SinkTarget};
pub use token::{TokenCell, TokenStore};

/// Every carrier, in the order `GET /v1/carriers` lists them.
pub static REGISTRY: &[&Carrier] = &[
    &ecourier::DESCRIPTOR,
    &ecmr::DESCRIPTOR,
    &aftership::DESCRIPTOR,
    &ecomexpress::DESCRIPTOR,
    &ecomdash::DESCRIPTOR,
];

/// Sinks a shipment reports to (docs/product.md `channel`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecomdash: Option<ecomdash::EcomdashChannel>,
}

impl Channel {
    /// Each sink the channel names, by its carrier's slug (the field's name).
    pub fn targets(&self) -> Vec<(&'static str, &dyn SinkTarget)> {
        // Destructured, so that a new sink field cannot be forgotten here.
        let Channel { ecomdash: to_ecomdash } = self;
        let mut targets: Vec<(&'static str, &dyn SinkTarget)> = Vec::new();
        if let Some(t) = to_ecomdash {
            targets.push((ecomdash::DESCRIPTOR.slug, t));
        }
        targets
    }

    /// The entry for one sink carrier.
    pub fn target(&self, sink: &str) -> Option<&dyn SinkTarget> {
        self.targets().into_iter().find(|(s, _)| *s == sink).map(|(_, t)| t)
    }
}

/// Each sink a shipment reports to (its `channel`), with what it made of the shipment.
#[derive(ToSchema)]
#[allow(dead_code)] // the schema of a JSON value the store keeps; never built in Rust
pub struct ShipmentSinks {
    ecomdash: Option<SinkStatus>,
}

/// Every registered carrier.
pub fn all() -> &'static [&'static Carrier] {
    REGISTRY
}

/// The carrier with this slug.
pub fn get(slug: &str) -> Option<&'static Carrier> {
    REGISTRY.iter().copied().find(|c| c.slug == slug)
}

/// Every carrier as `GET /v1/carriers` shows it.
pub fn catalog() -> Vec<CarrierInfo> {
    REGISTRY.iter().map(|c| c.info()).collect()
}

pub fn info(slug: &str) -> Option<CarrierInfo> {
    get(slug).map(Carrier::info)
}

/// Whether an available carrier has this capability (the carriers table of docs/product.md).
pub fn supports(slug: &str, capability: Capability) -> bool {
    get(slug).is_some_and(|c| c.supports(capability))
}

/// A connection's limits: its carrier's documented defaults, overridable in settings.
pub fn limits_for(carrier: &str, settings: &serde_json::Map<String, serde_json::Value>) -> LimitsConfig {
    match get(carrier) {
        Some(c) => c.limits(settings),
        None => descriptor::DefaultLimits::default().config(settings),
    }
}

#[cfg(test)]
mod tests;
