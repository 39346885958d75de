//! eCMR.services through the API: token exchange, store shipment, details.

use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

fn body(_app: &TestApp, con: &str, reference: &str) -> serde_json::Value {
    crate::helpers::shipment_body(con, reference)
}

#[tokio::test]
async fn an_ecmr_consignment_is_stored_and_tracked_with_actors_and_documents() {
    let app = spawn_app().await;
    let con = app.create_ecmr_connection().await;
    let r = app.post("/v1/shipments", &body(&app, &con, "CMR-1")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let s = r.json();
    assert_eq!(s["carrier"], "ecmr");
    assert_eq!(s["booking"]["state"], "booked");
    let tn = s["carrier_reference"].as_str().expect("tracking number").to_owned();
    assert_eq!(s["tracking_number"], tn.as_str());
    let stored = app.ecmr.requests().into_iter().find(|r| r.op == "store_shipment").expect("store call");
    let shipment = &stored.body["shipment"];
    assert_eq!(shipment["reference"], "CMR-1");
    assert_eq!(shipment["consignor"]["name"], "James Madison");
    assert_eq!(shipment["consignee"]["country"], "US");
    assert_eq!(shipment["goods"].as_array().map(Vec::len), Some(2));
    // A bearer call (the simulator refuses the store without a valid access token).
    assert_eq!(stored.auth_headers, ["authorization"]);

    // created → sent → accepted → planned → loading: on the road.
    for _ in 0..4 {
        app.ecmr.advance(&tn).expect("advance");
    }
    let id = s["id"].as_str().expect("id");
    let b = app.post(&format!("/v1/shipments/{id}/refresh"), &json!({})).await.json();
    assert_eq!(b["status"], "in_transit", "{b}");
    assert_eq!(b["documents"][0]["kind"], "cmr");
    assert!(b["documents"][0]["url"].as_str().is_some_and(|u| u.contains(".pdf")));
    let events = app.get(&format!("/v1/shipments/{id}/events")).await.json();
    assert!(events["data"].as_array().expect("data").iter().all(|e| e["actor"].is_string()), "{events}");
    let history = app.get(&format!("/v1/shipments/{id}/history")).await.json();
    let by_carrier: Vec<&serde_json::Value> =
        history["data"].as_array().expect("data").iter().filter(|h| h["action"] == "carrier_event").collect();
    assert!(
        !by_carrier.is_empty() && by_carrier.iter().all(|h| h["actor_type"] == "carrier" && h["actor_id"].is_string()),
        "{history}"
    );

    while app.ecmr.advance(&tn).expect("advance") != sims::ecmr::Status::Delivered {}
    let b = app.post(&format!("/v1/shipments/{id}/refresh"), &json!({})).await.json();
    assert_eq!((b["status"].as_str(), b["subtag"].as_str()), (Some("delivered"), Some("Delivered_003")));
    // Booking again with the same reference updates the consignment, never a second one.
    let again = app.post("/v1/shipments", &body(&app, &con, "CMR-1")).await;
    again.problem(409, "reference_taken");
}

#[tokio::test]
async fn ecmr_refusals_name_the_field_and_secrets_stay_out_of_the_log() {
    let app = spawn_app().await;
    let con = app.create_ecmr_connection().await;
    let mut b = body(&app, &con, "CMR-BAD");
    b["parcels"] = json!([]);
    let p = app.post("/v1/shipments", &b).await.problem(422, "carrier_rejected");
    assert!(p["detail"].as_str().expect("detail").contains("goods"), "{p}");
    let id = p["shipment"]["id"].as_str().expect("id");
    let x = app.get(&format!("/v1/shipments/{id}/exchanges")).await;
    let text = String::from_utf8_lossy(&x.bytes);
    assert!(text.contains("\"operation\":\"token\""), "{text}");
    assert!(!text.contains("token-demo"), "API token leaked: {text}");

    // The date of taking over is required by the store body: asked of our field.
    let mut b = body(&app, &con, "CMR-NODATE");
    b["stops"][0].as_object_mut().map(|s| s.remove("scheduled_at"));
    let stores = app.ecmr.requests().iter().filter(|r| r.op == "store_shipment").count();
    let p = app.post("/v1/shipments", &b).await.problem(422, "carrier_rejected");
    assert!(p["detail"].as_str().is_some_and(|d| d.starts_with("stops[0].scheduled_at: ")), "{p}");
    assert_eq!(app.ecmr.requests().iter().filter(|r| r.op == "store_shipment").count(), stores, "nothing sent");
}

#[tokio::test]
async fn an_expired_access_token_is_exchanged_once_for_200_concurrent_refreshes() {
    let app = spawn_app().await;
    let con = app.create_ecmr_connection().await;
    let s = app.post("/v1/shipments", &body(&app, &con, "CMR-STAMPEDE")).await.json();
    let id = s["id"].as_str().expect("id").to_owned();
    assert_eq!(app.ecmr.stats().token_exchanges, 1);
    app.ecmr.expire_tokens();
    app.ecmr.set_latency(std::time::Duration::from_millis(20));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (http, base, key, id) = (app.http.clone(), app.base.clone(), app.key.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            http.post(format!("{base}/v1/shipments/{id}/refresh"))
                .bearer_auth(key)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join").expect("request"), 200);
    }
    let stats = app.ecmr.stats();
    println!(
        "reliability 7 (eCMR): 200 concurrent refreshes after expiry -> {} token exchange(s) after the warm-up",
        stats.token_exchanges - 1
    );
    assert_eq!(stats.token_exchanges, 2, "one at start, one after the expiry");
}
