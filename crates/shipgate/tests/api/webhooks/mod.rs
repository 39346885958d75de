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

mod delivery;
mod endpoints;
mod outbox;
mod reliability;
mod rotation;

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
    let mut tx = shipgate::store::begin(&app.db).await.expect("tx");
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
