//! eCMR.services as the gateway sees it (docs/carriers/ecmr.md "ecmr"; `docs/carriers/ecmr.md`).

use std::sync::Arc;

use super::{CARRIER, EcmrClient, SETTINGS, validate_settings};
use crate::carriers::Capability::{Book, Reconcile, Refresh};
use crate::carriers::descriptor::{BaseUrl, Carrier, DefaultLimits, Polling, no_rules, req};
use crate::carriers::{CarrierClient, CarrierError, ConnectionConfig, Shared};

pub static DESCRIPTOR: Carrier = Carrier {
    slug: CARRIER,
    name: "eCMR.services",
    available: true,
    capabilities: &[Book, Refresh, Reconcile],
    credential_sets: &[&[req("organization_id", "organisation id"), req("api_token", "organisation API token")]],
    settings: &SETTINGS,
    // The seed publishes no public host: each installation is its own.
    base_url: BaseUrl::Required,
    limits: DefaultLimits { rate_per_second: None, max_concurrency: None },
    check_credentials: no_rules,
    check_settings: validate_settings,
    generate_credentials: None,
    client: Some(client),
    // One shipment-details call per refresh.
    polling: Some(Polling { calls_per_refresh: 1 }),
    keep_alive: None,
    inbound: None,
    status_mappings: false,
    check_estimate_items: None,
};

fn client(cfg: ConnectionConfig, shared: &Shared) -> Result<Arc<dyn CarrierClient>, CarrierError> {
    Ok(Arc::new(EcmrClient::new(cfg, shared)?))
}
