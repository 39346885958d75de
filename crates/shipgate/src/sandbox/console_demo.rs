//! Demo activity for the ops console (issue 14, docs/console.md): once the sandbox
//! serves, its demo tenant gets, through the public API and the carriers' own push
//! format, a delivered shipment, one in transit, an exception, an unmapped carrier
//! code, a refused push, webhook deliveries that succeed and ones that fail, and a
//! dead booking job (on a demo connection to an address nothing listens on) — so every
//! console view has something to show.
//!
//! The failing deliveries go to a demo subscriber mounted at [`SUBSCRIBER_MOUNT`]
//! that answers 503 to an event's first three attempts and 200 after: with the
//! sandbox's short retry schedule they end `failed`, and a retry from the console then
//! succeeds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use super::{ECOURIER_MOUNT, Simulators, ecomexpress};
use crate::app::AppState;
use crate::config::Config;
use crate::store;

/// Where the demo webhook subscriber is mounted.
pub const SUBSCRIBER_MOUNT: &str = "/sim/subscriber";
/// Attempts the flaky subscriber refuses per event before it accepts.
const REFUSED_ATTEMPTS: u32 = 3;

/// The sandbox's webhook settings for the demo: loopback may be a webhook target (the
/// demo subscriber is on this server) and, unless configured otherwise, a failed
/// delivery is retried twice within seconds, so a failure is final soon.
pub fn adjust_config(config: &mut Config) {
    if config.webhooks.allow_networks.is_empty()
        && let Ok(net) = "127.0.0.1/32".parse()
    {
        config.webhooks.allow_networks.push(net);
    }
    let default = Config::from_toml_overrides("").map(|c| c.webhooks.retry_schedule).unwrap_or_default();
    if config.webhooks.retry_schedule == default {
        config.webhooks.retry_schedule = vec![Duration::from_secs(1), Duration::from_secs(2)];
    }
}

/// The demo subscriber: `/flaky` refuses each event's first attempts, `/ok` accepts all.
pub fn mount(router: Router) -> Router {
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let flaky = move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let n = {
                let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let n = seen.entry(id).or_insert(0);
                *n += 1;
                *n
            };
            if n <= REFUSED_ATTEMPTS {
                (StatusCode::SERVICE_UNAVAILABLE, "demo subscriber: down for this event's first attempts")
            } else {
                (StatusCode::OK, "demo subscriber: received")
            }
        }
    };
    router.nest(
        SUBSCRIBER_MOUNT,
        Router::new().route("/flaky", post(flaky)).route("/ok", post(|| async { (StatusCode::OK, "received") })),
    )
}

/// What the activity needs of the demo tenant.
pub struct DemoActivity {
    pub base: String,
    pub api_key: String,
    pub tenant_id: String,
    pub ecourier_connection_id: String,
    pub ecomexpress_connection_id: String,
    pub ecomexpress_username: String,
    pub ecomexpress_password: String,
}

/// Seed the activity in the background once the server answers; failures are printed,
/// never fatal (the sandbox works without its demo data).
pub fn spawn(state: AppState, sims: Simulators, demo: DemoActivity) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = seed(&state, &sims, &demo).await {
            eprintln!("console demo activity could not be seeded: {e:#}");
        }
    })
}

fn booking(connection_id: &str, reference: &str) -> Value {
    json!({
        "connection_id": connection_id, "reference": reference,
        "stops": [
            {"sequence": 1, "type": "pickup", "name": "James Madison",
             "address": {"line1": "2251 Orange Blossom Trail", "city": "Orlando", "state": "FL", "postal_code": "32804", "country": "US"},
             "scheduled_at": "2026-11-23T06:00:00-05:00"},
            {"sequence": 2, "type": "delivery", "name": "Bryan Moore",
             "address": {"line1": "2253 Orange Blossom Trail", "city": "Orlando", "state": "FL", "postal_code": "32804", "country": "US"}}
        ],
        "parcels": [{"reference": "PKG-1", "quantity": 1, "weight": {"value": 2.5, "unit": "lb"}}]
    })
}

async fn seed(state: &AppState, sims: &Simulators, d: &DemoActivity) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    for _ in 0..100 {
        if http.get(format!("{}/healthz", d.base)).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let api = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{}{path}", d.base)).bearer_auth(&d.api_key).json(&body).send()
    };
    let post = reqwest::Method::POST;
    // Subscribers first, so the bookings' events are delivered.
    let loopback = d.base.replace("0.0.0.0", "127.0.0.1");
    for (path, description) in
        [("flaky", "demo subscriber (fails each event's first 3 attempts)"), ("ok", "demo subscriber (always accepts)")]
    {
        let url = format!("{loopback}{SUBSCRIBER_MOUNT}/{path}");
        api(post.clone(), "/v1/webhook-endpoints", json!({"url": url, "description": description}))
            .await?
            .error_for_status()?;
    }
    // Delivered and in transit: booked, moved on at the simulator, refreshed.
    for (reference, stages) in [("DEMO-DELIVERED", 3), ("DEMO-IN-TRANSIT", 2), ("DEMO-BOOKED", 0)] {
        let s: Value = api(post.clone(), "/v1/shipments", booking(&d.ecourier_connection_id, reference))
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = s["id"].as_str().unwrap_or_default().to_owned();
        let order = crate::service::shipments::order_number_for(&id);
        for _ in 0..stages {
            sims.ecourier.advance(&order).map_err(|e| anyhow::anyhow!("advance {order}: {e}"))?;
        }
        if stages > 0 {
            api(post.clone(), &format!("/v1/shipments/{id}/refresh"), json!({})).await?;
        }
    }
    // Pushes: an exception (302 damaged), an unknown code twice, a refused push.
    let url = format!("{}/v1/inbound/ecomexpress/{}", loopback, d.ecomexpress_connection_id);
    let pusher = ecomexpress::EcomPusher::new(&url, &d.ecomexpress_username, &d.ecomexpress_password);
    pusher.push(&ecomexpress::Scan::new("DEMOEXC1", "1", "302").status("Shipment damaged")).await?;
    for sun in ["1", "2"] {
        pusher.push(&ecomexpress::Scan::new("DEMOUNMAPPED1", sun, "4242").status("Held at customs gate")).await?;
    }
    let wrong = ecomexpress::EcomPusher::new(&url, &d.ecomexpress_username, "not-the-password");
    wrong.push(&ecomexpress::Scan::new("DEMOEXC1", "2", "204")).await?;
    // A dead booking job: a second e-Courier connection whose carrier cannot be reached
    // (nothing listens on port 9), so the booking and its one retry fail. Its own
    // connection, so the simulator every other client books with is never disturbed.
    let down: Value = api(
        post.clone(),
        "/v1/connections",
        json!({"carrier": "ecourier", "name": "e-Courier (unreachable, demo)",
               "base_url": format!("http://127.0.0.1:9{ECOURIER_MOUNT}"),
               "credentials": {"website": "demo", "username": "demo", "password": "demo-unreachable"},
               "settings": {"customer_code": "DEMO"}}),
    )
    .await?
    .error_for_status()?
    .json()
    .await?;
    let down_id = down["id"].as_str().unwrap_or_default().to_owned();
    let s: Value = api(post.clone(), "/v1/shipments", booking(&down_id, "DEMO-DEAD-JOB")).await?.json().await?;
    if let Some(id) = s["id"].as_str() {
        let mut conn = state.db.acquire().await?;
        store::jobs::last_attempt_now(&mut conn, &d.tenant_id, id).await?;
    }
    println!("console demo activity seeded (shipments, pushes, webhook deliveries to {SUBSCRIBER_MOUNT}, a dead job)");
    Ok(())
}
