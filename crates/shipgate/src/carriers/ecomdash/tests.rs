use std::time::Duration;

use chrono::{TimeZone as _, Utc};

use super::*;
use crate::carriers::token::{RenewalGuard, Token};
use crate::carriers::{Credentials, TokenStore};
use sims::ecomdash::{EcomdashSim, EcomdashSimConfig, SimFault};

const SUB: &str = "sub-SECRET-7f3a";
const ECD: &str = "ecd-SECRET-91bc";

/// Stores nothing: ecomdash has no tokens.
struct NoTokens;
#[async_trait]
impl TokenStore for NoTokens {
    async fn load(&self) -> Option<Token> {
        None
    }
    async fn save(&self, _: Option<&Token>) {}
    async fn lock(&self) -> Option<RenewalGuard> {
        None
    }
}

/// Every test starts here: reqwest needs the crypto provider before any client is built.
fn sim() -> EcomdashSim {
    crate::crypto::install_tls_provider();
    EcomdashSim::new(EcomdashSimConfig {
        subscription_keys: vec![SUB.into()],
        integration_keys: vec![ECD.into()],
        ..Default::default()
    })
}

async fn serve(sim: &EcomdashSim) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = sim.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    base
}

fn client_with(base: &str, sub: &str, ecd: &str, http: reqwest::Client) -> Arc<dyn CarrierClient> {
    crate::crypto::install_tls_provider();
    let settings = serde_json::Map::new();
    let credentials = Credentials(
        [("subscription_key", sub), ("integration_key", ecd)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), SecretString::from(v.to_owned())))
            .collect(),
    );
    let cfg = ConnectionConfig {
        tenant_id: "ten_test".into(),
        connection_id: "con_test".into(),
        carrier: CARRIER.into(),
        base_url: Some(base.to_owned()),
        credentials,
        limits: Arc::new(Limits::new(crate::carriers::limits_for(CARRIER, &settings))),
        settings,
        token_store: Arc::new(NoTokens),
    };
    crate::carriers::build_client(cfg, &Shared { http, exchange_body_limit: 16384 }).expect("client")
}

fn client(base: &str) -> Arc<dyn CarrierClient> {
    client_with(base, SUB, ECD, reqwest::Client::new())
}

fn item(n: usize) -> SinkItem {
    SinkItem {
        key: format!("key-{n}"),
        sink_shipment_id: n.to_string(),
        carrier_id: None,
        tracking_number: format!("1Z{n:06}"),
        tracking_url: None,
        shipped_at: None,
        estimated_delivery: None,
        line_item_ids: None,
    }
}

fn items(range: std::ops::Range<usize>) -> Vec<SinkItem> {
    range.map(item).collect()
}

fn calls(sim: &EcomdashSim) -> u64 {
    sim.stats().calls.get("submit_tracking_info").copied().unwrap_or(0)
}

/// Every body the simulator received validates against the seed's
/// `ListOfFulfillmentRequest` JSON Schema.
fn assert_bodies_follow_the_seed_schema(sim: &EcomdashSim) {
    let schema: Value = serde_json::from_str(schema::LIST_OF_FULFILLMENT_REQUEST).expect("schema");
    let requests = sim.requests();
    assert!(!requests.is_empty());
    for r in requests {
        let v = schema::violations(&schema, &r.body);
        assert!(v.is_empty(), "{} breaks ListOfFulfillmentRequest: {v:?}", r.body);
    }
}

fn assert_keys_absent(cx: &CallCx) {
    let exchanges = cx.take();
    assert!(!exchanges.is_empty());
    for x in exchanges {
        let text = format!("{x:?}");
        assert!(!text.contains(SUB) && !text.contains(ECD), "a key leaked into {text}");
    }
}

#[tokio::test]
async fn a_batch_arrives_with_both_headers_and_decimal_ids_are_matched() {
    let sim = sim();
    let client = client(&serve(&sim).await);
    let mut first = item(28);
    first.carrier_id = Some("4".into());
    first.tracking_url = Some("https://track.example/1Z000028".into());
    first.shipped_at = Utc.with_ymd_and_hms(2026, 11, 20, 12, 57, 33).single();
    first.estimated_delivery = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).single();
    let mut second = item(29);
    second.line_item_ids = Some(vec!["701".into(), "702.0".into()]);
    second.carrier_id = Some("4".into());
    second.tracking_url = Some("https://track.example/1Z000029".into());
    second.estimated_delivery = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).single();
    let cx = CallCx::new();
    let results = client.submit_tracking(&cx, &[first, second]).await.expect("submitted");
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r.ok && !r.transient), "{results:?}");
    assert_eq!(results[0].key, "key-28");
    assert_eq!(results[1].key, "key-29");

    let reqs = sim.requests();
    assert_eq!(reqs.len(), 1);
    // The simulator records header names only; it answered 200, so both keys were right.
    assert_eq!(reqs[0].auth_headers, ["ecd-subscription-key", "ocp-apim-subscription-key"]);
    assert_eq!(reqs[0].content_type.as_deref(), Some("application/json"));
    let body = &reqs[0].body;
    assert_eq!(body[0]["ShipmentId"], serde_json::json!(28));
    assert_eq!(body[0]["CarrierId"], serde_json::json!(4));
    assert_eq!(body[0]["ShippedDate"], "2026-11-20T12:57:33Z");
    assert_eq!(body[0]["TrackingURL"], "https://track.example/1Z000028");
    assert_eq!(body[1]["LineItems"][1]["LineItemId"], serde_json::json!(702));
    assert_eq!(body[0]["EstimatedDeliveryDate"], "2026-11-23T00:00:00Z");
    assert_bodies_follow_the_seed_schema(&sim);

    let submitted = sim.submitted();
    assert_eq!(submitted.len(), 2);
    assert_eq!(submitted[0].shipment_id, 28);
    assert_eq!(submitted[0].tracking_number.as_deref(), Some("1Z000028"));
    assert_eq!(submitted[1].line_items.len(), 2);
    assert_eq!(submitted[1].line_items[0].tracking_number.as_deref(), Some("1Z000029"));
    assert_keys_absent(&cx);
}

#[tokio::test]
async fn ids_that_are_not_ecomdash_integers_are_never_sent() {
    let sim = sim();
    let client = client(&serve(&sim).await);
    // Stored before the API required integers: the seed allows numbers only.
    let mut legacy = item(1);
    legacy.sink_shipment_id = "SH-1".into();
    let mut bad_line = item(2);
    bad_line.line_item_ids = Some(vec!["7".into(), "7b".into()]);
    // 0 is no id ecomdash gave out; sent, it would fail the whole batch with a 400.
    let zero = item(0);
    let results = client.submit_tracking(&CallCx::new(), &[legacy, item(3), bad_line, zero]).await.expect("submitted");
    let verdicts: Vec<(&str, bool, bool)> = results.iter().map(|r| (r.key.as_str(), r.ok, r.transient)).collect();
    assert_eq!(
        verdicts,
        vec![("key-1", false, false), ("key-3", true, false), ("key-2", false, false), ("key-0", false, false)]
    );
    assert!(results[0].message.as_deref().is_some_and(|m| m.contains("ShipmentId \"SH-1\"")), "{results:?}");
    assert!(results[2].message.as_deref().is_some_and(|m| m.contains("LineItemId \"7b\"")), "{results:?}");
    assert_eq!(sim.submitted().len(), 1);
    assert_eq!(sim.requests()[0].body, serde_json::json!([{"ShipmentId": 3, "TrackingNumber": "1Z000003"}]));
    assert_bodies_follow_the_seed_schema(&sim);
    // Nothing sendable: no call at all.
    let mut legacy = item(4);
    legacy.carrier_id = Some("UPS".into());
    let r = client.submit_tracking(&CallCx::new(), &[legacy]).await.expect("refused locally");
    assert!(!r[0].ok && !r[0].transient);
    assert_eq!(calls(&sim), 1);
}

#[tokio::test]
async fn many_items_go_in_batches_of_fifty_in_input_order() {
    let sim = sim();
    let client = client(&serve(&sim).await);
    let input = items(1000..1120);
    let results = client.submit_tracking(&CallCx::new(), &input).await.expect("submitted");
    assert_eq!(results.len(), 120);
    assert!(results.iter().zip(&input).all(|(r, i)| r.ok && r.key == i.key));
    let mut sizes: Vec<usize> =
        sim.requests().iter().map(|r| r.body.as_array().map(Vec::len).unwrap_or_default()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![20, 50, 50]);
    assert_eq!(calls(&sim), 3);
    assert_eq!(sim.submitted().len(), 120);
    assert_bodies_follow_the_seed_schema(&sim);
}

#[tokio::test]
async fn failed_items_are_told_apart_and_the_others_go_through() {
    let sim = sim();
    let client = client(&serve(&sim).await);
    sim.fail_item(3, "Shipment 3 has already been closed", 1);
    sim.fail_item(5, "The database is busy, please try again", 1);
    let results = client.submit_tracking(&CallCx::new(), &items(1..7)).await.expect("submitted");
    let verdicts: Vec<(bool, bool)> = results.iter().map(|r| (r.ok, r.transient)).collect();
    assert_eq!(
        verdicts,
        vec![(true, false), (true, false), (false, false), (true, false), (false, true), (true, false)]
    );
    assert_eq!(results[2].message.as_deref(), Some("Shipment 3 has already been closed"));
    // The transient one goes through on the retry.
    let again = client.submit_tracking(&CallCx::new(), &[item(5)]).await.expect("submitted");
    assert!(again[0].ok);
}

#[tokio::test]
async fn refused_keys_are_misconfigured_and_verify_proves_them() {
    let sim = sim();
    let base = serve(&sim).await;
    let cx = CallCx::new();
    client(&base).verify(&cx).await.expect("valid keys");
    assert_eq!(sim.requests()[0].body, serde_json::json!([]));
    assert!(sim.submitted().is_empty(), "verify submits nothing");
    assert_bodies_follow_the_seed_schema(&sim);
    assert_keys_absent(&cx);
    let bad_ecd = client_with(&base, SUB, "ecd-wrong", reqwest::Client::new());
    let e = bad_ecd.submit_tracking(&CallCx::new(), &items(1..3)).await.expect_err("403");
    assert!(matches!(e, CarrierError::Misconfigured { .. }), "{e:?}");
    assert!(matches!(bad_ecd.verify(&CallCx::new()).await, Err(CarrierError::Misconfigured { .. })));
    // A wrong Ocp-Apim-Subscription-Key never reaches ecomdash: API Management answers 401.
    let bad_sub = client_with(&base, "sub-wrong", ECD, reqwest::Client::new());
    let e = bad_sub.verify(&CallCx::new()).await.expect_err("401");
    assert!(matches!(&e, CarrierError::Misconfigured { message } if message.contains("401")), "{e:?}");
    let e = bad_sub.submit_tracking(&CallCx::new(), &items(1..3)).await.expect_err("401");
    assert!(matches!(e, CarrierError::Misconfigured { .. }), "{e:?}");
    let no_sub = client_with(&base, " ", ECD, reqwest::Client::new());
    assert!(matches!(no_sub.verify(&CallCx::new()).await, Err(CarrierError::Misconfigured { .. })));
    assert_eq!(sim.stats().unauthorized, 3);
    assert!(sim.submitted().is_empty());
    sim.fail_next(1, SimFault::Http(403, serde_json::json!({"Message": sims::ecomdash::FORBIDDEN_MESSAGE})));
    let e = client(&base).submit_tracking(&CallCx::new(), &items(1..2)).await.expect_err("403");
    assert!(matches!(e, CarrierError::Misconfigured { .. }), "{e:?}");
}

#[tokio::test]
async fn server_errors_are_transient() {
    let sim = sim();
    let client = client(&serve(&sim).await);
    sim.fail_next(1, SimFault::server_error());
    let e = client.submit_tracking(&CallCx::new(), &items(1..3)).await.expect_err("500");
    assert!(matches!(e, CarrierError::Transient { .. }), "{e:?}");
    assert!(e.message().contains("Oops"), "{e:?}");
}

#[tokio::test]
async fn a_429_is_transient_with_the_wait_it_asks_for() {
    let sim = sim();
    let client = client(&serve(&sim).await);
    sim.fail_next(1, SimFault::RateLimited(30));
    let e = client.submit_tracking(&CallCx::new(), &items(1..3)).await.expect_err("429");
    assert!(matches!(e, CarrierError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(30)), "{e:?}");
    // The connection holds further calls for those seconds (fails fast: beyond max_wait).
    let e = client.submit_tracking(&CallCx::new(), &items(1..3)).await.expect_err("gated");
    assert!(matches!(e, CarrierError::Transient { retry_after: Some(_), .. }), "{e:?}");
    assert_eq!(calls(&sim), 1);
}

#[tokio::test]
async fn one_failed_batch_leaves_its_items_transient() {
    let sim = sim();
    let client = client(&serve(&sim).await);
    sim.fail_next(1, SimFault::server_error());
    let results = client.submit_tracking(&CallCx::new(), &items(1..61)).await.expect("partly submitted");
    assert_eq!(results.len(), 60);
    let failed = results.iter().filter(|r| !r.ok).count();
    assert!(failed == 50 || failed == 10, "{failed}");
    assert!(results.iter().filter(|r| !r.ok).all(|r| r.transient));
    assert_eq!(sim.submitted().len(), 60 - failed);
}

#[tokio::test]
async fn timeouts_are_transient() {
    let sim = sim();
    sim.set_latency(Duration::from_millis(500));
    let http = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().expect("http");
    let client = client_with(&serve(&sim).await, SUB, ECD, http);
    let e = client.submit_tracking(&CallCx::new(), &items(1..2)).await.expect_err("timeout");
    assert!(matches!(e, CarrierError::Transient { .. }), "{e:?}");
}

#[tokio::test]
async fn concurrent_submissions_never_exceed_three_in_flight() {
    let sim = sim();
    sim.set_latency(Duration::from_millis(40));
    let client = client(&serve(&sim).await);
    let calls = (0..10).map(|n| {
        let client = client.clone();
        async move { client.submit_tracking(&CallCx::new(), &items(n * 100 + 1..n * 100 + 61)).await }
    });
    let outcomes = futures::future::join_all(calls).await;
    for o in outcomes {
        let results = o.expect("submitted");
        assert!(results.len() == 60 && results.iter().all(|r| r.ok));
    }
    let st = sim.stats();
    assert_eq!(st.calls.get("submit_tracking_info"), Some(&20));
    assert_eq!(st.throttled, 0, "{st:?}");
    assert!(st.max_in_flight <= 3 && st.max_in_flight >= 2, "{st:?}");
}

#[test]
fn settings_are_validated() {
    let ok: serde_json::Map<String, Value> =
        serde_json::from_value(serde_json::json!({"max_concurrency": 5})).expect("map");
    assert!(validate_settings(&ok).is_empty());
    for bad in [serde_json::json!(0), serde_json::json!(11), serde_json::json!("3"), serde_json::json!(2.5)] {
        let mut m = serde_json::Map::new();
        m.insert("max_concurrency".into(), bad);
        assert_eq!(validate_settings(&m).len(), 1);
    }
    let carrier = crate::carriers::get(CARRIER).expect("catalogued");
    assert!(carrier.available);
    let creds = [("subscription_key", "a"), ("integration_key", "b")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert!(carrier.validate_connection(&creds, &ok, None).is_empty());
}
