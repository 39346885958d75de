//! Every e-Courier status code of the seed has its outcome at our API.

use serde_json::json;
use sims::ecourier::SimFault;

use crate::helpers::{TestApp, spawn_app};

async fn book_with_fault(app: &TestApp, fault: SimFault, reference: &str) -> crate::helpers::Resp {
    // Log in first so the fault hits SaveOrder itself.
    app.sim.fail_next(Some("SaveOrder"), 1, fault);
    app.post("/v1/shipments", &app.shipment_body(reference)).await
}

#[tokio::test]
async fn outages_keep_the_shipment_pending_with_retry_after() {
    let app = spawn_app().await;
    for (i, fault) in [
        SimFault::Status(-1),
        SimFault::Status(-3),
        SimFault::Http(503, "down".into()),
        SimFault::Http(502, "bad gateway".into()),
    ]
    .into_iter()
    .enumerate()
    {
        let r = book_with_fault(&app, fault.clone(), &format!("OUT-{i}")).await;
        assert_eq!(r.header("location").map(|l| l.starts_with("/v1/shipments/shp_")), Some(true), "{fault:?}");
        let s = r.accepted();
        assert_eq!(s["booking"]["state"], "pending", "{fault:?}");
        assert_eq!(s["booking"]["last_error"]["code"], "transient");
        let id = s["id"].as_str().expect("id");
        let kept = app.get(&format!("/v1/shipments/{id}")).await.json();
        assert_eq!(kept["booking"]["state"], "pending", "nothing the client sent is lost");
        assert_eq!(kept["reference"], format!("OUT-{i}"));
    }
    let s = book_with_fault(&app, SimFault::Status(-3), "OUT-DB").await.accepted();
    assert_eq!(s["booking"]["last_error"]["message"], "Unable to Connect to Database");
}

#[tokio::test]
async fn a_rejected_order_fails_with_the_carriers_message() {
    let app = spawn_app().await;
    let r = book_with_fault(&app, SimFault::Status(-4), "REJ-1").await;
    let p = r.problem(422, "carrier_rejected");
    assert_eq!(p["detail"], "Order Not Found", "the reference's -4 text, passed through");
    assert_eq!(p["shipment"]["booking"]["state"], "failed");
    assert_eq!(p["shipment"]["booking"]["last_error"]["message"], "Order Not Found");

    // A real refusal by the strict simulator: a single "both" stop is not a pickup AND a destination.
    let mut body = app.shipment_body("REJ-2");
    body["stops"] =
        json!([{"sequence": 1, "type": "both", "address": {"line1": "1 Main St", "city": "Orlando", "country": "US"}}]);
    body["parcels"] = json!([]);
    let r = app.post("/v1/shipments", &body).await;
    let p = r.problem(422, "carrier_rejected");
    assert!(p["detail"].as_str().expect("detail").to_lowercase().contains("stop"), "{p}");
}

#[tokio::test]
async fn unparsable_request_and_unexpected_answers_are_gateway_errors() {
    let app = spawn_app().await;
    let p = book_with_fault(&app, SimFault::Status(-2), "P-1").await.problem(502, "carrier_protocol_error");
    assert!(p["detail"].as_str().expect("detail").contains("could not parse our request"));
    assert_eq!(p["shipment"]["booking"]["state"], "failed");
    let p = book_with_fault(&app, SimFault::Garbage, "P-2").await.problem(502, "carrier_protocol_error");
    assert_eq!(p["shipment"]["booking"]["state"], "failed");
}

#[tokio::test]
async fn missing_configuration_marks_the_connection_misconfigured() {
    let app = spawn_app().await;
    let p = book_with_fault(&app, SimFault::Status(-6), "CFG-1").await.problem(422, "connection_misconfigured");
    assert!(p["detail"].as_str().expect("detail").starts_with("No config file found"));
    let c = app.get(&format!("/v1/connections/{}", app.connection_id)).await.json();
    assert_eq!(c["status"], "misconfigured");
    assert!(c["status_detail"].as_str().expect("detail").starts_with("No config file found"));
    // A successful verify clears it.
    let r = app.post(&format!("/v1/connections/{}/verify", app.connection_id), &json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "active");
}

#[tokio::test]
async fn a_refused_token_is_replaced_once_and_the_call_retried() {
    let app = spawn_app().await;
    app.book("T-0").await;
    assert_eq!(app.sim.stats().logins, 1);
    let r = book_with_fault(&app, SimFault::Status(-5), "T-1").await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(app.sim.stats().logins, 2, "one fresh Login");
    // Refused again right after a fresh login: permanent, connection misconfigured.
    app.sim.fail_next(Some("SaveOrder"), 2, SimFault::Status(-5));
    let r = app.post("/v1/shipments", &app.shipment_body("T-2")).await;
    r.problem(422, "connection_misconfigured");
    assert_eq!(app.sim.stats().logins, 3);
}

#[tokio::test]
async fn a_wrong_password_fails_verify_and_booking_clearly() {
    let app = spawn_app().await;
    let body = json!({"credentials": {"website": "demo", "username": "demo", "password": "wrong"}});
    let r =
        app.request("PATCH", &format!("/v1/connections/{}", app.connection_id), Some(&app.key), Some(&body), &[]).await;
    assert_eq!(r.status, 200);
    let p = app
        .post(&format!("/v1/connections/{}/verify", app.connection_id), &json!({}))
        .await
        .problem(422, "connection_misconfigured");
    assert!(p["detail"].as_str().expect("detail").contains("Login refused"), "{p}");
    let p = app.post("/v1/shipments", &app.shipment_body("PW-1")).await.problem(422, "connection_misconfigured");
    assert_eq!(p["shipment"]["booking"]["state"], "failed");
}

#[tokio::test]
async fn an_unreachable_carrier_is_an_outage_not_an_error() {
    let app = spawn_app().await;
    // Port 9 on loopback: nothing listens there.
    let body = json!({"base_url": "http://127.0.0.1:9/nothing"});
    let r =
        app.request("PATCH", &format!("/v1/connections/{}", app.connection_id), Some(&app.key), Some(&body), &[]).await;
    assert_eq!(r.status, 200);
    let s = app.post("/v1/shipments", &app.shipment_body("DOWN-1")).await.accepted();
    assert_eq!(s["booking"]["state"], "pending");
}
