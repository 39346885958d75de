//! The circuit breaker: a carrier that keeps failing is not hammered; it is probed and
//! closes again once it answers.

use std::time::Duration;

use sims::ecourier::SimFault;

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn the_breaker_opens_on_outages_fails_fast_and_closes_after_a_good_probe() {
    let app = spawn_app_with("carrier_breaker_threshold = 3\ncarrier_breaker_cooldown_ms = 400").await;
    app.book("BRK-0").await;
    app.sim.fail_next(Some("SaveOrder"), 3, SimFault::Status(-3));
    for i in 1..=3 {
        app.post("/v1/shipments", &app.shipment_body(&format!("BRK-{i}"))).await.accepted();
    }
    let calls = app.sim_calls("SaveOrder");
    let s = app.post("/v1/shipments", &app.shipment_body("BRK-4")).await.accepted();
    let error = s["booking"]["last_error"]["message"].as_str().expect("last_error");
    assert!(error.contains("circuit open"), "{s}");
    assert_eq!(app.sim_calls("SaveOrder"), calls, "failing fast: no call reached the carrier");
    assert_eq!(s["booking"]["state"], "pending", "the booking is still kept");
    tokio::time::sleep(Duration::from_millis(450)).await;
    app.book("BRK-5").await; // the probe succeeds and closes the circuit
    app.book("BRK-6").await;
    assert_eq!(app.sim_calls("SaveOrder"), calls + 2);
}
