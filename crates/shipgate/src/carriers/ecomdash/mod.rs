//! ecomdash channel sink (seed `004_ad6b9d4634b2b6ed.txt`, docs/carriers/ecomdash.md "ecomdash").
//!
//! One call: `POST {base}/api/Shipments/submitTrackingInfo` with a JSON array of up
//! to 50 tracking items, the developer key in `Ocp-Apim-Subscription-Key` and the
//! merchant's integration key in `ecd-subscription-key`. Every item of a 200 answer
//! is checked; a failed item is retried by the caller only when its message says the
//! condition is temporary ([`mapping::TRANSIENT_MARKERS`]). Batches of one
//! `submit_tracking` run concurrently; the connection's [`Limits`] keep at most
//! `max_concurrency` (default 3) calls in flight.

mod channel;
mod descriptor;
pub mod mapping;
pub mod schema;
pub mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::exchange::Wire;
use super::limits::Limits;
use super::{CallCx, CarrierClient, CarrierError, ConnectionConfig, FieldSpec, Shared, SinkItem, SinkResult};
use crate::domain::FieldError;
pub use channel::{ECOMDASH_ID_MAX, EcomdashChannel, EcomdashId};
pub use descriptor::DESCRIPTOR;

const CARRIER: &str = "ecomdash";
pub const DEFAULT_BASE_URL: &str = "https://ecomdash.azure-api.net";
const PATH: &str = "/api/Shipments/submitTrackingInfo";
const SUBSCRIPTION_HEADER: &str = "Ocp-Apim-Subscription-Key";
const INTEGRATION_HEADER: &str = "ecd-subscription-key";
/// Names whose values are secrets wherever they appear in a recorded body. The keys
/// travel only in headers, which exchanges never record; this is the second fence.
const SECRET_KEYS: &[&str] = &[SUBSCRIPTION_HEADER, INTEGRATION_HEADER, "subscription_key", "integration_key"];
/// Upper bound for the `max_concurrency` setting (ours: above ecomdash's documented 3,
/// for merchants whose plan allows more, but bounded).
const MAX_CONCURRENCY: u64 = 10;

pub const SETTINGS: [FieldSpec; 1] = [FieldSpec {
    name: "max_concurrency",
    required: false,
    description: "calls in flight for this connection, 1-10 (default 3)",
}];

pub fn validate_settings(settings: &serde_json::Map<String, Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(v) = settings.get("max_concurrency")
        && !v.as_u64().is_some_and(|n| (1..=MAX_CONCURRENCY).contains(&n))
    {
        errors.push(FieldError::new(
            "settings.max_concurrency",
            format!("must be a positive integer no greater than {MAX_CONCURRENCY}"),
        ));
    }
    errors
}

pub struct EcomdashClient {
    http: reqwest::Client,
    connection_id: String,
    url: String,
    subscription_key: SecretString,
    integration_key: SecretString,
    limits: Arc<Limits>,
    body_limit: usize,
}

impl EcomdashClient {
    pub fn new(cfg: ConnectionConfig, shared: &Shared) -> Result<EcomdashClient, CarrierError> {
        let misconfigured = |m: &str| CarrierError::Misconfigured { message: m.to_owned() };
        let key = |name: &str| {
            cfg.credentials
                .get(name)
                .filter(|k| !k.expose_secret().is_empty())
                .cloned()
                .ok_or_else(|| misconfigured(&format!("credentials.{name} is required for ecomdash")))
        };
        let subscription_key = key("subscription_key")?;
        let integration_key = key("integration_key")?;
        let base = cfg.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL).trim_end_matches('/');
        Ok(EcomdashClient {
            http: shared.http.clone(),
            url: format!("{base}{PATH}"),
            connection_id: cfg.connection_id,
            subscription_key,
            integration_key,
            limits: cfg.limits,
            body_limit: shared.exchange_body_limit,
        })
    }

    fn wire(&self) -> Wire<'_> {
        Wire {
            http: &self.http,
            limits: &self.limits,
            carrier: CARRIER,
            connection_id: &self.connection_id,
            body_limit: self.body_limit,
            secret_keys: SECRET_KEYS,
        }
    }

    /// One submitTrackingInfo call; the 200 body, or the answer classified.
    async fn post(&self, cx: &CallCx, operation: &'static str, body: &Value) -> Result<bytes::Bytes, CarrierError> {
        let answer = self.send(cx, operation, body).await?;
        self.classify(answer)
    }

    /// One submitTrackingInfo call, its answer not yet judged.
    async fn send(
        &self,
        cx: &CallCx,
        operation: &'static str,
        body: &Value,
    ) -> Result<super::exchange::Answer, CarrierError> {
        let headers = [
            (SUBSCRIPTION_HEADER, self.subscription_key.expose_secret()),
            (INTEGRATION_HEADER, self.integration_key.expose_secret()),
        ];
        self.wire().send(cx, operation, Method::POST, &self.url, &headers, Some(body)).await
    }

    /// The 200 body, or the answer classified.
    fn classify(&self, answer: super::exchange::Answer) -> Result<bytes::Bytes, CarrierError> {
        if answer.status == 200 {
            return Ok(answer.body);
        }
        let error = mapping::classify_failure(answer.status, &answer.body, answer.retry_after);
        // The 429 text may ask for longer than Retry-After (or come without it): hold
        // the whole connection for what the message says.
        if answer.status == 429
            && let CarrierError::Transient { retry_after: Some(d), .. } = &error
        {
            self.limits.throttled(*d);
        }
        Err(error)
    }

    /// One call for `batch`, whose items all passed [`mapping::tracking_info`].
    async fn submit_batch(
        &self,
        cx: &CallCx,
        batch: &[SinkItem],
        infos: &[wire::TrackingInfo],
    ) -> Result<Vec<SinkResult>, CarrierError> {
        let body = serde_json::to_value(infos).map_err(|e| CarrierError::Protocol { message: e.to_string() })?;
        let answer = self.post(cx, "submitTrackingInfo", &body).await?;
        mapping::results_for(batch, &answer)
    }

    /// The batches of `items` (all sendable), concurrently; see `submit_tracking`.
    async fn submit_sendable(
        &self,
        cx: &CallCx,
        items: &[SinkItem],
        infos: &[wire::TrackingInfo],
    ) -> Result<Vec<SinkResult>, CarrierError> {
        let batches: Vec<&[SinkItem]> = items.chunks(mapping::MAX_BATCH).collect();
        let outcomes = futures::future::join_all(
            batches.iter().zip(infos.chunks(mapping::MAX_BATCH)).map(|(b, i)| self.submit_batch(cx, b, i)),
        )
        .await;
        if let Some(worst) =
            outcomes.iter().filter_map(|o| o.as_ref().err()).filter(|e| !e.is_transient()).max_by_key(|e| severity(e))
        {
            return Err(worst.clone());
        }
        if outcomes.iter().all(Result::is_err) {
            return outcomes.into_iter().find_map(Result::err).map_or_else(|| Ok(Vec::new()), Err);
        }
        let mut results = Vec::with_capacity(items.len());
        for (batch, outcome) in batches.iter().zip(outcomes) {
            match outcome {
                Ok(r) => results.extend(r),
                Err(e) => results.extend(batch.iter().map(|i| SinkResult {
                    key: i.key.clone(),
                    ok: false,
                    transient: true,
                    message: Some(e.message()),
                })),
            }
        }
        Ok(results)
    }
}

/// Which batch error decides the whole call: a broken connection or a protocol bug
/// over a passing condition.
fn severity(e: &CarrierError) -> u8 {
    match e {
        CarrierError::Misconfigured { .. } => 3,
        CarrierError::Protocol { .. } => 2,
        CarrierError::Transient { .. } => 0,
        _ => 1,
    }
}

#[async_trait]
impl CarrierClient for EcomdashClient {
    /// There is no read-only call in the seed, so (ours) we submit an empty array: it
    /// submits nothing, and both keys are judged before the body is (API Management's 401
    /// for `Ocp-Apim-Subscription-Key`, then ecomdash's 403 for `ecd-subscription-key`).
    /// The seed's table reads "Array of Items — Required", so ecomdash may refuse an
    /// empty array (our simulator answers 400 in the answer envelope,
    /// docs/carriers/ecomdash-simulator.md): that refusal proves the keys as well as a 200.
    async fn verify(&self, cx: &CallCx) -> Result<(), CarrierError> {
        let answer = self.send(cx, "verify", &Value::Array(Vec::new())).await?;
        let envelope = |body: &[u8]| serde_json::from_slice::<wire::SubmitAnswer>(body);
        if answer.status == 400
            && envelope(&answer.body)
                .is_ok_and(|a| a.status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("failure")))
        {
            return Ok(());
        }
        let body = self.classify(answer)?;
        envelope(&body)
            .map(|_| ())
            .map_err(|e| CarrierError::Protocol { message: format!("submitTrackingInfo answer: {e}") })
    }

    /// One result per item, in input order. Batches run concurrently (the connection's
    /// limits cap calls in flight). When some batches fail transiently and others
    /// succeed, the failed batches' items come back as transient results; a
    /// non-transient batch failure (keys, protocol) fails the whole call, as does a
    /// transient one when no batch got through.
    async fn submit_tracking(&self, cx: &CallCx, items: &[SinkItem]) -> Result<Vec<SinkResult>, CarrierError> {
        // An item whose ids are not ecomdash integers is never sent (the seed's schema
        // allows numbers only): it fails on its own, permanently.
        let mut refused: Vec<Option<SinkResult>> = Vec::with_capacity(items.len());
        let (mut sendable, mut infos) = (Vec::new(), Vec::new());
        for item in items {
            match mapping::tracking_info(item) {
                Ok(info) => {
                    refused.push(None);
                    sendable.push(item.clone());
                    infos.push(info);
                }
                Err(message) => refused.push(Some(SinkResult {
                    key: item.key.clone(),
                    ok: false,
                    transient: false,
                    message: Some(message),
                })),
            }
        }
        if sendable.is_empty() {
            return Ok(refused.into_iter().flatten().collect());
        }
        let sent = self.submit_sendable(cx, &sendable, &infos).await?;
        let mut sent = sent.into_iter();
        refused
            .into_iter()
            .map(|r| r.or_else(|| sent.next()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| CarrierError::Protocol { message: "submitTrackingInfo: fewer results than items".into() })
    }
}

#[cfg(test)]
mod tests {
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
        let results =
            client.submit_tracking(&CallCx::new(), &[legacy, item(3), bad_line, zero]).await.expect("submitted");
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
        assert!(
            matches!(e, CarrierError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(30)),
            "{e:?}"
        );
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
}
