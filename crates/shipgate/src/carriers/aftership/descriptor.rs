//! AfterShip as the gateway sees it (docs/carriers/aftership.md "aftership"; Tracking API 2024-04,
//! seed 002).

use std::sync::Arc;

use super::{AftershipClient, CARRIER, DEFAULT_BASE_URL, SETTINGS, validate_estimate_items, validate_settings};
use crate::carriers::Capability::{
    Cancel, Complete, EstimatedDeliveryDates, ReceivePushes, Reconcile, Refresh, RegisterTracking, Retrack, Update,
};
use crate::carriers::descriptor::{BaseUrl, Carrier, DefaultLimits, Polling, no_rules, opt, req};
use crate::carriers::{CarrierClient, CarrierError, ConnectionConfig, Shared};

pub static DESCRIPTOR: Carrier = Carrier {
    slug: CARRIER,
    name: "AfterShip",
    available: true,
    capabilities: &[
        Update,
        Cancel,
        EstimatedDeliveryDates,
        RegisterTracking,
        Refresh,
        ReceivePushes,
        Retrack,
        Complete,
        Reconcile,
    ],
    credential_sets: &[&[req("api_key", "as-api-key"), opt("webhook_secret", "inbound webhook HMAC secret")]],
    settings: &SETTINGS,
    base_url: BaseUrl::Default(DEFAULT_BASE_URL),
    // 10 requests per second per account (AfterShip 2024-04, docs/carriers/aftership.md).
    limits: DefaultLimits { rate_per_second: Some(10), max_concurrency: None },
    check_credentials: no_rules,
    check_settings: validate_settings,
    generate_credentials: None,
    client: Some(client),
    // A refresh reads the tracking and its last checkpoint (`track`): two calls.
    polling: Some(Polling { calls_per_refresh: 2 }),
    keep_alive: None,
    inbound: Some(&super::inbound::INBOUND),
    // Tags are mapped in code (`mapping`), not through the status-mapping table.
    status_mappings: false,
    check_estimate_items: Some(validate_estimate_items),
};

fn client(cfg: ConnectionConfig, shared: &Shared) -> Result<Arc<dyn CarrierClient>, CarrierError> {
    Ok(Arc::new(AftershipClient::new(cfg, shared)?))
}
