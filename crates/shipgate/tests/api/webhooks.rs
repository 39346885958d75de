//! Outbound webhooks: endpoints, signed delivery to a local receiver, retries on a
//! shrunk schedule, 410, Retry-After, redirects, the SSRF guard, replay, `/v1/events`.
//! Signatures are checked with the `standardwebhooks` crate (the Standard Webhooks
//! reference library), not with our own code.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use shipgate::store::events::NewEvent;

use crate::helpers::{TestApp, new_tenant, spawn_app, spawn_app_with};

// ---------- a local subscriber ----------

#[derive(Clone)]
struct Hit {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    at: Instant,
}

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
}

#[derive(Default)]
struct RecvState {
    hits: Vec<Hit>,
    script: VecDeque<Reply>,
    down: bool,
    /// Answer this late (a slow subscriber).
    delay: Duration,
    /// Requests that arrived (counted before the delay).
    arrived: usize,
}

#[derive(Clone, Default)]
struct Receiver {
    inner: Arc<Mutex<RecvState>>,
    url: String,
}

impl Receiver {
    async fn start() -> Receiver {
        let inner: Arc<Mutex<RecvState>> = Arc::default();
        let shared = inner.clone();
        let app =
            axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
                let shared = shared.clone();
                async move {
                    let delay = {
                        let mut s = shared.lock().expect("lock");
                        s.arrived += 1;
                        s.delay
                    };
                    tokio::time::sleep(delay).await;
                    let mut s = shared.lock().expect("lock");
                    s.hits.push(Hit { path: uri.path().to_owned(), headers, body: body.to_vec(), at: Instant::now() });
                    if s.down {
                        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
                    }
                    let reply = s.script.pop_front().unwrap_or(Reply { status: 200, headers: vec![] });
                    let mut resp = (StatusCode::from_u16(reply.status).expect("status"), "reply body").into_response();
                    for (k, v) in reply.headers {
                        resp.headers_mut().insert(k, v.parse().expect("header"));
                    }
                    resp
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { inner, url }
    }

    fn script(&self, replies: &[(u16, &[(&'static str, &str)])]) {
        let mut s = self.inner.lock().expect("lock");
        for (status, headers) in replies {
            s.script.push_back(Reply {
                status: *status,
                headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            });
        }
    }

    fn set_down(&self, down: bool) {
        self.inner.lock().expect("lock").down = down;
    }

    fn arrived(&self) -> usize {
        self.inner.lock().expect("lock").arrived
    }

    fn set_delay(&self, delay: Duration) {
        self.inner.lock().expect("lock").delay = delay;
    }

    fn hits(&self) -> Vec<Hit> {
        self.inner.lock().expect("lock").hits.clone()
    }

    /// Hits that carried this event (`webhook-id`).
    fn hits_for(&self, event_id: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| header(&h.headers, "webhook-id") == event_id).collect()
    }
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

// ---------- app set-up ----------

const FAST: &str = "webhook_allow_networks = \"127.0.0.1/32\"\n\
                    webhook_retry_jitter = 0.0\nwebhook_poll_interval_ms = 20\nwebhook_request_timeout_ms = 3000\n";

/// An app whose webhook workers run, with the receiver's network allowed and a short
/// schedule (200 ms, 400 ms unless `extra` sets one).
async fn webhook_app(extra: &str) -> (TestApp, shipgate::webhooks::Workers) {
    let schedule =
        if extra.contains("webhook_retry_schedule_ms") { "" } else { "webhook_retry_schedule_ms = [200, 400]\n" };
    let app = spawn_app_with(&format!("{FAST}{schedule}{extra}")).await;
    let workers = shipgate::webhooks::spawn(app.state.clone()).expect("workers");
    (app, workers)
}

async fn create_endpoint(app: &TestApp, body: Value) -> Value {
    let r = app.post("/v1/webhook-endpoints", &body).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()
}

/// Emit events for a shipment the way the services do (store::events::emit in a transaction).
async fn emit(app: &TestApp, shipment_id: &str, types: &[&'static str]) -> Vec<String> {
    let events: Vec<NewEvent> = types
        .iter()
        .map(|t| NewEvent { event_type: t, data: json!({"shipment": {"id": shipment_id}, "note": *t}) })
        .collect();
    let mut tx = app.db.begin().await.expect("tx");
    let ids = shipgate::store::events::emit(&mut tx, &app.tenant_id, shipment_id, &events).await.expect("emit");
    tx.commit().await.expect("commit");
    ids
}

/// A shipment for events to be about, written straight to the table: booking through the
/// API emits events of its own (shipment.created, shipment.booked), which these tests of
/// the delivery mechanics must not see. `bookings_are_delivered_in_order` covers those.
async fn shipment(app: &TestApp, reference: &str) -> String {
    let id = shipgate::ids::new_id("shp");
    sqlx::query(
        "INSERT INTO shipments (tenant_id, id, reference, connection_id, carrier, booking_state)
         VALUES ($1, $2, $3, $4, 'ecourier', 'booked')",
    )
    .bind(&app.tenant_id)
    .bind(&id)
    .bind(reference)
    .bind(&app.connection_id)
    .execute(&app.db)
    .await
    .expect("shipment");
    id
}

/// Poll until `f` holds (the workers are asynchronous), up to 20 s.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

async fn deliveries(app: &TestApp, endpoint_id: &str, query: &str) -> Vec<Value> {
    let r = app.get(&format!("/v1/webhook-endpoints/{endpoint_id}/deliveries?limit=100{query}")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()["data"].as_array().expect("data").clone()
}

async fn delivery_of(app: &TestApp, endpoint_id: &str, event_id: &str) -> Option<Value> {
    deliveries(app, endpoint_id, "").await.into_iter().find(|d| d["event_id"] == event_id)
}

async fn wait_status(app: &TestApp, endpoint_id: &str, event_id: &str, status: &str) -> Value {
    eventually(&format!("delivery of {event_id} {status}"), || async {
        delivery_of(app, endpoint_id, event_id).await.is_some_and(|d| d["status"] == status)
    })
    .await;
    delivery_of(app, endpoint_id, event_id).await.expect("delivery")
}

fn verify(secret: &str, hit: &Hit) {
    let wh = standardwebhooks::Webhook::new(secret).expect("secret");
    wh.verify(&hit.body, &hit.headers).expect("the Standard Webhooks library accepts the signature");
}

// ---------- tests ----------

#[tokio::test]
async fn endpoints_crud_shows_the_secret_only_once() {
    let app = spawn_app_with("webhook_allow_networks = \"127.0.0.1/32\"").await;
    let created = create_endpoint(
        &app,
        json!({"url": "http://127.0.0.1:9/hook", "description": "ERP", "event_types": ["shipment.status_changed"]}),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("whe_"));
    let secret = created["secret"].as_str().expect("secret shown on create");
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64");
    assert!(raw.len() >= 24, "secret has {} bytes", raw.len());
    assert_eq!(created["event_types"], json!(["shipment.status_changed"]));
    assert_eq!(created["enabled"], true);

    let got = app.get(&format!("/v1/webhook-endpoints/{id}")).await.json();
    assert!(got.get("secret").is_none(), "no secret on read: {got}");
    assert_eq!(got["url"], "http://127.0.0.1:9/hook");
    let listed = app.get("/v1/webhook-endpoints").await.json();
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert!(listed["data"][0].get("secret").is_none());
    assert!(!String::from_utf8_lossy(&app.get("/v1/webhook-endpoints").await.bytes).contains(secret));

    let patched = app
        .request(
            "PATCH",
            &format!("/v1/webhook-endpoints/{id}"),
            Some(&app.key),
            Some(&json!({"description": "ERP v2", "event_types": []})),
            &[],
        )
        .await;
    assert_eq!(patched.status, 200);
    assert!(patched.json().get("secret").is_none());
    assert_eq!(patched.json()["event_types"], json!([]));
    let rotated = app
        .request(
            "PATCH",
            &format!("/v1/webhook-endpoints/{id}"),
            Some(&app.key),
            Some(&json!({"rotate_secret": true})),
            &[],
        )
        .await
        .json();
    let new_secret = rotated["secret"].as_str().expect("new secret shown once");
    assert_ne!(new_secret, secret);

    // the secret is not stored in plaintext
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_enc FROM webhook_endpoints WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .expect("row");
    let b64 = new_secret.strip_prefix("whsec_").expect("prefix");
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).expect("b64");
    assert!(!stored.windows(raw.len()).any(|w| w == raw.as_slice()));

    let bad = app
        .post("/v1/webhook-endpoints", &json!({"url": "http://127.0.0.1:9/h", "event_types": ["shipment.teleported"]}))
        .await;
    assert_eq!(bad.problem(422, "validation_failed")["errors"][0]["field"], "event_types");
    let unknown = app.post("/v1/webhook-endpoints", &json!({"url": "http://127.0.0.1:9/h", "secret": "whsec_x"})).await;
    assert_eq!(unknown.status, 422);

    let del = app.request("DELETE", &format!("/v1/webhook-endpoints/{id}"), Some(&app.key), None, &[]).await;
    assert_eq!(del.status, 204);
    app.get(&format!("/v1/webhook-endpoints/{id}")).await.problem(404, "not_found");
}

#[tokio::test]
async fn private_and_metadata_urls_are_refused_at_creation() {
    let app = spawn_app().await; // no allow-list
    for url in [
        "http://127.0.0.1/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://100.64.0.1/hook",
        "http://localhost:8080/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
    ] {
        let r = app.post("/v1/webhook-endpoints", &json!({"url": url})).await;
        let body = r.problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "url", "{url}: {body}");
    }
    assert_eq!(app.get("/v1/webhook-endpoints").await.json()["data"], json!([]));
}

#[tokio::test]
async fn a_delivery_is_signed_per_standard_webhooks_and_numbered_per_shipment() {
    let (app, _w) = webhook_app("").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let (ep_id, secret) = (ep["id"].as_str().expect("id"), ep["secret"].as_str().expect("secret"));
    let sid = shipment(&app, "WH-SIGN-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed", "shipment.event_added", "shipment.cancelled"]).await;
    for id in &ids {
        wait_status(&app, ep_id, id, "succeeded").await;
    }
    let mut sequences = Vec::new();
    for id in &ids {
        let hits = rx.hits_for(id);
        assert_eq!(hits.len(), 1, "one POST per event");
        let hit = &hits[0];
        verify(secret, hit);
        assert!(header(&hit.headers, "webhook-signature").starts_with("v1,"));
        assert_eq!(header(&hit.headers, "content-type"), "application/json");
        let body: Value = serde_json::from_slice(&hit.body).expect("json body");
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["data"]["shipment"]["id"], sid.as_str());
        assert!(body["timestamp"].is_string());
        sequences.push((body["type"].as_str().expect("type").to_owned(), body["sequence"].as_i64().expect("sequence")));
    }
    assert!(sequences.windows(2).all(|w| w[1].1 == w[0].1 + 1), "sequences increase by one: {sequences:?}");
    assert_eq!(sequences[0].0, "shipment.status_changed");
    // a signature made with another secret is refused by the same verifier
    let other = standardwebhooks::Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
    assert!(other.verify(&rx.hits_for(&ids[0])[0].body, &rx.hits_for(&ids[0])[0].headers).is_err());

    let d = delivery_of(&app, ep_id, &ids[0]).await.expect("delivery");
    assert_eq!(d["event_type"], "shipment.status_changed");
    assert_eq!(d["attempts"].as_array().expect("attempts").len(), 1);
    assert_eq!(d["attempts"][0]["response_status"], 200);
    assert_eq!(d["attempts"][0]["response_excerpt"], "reply body");
    assert!(d["attempts"][0]["error_code"].is_null());
    assert!(d["delivered_at"].is_string());
    // outcome counter and attempt latency are exported
    let metrics = String::from_utf8(app.request("GET", "/metrics", None, None, &[]).await.bytes).expect("utf8");
    assert!(metrics.contains("shipgate_webhook_deliveries_total{outcome=\"succeeded\"}"), "{metrics}");
    assert!(metrics.contains("shipgate_webhook_attempt_duration_seconds_bucket"), "{metrics}");
}

#[tokio::test]
async fn the_event_type_filter_selects_what_an_endpoint_receives() {
    let (app, _w) = webhook_app("").await;
    let all = Receiver::start().await;
    let some = Receiver::start().await;
    let ep_all = create_endpoint(&app, json!({"url": all.url})).await["id"].as_str().expect("id").to_owned();
    let ep_some =
        create_endpoint(&app, json!({"url": some.url, "event_types": ["shipment.status_changed"]})).await["id"]
            .as_str()
            .expect("id")
            .to_owned();
    let sid = shipment(&app, "WH-FILTER-1").await;
    let ids = emit(&app, &sid, &["shipment.event_added", "shipment.status_changed"]).await;
    wait_status(&app, &ep_all, &ids[0], "succeeded").await;
    wait_status(&app, &ep_all, &ids[1], "succeeded").await;
    wait_status(&app, &ep_some, &ids[1], "succeeded").await;
    assert!(delivery_of(&app, &ep_some, &ids[0]).await.is_none(), "filtered out: no delivery");
    assert!(some.hits_for(&ids[0]).is_empty());
    let types: Vec<String> = some
        .hits()
        .iter()
        .map(|h| serde_json::from_slice::<Value>(&h.body).expect("json")["type"].as_str().expect("t").to_owned())
        .collect();
    assert!(types.iter().all(|t| t == "shipment.status_changed"), "{types:?}");
}

#[tokio::test]
async fn failures_are_retried_on_the_schedule_and_every_attempt_is_logged() {
    let (app, _w) = webhook_app("").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().expect("id");
    rx.script(&[(500, &[]), (500, &[])]);
    let sid = shipment(&app, "WH-RETRY-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    let d = wait_status(&app, ep_id, &ids[0], "succeeded").await;
    let attempts = d["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 3, "{d}");
    assert_eq!(attempts[0]["error_code"], "http_500");
    assert_eq!(attempts[0]["response_status"], 500);
    assert_eq!(attempts[1]["error_code"], "http_500");
    assert!(attempts[2]["error_code"].is_null());
    // the schedule (200 ms, 400 ms) is respected: no retry comes early
    let hits = rx.hits_for(&ids[0]);
    assert_eq!(hits.len(), 3);
    assert!(hits[1].at - hits[0].at >= Duration::from_millis(190), "{:?}", hits[1].at - hits[0].at);
    assert!(hits[2].at - hits[1].at >= Duration::from_millis(390), "{:?}", hits[2].at - hits[1].at);
    // same webhook-id on every attempt; each attempt signed for its own timestamp
    let secret = ep["secret"].as_str().expect("secret");
    for h in &hits {
        verify(secret, h);
    }

    // a subscriber that keeps failing: the delivery ends failed after 1 + 2 attempts
    rx.set_down(true);
    let ids = emit(&app, &sid, &["shipment.event_added"]).await;
    let d = wait_status(&app, ep_id, &ids[0], "failed").await;
    assert_eq!(d["attempts"].as_array().expect("attempts").len(), 3);
    assert_eq!(d["last_error"], "http_503");
    let failed = deliveries(&app, ep_id, "&status=failed").await;
    assert_eq!(failed.len(), 1);
    // ... and can be re-run by hand once the subscriber is back
    rx.set_down(false);
    let r = app.post(&format!("/v1/webhook-deliveries/{}/retry", d["id"].as_str().expect("id")), &json!({})).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let d = wait_status(&app, ep_id, &ids[0], "succeeded").await;
    assert_eq!(d["attempts"].as_array().expect("attempts").len(), 4);
}

#[tokio::test]
async fn a_closed_port_is_logged_as_a_connect_failure() {
    let (app, _w) = webhook_app("webhook_retry_schedule_ms = []").await;
    let ep = create_endpoint(&app, json!({"url": "http://127.0.0.1:1/hook"})).await;
    let sid = shipment(&app, "WH-CONNECT-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    let d = wait_status(&app, ep["id"].as_str().expect("id"), &ids[0], "failed").await;
    assert_eq!(d["attempts"][0]["error_code"], "connect");
    assert!(d["attempts"][0]["response_status"].is_null());
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_stops_its_deliveries() {
    let (app, _w) = webhook_app("").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().expect("id");
    rx.script(&[(410, &[])]);
    let sid = shipment(&app, "WH-GONE-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    let d = wait_status(&app, ep_id, &ids[0], "failed").await;
    assert_eq!(d["last_error"], "http_410");
    let got = app.get(&format!("/v1/webhook-endpoints/{ep_id}")).await.json();
    assert_eq!(got["enabled"], false);
    assert!(got["disabled_reason"].as_str().expect("reason").contains("410"));
    // later events are not delivered to it
    let later = emit(&app, &sid, &["shipment.event_added"]).await;
    eventually("later event dispatched", || async {
        sqlx::query_scalar::<_, bool>("SELECT dispatched_at IS NOT NULL FROM events WHERE id = $1")
            .bind(&later[0])
            .fetch_one(&app.db)
            .await
            .expect("row")
    })
    .await;
    assert!(delivery_of(&app, ep_id, &later[0]).await.is_none());
    assert_eq!(rx.hits().len(), 1);
    let r = app.post(&format!("/v1/webhook-deliveries/{}/retry", d["id"].as_str().expect("id")), &json!({})).await;
    r.problem(409, "endpoint_disabled");
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let (app, _w) = webhook_app("webhook_retry_schedule_ms = [100]").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    rx.script(&[(429, &[("retry-after", "2")])]);
    let sid = shipment(&app, "WH-429-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    let d = wait_status(&app, ep["id"].as_str().expect("id"), &ids[0], "succeeded").await;
    assert_eq!(d["attempts"][0]["error_code"], "http_429");
    let hits = rx.hits_for(&ids[0]);
    assert_eq!(hits.len(), 2);
    let gap = hits[1].at - hits[0].at;
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}, Retry-After said 2 s");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (app, _w) = webhook_app("webhook_retry_schedule_ms = []").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let elsewhere = rx.url.replace("/hook", "/elsewhere");
    rx.script(&[(302, &[("location", elsewhere.as_str())])]);
    let sid = shipment(&app, "WH-302-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    let d = wait_status(&app, ep["id"].as_str().expect("id"), &ids[0], "failed").await;
    assert_eq!(d["attempts"][0]["error_code"], "http_302");
    let paths: Vec<String> = rx.hits().iter().map(|h| h.path.clone()).collect();
    assert_eq!(paths, vec!["/hook".to_owned()], "the redirect target was never called");
}

#[tokio::test]
async fn the_guard_also_applies_at_connect_time() {
    // Created while the allow-list admitted loopback ...
    let app = spawn_app_with("webhook_allow_networks = \"127.0.0.1/32, ::1/128\"").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    // a name that resolves to loopback: only the resolver can stop it at connect time
    let by_name = create_endpoint(&app, json!({"url": rx.url.replace("127.0.0.1", "localhost")})).await;
    // ... delivered by an instance without the allow-list.
    let strict = shipgate::config::Config::from_toml_overrides(&format!(
        "master_key = \"{}\"\nwebhook_retry_schedule_ms = []\nwebhook_poll_interval_ms = 20",
        crate::helpers::MASTER_KEY
    ))
    .expect("config");
    let state = shipgate::app::AppState::new(app.db.clone(), strict).expect("state");
    let _w = shipgate::webhooks::spawn(state).expect("workers");
    let sid = shipment(&app, "WH-SSRF-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    for e in [&ep, &by_name] {
        let d = wait_status(&app, e["id"].as_str().expect("id"), &ids[0], "failed").await;
        assert_eq!(d["attempts"][0]["error_code"], "ssrf_blocked", "{d}");
    }
    assert!(rx.hits().is_empty(), "nothing reached the private address");
}

#[tokio::test]
async fn replay_resends_failed_deliveries_since_a_time() {
    let (app, _w) = webhook_app("webhook_retry_schedule_ms = [50]").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().expect("id");
    let since = chrono::Utc::now().to_rfc3339();
    rx.set_down(true);
    let sid = shipment(&app, "WH-REPLAY-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed", "shipment.event_added", "shipment.cancelled"]).await;
    for id in &ids {
        wait_status(&app, ep_id, id, "failed").await;
    }
    rx.set_down(false);
    let r = app.post(&format!("/v1/webhook-endpoints/{ep_id}/replay"), &json!({"since": since})).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["replayed"], 3);
    for id in &ids {
        let d = wait_status(&app, ep_id, id, "succeeded").await;
        assert_eq!(d["attempts"].as_array().expect("attempts").len(), 3);
        let hits = rx.hits_for(id);
        verify(ep["secret"].as_str().expect("secret"), hits.last().expect("hit"));
    }
    let r = app.post(&format!("/v1/webhook-endpoints/{ep_id}/replay"), &json!({"since": since})).await;
    assert_eq!(r.json()["replayed"], 0, "nothing left to replay");
}

#[tokio::test]
async fn events_are_listed_in_order_with_cursor_paging_and_filters() {
    let app = spawn_app().await;
    let a = shipment(&app, "EV-1").await;
    let b = shipment(&app, "EV-2").await;
    let mut mine = emit(&app, &a, &["shipment.status_changed", "shipment.event_added"]).await;
    mine.extend(emit(&app, &b, &["shipment.status_changed"]).await);
    mine.extend(emit(&app, &a, &["shipment.cancelled", "shipment.event_added"]).await);
    // every event of shipment a, page by page
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page = app.get(&format!("/v1/events?shipment_id={a}&limit=2{q}")).await.json();
        for e in page["data"].as_array().expect("data") {
            seen.push((e["id"].as_str().expect("id").to_owned(), e["sequence"].as_i64().expect("seq")));
            assert_eq!(e["shipment_id"], a.as_str());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected: Vec<&String> = mine.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, id)| id).collect();
    let seen_ids: Vec<&String> = seen.iter().map(|(id, _)| id).filter(|id| mine.contains(id)).collect();
    assert_eq!(seen_ids, expected, "in the order written");
    assert!(seen.windows(2).all(|w| w[1].1 > w[0].1), "per-shipment sequence increases: {seen:?}");
    let typed = app.get("/v1/events?type=shipment.cancelled").await.json();
    assert_eq!(typed["data"].as_array().expect("data").len(), 1);
    assert_eq!(typed["data"][0]["id"], mine[3].as_str());
    app.get("/v1/events?type=shipment.teleported").await.problem(422, "validation_failed");
    app.get("/v1/events?cursor=bm90LWEtY3Vyc29y").await.problem(422, "validation_failed");
    app.get("/v1/events?limit=101").await.problem(422, "validation_failed");
}

#[tokio::test]
async fn another_tenant_sees_none_of_it() {
    let (app, _w) = webhook_app("").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().expect("id");
    let sid = shipment(&app, "WH-TEN-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    let d = wait_status(&app, ep_id, &ids[0], "succeeded").await;
    let (_, other) = new_tenant(&app.state, "Tenant B").await;
    let k = Some(other.as_str());
    for (method, path, body) in [
        ("GET", format!("/v1/webhook-endpoints/{ep_id}"), None),
        ("PATCH", format!("/v1/webhook-endpoints/{ep_id}"), Some(json!({"description": "mine now"}))),
        ("DELETE", format!("/v1/webhook-endpoints/{ep_id}"), None),
        ("GET", format!("/v1/webhook-endpoints/{ep_id}/deliveries"), None),
        ("POST", format!("/v1/webhook-endpoints/{ep_id}/replay"), Some(json!({"since": "2020-01-01T00:00:00Z"}))),
        ("POST", format!("/v1/webhook-deliveries/{}/retry", d["id"].as_str().expect("id")), None),
    ] {
        let r = app.request(method, &path, k, body.as_ref(), &[]).await;
        r.problem(404, "not_found");
    }
    let listed = app.request("GET", "/v1/webhook-endpoints", k, None, &[]).await.json();
    assert_eq!(listed["data"], json!([]));
    let events = app.request("GET", "/v1/events", k, None, &[]).await.json();
    assert_eq!(events["data"], json!([]));
    // and tenant B's endpoints never receive tenant A's events
    let rx_b = Receiver::start().await;
    let r = app.request("POST", "/v1/webhook-endpoints", k, Some(&json!({"url": rx_b.url})), &[]).await;
    assert_eq!(r.status, 201);
    let more = emit(&app, &sid, &["shipment.event_added"]).await;
    wait_status(&app, ep_id, &more[0], "succeeded").await;
    assert!(rx_b.hits().is_empty());
}

/// docs/quality.md reliability 9 with a shrunk schedule (100, 200, 400, 800 ms): the
/// subscriber is down while 36 events across 8 shipments are written — the first 16
/// long enough to exhaust the schedule (they end `failed` and are replayed), the rest
/// come back partway through it. Every event is delivered, each attempt is logged, no
/// retry comes earlier than the schedule, and every delivered signature verifies with
/// the reference library. Prints the figures.
#[tokio::test]
async fn reliability_subscriber_down_then_up() {
    let (app, _w) = webhook_app("webhook_retry_schedule_ms = [100, 200, 400, 800]").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let (ep_id, secret) = (ep["id"].as_str().expect("id"), ep["secret"].as_str().expect("secret"));
    let since = chrono::Utc::now().to_rfc3339();
    let mut sids = Vec::new();
    for i in 0..8 {
        sids.push(shipment(&app, &format!("WH-REL-{i}")).await);
    }
    rx.set_down(true);
    let started = Instant::now();
    let kinds = ["shipment.status_changed", "shipment.event_added", "shipment.event_added", "shipment.status_changed"];
    // wave 1: down for longer than the whole schedule (1.5 s) -> ends failed, replayed
    let mut ids = Vec::new();
    for sid in &sids[..4] {
        ids.extend(emit(&app, sid, &kinds).await);
    }
    let wave1 = ids.len();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    // wave 2: the subscriber comes back while these are still on the schedule
    for sid in &sids {
        ids.extend(emit(&app, sid, &kinds[..1]).await);
    }
    for sid in &sids[4..] {
        ids.extend(emit(&app, sid, &kinds[1..]).await);
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    rx.set_down(false);
    let up_at = Instant::now();
    let mut failed_then = 0;
    eventually("every delivery settled", || async {
        let all = deliveries(&app, ep_id, "").await;
        all.len() == ids.len() && all.iter().all(|d| d["status"] != "pending")
    })
    .await;
    for d in deliveries(&app, ep_id, "&status=failed").await {
        failed_then += 1;
        assert!(ids.contains(&d["event_id"].as_str().expect("id").to_owned()));
    }
    assert_eq!(failed_then, wave1, "wave 1 ran out of schedule while the subscriber was down");
    let r = app.post(&format!("/v1/webhook-endpoints/{ep_id}/replay"), &json!({"since": since})).await;
    assert_eq!(r.json()["replayed"], failed_then);
    eventually("every event delivered", || async {
        deliveries(&app, ep_id, "&status=succeeded").await.len() == ids.len()
    })
    .await;
    let all = deliveries(&app, ep_id, "").await;
    let mut attempts_total = 0;
    let mut by_event: HashMap<String, Value> = HashMap::new();
    for d in all {
        by_event.insert(d["event_id"].as_str().expect("id").to_owned(), d);
    }
    for id in &ids {
        let d = &by_event[id];
        let logged = d["attempts"].as_array().expect("attempts");
        let hits = rx.hits_for(id);
        assert_eq!(logged.len(), hits.len(), "every attempt logged for {id}");
        attempts_total += hits.len();
        let last = hits.last().expect("delivered");
        verify(secret, last);
        let body: Value = serde_json::from_slice(&last.body).expect("json");
        assert_eq!(body["id"], id.as_str());
        // retries never come earlier than the schedule says
        for (i, w) in hits.windows(2).enumerate() {
            if let Some(min) = [100u64, 200, 400, 800].get(i) {
                assert!(w[1].at - w[0].at >= Duration::from_millis(min - 10), "{id} retry {i} too early");
            }
        }
    }
    println!(
        "reliability 9: {} events, {} attempts logged, {} replayed after the schedule ran out, \
         all delivered {:.2} s after the subscriber came back ({:.2} s in all), signatures verified",
        ids.len(),
        attempts_total,
        failed_then,
        up_at.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn shutdown_finishes_in_flight_deliveries_and_stops_claiming() {
    let (app, workers) = webhook_app("").await;
    let rx = Receiver::start().await;
    rx.set_delay(Duration::from_millis(700));
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().expect("id");
    let sid = shipment(&app, "WH-STOP-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    // in flight: the subscriber has the request and has not answered yet
    eventually("request in flight", || async { rx.arrived() == 1 }).await;
    assert!(rx.hits().is_empty(), "not answered yet");
    let t = Instant::now();
    workers.shutdown().await;
    assert!(t.elapsed() >= Duration::from_millis(300), "shutdown waited for the answer");
    // the in-flight attempt was awaited and recorded before shutdown returned
    let d = delivery_of(&app, ep_id, &ids[0]).await.expect("delivery");
    assert_eq!(d["status"], "succeeded", "{d}");
    assert_eq!(rx.hits_for(&ids[0]).len(), 1);
    // nothing is claimed any more
    let later = emit(&app, &sid, &["shipment.event_added"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE event_id = $1 AND attempts > 0")
        .bind(&later[0])
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_worker_that_lost_its_claim_cannot_record_a_result() {
    let app = spawn_app_with("webhook_allow_networks = \"127.0.0.1/32\"").await;
    let ep = create_endpoint(&app, json!({"url": "http://127.0.0.1:9/hook"})).await;
    let sid = shipment(&app, "WH-LEASE-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    shipgate::webhooks::dispatch_once(&app.state).await.expect("dispatch");
    let mut conn = app.db.acquire().await.expect("conn");
    let stale = uuid::Uuid::new_v4();
    let claimed = shipgate::store::webhooks::claim_due(&mut conn, 10, 60_000.0, stale).await.expect("claim");
    let c = claimed.into_iter().find(|c| c.event_id == ids[0]).expect("claimed");
    // the claim is taken over (here by a manual retry, which re-queues with a new claim)
    let r = app.post(&format!("/v1/webhook-deliveries/{}/retry", c.id), &json!({})).await;
    assert_eq!(r.status, 202);
    let outcome = shipgate::store::webhooks::Outcome {
        tenant_id: c.tenant_id.clone(),
        delivery_id: c.id.clone(),
        claim_token: stale,
        attempt: c.attempt,
        state: "succeeded",
        next_attempt_at: None,
        started_at: chrono::Utc::now(),
        duration_ms: 1,
        response_status: Some(200),
        error_code: None,
        response_excerpt: None,
    };
    let recorded = shipgate::store::webhooks::record(&mut conn, &[outcome]).await.expect("record");
    assert_eq!(recorded, 0, "the stale claim recorded nothing");
    let d = delivery_of(&app, ep["id"].as_str().expect("id"), &ids[0]).await.expect("delivery");
    assert_eq!(d["status"], "pending");
    assert_eq!(d["attempts"], json!([]), "no attempt logged for the stale claim");
}

#[tokio::test]
async fn a_booking_and_its_tracking_reach_the_subscriber_signed_and_in_sequence() {
    let (app, _w) = webhook_app("").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let secret = ep["secret"].as_str().expect("secret").to_owned();
    let booked = app.book("WH-FLOW-1").await;
    let sid = booked["id"].as_str().expect("id").to_owned();
    // The carrier moves the order on; a refresh picks it up.
    app.sim.advance(booked["carrier_reference"].as_str().expect("order number")).expect("advance");
    app.sim.advance(booked["carrier_reference"].as_str().expect("order number")).expect("advance");
    let r = app.post(&format!("/v1/shipments/{sid}/refresh"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let events = app.get(&format!("/v1/events?shipment_id={sid}")).await.json();
    let events = events["data"].as_array().expect("events").clone();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().expect("type")).collect();
    assert_eq!(&types[..2], ["shipment.created", "shipment.booked"], "{types:?}");
    assert!(types.contains(&"shipment.status_changed"), "{types:?}");
    eventually("every event delivered", || async { rx.hits().len() >= events.len() }).await;
    let mut seqs = Vec::new();
    for e in &events {
        let hits = rx.hits_for(e["id"].as_str().expect("id"));
        assert_eq!(hits.len(), 1, "one delivery of {e}");
        verify(&secret, &hits[0]);
        let body: Value = serde_json::from_slice(&hits[0].body).expect("json");
        assert_eq!(body["type"], e["type"]);
        assert_eq!(body["data"]["shipment"]["id"], sid.as_str());
        seqs.push(body["sequence"].as_i64().expect("sequence"));
    }
    assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>(), "numbered 1, 2, 3 ... per shipment");
    let last = rx.hits_for(events.last().expect("event")["id"].as_str().expect("id"));
    let body: Value = serde_json::from_slice(&last[0].body).expect("json");
    assert_eq!(
        body["data"]["shipment"],
        app.get(&format!("/v1/shipments/{sid}")).await.json(),
        "the shipment as the API shows it"
    );
}

// ---------- secret rotation with an overlap ----------

async fn rotate(app: &TestApp, endpoint_id: &str) -> Value {
    let r = app
        .request(
            "PATCH",
            &format!("/v1/webhook-endpoints/{endpoint_id}"),
            Some(&app.key),
            Some(&json!({"rotate_secret": true})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()
}

/// Deliver one event to `rx` and return the request it received.
async fn deliver_one(app: &TestApp, rx: &Receiver, endpoint_id: &str, reference: &str) -> Hit {
    let s = shipment(app, reference).await;
    let ids = emit(app, &s, &["shipment.status_changed"]).await;
    wait_status(app, endpoint_id, &ids[0], "succeeded").await;
    rx.hits_for(&ids[0]).pop().expect("delivered")
}

fn verifies(secret: &str, hit: &Hit) -> bool {
    standardwebhooks::Webhook::new(secret).expect("secret").verify(&hit.body, &hit.headers).is_ok()
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_for_the_overlap_then_only_the_new_one_does() {
    let (app, _w) = webhook_app("").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let id = ep["id"].as_str().expect("id").to_owned();
    let old = ep["secret"].as_str().expect("secret").to_owned();
    assert!(ep.get("previous_secret_expires_at").is_none(), "{ep}");

    let rotated = rotate(&app, &id).await;
    let new = rotated["secret"].as_str().expect("new secret").to_owned();
    assert_ne!(new, old);
    // The default overlap: 24 hours from now.
    let until = chrono::DateTime::parse_from_rfc3339(rotated["previous_secret_expires_at"].as_str().expect("until"))
        .expect("time");
    let hours = (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "{hours} h");

    // During the overlap a receiver holding either secret accepts the delivery.
    let hit = deliver_one(&app, &rx, &id, "ROT-1").await;
    assert_eq!(header(&hit.headers, "webhook-signature").split(' ').count(), 2, "two signatures");
    assert!(verifies(&old, &hit), "a receiver still on the old secret");
    assert!(verifies(&new, &hit), "a receiver already on the new secret");

    // The previous secret is sealed like the current one: not in the row in clear.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT previous_secret_enc FROM webhook_endpoints WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .expect("row");
    use base64::Engine as _;
    let raw =
        base64::engine::general_purpose::STANDARD.decode(old.strip_prefix("whsec_").expect("prefix")).expect("b64");
    assert!(!stored.windows(raw.len()).any(|w| w == raw.as_slice()));

    // The overlap ends: only the new secret signs.
    sqlx::query("UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(&id)
        .execute(&app.db)
        .await
        .expect("end the overlap");
    let hit = deliver_one(&app, &rx, &id, "ROT-2").await;
    assert_eq!(header(&hit.headers, "webhook-signature").split(' ').count(), 1);
    assert!(verifies(&new, &hit));
    assert!(!verifies(&old, &hit), "the old secret no longer verifies");
    let got = app.get(&format!("/v1/webhook-endpoints/{id}")).await.json();
    assert!(got.get("previous_secret_expires_at").is_none(), "{got}");
}

#[tokio::test]
async fn with_no_overlap_configured_the_new_secret_alone_signs_at_once() {
    let (app, _w) = webhook_app("webhook_secret_overlap_hours = 0\n").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let id = ep["id"].as_str().expect("id").to_owned();
    let old = ep["secret"].as_str().expect("secret").to_owned();
    let rotated = rotate(&app, &id).await;
    assert!(rotated.get("previous_secret_expires_at").is_none(), "{rotated}");
    let new = rotated["secret"].as_str().expect("new secret").to_owned();
    let hit = deliver_one(&app, &rx, &id, "ROT-0").await;
    assert!(verifies(&new, &hit));
    assert!(!verifies(&old, &hit));
}

// ---------- one timestamp format everywhere ----------

/// RFC 3339 in UTC with exactly six fractional digits: `2026-11-22T10:00:00.000000Z`.
fn micros_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27
        && b[26] == b'Z'
        && b[19] == b'.'
        && b[20..26].iter().all(u8::is_ascii_digit)
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

#[tokio::test]
async fn an_event_reads_the_same_in_its_webhook_and_in_v1_events() {
    let (app, _w) = webhook_app("").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let endpoint = ep["id"].as_str().expect("id").to_owned();

    // Real events (created, booked) carrying the shipment with its own timestamps, and
    // one written on a whole second (chrono would drop the fraction there).
    let booked = app.book("SAME-1").await;
    let shipment_id = booked["id"].as_str().expect("id").to_owned();
    let mut tx = app.db.begin().await.expect("tx");
    let whole = shipgate::store::events::emit(
        &mut tx,
        &app.tenant_id,
        &shipment_id,
        &[NewEvent { event_type: "shipment.status_changed", data: json!({"shipment": {"id": shipment_id}}) }],
    )
    .await
    .expect("emit");
    sqlx::query("UPDATE events SET created_at = '2026-11-22T10:00:00Z' WHERE id = $1")
        .bind(&whole[0])
        .execute(&mut *tx)
        .await
        .expect("whole second");
    tx.commit().await.expect("commit");

    let listed = app.get(&format!("/v1/events?shipment_id={shipment_id}")).await.json();
    let listed = listed["data"].as_array().expect("data").clone();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for e in &listed {
        let id = e["id"].as_str().expect("id");
        wait_status(&app, &endpoint, id, "succeeded").await;
        let hit = rx.hits_for(id).pop().expect("delivered");
        let payload: Value = serde_json::from_slice(&hit.body).expect("payload");
        assert!(micros_utc(e["timestamp"].as_str().expect("timestamp")), "{e}");
        for field in ["id", "type", "timestamp", "sequence", "data"] {
            assert_eq!(payload[field], e[field], "{field} of {id}");
        }
    }
    assert_eq!(listed[2]["timestamp"], "2026-11-22T10:00:00.000000Z");

    // The shipment inside an event and the shipment itself use the same format.
    let got = app.get(&format!("/v1/shipments/{shipment_id}")).await.json();
    for t in [&got["created_at"], &got["updated_at"], &got["booking"]["booked_at"]] {
        assert!(micros_utc(t.as_str().unwrap_or_default()), "{t}: {got}");
    }
    assert_eq!(listed[0]["data"]["shipment"]["created_at"], got["created_at"]);
    let delivery = delivery_of(&app, &endpoint, listed[0]["id"].as_str().expect("id")).await.expect("delivery");
    for field in ["created_at", "updated_at", "delivered_at"] {
        assert!(micros_utc(delivery[field].as_str().unwrap_or_default()), "{field}: {delivery}");
    }
    assert!(micros_utc(delivery["attempts"][0]["started_at"].as_str().unwrap_or_default()), "{delivery}");
}
