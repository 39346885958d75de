//! e-Courier as the gateway sees it (docs/carriers/ecourier.md "ecourier"; the e-Courier API
//! reference, seed 001).

use std::sync::Arc;

use super::{CARRIER, EcourierClient, SETTINGS, validate_settings};
use crate::carriers::Capability::{Book, Cancel, Quote, Refresh, Update};
use crate::carriers::descriptor::{BaseUrl, Carrier, DefaultLimits, KeepAlive, Polling, no_rules, req};
use crate::carriers::{CarrierClient, CarrierError, ConnectionConfig, Shared};

pub static DESCRIPTOR: Carrier = Carrier {
    slug: CARRIER,
    name: "e-Courier",
    available: true,
    capabilities: &[Book, Update, Cancel, Quote, Refresh],
    credential_sets: &[
        &[req("website", "e-Courier website code"), req("username", "API user"), req("password", "API password")],
        &[req("user_guid", "UserGUID issued directly by the courier")],
    ],
    settings: &SETTINGS,
    // Every customer has its own e-Courier site.
    base_url: BaseUrl::Required,
    limits: DefaultLimits { rate_per_second: None, max_concurrency: None },
    check_credentials: no_rules,
    check_settings: validate_settings,
    generate_credentials: None,
    client: Some(client),
    // One GetJsonOrder per refresh.
    polling: Some(Polling { calls_per_refresh: 1 }),
    // Seed: a UserGUID expires after 20 idle days, and "the RefreshGUID endpoint can be
    // used to ensure an access token does not expire". `verify` of a connection holding
    // a directly issued GUID is RefreshGUID; after a week idle it is renewed, well
    // inside the 20 days.
    keep_alive: Some(KeepAlive { credential: "user_guid", idle_days: 7 }),
    inbound: None,
    status_mappings: false,
    check_estimate_items: None,
};

fn client(cfg: ConnectionConfig, shared: &Shared) -> Result<Arc<dyn CarrierClient>, CarrierError> {
    Ok(Arc::new(EcourierClient::new(cfg, shared)?))
}
