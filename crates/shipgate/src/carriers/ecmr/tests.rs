//! The ecmr adapter against its simulator, and its settings and secrets.

//! The adapter against the eCMR simulator over real HTTP.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::carriers::token::RenewalGuard;
use crate::carriers::{Credentials, TokenStore};
use crate::domain::{
    Address, CountryCode, Dimensions, LengthUnit, Parcel, ShipmentPlan, Status, Stop, StopType, Weight, WeightUnit,
};
use sims::ecmr::{EcmrSim, EcmrSimConfig, SimFault};

/// The connection's token store in memory; also remembers every access token it was
/// given, so a test knows what must never reach a log.
#[derive(Default)]
struct MemStore {
    current: std::sync::Mutex<Option<Token>>,
    saved: std::sync::Mutex<Vec<String>>,
    renewal: Arc<tokio::sync::Mutex<()>>,
}

#[async_trait]
impl TokenStore for MemStore {
    async fn load(&self) -> Option<Token> {
        self.current.lock().ok()?.clone()
    }
    async fn save(&self, t: Option<&Token>) {
        if let (Some(t), Ok(mut saved)) = (t, self.saved.lock()) {
            saved.push(t.value.expose_secret().to_owned());
        }
        if let Ok(mut g) = self.current.lock() {
            *g = t.cloned();
        }
    }
    async fn lock(&self) -> Option<RenewalGuard> {
        Some(Box::new(self.renewal.clone().lock_owned().await))
    }
}

struct Harness {
    sim: EcmrSim,
    base: String,
    _server: tokio::task::JoinHandle<()>,
}

/// The simulator on a real port, optionally nested under `mount`.
async fn start(mount: Option<&str>) -> Harness {
    crate::crypto::install_tls_provider();
    let sim = EcmrSim::new(EcmrSimConfig::default());
    let router = match mount {
        Some(m) => axum::Router::new().nest(m, sim.router()),
        None => sim.router(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Harness { sim, base: format!("http://{addr}"), _server: server }
}

fn client_with(base: &str, api_token: &str, settings: Value) -> EcmrClient {
    client_with_store(base, api_token, settings, Arc::new(MemStore::default()))
}

fn client_with_store(base: &str, api_token: &str, settings: Value, store: Arc<MemStore>) -> EcmrClient {
    let credentials: BTreeMap<String, SecretString> = [("organization_id", "org-demo"), ("api_token", api_token)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), SecretString::from(v.to_owned())))
        .collect();
    let cfg = ConnectionConfig {
        tenant_id: "ten_test".into(),
        connection_id: "con_test".into(),
        carrier: "ecmr".into(),
        base_url: Some(base.to_owned()),
        credentials: Credentials(credentials),
        settings: settings.as_object().cloned().unwrap_or_default(),
        token_store: store,
        limits: Arc::new(Limits::unlimited()),
    };
    let shared = Shared { http: reqwest::Client::new(), exchange_body_limit: 16384 };
    EcmrClient::new(cfg, &shared).expect("client")
}

fn client(h: &Harness) -> EcmrClient {
    client_with(&h.base, "token-demo", serde_json::json!({}))
}

fn stop(sequence: u32, stop_type: StopType, name: &str, city: &str, country: &str) -> Stop {
    Stop {
        sequence,
        stop_type,
        name: Some(name.into()),
        company: None,
        address: Address {
            line1: "Main 1".into(),
            line2: None,
            city: city.into(),
            state: None,
            postal_code: Some("1011 AB".into()),
            country: CountryCode::try_from(country.to_owned()).expect("country"),
        },
        phone: None,
        email: None,
        scheduled_at: chrono::DateTime::parse_from_rfc3339("2026-11-23T08:00:00+01:00").ok(),
        window_start: None,
        window_end: None,
        notes: None,
    }
}

fn plan(reference: Option<&str>) -> ShipmentPlan {
    ShipmentPlan {
        reference: reference.map(str::to_owned),
        service: None,
        stops: vec![
            stop(1, StopType::Pickup, "Sender BV", "Amsterdam", "NL"),
            stop(2, StopType::Delivery, "Receiver NV", "Antwerp", "BE"),
        ],
        parcels: vec![Parcel {
            reference: Some("PAL-1".into()),
            quantity: 2,
            weight: Some(Weight { value: 250.0, unit: WeightUnit::Kg }),
            dimensions: Some(Dimensions { length: 120.0, width: 80.0, height: 100.0, unit: LengthUnit::Cm }),
            description: Some("Tiles".into()),
            pickup_stop: None,
            delivery_stop: None,
        }],
        declared_value: None,
        cod_amount: None,
        notes: Some("Keep dry".into()),
    }
}

async fn book(c: &EcmrClient, cx: &CallCx, plan: &ShipmentPlan, order_number: &str) -> Result<Booked, CarrierError> {
    let metadata = crate::domain::Metadata::new();
    let req = OrderRequest {
        shipment_id: "shp_1",
        order_number,
        carrier_reference: None,
        tracking_number: None,
        plan,
        metadata: &metadata,
    };
    c.book(cx, &req).await
}

async fn track(c: &EcmrClient, cx: &CallCx, number: &str) -> Result<TrackingSnapshot, CarrierError> {
    c.track(cx, &TrackRequest { carrier_reference: Some(number), tracking_number: Some(number), slug: None }).await
}

#[tokio::test]
async fn book_track_advance_shows_statuses_actors_and_documents() {
    let h = start(None).await;
    let c = client(&h);
    let cx = CallCx::new();
    let booked = book(&c, &cx, &plan(Some("SO-1001")), "SG-1").await.expect("booked");
    let number = booked.tracking_number.clone().expect("tracking number");
    assert_eq!(booked.carrier_reference, number);
    let stored = &h.sim.requests()[1].body["shipment"];
    assert_eq!(stored["reference"], "SO-1001");
    assert_eq!(stored["goods"][0]["gross_weight_kg"], 500.0);
    assert_eq!(stored["taking_over"]["date"], "2026-11-23T08:00:00+01:00");

    let snap = track(&c, &cx, &number).await.expect("details");
    assert_eq!(snap.status, Some((Status::InfoReceived, None)));
    assert_eq!(snap.events.len(), 1);
    assert_eq!(snap.events[0].actor.as_deref(), Some("org-demo (API)"));
    assert_eq!(snap.documents.len(), 1);
    assert_eq!(snap.documents[0].kind, "cmr");
    // The simulator links the CMR under the shipment's own path (docs/carriers/ecmr-simulator.md).
    assert_eq!(snap.documents[0].url, format!("{}/api/shipments/{number}/documents/cmr.pdf", h.base));
    // The link is a real PDF; the simulator serves it to bearer calls only (its choice,
    // docs/carriers/ecmr-simulator.md), so fetch it with an access token of our own.
    let token: Value = reqwest::Client::new()
        .post(format!("{}/api/token", h.base))
        .json(&serde_json::json!({"client_id": "org-demo", "code": "token-demo"}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let pdf = reqwest::Client::new()
        .get(&snap.documents[0].url)
        .bearer_auth(token["access_token"].as_str().expect("access_token"))
        .send()
        .await
        .expect("pdf");
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.bytes().await.expect("pdf body").get(..5), Some(&b"%PDF-"[..]));

    let expected = [
        ("sent", Status::InfoReceived, None),
        ("accepted", Status::InfoReceived, None),
        ("planned", Status::InfoReceived, None),
        ("loading", Status::InTransit, None),
        ("departed", Status::InTransit, None),
        ("in_progress", Status::InTransit, None),
        ("arrived", Status::OutForDelivery, None),
        ("unloaded", Status::Delivered, Some("Delivered_003")),
        ("delivered", Status::Delivered, Some("Delivered_003")),
    ];
    for (raw, status, subtag) in expected {
        assert_eq!(h.sim.advance(&number).map(|s| s.as_str()), Ok(raw));
        let snap = track(&c, &cx, &number).await.expect("details");
        assert_eq!(snap.carrier_status.as_deref(), Some(raw));
        assert_eq!(snap.status, Some((status, subtag.map(str::to_owned))), "{raw}");
    }
    let snap = track(&c, &cx, &number).await.expect("details");
    assert_eq!(snap.events.len(), 10);
    let actors: Vec<&str> = snap.events.iter().filter_map(|e| e.actor.as_deref()).collect();
    assert_eq!(actors.len(), 10, "every event has its actor");
    // Each event's actor is who the carrier's history names (whatever the simulator chose).
    let history = h.sim.shipment(&number).expect("stored")["history"].clone();
    let by: Vec<&str> = history.as_array().expect("history").iter().filter_map(|e| e["by"].as_str()).collect();
    assert_eq!(actors, by);
    let keys: std::collections::BTreeSet<&str> = snap.events.iter().map(|e| e.dedup_key.as_str()).collect();
    assert_eq!(keys.len(), 10, "distinct dedup keys");
    assert_eq!(h.sim.stats().token_exchanges, 2, "the client's (cached ever since) and ours for the PDF");

    let second = book(&c, &cx, &plan(None), "SG-2").await.expect("booked");
    h.sim.cancel(second.carrier_reference.as_str()).expect("cancelled");
    let snap = track(&c, &cx, &second.carrier_reference).await.expect("details");
    assert_eq!(snap.status, Some((Status::Exception, Some("Exception_020".into()))));
    assert_eq!(
        h.sim.requests().last().map(|r| r.path.clone()),
        Some(format!("/api/shipments/{}", second.carrier_reference))
    );
}

#[tokio::test]
async fn a_repeated_book_with_the_same_reference_updates_the_same_shipment() {
    let h = start(None).await;
    let c = client(&h);
    let cx = CallCx::new();
    let a = book(&c, &cx, &plan(None), "SG-ORDER-7").await.expect("booked");
    let mut changed = plan(None);
    changed.notes = Some("Ring twice".into());
    let b = book(&c, &cx, &changed, "SG-ORDER-7").await.expect("booked");
    assert_eq!(a.tracking_number, b.tracking_number);
    assert_eq!(h.sim.shipment_count(), 1);
    assert_eq!(h.sim.requests()[2].body["shipment"]["reference"], "SG-ORDER-7", "no plan reference: order number");
    let other = book(&c, &cx, &plan(None), "SG-ORDER-8").await.expect("booked");
    assert_ne!(other.tracking_number, a.tracking_number);
}

#[tokio::test]
async fn a_refused_body_is_rejected_naming_the_field() {
    let h = start(None).await;
    let c = client(&h);
    let cx = CallCx::new();
    let mut p = plan(None);
    p.stops.retain(|s| s.stop_type == StopType::Pickup);
    match book(&c, &cx, &p, "SG-3").await {
        Err(CarrierError::Rejected { message }) => {
            assert!(message.starts_with("shipment.consignee: "), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let mut p = plan(None);
    p.parcels.clear();
    match book(&c, &cx, &p, "SG-3").await {
        Err(CarrierError::Rejected { message }) => assert!(message.starts_with("shipment.goods: "), "{message}"),
        other => panic!("{other:?}"),
    }
    // What the contract requires and our plan lacks is named by our field, before any call.
    let stores = h.sim.requests().iter().filter(|r| r.op == "store_shipment").count();
    let mut p = plan(None);
    p.stops[0].scheduled_at = None;
    match book(&c, &cx, &p, "SG-3").await {
        Err(CarrierError::Rejected { message }) => {
            assert!(message.starts_with("stops[0].scheduled_at: "), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.sim.requests().iter().filter(|r| r.op == "store_shipment").count(), stores, "nothing sent");
}

#[tokio::test]
async fn a_token_refused_mid_way_is_exchanged_once_and_the_call_retried() {
    let h = start(None).await;
    let c = client(&h);
    let cx = CallCx::new();
    let number = book(&c, &cx, &plan(None), "SG-4").await.expect("booked").carrier_reference;
    h.sim.expire_tokens();
    track(&c, &cx, &number).await.expect("retried with a new token");
    assert_eq!(h.sim.stats().token_exchanges, 2);
    let ops: Vec<String> = h.sim.requests().iter().map(|r| r.op.clone()).collect();
    assert_eq!(ops, ["token", "store_shipment", "get_shipment", "token", "get_shipment"]);

    // A 401 on the fresh token too: the connection is wrong, not the token.
    h.sim.fail_next(Some("get_shipment"), 2, SimFault::Http(401, serde_json::json!({"error": "invalid_token"})));
    match track(&c, &cx, &number).await {
        Err(CarrierError::Misconfigured { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(h.sim.stats().token_exchanges, 3, "exactly one more exchange");
}

#[tokio::test]
async fn a_hundred_concurrent_tracks_after_expiry_share_one_exchange() {
    let h = start(None).await;
    let c = Arc::new(client(&h));
    let cx = CallCx::new();
    let number = book(&c, &cx, &plan(None), "SG-5").await.expect("booked").carrier_reference;
    h.sim.expire_tokens();
    h.sim.set_latency(Duration::from_millis(20));
    let before = h.sim.stats().token_exchanges;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (c, number) = (c.clone(), number.clone());
        tasks.push(tokio::spawn(async move { track(&c, &CallCx::new(), &number).await.map(|s| s.status) }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join").expect("tracked"), Some((Status::InfoReceived, None)));
    }
    let stats = h.sim.stats();
    assert_eq!(stats.token_exchanges - before, 1, "{stats:?}");
}

#[tokio::test]
async fn unknown_numbers_server_errors_rate_limits_and_bad_credentials_are_classified() {
    let h = start(None).await;
    let c = client(&h);
    let cx = CallCx::new();
    assert!(matches!(track(&c, &cx, "ECMR00000000").await, Err(CarrierError::NotFound { .. })));
    h.sim.fail_next(Some("get_shipment"), 1, SimFault::Http(503, serde_json::json!({"error": "maintenance"})));
    assert!(matches!(track(&c, &cx, "ECMR00000000").await, Err(CarrierError::Transient { .. })));
    h.sim.fail_next(Some("get_shipment"), 1, SimFault::Http(429, serde_json::json!({"error": "slow down"})));
    match track(&c, &cx, "ECMR00000000").await {
        Err(CarrierError::Transient { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_secs(1))),
        other => panic!("{other:?}"),
    }
    // The connection's 429 gate now holds the next call for about a second (Limits).
    h.sim.fail_next(Some("get_shipment"), 1, SimFault::Http(200, serde_json::json!("<html>maintenance</html>")));
    assert!(matches!(track(&c, &cx, "ECMR00000000").await, Err(CarrierError::Protocol { .. })));
    h.sim.fail_next(Some("token"), 1, SimFault::Http(500, serde_json::json!({})));
    let fresh = client(&h);
    assert!(matches!(fresh.verify(&cx).await, Err(CarrierError::Transient { .. })));

    let wrong = client_with(&h.base, "not-the-token", serde_json::json!({}));
    match wrong.verify(&cx).await {
        Err(CarrierError::Misconfigured { message }) => assert!(message.contains("401"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        wrong
            .book(
                &cx,
                &OrderRequest {
                    shipment_id: "s",
                    order_number: "o",
                    carrier_reference: None,
                    tracking_number: None,
                    plan: &plan(None),
                    metadata: &crate::domain::Metadata::new(),
                }
            )
            .await,
        Err(CarrierError::Misconfigured { .. })
    ));
}

#[tokio::test]
async fn verify_and_overview_use_the_overridden_paths() {
    let h = start(Some("/v2")).await;
    let paths = serde_json::json!({"paths": {
        "token": "/v2/api/token",
        "shipments": "/v2/api/shipments",
        "shipment": "/v2/api/shipments/{tracking_number}"
    }});
    let c = client_with(&h.base, "token-demo", paths);
    let cx = CallCx::new();
    c.verify(&cx).await.expect("verified");
    let number = book(&c, &cx, &plan(None), "SG-6").await.expect("booked").carrier_reference;
    let page = c.overview(&cx, 1, 10).await.expect("overview");
    assert_eq!((page.total, page.shipments.len()), (Some(1), 1));
    assert_eq!(page.shipments[0].tracking_number.as_deref(), Some(number.as_str()));
    let snap = track(&c, &cx, &number).await.expect("details");
    assert!(snap.documents[0].url.starts_with(&format!("{}/v2/api/shipments/", h.base)), "{:?}", snap.documents);
    let urls: Vec<String> = cx.take().into_iter().map(|x| x.url).collect();
    assert_eq!(urls[0], format!("{}/v2/api/token", h.base));
    assert_eq!(urls[1], format!("{}/v2/api/shipments?page=1&per_page=1", h.base));
    assert_eq!(h.sim.stats().token_exchanges, 1, "verify's token is kept");

    // The default paths do not exist under /v2.
    let plain = client(&h);
    assert!(matches!(plain.verify(&cx).await, Err(CarrierError::Misconfigured { .. })));
}

#[tokio::test]
async fn secrets_never_reach_the_recorded_exchanges() {
    let h = start(None).await;
    let store = Arc::new(MemStore::default());
    let c = client_with_store(&h.base, "token-demo", serde_json::json!({}), store.clone());
    let cx = CallCx::new();
    c.verify(&cx).await.expect("verified");
    let number = book(&c, &cx, &plan(None), "SG-7").await.expect("booked").carrier_reference;
    h.sim.expire_tokens();
    track(&c, &cx, &number).await.expect("details");
    let exchanges = cx.take();
    assert_eq!(exchanges.iter().filter(|x| x.operation == "token").count(), 2);
    let issued = store.saved.lock().expect("saved").clone();
    assert_eq!(issued.len(), 2, "one access token per exchange");
    for x in &exchanges {
        let text = format!("{} {:?} {:?} {:?}", x.url, x.request_body, x.response_body, x.error);
        assert!(!text.contains("token-demo"), "API token leaked: {text}");
        for t in &issued {
            assert!(!text.contains(t.as_str()), "access token leaked: {text}");
        }
    }
    let token_call = exchanges.iter().find(|x| x.operation == "token").expect("token exchange");
    assert!(token_call.request_body.as_deref().is_some_and(|b| b.contains("org-demo") && b.contains("[REDACTED]")));
}

#[test]
fn settings_are_validated() {
    let check = |v: Value| {
        let mut fields: Vec<String> =
            validate_settings(v.as_object().expect("object")).into_iter().map(|e| e.field).collect();
        fields.sort();
        fields
    };
    assert!(check(serde_json::json!({})).is_empty());
    assert!(check(serde_json::json!({"paths": {"shipment": "/x/{tracking_number}", "token": "/t"}})).is_empty());
    assert_eq!(check(serde_json::json!({"paths": "/api"})), ["settings.paths"]);
    assert_eq!(
        check(serde_json::json!({"paths": {"colour": "/x", "token": 5, "shipment": "/x/{id}", "shipments": "api"}})),
        ["settings.paths.colour", "settings.paths.shipment", "settings.paths.shipments", "settings.paths.token"]
    );
}
