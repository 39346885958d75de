//! The registry's descriptors agree with themselves: every capability has the hook the
//! gateway will call for it, and no hook exists without its capability.

use std::collections::BTreeSet;

use super::descriptor::BaseUrl;
use super::*;

/// Capabilities that call the carrier.
const CALLS: &[Capability] = &[
    Capability::Book,
    Capability::Update,
    Capability::Cancel,
    Capability::Quote,
    Capability::EstimatedDeliveryDates,
    Capability::RegisterTracking,
    Capability::Refresh,
    Capability::Retrack,
    Capability::Complete,
    Capability::Sink,
    Capability::Reconcile,
];

fn sink_fields() -> BTreeSet<String> {
    let schema = serde_json::to_value(<Channel as utoipa::PartialSchema>::schema()).expect("schema");
    schema["properties"].as_object().expect("properties").keys().cloned().collect()
}

#[test]
fn the_catalog_lists_every_carrier_once_in_its_order() {
    let slugs: Vec<&str> = all().iter().map(|c| c.slug).collect();
    assert_eq!(slugs, ["ecourier", "ecmr", "aftership", "ecomexpress", "ecomdash"]);
    assert_eq!(slugs.iter().collect::<BTreeSet<_>>().len(), slugs.len(), "unique");
    for c in all() {
        assert!(
            !c.slug.is_empty() && c.slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{}: a slug is a URL segment and a JSON key",
            c.slug
        );
        assert_eq!(get(c.slug).map(|g| g.name), Some(c.name));
        assert_eq!(info(c.slug).map(|i| i.capabilities), Some(c.capabilities.to_vec()));
    }
    assert!(get("nope").is_none() && !supports("nope", Capability::Book));
}

#[test]
fn every_capability_has_its_hook_and_every_hook_its_capability() {
    let sinks = sink_fields();
    for c in all() {
        let has = |cap| c.capabilities.contains(&cap);
        let s = c.slug;
        assert_eq!(has(Capability::Refresh), c.polling.is_some(), "{s}: Refresh ⇔ polling");
        assert_eq!(has(Capability::ReceivePushes), c.inbound.is_some(), "{s}: ReceivePushes ⇔ inbound");
        assert_eq!(
            has(Capability::EstimatedDeliveryDates),
            c.check_estimate_items.is_some(),
            "{s}: EstimatedDeliveryDates ⇔ its item checks"
        );
        assert_eq!(has(Capability::Sink), sinks.contains(s), "{s}: Sink ⇔ a field of Channel named after it");
        // A list is compared with shipments the gateway tracks there.
        assert!(!has(Capability::Reconcile) || has(Capability::Refresh), "{s}: Reconcile ⇒ Refresh");
        assert_eq!(CALLS.iter().any(|cap| has(*cap)), c.client.is_some(), "{s}: a client ⇔ something calls it");
        assert!(!c.status_mappings || c.inbound.is_some(), "{s}: mapped codes come from pushes");
        assert!(c.generate_credentials.is_none() || c.client.is_none(), "{s}: only our own credentials are generated");
        assert_eq!(c.base_url == BaseUrl::Unused, c.client.is_none(), "{s}: a base URL ⇔ a client");
        if let BaseUrl::Default(url) = c.base_url {
            assert!(reqwest::Url::parse(url).is_ok_and(|u| u.scheme() == "https"), "{s}: {url}");
        }
        if let Some(k) = c.keep_alive {
            assert!(c.credential_sets.iter().flat_map(|set| set.iter()).any(|f| f.name == k.credential), "{s}");
            assert!(k.idle_days > 0 && c.client.is_some(), "{s}");
        }
        if let Some(p) = c.polling {
            assert!(p.calls_per_refresh >= 1, "{s}");
        }
    }
}

#[test]
fn a_channel_names_its_sinks_by_slug() {
    let ch: Channel = serde_json::from_value(serde_json::json!({
        "ecomdash": {"connection_id": "con_1", "shipment_id": 7}
    }))
    .expect("channel");
    let targets: Vec<(&str, &str)> = ch.targets().into_iter().map(|(s, t)| (s, t.connection_id())).collect();
    assert_eq!(targets, [("ecomdash", "con_1")]);
    assert!(ch.target("ecomdash").is_some() && ch.target("ecourier").is_none());
    assert!(sink_fields().iter().all(|f| get(f).is_some_and(|c| c.supports(Capability::Sink))));
}

#[test]
fn generated_credentials_pass_their_carrier_s_rules() {
    for c in all() {
        if let Some(generate) = c.generate_credentials {
            let creds = generate();
            assert!(c.validate_connection(&creds, &serde_json::Map::new(), None).is_empty(), "{}", c.slug);
            assert_ne!(creds, generate(), "{}: random", c.slug);
        }
    }
}

#[test]
fn limits_default_to_the_carrier_s_and_settings_override_them() {
    let none = serde_json::Map::new();
    assert_eq!(limits_for("aftership", &none).rate_per_second, Some(10));
    assert_eq!(limits_for("ecomdash", &none).max_concurrency, Some(3));
    assert_eq!(limits_for("ecourier", &none).rate_per_second, None);
    let set = serde_json::Map::from_iter([("rate_limit_per_second".to_owned(), serde_json::json!(4))]);
    assert_eq!(limits_for("aftership", &set).rate_per_second, Some(4));
    assert_eq!(limits_for("unknown", &set).rate_per_second, Some(4));
}
