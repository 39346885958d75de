//! ecomdash: tracking numbers handed over once known, per-item verdicts checked,
//! pending work kept in Postgres.

use serde_json::json;
use shipgate::service::sinks::run_once;
use sims::ecomdash::SimFault;

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
    assert_eq!(submitted[0].shipment_id, 28);
    assert_eq!(submitted[0].tracking_number.as_deref(), s["tracking_number"].as_str());
    assert_eq!(submitted[0].carrier_id, Some(7));
    // Both key headers went out; the simulator took them (it refuses unknown keys).
    let req = &app.ecomdash.requests()[0];
    assert_eq!(req.auth_headers, ["ecd-subscription-key", "ocp-apim-subscription-key"]);
    assert_eq!(submitted[0].integration_key, "ecd-demo");
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
    assert_eq!(app.ecomdash.stats().accepted_items, 1);
}

#[tokio::test]
async fn a_refused_item_is_marked_failed_with_ecomdashs_message_and_others_go_through() {
    let app = spawn_app().await;
    let ed = app.create_ecomdash_connection().await;
    let bad = book_with_channel(&app, &ed, "404", "SINK-BAD").await;
    let good = book_with_channel(&app, &ed, "29", "SINK-GOOD").await;
    app.ecomdash.fail_item(404, "Shipment 404 does not exist", 1);
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
    app.ecomdash.fail_item(30, "Database busy, please try again", 1);
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
    // The seed's 403: the ecd-subscription-key is unknown or has no current subscription.
    app.ecomdash.fail_next(1, SimFault::Http(403, json!({"Message": sims::ecomdash::FORBIDDEN_MESSAGE})));
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

/// A wrong `Ocp-Apim-Subscription-Key` never reaches ecomdash: Azure API Management in
/// front of it answers 401 (docs/carriers/ecomdash-simulator.md), not the seed's 403.
/// Either way the connection is misconfigured and the work waits for a fix.
#[tokio::test]
async fn a_401_from_api_management_marks_the_connection_misconfigured_too() {
    let app = spawn_app().await;
    let ed = app
        .create_connection(json!({
            "carrier": "ecomdash", "name": "ecomdash, wrong developer key",
            "base_url": format!("{}{}", app.base, shipgate::sandbox::ECOMDASH_MOUNT),
            "credentials": {"subscription_key": "sub-wrong", "integration_key": "ecd-demo"}
        }))
        .await;
    let s = book_with_channel(&app, &ed, "34", "SINK-401").await;
    run_once(&app.state).await.expect("round");
    assert_eq!(app.ecomdash.stats().unauthorized, 1);
    let c = app.get(&format!("/v1/connections/{ed}")).await.json();
    assert_eq!(c["status"], "misconfigured", "{c}");
    let now = app.get(&format!("/v1/shipments/{}", s["id"].as_str().expect("id"))).await.json();
    assert_eq!(now["sinks"]["ecomdash"]["state"], "pending", "kept, not lost: {now}");
    let fix = json!({"credentials": {"subscription_key": "sub-demo", "integration_key": "ecd-demo"}});
    let r = app.request("PATCH", &format!("/v1/connections/{ed}"), Some(&app.key), Some(&fix), &[]).await;
    assert_eq!(r.status, 200);
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
    assert_eq!(app.ecomdash.submitted()[0].shipment_id, 33);
}

/// Issue 8: ecomdash's ids are integers (seed 004: ShipmentId, CarrierId, LineItemId);
/// an integrator passing ecomdash's own `20405` was refused with "expected a string".
#[tokio::test]
async fn ecomdash_ids_are_its_integers_and_go_out_as_numbers() {
    let app = spawn_app().await;
    let ed = app.create_ecomdash_connection().await;
    let mut body = app.shipment_body("SINK-INT");
    body["channel"] =
        json!({"ecomdash": {"connection_id": ed, "shipment_id": 20405, "carrier_id": 7, "line_item_ids": [701, 702]}});
    let r = app.post("/v1/shipments", &body).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let s = r.json();
    assert_eq!(s["channel"]["ecomdash"]["shipment_id"], 20405, "{s}");
    assert_eq!(s["channel"]["ecomdash"]["line_item_ids"], json!([701, 702]));
    // A numeric string and ecomdash's decimal spelling are the same ids.
    let mut body = app.shipment_body("SINK-STR");
    body["channel"] =
        json!({"ecomdash": {"connection_id": ed, "shipment_id": "20406", "carrier_id": 7.0, "line_item_ids": ["703"]}});
    let r = app.post("/v1/shipments", &body).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["channel"]["ecomdash"]["carrier_id"], 7);
    for (field, bad) in [("shipment_id", json!("SH-1")), ("shipment_id", json!(1.5)), ("carrier_id", json!(-7))] {
        let mut body = app.shipment_body("SINK-BAD-ID");
        body["channel"] = json!({"ecomdash": {"connection_id": ed, "shipment_id": 1}});
        body["channel"]["ecomdash"][field] = bad.clone();
        let p = app.post("/v1/shipments", &body).await.problem(422, "validation_failed");
        assert_eq!(p["errors"][0]["field"], format!("channel.ecomdash.{field}"), "{bad}: {p}");
    }
    assert_eq!(run_once(&app.state).await.expect("round"), 2);
    let schema: serde_json::Value =
        serde_json::from_str(shipgate::carriers::ecomdash::schema::LIST_OF_FULFILLMENT_REQUEST).expect("schema");
    let mut items = Vec::new();
    for r in app.ecomdash.requests() {
        let broken = shipgate::carriers::ecomdash::schema::violations(&schema, &r.body);
        assert!(broken.is_empty(), "{} breaks the seed's ListOfFulfillmentRequest: {broken:?}", r.body);
        items.extend(r.body.as_array().cloned().unwrap_or_default());
    }
    items.sort_by_key(|i| i["ShipmentId"].as_u64());
    assert_eq!(items[0]["ShipmentId"], json!(20405));
    assert_eq!(items[0]["CarrierId"], json!(7));
    assert_eq!(items[0]["LineItems"][1]["LineItemId"], json!(702));
    assert_eq!(items[1]["ShipmentId"], json!(20406));
    assert_eq!(items[1]["LineItems"][0]["LineItemId"], json!(703));
}

/// A channel stored before ids had to be integers, with an id ecomdash could never
/// take, is removed by migration 20261130000004 (its history keeps it); numeric strings
/// stay and read as numbers.
#[tokio::test]
async fn stored_channels_with_non_integer_ids_are_dropped_by_the_migration() {
    let app = spawn_app().await;
    let ed = app.create_ecomdash_connection().await;
    let legacy = app.book("SINK-LEGACY").await;
    let numeric = app.book("SINK-NUMERIC").await;
    let set = |id: &str, channel: serde_json::Value| {
        sqlx::query("UPDATE shipments SET channel = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(app.tenant_id.clone())
            .bind(id.to_owned())
            .bind(channel)
    };
    let (legacy_id, numeric_id) = (legacy["id"].as_str().expect("id"), numeric["id"].as_str().expect("id"));
    set(legacy_id, json!({"ecomdash": {"connection_id": ed, "shipment_id": "28", "line_item_ids": ["7", "SH-7"]}}))
        .execute(&app.db)
        .await
        .expect("legacy channel");
    set(numeric_id, json!({"ecomdash": {"connection_id": ed, "shipment_id": " 29 ", "carrier_id": 4.0}}))
        .execute(&app.db)
        .await
        .expect("numeric strings");
    sqlx::raw_sql(include_str!("../../../../migrations/20261130000004_ecomdash_integer_ids.sql"))
        .execute(&app.db)
        .await
        .expect("migration runs again");
    let l = app.get(&format!("/v1/shipments/{legacy_id}")).await;
    assert_eq!(l.status, 200, "{}", String::from_utf8_lossy(&l.bytes));
    assert!(l.json()["channel"].is_null());
    let h = app.get(&format!("/v1/shipments/{legacy_id}/history")).await.json();
    let dropped = h["data"].as_array().and_then(|d| d.iter().find(|e| e["action"] == "channel_dropped")).cloned();
    assert_eq!(
        dropped.as_ref().map(|d| d["detail"]["channel"]["ecomdash"]["line_item_ids"][1].clone()),
        Some(json!("SH-7"))
    );
    let n = app.get(&format!("/v1/shipments/{numeric_id}")).await.json();
    assert_eq!(n["channel"]["ecomdash"]["shipment_id"], 29, "{n}");
    assert_eq!(n["channel"]["ecomdash"]["carrier_id"], 4, "{n}");
}
