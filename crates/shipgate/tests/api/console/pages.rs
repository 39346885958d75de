//! Every console page, signed in: what each shows, its actions, and that no secret is
//! ever rendered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sims::ecomexpress::{EcomPusher, Scan};
use sims::ecourier::SimFault;

use super::{Console, SECTIONS};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// A webhook subscriber that answers 503 while down and 200 once up.
async fn subscriber() -> (String, Arc<AtomicBool>) {
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let app = axum::Router::new().fallback(move || {
        let flag = flag.clone();
        async move {
            if flag.load(Ordering::SeqCst) {
                (axum::http::StatusCode::OK, "thanks")
            } else {
                (axum::http::StatusCode::SERVICE_UNAVAILABLE, "subscriber is down")
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, up)
}

async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

const WEBHOOKS: &str = "webhook_allow_networks = \"127.0.0.1/32\"\nwebhook_retry_jitter = 0.0\n\
                        webhook_poll_interval_ms = 20\nwebhook_retry_schedule_ms = [50]\n";

/// A failed delivery: the subscriber was down for both attempts.
async fn failed_delivery(app: &TestApp) -> (String, String, Arc<AtomicBool>) {
    let (url, up) = subscriber().await;
    let r = app.post("/v1/webhook-endpoints", &json!({"url": url, "description": "ops hook"})).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let endpoint = r.json()["id"].as_str().expect("id").to_owned();
    app.book("CONSOLE-HOOKED").await;
    until("a failed delivery", || async {
        let d = app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries?status=failed")).await.json();
        d["data"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let d = app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries?status=failed")).await.json();
    let delivery = d["data"][0]["id"].as_str().expect("delivery").to_owned();
    (endpoint, delivery, up)
}

#[tokio::test]
async fn a_failed_delivery_is_shown_with_its_attempts_and_retried_until_it_succeeds() {
    let app = spawn_app_with(WEBHOOKS).await;
    let _workers = shipgate::webhooks::spawn(app.state.clone()).expect("workers");
    let (endpoint, delivery, up) = failed_delivery(&app).await;
    let c = Console::signed_in(&app, &app.key).await;

    let list = c.get("/console/webhooks").await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert!(list.text.contains(&endpoint) && list.text.contains("ops hook"));
    assert!(list.text.contains("failed"), "{}", list.text);

    let page = c.get(&format!("/console/webhooks/{endpoint}?status=failed")).await;
    assert!(page.text.contains(&delivery), "{}", page.text);
    assert!(page.text.contains("HTTP 503") && page.text.contains("subscriber is down"), "codes and excerpts");

    up.store(true, Ordering::SeqCst);
    let action = format!("/console/webhooks/deliveries/{delivery}/retry");
    let r = c.submit(&page, &action, &[]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some(format!("/console/webhooks/{endpoint}?done=delivery_retried")));
    until("the retried delivery succeeds", || async {
        c.get(&format!("/console/webhooks/{endpoint}?status=succeeded")).await.text.contains(&delivery)
    })
    .await;

    // Bad filter values name the field.
    let r = c.get(&format!("/console/webhooks/{endpoint}?status=weird")).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("status:"));
}

#[tokio::test]
async fn replay_requeues_the_failed_deliveries_since_a_time() {
    let app = spawn_app_with(WEBHOOKS).await;
    let _workers = shipgate::webhooks::spawn(app.state.clone()).expect("workers");
    let (endpoint, _, up) = failed_delivery(&app).await;
    // The booking's two events (shipment.created, shipment.booked) each fail on their own
    // schedule: count them once both have, or the replay finds one more than counted.
    let deliveries = |status: &'static str| {
        let path = format!("/v1/webhook-endpoints/{endpoint}/deliveries{status}");
        let app = &app;
        async move { app.get(&path).await.json()["data"].as_array().map_or(0, Vec::len) }
    };
    until("both of the booking's deliveries failed", || async {
        let (all, failed) = (deliveries("").await, deliveries("?status=failed").await);
        all >= 2 && failed == all
    })
    .await;
    let n = deliveries("?status=failed").await;
    up.store(true, Ordering::SeqCst);
    let c = Console::signed_in(&app, &app.key).await;
    let page = c.get(&format!("/console/webhooks/{endpoint}")).await;
    let r = c.submit(&page, &format!("/console/webhooks/{endpoint}/replay"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some(format!("/console/webhooks/{endpoint}?done=replayed&n={n}")));
    until("no failed deliveries left", || async {
        let d = app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries?status=failed")).await.json();
        d["data"].as_array().is_some_and(|a| a.is_empty())
    })
    .await;
    let action = format!("/console/webhooks/{endpoint}/replay");
    let csrf = csrf_of(&page, &action);
    let bad = c.post_raw(&action, &[("csrf", &csrf), ("idem", "replaybad1"), ("since", "soon")], true).await;
    assert_eq!(bad.status, 422);
    assert!(bad.text.contains("since:"));
}

/// The page's CSRF token for the form posting to `action`.
fn csrf_of(page: &super::Page, action: &str) -> String {
    page.form(action).into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v).expect("csrf")
}

#[tokio::test]
async fn a_dead_job_is_listed_with_its_last_error_and_rerun() {
    let app = spawn_app_with("carrier_breaker_threshold = 1000").await;
    app.sim.fail_next(Some("SaveOrder"), 10_000, SimFault::Status(-1));
    let s = app.post("/v1/shipments", &app.shipment_body("CONSOLE-DEAD")).await.accepted();
    let id = s["id"].as_str().expect("id").to_owned();
    sqlx::query("UPDATE jobs SET max_attempts = 1 WHERE kind = 'booking'").execute(&app.db).await.expect("shrink");
    app.run_due_jobs().await;
    let dead = app.get("/v1/jobs?state=dead").await.json();
    let job = dead["data"][0]["id"].as_str().expect("dead job").to_owned();

    let c = Console::signed_in(&app, &app.key).await;
    let page = c.get("/console/jobs").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains(&job) && page.text.contains("transient"), "{}", page.text);
    assert!(page.text.contains(&id), "links the shipment");
    // The shipment page offers the re-run too.
    let shipment_page = c.get(&format!("/console/shipments/{id}")).await;
    assert!(shipment_page.text.contains(&format!("Re-run booking job {job}")), "{}", shipment_page.text);

    app.sim.fail_next(Some("SaveOrder"), 0, SimFault::Status(-1));
    let r = c.submit(&page, &format!("/console/jobs/{job}/rerun"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(app.get(&format!("/v1/jobs/{job}")).await.json()["state"], "queued");
    // Re-running a job that is not dead is refused with the reason.
    let again = c.get("/console/jobs?state=queued").await;
    assert!(again.text.contains(&job));
    let action = format!("/console/jobs/{job}/rerun");
    let csrf = csrf_of(&page, &action);
    let r = c.post_raw(&action, &[("csrf", &csrf), ("idem", "anotherclick")], true).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("only dead jobs"));
    assert_eq!(c.get("/console/jobs?state=lost").await.status, 422);
}

#[tokio::test]
async fn an_unmapped_code_is_listed_with_its_count_and_mapped_in_place_and_pushes_show_on_inbound() {
    let app = spawn_app().await;
    let r = app.post("/v1/connections", &json!({"carrier": "ecomexpress", "name": "Ecom pushes"})).await;
    assert_eq!(r.status, 201);
    let b = r.json();
    let (user, password) = (
        b["generated_credentials"]["username"].as_str().expect("user").to_owned(),
        b["generated_credentials"]["password"].as_str().expect("password").to_owned(),
    );
    let url = format!("{}{}", app.base, b["inbound_url"].as_str().expect("url"));
    let pusher = EcomPusher::new(&url, &user, &password);
    for sun in ["1", "2"] {
        let ack = pusher.push(&Scan::new("CONSOLEAWB1", sun, "4242").status("Mystery status")).await.expect("push");
        assert!(ack.accepted());
    }
    // A push with the wrong password is refused and recorded.
    let wrong = EcomPusher::new(&url, &user, "not-the-password-at-all");
    assert!(!wrong.push(&Scan::new("CONSOLEAWB2", "1", "001")).await.expect("push").accepted());

    let c = Console::signed_in(&app, &app.key).await;
    let inbound = c.get("/console/inbound").await;
    assert_eq!(inbound.status, 200, "{}", inbound.text);
    assert!(inbound.text.contains("CONSOLEAWB1 #1") && inbound.text.contains("CONSOLEAWB1 #2"), "{}", inbound.text);
    assert!(inbound.text.contains("authentication"), "the refusal: {}", inbound.text);
    assert!(!inbound.text.contains(&password));

    let page = c.get("/console/status-mappings").await;
    assert_eq!(page.status, 200);
    let unmapped_at = page.text.find("4242").expect("the unmapped code");
    assert!(page.text[unmapped_at..].contains("2 times"), "{}", page.text);
    // A bad status names the field, and maps nothing.
    let r = c.submit(&page, "/console/status-mappings", &[("status", "vanished")]).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("status"));
    let page = c.get("/console/status-mappings").await;
    let r = c.submit(&page, "/console/status-mappings", &[("status", "exception")]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let table = app.get("/v1/status-mappings?carrier=ecomexpress").await.json();
    let row = table["data"].as_array().expect("data").iter().find(|m| m["code"] == "4242").cloned().expect("mapped");
    assert_eq!(row["status"], "exception");
    assert_eq!(row["source"], "tenant");
    let after = c.get("/console/status-mappings").await;
    assert!(after.text.contains("Unmapped codes") && !after.text.contains("2 times"), "no longer unmapped");
}

#[tokio::test]
async fn connections_show_settings_never_secrets_and_verify() {
    let app = spawn_app().await;
    let c = Console::signed_in(&app, &app.key).await;
    let page = c.get("/console/connections").await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains(&app.connection_id) && page.text.contains("customer_code") && page.text.contains("DEMO")
    );
    assert!(page.text.contains("password, username, website"), "credential names only: {}", page.text);
    assert!(!page.text.contains("demo-pass"));
    let r = c.submit(&page, &format!("/console/connections/{}/verify", app.connection_id), &[]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let con = app.get(&format!("/v1/connections/{}", app.connection_id)).await.json();
    assert!(con["verified_at"].is_string(), "{con}");
}

#[tokio::test]
async fn the_overview_shows_shipments_by_day_trouble_and_connection_health() {
    let app = spawn_app().await;
    let s = app.book("CONSOLE-OVERVIEW-1").await;
    let e = app.book("CONSOLE-OVERVIEW-EXC").await;
    sqlx::query("UPDATE shipments SET status = 'exception' WHERE id = $1")
        .bind(e["id"].as_str().expect("id"))
        .execute(&app.db)
        .await
        .expect("exception");
    let c = Console::signed_in(&app, &app.key).await;
    let page = c.get("/console/").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let today = chrono::Utc::now().date_naive().to_string();
    assert!(page.text.contains("<svg"), "a chart");
    assert!(page.text.contains(&format!("{today}: 1 exception")), "{}", page.text);
    assert!(page.text.contains("exception: 1"), "the legend in text");
    assert!(page.text.contains("CONSOLE-OVERVIEW-EXC"), "the exception is listed");
    assert!(
        !page.text[page.text.find("Exceptions").expect("section")..].contains(s["id"].as_str().expect("id"))
            || page.text.contains("CONSOLE-OVERVIEW-1")
    );
    // The connection's health line: the breaker and the booking calls of the last hour.
    let health = &page.text[page.text.find("Connections (last hour)").expect("health")..];
    assert!(health.contains("e-Courier sim") && health.contains("closed"), "{health}");
    assert!(health.contains("ms /"), "latency percentiles: {health}");
}

#[tokio::test]
async fn no_page_renders_a_secret() {
    let app = spawn_app_with(WEBHOOKS).await;
    let s = app.book("CONSOLE-SECRETS").await;
    let id = s["id"].as_str().expect("id");
    let (url, _) = subscriber().await;
    let r = app.post("/v1/webhook-endpoints", &json!({"url": url})).await;
    let whsec = r.json()["secret"].as_str().expect("secret").to_owned();
    let endpoint = r.json()["id"].as_str().expect("id").to_owned();
    let ecom = app.post("/v1/connections", &json!({"carrier": "ecomexpress", "name": "Ecom"})).await.json();
    let ecom_password = ecom["generated_credentials"]["password"].as_str().expect("password").to_owned();
    let c = Console::signed_in(&app, &app.key).await;
    let key_secret = app.key.rsplit('_').next().expect("secret");
    let mut pages = vec![format!("/console/shipments/{id}"), format!("/console/webhooks/{endpoint}")];
    pages.extend(SECTIONS.iter().map(|s| s.to_string()));
    for path in pages {
        let p = c.get(&path).await;
        assert_eq!(p.status, 200, "{path}: {}", p.text);
        for secret in [key_secret, "demo-pass", whsec.as_str(), ecom_password.as_str()] {
            assert!(!p.text.contains(secret), "{path} shows {secret}");
        }
        let cookie = c.cookie.as_deref().expect("cookie");
        assert!(!p.text.contains(cookie), "{path} shows the session value");
    }
}
