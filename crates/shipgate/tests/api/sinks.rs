//! ecomdash: tracking numbers handed over once known, per-item verdicts checked,
//! pending work kept in Postgres.

use serde_json::json;
use shipgate::sandbox::ecomdash::SimFault;
use shipgate::service::sinks::run_once;

use crate::helpers::{TestApp, spawn_app};

async fn book_with_channel(
    app: &TestApp,
    ecomdash_con: &str,
    sink_shipment: &str,
    reference: &str,
) -> serde_json::Value {
    let mut body = app.shipment_body(reference);
    body["channel"] =
        json!({"ecomdash": {"connection_id": ecomdash_con, "shipment_id": sink_shipment, "carrier_id": "7"}});
    let r = app.post("/v1/shipments", &body).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()
}

#[tokio::test]
async fn a_booked_shipments_tracking_number_reaches_ecomdash_once() {
    let app = spawn_app().await;
    let ed = app.create_ecomdash_connection().await;
    let s = book_with_channel(&app, &ed, "28", "SINK-1").await;
    assert_eq!(s["sinks"]["ecomdash"]["state"], "pending");
    assert_eq!(run_once(&app.state).await.expect("round"), 1);
    let submitted = app.ecomdash.submitted();
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].shipment_id, "28");
    assert_eq!(submitted[0].tracking_number.as_deref(), s["tracking_number"].as_str());
    assert_eq!(submitted[0].carrier_id.as_deref(), Some("7"));
    let req = &app.ecomdash.requests()[0];
    assert_eq!((req.subscription_key.as_deref(), req.integration_key.as_deref()), (Some("sub-demo"), Some("ecd-demo")));
    let now = app.get(&format!("/v1/shipments/{}", s["id"].as_str().expect("id"))).await.json();
    assert_eq!(now["sinks"]["ecomdash"]["state"], "submitted");
    let history = app.get(&format!("/v1/shipments/{}/history", s["id"].as_str().expect("id"))).await.json();
    assert!(
        history["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|h| h["action"] == "sink_submitted" && h["actor_type"] == "system")
    );
    // Nothing is sent twice.
    assert_eq!(run_once(&app.state).await.expect("round"), 0);
    assert_eq!(app.ecomdash.stats().items, 1);
}

#[tokio::test]
async fn a_refused_item_is_marked_failed_with_ecomdashs_message_and_others_go_through() {
    let app = spawn_app().await;
    let ed = app.create_ecomdash_connection().await;
    let bad = book_with_channel(&app, &ed, "404", "SINK-BAD").await;
    let good = book_with_channel(&app, &ed, "29", "SINK-GOOD").await;
    app.ecomdash.fail_item("404", "Shipment 404 does not exist", 1);
    run_once(&app.state).await.expect("round");
    let b = app.get(&format!("/v1/shipments/{}", bad["id"].as_str().expect("id"))).await.json();
    assert_eq!(b["sinks"]["ecomdash"]["state"], "failed");
    assert_eq!(b["sinks"]["ecomdash"]["last_error"], "Shipment 404 does not exist");
    let h = app.get(&format!("/v1/shipments/{}/history", bad["id"].as_str().expect("id"))).await.json();
    assert!(
        h["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|e| e["action"] == "sink_failed" && e["detail"]["error"] == "Shipment 404 does not exist")
    );
    let g = app.get(&format!("/v1/shipments/{}", good["id"].as_str().expect("id"))).await.json();
    assert_eq!(g["sinks"]["ecomdash"]["state"], "submitted");
}

#[tokio::test]
async fn a_transient_item_failure_is_retried_later() {
    let app = spawn_app().await;
    let ed = app.create_ecomdash_connection().await;
    let s = book_with_channel(&app, &ed, "30", "SINK-TRANSIENT").await;
    app.ecomdash.fail_item("30", "Database busy, please try again", 1);
    run_once(&app.state).await.expect("round");
    let now = app.get(&format!("/v1/shipments/{}", s["id"].as_str().expect("id"))).await.json();
    assert_eq!(now["sinks"]["ecomdash"]["state"], "pending");
    assert_eq!(now["sinks"]["ecomdash"]["last_error"], "Database busy, please try again");
    assert_eq!(run_once(&app.state).await.expect("round"), 0, "not before its backoff");
    sqlx::query("UPDATE sink_submissions SET next_attempt_at = now()").execute(&app.db).await.expect("due now");
    run_once(&app.state).await.expect("round");
    let now = app.get(&format!("/v1/shipments/{}", s["id"].as_str().expect("id"))).await.json();
    assert_eq!(now["sinks"]["ecomdash"]["state"], "submitted");
}

#[tokio::test]
async fn a_403_marks_the_connection_misconfigured_and_parks_the_work() {
    let app = spawn_app().await;
    let ed = app.create_ecomdash_connection().await;
    let s = book_with_channel(&app, &ed, "31", "SINK-403").await;
    app.ecomdash.fail_next(1, SimFault::Forbidden);
    run_once(&app.state).await.expect("round");
    let c = app.get(&format!("/v1/connections/{ed}")).await.json();
    assert_eq!(c["status"], "misconfigured");
    let now = app.get(&format!("/v1/shipments/{}", s["id"].as_str().expect("id"))).await.json();
    assert_eq!(now["sinks"]["ecomdash"]["state"], "pending", "kept, not lost");
    // Fixing the connection (new credentials) and the work goes out.
    let fix = json!({"credentials": {"subscription_key": "sub-demo", "integration_key": "ecd-demo"}});
    assert_eq!(
        app.request("PATCH", &format!("/v1/connections/{ed}"), Some(&app.key), Some(&fix), &[]).await.status,
        200
    );
    sqlx::query("UPDATE sink_submissions SET next_attempt_at = now()").execute(&app.db).await.expect("due now");
    run_once(&app.state).await.expect("round");
    assert_eq!(app.ecomdash.submitted().len(), 1);
}

#[tokio::test]
async fn pending_submissions_survive_a_restart() {
    let app = spawn_app().await;
    let ed = app.create_ecomdash_connection().await;
    book_with_channel(&app, &ed, "32", "SINK-RESTART").await;
    // A fresh instance (new state, nothing in memory) on the same database picks it up.
    let other = shipgate::app::AppState::new(app.db.clone(), app.state.config.clone()).expect("state");
    assert_eq!(run_once(&other).await.expect("round"), 1);
    assert_eq!(app.ecomdash.submitted().len(), 1);
}

#[tokio::test]
async fn a_channel_must_name_an_ecomdash_connection() {
    let app = spawn_app().await;
    let mut body = app.shipment_body("SINK-WRONG");
    body["channel"] = json!({"ecomdash": {"connection_id": app.connection_id, "shipment_id": "1"}});
    let p = app.post("/v1/shipments", &body).await.problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "channel.ecomdash.connection_id");
    // Added later by PATCH: queued then.
    let ed = app.create_ecomdash_connection().await;
    let s = app.book("SINK-LATER").await;
    let patch = json!({"channel": {"ecomdash": {"connection_id": ed, "shipment_id": "33"}}});
    let r = app
        .request(
            "PATCH",
            &format!("/v1/shipments/{}", s["id"].as_str().expect("id")),
            Some(&app.key),
            Some(&patch),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["sinks"]["ecomdash"]["state"], "pending");
    run_once(&app.state).await.expect("round");
    assert_eq!(app.ecomdash.submitted()[0].shipment_id, "33");
}
