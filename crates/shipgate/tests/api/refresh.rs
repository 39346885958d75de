//! Refresh: GetJsonOrder → events and status, forward only; lookup before retry.

use serde_json::json;
use sims::ecourier::SimFault;

use crate::helpers::spawn_app;

#[tokio::test]
async fn refresh_moves_the_status_forward_and_never_back() {
    let app = spawn_app().await;
    let s = app.book("TRK-1").await;
    let id = s["id"].as_str().expect("id");
    let number = s["carrier_reference"].as_str().expect("number");
    let (path, empty) = (format!("/v1/shipments/{id}/refresh"), json!({}));
    let refresh = || app.post(&path, &empty);

    app.sim.advance(number).expect("advance");
    let b = refresh().await.json();
    assert_eq!(
        (b["status"].as_str(), b["subtag"].as_str(), b["carrier_status"].as_str()),
        (Some("info_received"), Some("InfoReceived_001"), Some("A"))
    );
    app.sim.advance(number).expect("advance");
    let b = refresh().await.json();
    assert_eq!((b["status"].as_str(), b["subtag"].as_str()), (Some("in_transit"), Some("InTransit_002")));
    app.sim.advance(number).expect("advance");
    let b = refresh().await.json();
    assert_eq!((b["status"].as_str(), b["subtag"].as_str()), (Some("delivered"), Some("Delivered_003")), "signed POD");
    // The carrier's milestones as it reports them (its OrderEvents' EventType, oldest first).
    let order = app.sim.order(number).expect("order");
    let milestones: Vec<String> = match &order["Order"]["OrderEvents"]["OrderEvent"] {
        serde_json::Value::Array(all) => {
            all.iter().map(|e| e["@EventType"].as_str().unwrap_or("").to_owned()).collect()
        }
        one => vec![one["@EventType"].as_str().unwrap_or("").to_owned()],
    };
    assert!(milestones.len() >= 3, "created/assigned, picked up, delivered: {order}");
    assert_eq!(b["last_event"]["raw_code"], milestones[milestones.len() - 1].as_str());

    // The carrier reports an older state (stale read): nothing moves back.
    app.sim.rewind(number).expect("rewind");
    let b = refresh().await.json();
    assert_eq!(b["status"], "delivered");
    let history = app.get(&format!("/v1/shipments/{id}/history")).await.json();
    let actions: Vec<&str> =
        history["data"].as_array().expect("data").iter().map(|h| h["action"].as_str().unwrap_or("")).collect();
    assert!(actions.contains(&"status_regression_ignored"), "{actions:?}");

    let events = app.get(&format!("/v1/shipments/{id}/events")).await.json();
    let kinds: Vec<&str> =
        events["data"].as_array().expect("data").iter().map(|e| e["raw_code"].as_str().unwrap_or("")).collect();
    assert_eq!(kinds, milestones, "each carrier event once, oldest first");
    assert!(events["data"].as_array().expect("data").iter().all(|e| e["source"] == "poll"));
    // Refreshing again adds nothing.
    refresh().await;
    let again = app.get(&format!("/v1/shipments/{id}/events")).await.json();
    assert_eq!(again["data"].as_array().map(Vec::len), Some(milestones.len()));
}

#[tokio::test]
async fn an_unknown_order_number_is_answered_by_the_carrier_with_minus_4() {
    let app = spawn_app().await;
    let s = app.book("TRK-NF").await;
    // Make our record point at an order the carrier does not have.
    sqlx::query("UPDATE shipments SET carrier_reference = 'NOPE' WHERE id = $1")
        .bind(s["id"].as_str())
        .execute(&app.db)
        .await
        .expect("update");
    let p = app
        .post(&format!("/v1/shipments/{}/refresh", s["id"].as_str().expect("id")), &json!({}))
        .await
        .problem(422, "carrier_not_found");
    assert_eq!(p["detail"], "Order Not Found");
}

#[tokio::test]
async fn an_ambiguous_timeout_is_resolved_by_lookup_not_a_second_create() {
    let app = spawn_app().await;
    // The carrier stores the order, then the answer is lost (a proxy's 504).
    app.sim.fail_next(Some("SaveOrder"), 1, SimFault::ProcessThenFail);
    let s = app.post("/v1/shipments", &app.shipment_body("AMB-1")).await.accepted();
    let id = s["id"].as_str().expect("id");
    assert_eq!(app.sim.order_count(), 1, "the carrier did store it");
    let saves = app.sim_calls("SaveOrder");
    let r = app.post(&format!("/v1/shipments/{id}/refresh"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let b = r.json();
    assert_eq!(b["booking"]["state"], "booked");
    assert_eq!(app.sim_calls("SaveOrder"), saves, "found by GetJsonOrder, not created again");
    assert_eq!(app.sim.order_count(), 1);
}

#[tokio::test]
async fn a_pending_booking_the_carrier_never_got_is_booked_on_refresh() {
    let app = spawn_app().await;
    app.sim.fail_next(Some("SaveOrder"), 1, SimFault::Status(-3));
    let s = app.post("/v1/shipments", &app.shipment_body("PEND-1")).await.accepted();
    let id = s["id"].as_str().expect("id");
    assert_eq!(app.sim.order_count(), 0);
    let r = app.post(&format!("/v1/shipments/{id}/refresh"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["booking"]["state"], "booked");
    assert_eq!(app.sim.order_count(), 1);
}
