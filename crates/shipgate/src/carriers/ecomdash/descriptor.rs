//! ecomdash as the gateway sees it: a sink for tracking numbers (docs/carriers/ecomdash.md
//! "ecomdash"; seed 004). Where a shipment's number goes is its `channel.ecomdash`
//! ([`super::EcomdashChannel`]).

use std::sync::Arc;

use super::{CARRIER, DEFAULT_BASE_URL, EcomdashClient, SETTINGS, validate_settings};
use crate::carriers::Capability::Sink;
use crate::carriers::descriptor::{BaseUrl, Carrier, DefaultLimits, no_rules, req};
use crate::carriers::{CarrierClient, CarrierError, ConnectionConfig, Shared};

pub static DESCRIPTOR: Carrier = Carrier {
    slug: CARRIER,
    name: "ecomdash",
    available: true,
    capabilities: &[Sink],
    credential_sets: &[&[
        req("subscription_key", "Ocp-Apim-Subscription-Key"),
        req("integration_key", "ecd-subscription-key"),
    ]],
    settings: &SETTINGS,
    base_url: BaseUrl::Default(DEFAULT_BASE_URL),
    // At most 3 calls in flight per connection (docs/carriers/ecomdash.md).
    limits: DefaultLimits { rate_per_second: None, max_concurrency: Some(3) },
    check_credentials: no_rules,
    check_settings: validate_settings,
    generate_credentials: None,
    client: Some(client),
    polling: None,
    keep_alive: None,
    inbound: None,
    status_mappings: false,
    check_estimate_items: None,
};

fn client(cfg: ConnectionConfig, shared: &Shared) -> Result<Arc<dyn CarrierClient>, CarrierError> {
    Ok(Arc::new(EcomdashClient::new(cfg, shared)?))
}
