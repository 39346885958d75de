//! Ecom Express: a carrier that only pushes (seed `003_22468744d4026f76.txt`, docs/carriers/ecomexpress.md
//! "ecomexpress"; `docs/carriers/ecomexpress.md`). It sends each scan to the gateway
//! with HTTP Basic Auth; the gateway never calls it, so a connection holds only the
//! push credentials, generated when none are given. Its status codes are mapped through
//! the status-mapping table (defaults seeded from docs/carriers/ecomexpress.md by a migration).

pub mod inbound;

use std::collections::BTreeMap;

use crate::carriers::Capability::ReceivePushes;
use crate::carriers::descriptor::{BaseUrl, Carrier, DefaultLimits, no_rules, opt};
use crate::carriers::inbound::random_token;
use crate::domain::FieldError;

pub const CARRIER: &str = "ecomexpress";

pub static DESCRIPTOR: Carrier = Carrier {
    slug: CARRIER,
    name: "Ecom Express",
    // Inbound only: no client; connections hold the push credentials.
    available: true,
    capabilities: &[ReceivePushes],
    credential_sets: &[&[opt("username", "inbound Basic Auth user"), opt("password", "inbound Basic Auth password")]],
    settings: &[],
    base_url: BaseUrl::Unused,
    limits: DefaultLimits { rate_per_second: None, max_concurrency: None },
    check_credentials,
    check_settings: no_rules,
    generate_credentials: Some(generate_credentials),
    client: None,
    polling: None,
    keep_alive: None,
    inbound: Some(&inbound::INBOUND),
    status_mappings: true,
    check_estimate_items: None,
};

/// Ecom Express sends both as HTTP Basic Auth (seed "Authentication"): both or none
/// (none = generated), and a user without ':' (it ends the user in Basic Auth).
fn check_credentials(creds: &BTreeMap<String, String>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if creds.is_empty() {
        return errors;
    }
    if !(creds.contains_key("username") && creds.contains_key("password")) {
        errors
            .push(FieldError::new("credentials", "give both username and password, or neither to have them generated"));
    }
    if creds.get("username").is_some_and(|u| u.contains(':')) {
        errors.push(FieldError::new("credentials.username", "must not contain ':'"));
    }
    errors
}

/// A strong Basic-Auth pair: 12 lowercase-or-digit characters for the user, 32 from 62
/// symbols (≈ 190 bits) for the password.
pub fn generate_credentials() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("username".to_owned(), format!("ecom_{}", random_token(12).to_ascii_lowercase())),
        ("password".to_owned(), random_token(32)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_in_pairs_and_generated_ones_pass_every_rule() {
        let creds = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(check_credentials(&BTreeMap::new()).is_empty(), "none: generated");
        assert_eq!(check_credentials(&creds(&[("username", "u")]))[0].field, "credentials");
        let colon = check_credentials(&creds(&[("username", "a:b"), ("password", "p")]));
        assert_eq!(colon[0].field, "credentials.username");
        let (g1, g2) = (generate_credentials(), generate_credentials());
        assert_ne!(g1, g2);
        assert_eq!(g1["password"].len(), 32);
        assert!(g1["username"].starts_with("ecom_"));
        assert!(DESCRIPTOR.validate_connection(&g1, &serde_json::Map::new(), None).is_empty());
    }
}
