//! The aftership adapter against its simulator, and its settings and secrets.

use std::collections::BTreeMap;
use tokio::time::Instant;

use serde_json::json;

use super::*;
use crate::carriers::token::{RenewalGuard, Token};
use crate::carriers::{Credentials, TokenStore};
use crate::domain::{ShipmentPlan, Status, Stop};
use sims::aftership::{AftershipSim, AftershipSimConfig, SimFault};

const KEY: &str = "as-demo-key";

struct NoTokens;
#[async_trait]
impl TokenStore for NoTokens {
    async fn load(&self) -> Option<Token> {
        None
    }
    async fn save(&self, _t: Option<&Token>) {}
    async fn lock(&self) -> Option<RenewalGuard> {
        None
    }
}

async fn serve(sim: &AftershipSim) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = sim.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    // The simulator serves `/tracking/2024-04/...` under its mount point.
    format!("http://{addr}/tracking/2024-04")
}

fn client_with(base: &str, key: &str) -> Arc<dyn CarrierClient> {
    crate::crypto::install_tls_provider();
    let settings = serde_json::Map::new();
    let cfg = ConnectionConfig {
        tenant_id: "ten_test".into(),
        connection_id: "con_test".into(),
        carrier: "aftership".into(),
        base_url: Some(base.to_owned()),
        credentials: Credentials(BTreeMap::from([("api_key".to_owned(), SecretString::from(key.to_owned()))])),
        settings: settings.clone(),
        token_store: Arc::new(NoTokens),
        limits: Arc::new(Limits::new(crate::carriers::limits_for("aftership", &settings))),
    };
    let shared = Shared { http: reqwest::Client::new(), exchange_body_limit: 16384 };
    crate::carriers::build_client(cfg, &shared).expect("client")
}

async fn setup() -> (AftershipSim, Arc<dyn CarrierClient>) {
    let sim = AftershipSim::new(AftershipSimConfig::default());
    let base = serve(&sim).await;
    (sim, client_with(&base, KEY))
}

fn stop(v: Value) -> Stop {
    serde_json::from_value(v).expect("stop")
}

fn plan() -> ShipmentPlan {
    ShipmentPlan {
        reference: Some("ORD-1001".into()),
        service: Some("fedex".into()),
        stops: vec![
            stop(json!({"sequence": 1, "type": "pickup", "name": "James Madison", "email": "ship@example.com",
                "phone": "+13015551212",
                "address": {"line1": "2251 Orange Blossom Trail", "city": "Orlando", "country": "US"}})),
            stop(json!({"sequence": 2, "type": "delivery", "name": "Bryan Moore", "email": "bryan@example.com",
                "scheduled_at": "2026-11-25T17:00:00-05:00",
                "address": {"line1": "1 Ocean Dr", "city": "Miami", "country": "US"}})),
        ],
        parcels: vec![],
        declared_value: None,
        cod_amount: None,
        notes: Some("leave at the door".into()),
    }
}

fn order<'a>(
    plan: &'a ShipmentPlan,
    meta: &'a crate::domain::Metadata,
    number: &'a str,
    reference: Option<&'a str>,
) -> OrderRequest<'a> {
    OrderRequest {
        shipment_id: "shp_1",
        order_number: "SG-1",
        carrier_reference: reference,
        tracking_number: Some(number),
        plan,
        metadata: meta,
    }
}

fn by_id(id: &str) -> TrackRequest<'_> {
    TrackRequest { carrier_reference: Some(id), tracking_number: None, slug: None }
}

fn kind<T>(r: Result<T, CarrierError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{}: {}", e.kind(), e.message()),
    }
}

#[tokio::test]
async fn register_track_update_cancel_against_the_simulator() {
    let (sim, client) = setup().await;
    let cx = CallCx::new();
    let plan = plan();
    let meta = BTreeMap::from([("language".to_owned(), "en".to_owned())]);
    let booked = client.register(&cx, &order(&plan, &meta, "FX123456789", None)).await.expect("register");
    assert_eq!(booked.tracking_number.as_deref(), Some("FX123456789"));
    let snap = booked.snapshot.expect("snapshot");
    assert_eq!(snap.status, Some((Status::Pending, Some("Pending_001".into()))));
    let id = booked.carrier_reference;
    let created = sim.tracking(&id).expect("stored");
    assert_eq!(created["slug"], "fedex");
    assert_eq!(created["title"], "ORD-1001");
    assert_eq!(created["order_id"], "ORD-1001");
    assert_eq!(created["order_promised_delivery_date"], "2026-11-25");
    assert_eq!(created["customer_name"], "Bryan Moore");
    assert_eq!(created["emails"], json!(["bryan@example.com", "ship@example.com"]));
    // 2024-04's create model takes language and note too (SDK TrackingCreateTrackingRequest).
    assert_eq!(created["language"], "en");
    assert_eq!(created["note"], "leave at the door");

    sim.advance(&id).expect("info received");
    sim.advance(&id).expect("in transit");
    let snap = client.track(&cx, &by_id(&id)).await.expect("track");
    // Tag and subtag as AfterShip reports them (the subtag is the simulator's choice).
    let at_carrier = sim.tracking(&id).expect("stored");
    let subtag = at_carrier["subtag"].as_str().map(str::to_owned);
    assert!(subtag.as_deref().is_some_and(|s| s.starts_with("InTransit_")), "{at_carrier}");
    assert_eq!(snap.status, Some((Status::InTransit, subtag)));
    assert_eq!(snap.carrier_status.as_deref(), Some("InTransit"));
    assert_eq!(snap.events.len(), 2, "last checkpoint is not counted twice");
    assert_eq!(snap.events[1].status, Some(Status::InTransit));
    assert!(snap.events[0].dedup_key != snap.events[1].dedup_key);
    assert!(snap.estimated_delivery.is_some());
    let again = client.track(&cx, &by_id(&id)).await.expect("track again");
    assert_eq!(again.events[0].dedup_key, snap.events[0].dedup_key, "keys are stable");
    // Without the id: found by number and slug.
    let by_number = TrackRequest { carrier_reference: None, tracking_number: Some("FX123456789"), slug: Some("fedex") };
    assert_eq!(client.track(&cx, &by_number).await.expect("by number").events.len(), 2);
    while sim.tracking(&id).expect("stored")["tag"] != "Delivered" {
        sim.advance(&id).expect("advance");
    }
    let snap = client.track(&cx, &by_id(&id)).await.expect("delivered");
    assert_eq!(snap.status, Some((Status::Delivered, Some("Delivered_001".into()))));

    let mut meta = meta;
    meta.insert("order_id".into(), "SHOP-77".into());
    client.update(&cx, &order(&plan, &meta, "FX123456789", Some(&id))).await.expect("update");
    let updated = sim.tracking(&id).expect("stored");
    assert_eq!(updated["note"], "leave at the door");
    assert_eq!(updated["order_id"], "SHOP-77");
    assert_eq!(updated["language"], "en");
    assert_eq!(updated["smses"], json!(["+13015551212"]));

    // A note removed from the shipment is cleared at AfterShip (`""`, seed: update).
    let mut no_note = plan.clone();
    no_note.notes = None;
    client.update(&cx, &order(&no_note, &meta, "FX123456789", Some(&id))).await.expect("update");
    assert_eq!(sim.tracking(&id).expect("stored")["note"], "");

    client.cancel(&cx, &order(&plan, &meta, "FX123456789", Some(&id))).await.expect("cancel");
    assert!(sim.tracking(&id).is_none());
    assert!(kind(client.cancel(&cx, &order(&plan, &meta, "FX123456789", Some(&id))).await).starts_with("not_found"));
    assert!(kind(client.track(&cx, &by_id(&id)).await).starts_with("not_found"));
    client.verify(&cx).await.expect("verify");
    assert_2024_04_bodies(&sim);
}

#[tokio::test]
async fn registering_twice_adopts_the_existing_tracking() {
    let (sim, client) = setup().await;
    let cx = CallCx::new();
    let plan = plan();
    let meta = BTreeMap::new();
    let a = client.register(&cx, &order(&plan, &meta, "FX555000111", None)).await.expect("first");
    let b = client.register(&cx, &order(&plan, &meta, "FX555000111", None)).await.expect("second adopts");
    assert_eq!(a.carrier_reference, b.carrier_reference);
    assert!(b.snapshot.is_some());
    assert_eq!(sim.tracking_count(), 1);
    let stats = sim.stats();
    assert_eq!(stats.calls.get("create"), Some(&2));
    assert_eq!(stats.calls.get("list"), Some(&1));
    let answers: Vec<Option<i32>> = cx.take().iter().map(|x| x.response_status).collect();
    assert_eq!(answers, vec![Some(201), Some(400), Some(200)]);
}

#[tokio::test]
async fn meta_codes_map_onto_error_classes() {
    let (sim, client) = setup().await;
    let cx = CallCx::new();
    let meta = BTreeMap::new();
    let mut plan = plan();

    let base = format!("http://{}", "127.0.0.1:1");
    assert!(kind(client_with(&base, KEY).verify(&cx).await).starts_with("transient"), "connection refused");
    let stranger = client_with(&serve(&sim).await, "wrong-key");
    let r = kind(stranger.verify(&cx).await);
    assert!(r.starts_with("misconfigured") && r.contains("401"), "{r}");

    let r = kind(client.register(&cx, &order(&plan, &meta, "AB", None)).await);
    assert!(r.starts_with("rejected") && r.contains("4005") && r.contains("tracking_number"), "{r}");
    plan.service = Some("pigeon-post".into());
    let r = kind(client.register(&cx, &order(&plan, &meta, "FX1234", None)).await);
    assert!(r.starts_with("rejected") && r.contains("4010"), "{r}");
    plan.service = Some("fedex".into());
    sim.fail_next(
        Some("create"),
        1,
        SimFault::Meta {
            http: 400,
            code: 4017,
            r#type: "BadRequest".into(),
            message: "The format of tracking_number is invalid.".into(),
        },
    );
    let r = kind(client.register(&cx, &order(&plan, &meta, "FX1234", None)).await);
    assert!(r.starts_with("rejected") && r.contains("4017"), "{r}");
    // An id of AfterShip's shape that it does not know is 4004; what cannot be an id 4015.
    assert!(kind(client.track(&cx, &by_id("000000000000000000000000")).await).starts_with("not_found"));
    let r = kind(client.track(&cx, &by_id("nope")).await);
    assert!(r.starts_with("rejected") && r.contains("4015"), "{r}");

    let id = client.register(&cx, &order(&plan, &meta, "FX1234", None)).await.expect("ok").carrier_reference;
    sim.fail_next(Some("get"), 1, SimFault::ServerError);
    assert!(kind(client.track(&cx, &by_id(&id)).await).starts_with("transient"));
    // A proxy's page instead of AfterShip's envelope.
    sim.fail_next(Some("get"), 1, SimFault::Http(200, json!("<html>maintenance</html>")));
    assert!(kind(client.track(&cx, &by_id(&id)).await).starts_with("protocol"));
    sim.fail_next(Some("get"), 1, SimFault::Http(504, json!("<html>Gateway Timeout</html>")));
    assert!(kind(client.track(&cx, &by_id(&id)).await).starts_with("transient"));

    // More than 3 emails: refused before any call.
    let updates = sim.stats().calls.get("update").copied().unwrap_or(0);
    for i in 3..6 {
        plan.stops.push(stop(json!({"sequence": i, "type": "delivery", "email": format!("x{i}@example.com"),
            "address": {"line1": "x", "city": "Miami", "country": "US"}})));
    }
    let r = kind(client.update(&cx, &order(&plan, &meta, "FX1234", Some(&id))).await);
    assert!(r.starts_with("rejected") && r.contains("at most 3"), "{r}");
    assert_eq!(sim.stats().calls.get("update").copied().unwrap_or(0), updates);
}

/// Every body the adapter sent uses only fields of the SDK 2.0.2 (API 2024-04)
/// request models.
fn assert_2024_04_bodies(sim: &AftershipSim) {
    use wire::sdk_2024_04 as sdk;
    let keys_in = |v: &Value, allowed: &[&str], what: &str| {
        for k in v.as_object().unwrap_or_else(|| panic!("{what} is an object: {v}")).keys() {
            assert!(allowed.contains(&k.as_str()), "{what}: `{k}` is not a 2024-04 field");
        }
    };
    for r in sim.requests() {
        match r.op.as_str() {
            "create" => keys_in(&r.body["tracking"], &sdk::CREATE_FIELDS, "create"),
            "update" => keys_in(&r.body["tracking"], &sdk::UPDATE_FIELDS, "update"),
            "mark_completed" => keys_in(&r.body, &sdk::MARK_COMPLETED_FIELDS, "mark-as-completed"),
            "predict_batch" => {
                for item in r.body["estimated_delivery_dates"].as_array().expect("items") {
                    keys_in(item, &sdk::ESTIMATE_FIELDS, "predict-batch item");
                    keys_in(&item["origin_address"], &sdk::ADDRESS_FIELDS, "origin_address");
                    keys_in(&item["destination_address"], &sdk::ADDRESS_FIELDS, "destination_address");
                }
            }
            _ => assert!(r.body.is_null(), "{} sends no body: {}", r.op, r.body),
        }
    }
}

#[tokio::test]
async fn retrack_only_when_inactive_and_at_most_three_times() {
    let (sim, client) = setup().await;
    let cx = CallCx::new();
    let plan = plan();
    let meta = BTreeMap::new();
    let id = client.register(&cx, &order(&plan, &meta, "FX777", None)).await.expect("reg").carrier_reference;
    // 4013 = INACTIVE_RETRACK_NOT_ALLOWED (SDK 2.0.2): the tracking is still active.
    let r = kind(client.retrack(&cx, &by_id(&id)).await);
    assert!(r.starts_with("rejected") && r.contains("4013") && r.contains("still active"), "{r}");
    for _ in 0..3 {
        sim.expire(&id).expect("expire");
        let gets = sim.stats().calls.get("get").copied().unwrap_or(0);
        let snap = client.retrack(&cx, &by_id(&id)).await.expect("retrack");
        // The retrack answer is partial (no tag): the snapshot is the tracking read after it.
        assert_eq!(sim.stats().calls.get("get").copied().unwrap_or(0), gets + 1);
        // ... so it shows the tag AfterShip holds after the retrack, whatever that is.
        let tag = sim.tracking(&id).expect("stored")["tag"].as_str().map(str::to_owned);
        assert_eq!(snap.carrier_status, tag);
        assert_eq!(snap.status.map(|s| s.0), tag.as_deref().and_then(mapping::tag_status));
    }
    sim.expire(&id).expect("expire");
    // 4016 = RETRACK_ONCE_ALLOWED: the limit is reached.
    let r = kind(client.retrack(&cx, &by_id(&id)).await);
    assert!(r.starts_with("rejected") && r.contains("4016") && r.contains("limit"), "{r}");
    // A completed tracking is inactive too, so it may be retracked.
    let id = client.register(&cx, &order(&plan, &meta, "FX778", None)).await.expect("reg").carrier_reference;
    client.complete(&cx, &by_id(&id), CompleteReason::Lost).await.expect("complete");
    client.retrack(&cx, &by_id(&id)).await.expect("retrack a completed tracking");
}

#[tokio::test]
async fn complete_reasons_set_the_documented_tags() {
    let (sim, client) = setup().await;
    let cx = CallCx::new();
    let plan = plan();
    let meta = BTreeMap::new();
    for (i, (reason, status, subtag)) in [
        (CompleteReason::Delivered, Status::Delivered, "Delivered_001"),
        (CompleteReason::Lost, Status::Exception, "Exception_013"),
        (CompleteReason::ReturnedToSender, Status::Exception, "Exception_011"),
    ]
    .into_iter()
    .enumerate()
    {
        let number = format!("FX90{i}");
        let id = client.register(&cx, &order(&plan, &meta, &number, None)).await.expect("reg").carrier_reference;
        let snap = client.complete(&cx, &by_id(&id), reason).await.expect("complete");
        assert_eq!(snap.status, Some((status, Some(subtag.to_owned()))), "{reason:?}");
    }
    assert_2024_04_bodies(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_concurrent_calls_stay_under_the_account_limit() {
    let (sim, client) = setup().await;
    let started = Instant::now();
    let calls = (0..60).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.verify(&CallCx::new()).await })
    });
    for r in futures::future::join_all(calls).await {
        r.expect("task").expect("every call succeeds");
    }
    let stats = sim.stats();
    assert_eq!(stats.calls.get("list"), Some(&60));
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert!(stats.max_calls_per_second <= 10, "{stats:?}");
    assert!(started.elapsed() >= Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_429_burst_is_waited_out_and_never_hammered() {
    let (sim, client) = setup().await;
    let cx = CallCx::new();
    sim.burst_429(2);
    let started = Instant::now();
    client.verify(&cx).await.expect("succeeds after waiting");
    assert!(started.elapsed() >= Duration::from_millis(1500), "waited for each reset: {:?}", started.elapsed());
    assert_eq!(sim.stats().calls.get("list"), Some(&3));

    sim.burst_429(10);
    let r = client.verify(&cx).await;
    match r {
        Err(CarrierError::Transient { retry_after: Some(d), .. }) => assert!(d >= Duration::from_secs(1)),
        other => panic!("expected transient with retry_after, got {}", kind(other)),
    }
    assert_eq!(sim.stats().calls.get("list"), Some(&6), "1 try + {MAX_429_RETRIES} retries, no more");
    assert_eq!(sim.stats().over_limit, 0, "the account's own limit never refused a call");
}

#[tokio::test]
async fn estimates_are_validated_then_predicted() {
    let (sim, client) = setup().await;
    let cx = CallCx::new();
    let item = json!({"slug": "fedex", "origin_address": {"country": "USA", "state": "FL"},
        "destination_address": {"country": "USA", "postal_code": "33101"},
        "estimated_pickup": {"order_time": "2026-11-23 09:00:00", "order_cutoff_time": "18:00:00",
            "business_days": [1, 2, 3, 4, 5], "order_processing_time": {"unit": "day", "value": 0}}});
    assert!(validate_estimate_items(std::slice::from_ref(&item)).is_empty());
    let answers = client.estimate_delivery(&cx, &[item.clone(), item.clone()]).await.expect("predict");
    assert_eq!(answers.len(), 2);
    // AfterShip's prediction as it answered it (the dates are the simulator's own
    // model): a day after the order, inside its own window.
    let day = |k: &str| {
        chrono::NaiveDate::parse_from_str(answers[0][k].as_str().unwrap_or(""), "%Y-%m-%d")
            .unwrap_or_else(|e| panic!("{k}: {e} in {}", answers[0]))
    };
    let date = day("estimated_delivery_date");
    assert!(date > chrono::NaiveDate::from_ymd_opt(2026, 11, 23).expect("date"), "{}", answers[0]);
    assert!(day("estimated_delivery_date_min") <= date && date <= day("estimated_delivery_date_max"));
    assert_eq!(answers[0]["slug"], "fedex");
    assert!(answers[0].get("confidence_code").is_some(), "a 2024-04 field: {}", answers[0]);
    let mut bad = item;
    bad["destination_address"]["country"] = json!("US");
    let errors = validate_estimate_items(std::slice::from_ref(&bad));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "items[0].destination_address.country");
    assert!(kind(client.estimate_delivery(&cx, &[bad]).await).starts_with("rejected"));
    assert_eq!(sim.stats().calls.get("predict_batch"), Some(&1), "invalid items never leave");
    assert_2024_04_bodies(&sim);
}

#[tokio::test]
async fn the_api_key_never_reaches_the_exchange_log() {
    let (sim, client) = setup().await;
    let cx = CallCx::new();
    let plan = plan();
    let meta = BTreeMap::new();
    let id = client.register(&cx, &order(&plan, &meta, "FX424242", None)).await.expect("reg").carrier_reference;
    client.track(&cx, &by_id(&id)).await.expect("track");
    client.verify(&cx).await.expect("verify");
    let log = cx.take();
    assert_eq!(log.len(), 4);
    let text = format!("{log:?}");
    assert!(!text.contains(KEY), "{text}");
    // The simulator answers 401 without the account's key, so these calls carried it.
    assert!(sim.requests().iter().all(|r| r.headers.iter().any(|h| h == "as-api-key")), "the header was sent");
    let mut v = json!({"api_key": KEY, "as-api-key": KEY, "webhook_secret": "s"});
    crate::carriers::exchange::redact(&mut v, SECRET_KEYS);
    assert!(!v.to_string().contains(KEY) && !v.to_string().contains("\"s\""));
}

#[test]
fn settings_are_checked() {
    let ok = serde_json::Map::from_iter([("rate_limit_per_second".to_owned(), json!(5))]);
    assert!(validate_settings(&ok).is_empty());
    let bad = serde_json::Map::from_iter([("rate_limit_per_second".to_owned(), json!("fast"))]);
    assert_eq!(validate_settings(&bad).len(), 1);
    let info = crate::carriers::info("aftership").expect("listed");
    assert!(info.available);
    assert_eq!(info.settings.len(), 1);
}
