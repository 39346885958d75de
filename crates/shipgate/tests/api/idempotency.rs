//! Idempotency-Key as docs/product.md describes it.

use std::time::Duration;

use serde_json::json;
use sims::ecourier::SimFault;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_replay_returns_the_first_response_byte_for_byte_and_books_once() {
    let app = spawn_app().await;
    let body = app.shipment_body("IDEM-1");
    let first =
        app.request("POST", "/v1/shipments", Some(&app.key), Some(&body), &[("Idempotency-Key", "order-4711")]).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.header("idempotent-replayed").as_deref(), Some("false"));
    let again =
        app.request("POST", "/v1/shipments", Some(&app.key), Some(&body), &[("Idempotency-Key", "order-4711")]).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.bytes, first.bytes, "byte for byte");
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(app.sim_calls("SaveOrder"), 1);
    assert_eq!(app.get("/v1/shipments").await.json()["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn reusing_a_key_with_another_body_is_refused() {
    let app = spawn_app().await;
    let k = [("Idempotency-Key", "k-1")];
    assert_eq!(
        app.request("POST", "/v1/shipments", Some(&app.key), Some(&app.shipment_body("A")), &k).await.status,
        201
    );
    let r = app.request("POST", "/v1/shipments", Some(&app.key), Some(&app.shipment_body("B")), &k).await;
    r.problem(422, "idempotency_key_reused");
    assert_eq!(app.sim_calls("SaveOrder"), 1);
    // Keys are per tenant: another tenant may use the same key.
    let (_, other_key) = crate::helpers::new_tenant(&app.state, "Tenant B").await;
    let other_con = app.create_ecourier_connection(&other_key).await;
    let r = app
        .request("POST", "/v1/shipments", Some(&other_key), Some(&crate::helpers::shipment_body(&other_con, "A")), &k)
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_make_one_booking() {
    let app = spawn_app().await;
    app.sim.set_latency(Duration::from_millis(300));
    let body = app.shipment_body("CONC-1");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, base, key, body) = (app.http.clone(), app.base.clone(), app.key.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("{base}/v1/shipments"))
                .bearer_auth(key)
                .header("Idempotency-Key", "same")
                .json(&body)
                .send()
                .await
                .expect("send");
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.expect("json");
            (status, body)
        }));
    }
    let mut created = 0;
    let mut in_use = 0;
    for t in tasks {
        let (status, body) = t.await.expect("join");
        match status {
            201 => created += 1,
            409 => {
                assert_eq!(body["code"], "idempotency_key_in_use");
                in_use += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(in_use, 7);
    assert_eq!(app.sim_calls("SaveOrder"), 1);
    assert_eq!(app.sim.order_count(), 1);
}

#[tokio::test]
async fn a_retry_after_an_outage_replays_the_pending_shipment_and_never_creates_a_second() {
    let app = spawn_app().await;
    let body = app.shipment_body("RESUME-1");
    let k = [("Idempotency-Key", "resume-1")];
    app.sim.fail_next(Some("SaveOrder"), 1, SimFault::Status(-3));
    let r = app.request("POST", "/v1/shipments", Some(&app.key), Some(&body), &k).await;
    let first = r.bytes.clone();
    let pending = r.accepted();
    let id = pending["id"].as_str().expect("id").to_owned();
    let r = app.request("POST", "/v1/shipments", Some(&app.key), Some(&body), &k).await;
    assert_eq!(r.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(r.bytes, first, "the first answer, byte for byte");
    assert_eq!(r.accepted()["id"], id, "same shipment, not a second one");
    // The booking job books it (once).
    app.run_due_jobs().await;
    let booked = app.get(&format!("/v1/shipments/{id}")).await.json();
    assert_eq!(booked["booking"]["state"], "booked");
    assert_eq!(app.sim.order_count(), 1);
    assert_eq!(app.get("/v1/shipments").await.json()["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_malformed_key_is_refused() {
    let app = spawn_app().await;
    let long = "x".repeat(300);
    let r = app
        .request("POST", "/v1/shipments", Some(&app.key), Some(&json!({})), &[("Idempotency-Key", long.as_str())])
        .await;
    let p = r.problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "Idempotency-Key");
}
