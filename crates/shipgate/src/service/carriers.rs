//! What the front ends ask of the carrier registry: the catalog (`GET /v1/carriers`),
//! which slugs exist (an unknown one in a filter is refused, not answered empty), and
//! whether a carrier can do what is asked.

use crate::carriers::{self, Capability, CarrierInfo};
use crate::service::{Error, Refusal, Result};

/// Every carrier, its capabilities and the fields a connection to it takes.
pub fn catalog() -> Vec<CarrierInfo> {
    carriers::catalog()
}

/// Every registered carrier's slug, in the catalog's order.
pub fn slugs() -> Vec<&'static str> {
    carriers::all().iter().map(|c| c.slug).collect()
}

pub fn is_known(slug: &str) -> bool {
    carriers::get(slug).is_some()
}

/// Refused with `capability_not_supported` unless the carrier can do it (docs/product.md:
/// asking a carrier for a capability it lacks is never a 500).
pub fn require(carrier: &str, capability: Capability) -> Result<()> {
    if carriers::supports(carrier, capability) {
        return Ok(());
    }
    Err(Error::refused(
        Refusal::CapabilityNotSupported,
        format!("carrier {carrier} does not support {}", capability.as_str()),
    ))
}
