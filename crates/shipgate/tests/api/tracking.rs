//! The tracking engine: active shipments are refreshed without any API call, on a
//! schedule that adapts to their status, within each connection's rate limit across
//! instances; terminal shipments are left alone; stale ones expire.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use shipgate::app::AppState;
use shipgate::store::tracking::Schedule;
use shipgate::tracking::Engine;
use tokio::sync::watch;

use crate::helpers::{TestApp, spawn_app_with};

/// First polls due at once and no jitter, so the stored schedule is exact.
const FAST: &str = "tracking.first_poll_secs = 0\ntracking.jitter = 0\n";

async fn engine(state: &AppState) -> (Engine, watch::Sender<bool>) {
    let (stop, stopped) = watch::channel(false);
    (Engine::new(state.clone(), stopped).await.expect("engine"), stop)
}

async fn schedule(app: &TestApp, id: &str) -> Schedule {
    let mut conn = app.db.acquire().await.expect("conn");
    shipgate::store::tracking::schedule(&mut conn, &app.tenant_id, id).await.expect("schedule").expect("shipment")
}

/// The delay the engine chose after its last poll, in whole seconds.
fn interval_secs(s: &Schedule) -> i64 {
    let (next, last) = (s.poll_next_at.expect("scheduled"), s.poll_last_at.expect("polled"));
    (next - last).num_milliseconds().saturating_add(500) / 1000
}

fn register_body(con: &str, number: &str) -> serde_json::Value {
    json!({
        "connection_id": con, "tracking_number": number, "service": "dhl",
        "stops": [{"sequence": 1, "type": "delivery", "name": "Bryan Moore",
                   "address": {"line1": "2253 Orange Blossom Trail", "city": "Orlando", "country": "US"}}]
    })
}

async fn register(app: &TestApp, con: &str, number: &str) -> (String, String) {
    let r = app.post("/v1/shipments", &register_body(con, number)).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let b = r.json();
    (b["id"].as_str().expect("id").to_owned(), b["carrier_reference"].as_str().expect("aftership id").to_owned())
}

fn advance_to(app: &TestApp, aftership_id: &str, tag: &str) {
    for _ in 0..5 {
        if app.aftership.advance(aftership_id).expect("advance")["tag"] == tag {
            return;
        }
    }
    panic!("the simulator never reached {tag}");
}

#[tokio::test]
async fn an_active_shipment_is_refreshed_by_the_engine_without_any_api_call() {
    let app = spawn_app_with(FAST).await;
    let (mut engine, _stop) = engine(&app.state).await;
    let s = app.book("ENG-1").await;
    let id = s["id"].as_str().expect("id");
    let number = s["carrier_reference"].as_str().expect("number");
    assert!(schedule(&app, id).await.poll_next_at.is_some(), "booked on a pollable carrier: on the schedule");
    app.sim.advance(number).expect("advance");
    app.sim.advance(number).expect("advance");
    let polls = app.sim_calls("GetJsonOrder");

    let round = engine.run_round().await.expect("round");
    engine.settle().await;

    assert_eq!(round.claimed, 1);
    assert_eq!(app.sim_calls("GetJsonOrder"), polls + 1, "one GetJsonOrder by the engine");
    let b = app.get(&format!("/v1/shipments/{id}")).await.json();
    assert_eq!((b["status"].as_str(), b["subtag"].as_str()), (Some("in_transit"), Some("InTransit_002")), "{b}");
    let history = app.get(&format!("/v1/shipments/{id}/history")).await.json();
    let by_poller = history["data"]
        .as_array()
        .expect("data")
        .iter()
        .any(|h| h["actor_type"] == "poller" && h["action"] == "status_changed");
    assert!(by_poller, "the poller is the actor: {history}");
    let after = schedule(&app, id).await;
    assert_eq!(interval_secs(&after), 3600, "in transit: the configured hour");
    assert_eq!((after.poll_claim, after.poll_failures), (None, 0));
    // Not due again until then.
    assert_eq!(engine.run_round().await.expect("round").claimed, 0);
    assert_eq!(app.sim_calls("GetJsonOrder"), polls + 1);
    let metrics = String::from_utf8(app.request("GET", "/metrics", None, None, &[]).await.bytes).expect("utf8");
    assert!(metrics.contains("shipgate_tracking_polls_total{outcome=\"changed\"}"), "polls by outcome");
    assert!(metrics.contains("shipgate_tracking_due_backlog"), "backlog gauge");
}

#[tokio::test]
async fn terminal_shipments_are_not_polled() {
    let app = spawn_app_with(FAST).await;
    let (mut engine, _stop) = engine(&app.state).await;
    let cancelled = app.book("TERM-1").await;
    let cancelled_id = cancelled["id"].as_str().expect("id");
    let r = app.post(&format!("/v1/shipments/{cancelled_id}/cancel"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(schedule(&app, cancelled_id).await.poll_next_at, None, "cancelled is terminal");

    let delivered = app.book("TERM-2").await;
    let delivered_id = delivered["id"].as_str().expect("id");
    let number = delivered["carrier_reference"].as_str().expect("number");
    for _ in 0..3 {
        app.sim.advance(number).expect("advance");
    }
    let polls = app.sim_calls("GetJsonOrder");
    assert_eq!(engine.run_round().await.expect("round").claimed, 1, "only the active one");
    engine.settle().await;
    let b = app.get(&format!("/v1/shipments/{delivered_id}")).await.json();
    assert_eq!(b["status"], "delivered");
    assert_eq!(schedule(&app, delivered_id).await.poll_next_at, None, "delivered leaves the schedule");

    // Even when everything else is due, neither is polled again.
    sqlx::query("UPDATE shipments SET poll_next_at = now() - interval '1 minute' WHERE poll_next_at IS NOT NULL")
        .execute(&app.db)
        .await
        .expect("make due");
    assert_eq!(engine.run_round().await.expect("round").claimed, 0);
    engine.settle().await;
    assert_eq!(app.sim_calls("GetJsonOrder"), polls + 1);
}

#[tokio::test]
async fn the_interval_adapts_to_the_status() {
    let app = spawn_app_with(FAST).await;
    let (mut engine, _stop) = engine(&app.state).await;
    let con = app.create_aftership_connection().await;
    let (ofd, ofd_as) = register(&app, &con, "ADAPT00001").await;
    let (transit, transit_as) = register(&app, &con, "ADAPT00002").await;
    advance_to(&app, &ofd_as, "OutForDelivery");
    advance_to(&app, &transit_as, "InTransit");

    engine.run_round().await.expect("round");
    engine.settle().await;

    assert_eq!(app.get(&format!("/v1/shipments/{ofd}")).await.json()["status"], "out_for_delivery");
    assert_eq!(app.get(&format!("/v1/shipments/{transit}")).await.json()["status"], "in_transit");
    let (a, b) = (schedule(&app, &ofd).await, schedule(&app, &transit).await);
    assert_eq!(interval_secs(&a), 900, "out for delivery: every 15 minutes");
    assert_eq!(interval_secs(&b), 3600, "in transit: hourly");

    // A shipment that has not moved for days is polled less often.
    sqlx::query(
        "UPDATE shipments SET status_changed_at = now() - interval '3 days', poll_next_at = now() WHERE id = $1",
    )
    .bind(&transit)
    .execute(&app.db)
    .await
    .expect("age it");
    engine.run_round().await.expect("round");
    engine.settle().await;
    assert_eq!(interval_secs(&schedule(&app, &transit).await), 4 * 3600, "idle: interval × idle_factor");
}

#[tokio::test]
async fn a_shipment_with_no_change_for_the_max_age_expires_and_leaves_the_schedule() {
    let app = spawn_app_with(FAST).await;
    let (mut engine, _stop) = engine(&app.state).await;
    let old = app.book("OLD-1").await;
    let old_id = old["id"].as_str().expect("id");
    let fresh = app.book("NEW-1").await;
    let fresh_id = fresh["id"].as_str().expect("id");
    sqlx::query("UPDATE shipments SET status_changed_at = now() - interval '31 days' WHERE id = $1")
        .bind(old_id)
        .execute(&app.db)
        .await
        .expect("age it");

    let round = engine.run_round().await.expect("round");
    engine.settle().await;

    assert_eq!(round.expired, 1);
    assert_eq!(round.claimed, 1, "only the fresh one is polled");
    let b = app.get(&format!("/v1/shipments/{old_id}")).await.json();
    assert_eq!((b["status"].as_str(), b["subtag"].as_str()), (Some("expired"), Some("Expired_001")), "{b}");
    assert_eq!(schedule(&app, old_id).await.poll_next_at, None);
    assert_eq!(app.get(&format!("/v1/shipments/{fresh_id}")).await.json()["status"], "info_received");
    let history = app.get(&format!("/v1/shipments/{old_id}/history")).await.json();
    let entry = history["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|h| h["action"] == "status_changed")
        .cloned()
        .expect("history entry");
    assert_eq!((entry["actor_type"].as_str(), entry["detail"]["to"].as_str()), (Some("system"), Some("expired")));
    let mut conn = app.db.acquire().await.expect("conn");
    let events =
        shipgate::store::events::list(&mut conn, &app.tenant_id, 0, Some(old_id), None, 10).await.expect("events");
    let changed: Vec<_> = events.iter().filter(|e| e.event_type == "shipment.status_changed").collect();
    assert_eq!(changed.len(), 1, "{events:?}");
    assert_eq!(changed[0].data.0["previous_status"], "info_received");
    assert_eq!(changed[0].data.0["shipment"]["status"], "expired");
}

#[tokio::test]
async fn two_engines_share_the_connection_rate_and_never_poll_a_shipment_twice() {
    // Small claims every 50 ms, so both engines keep claiming side by side: alone, each
    // instance's own limiter would let ~8 calls/s through, 16 together (AfterShip: 10).
    let app = spawn_app_with(&format!("{FAST}tracking.round_ms = 50\ntracking.batch_size = 2\n")).await;
    let other = AppState::new(app.db.clone(), app.state.config.clone()).expect("second instance");
    let (a, stop_a) = engine(&app.state).await;
    let (b, stop_b) = engine(&other).await;
    let con = app.create_aftership_connection().await;
    let mut ids = Vec::new();
    for i in 0..16 {
        ids.push(register(&app, &con, &format!("PAIR{i:06}")).await);
    }
    // Let the registrations' calls leave the simulator's one-second window.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let seen = app.aftership.requests().len();

    let (ja, jb) = (tokio::spawn(a.run()), tokio::spawn(b.run()));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (polled,): (i64,) = sqlx::query_as("SELECT count(*) FROM shipments WHERE poll_last_at IS NOT NULL")
            .fetch_one(&app.db)
            .await
            .expect("count");
        if polled == 16 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = (stop_a.send(true), stop_b.send(true));
    let _ = (ja.await, jb.await);

    let stats = app.aftership.stats();
    assert_eq!(stats.rate_limited, 0, "AfterShip never answered 429");
    assert!(stats.max_calls_per_second <= 10, "AfterShip's 10 req/s: {}", stats.max_calls_per_second);
    let polls: Vec<_> = app.aftership.requests().into_iter().skip(seen).filter(|r| r.op == "get").collect();
    for (_, as_id) in &ids {
        let n = polls.iter().filter(|r| r.path == format!("/tracking/2024-04/trackings/{as_id}")).count();
        assert_eq!(n, 1, "{as_id} read once by the two engines together");
    }
}

#[tokio::test]
async fn a_claim_whose_instance_died_is_taken_over_after_the_lease() {
    let app = spawn_app_with(&format!("{FAST}tracking.lease_secs = 1\ntracking.horizon_ms = 500\n")).await;
    let (mut engine, _stop) = engine(&app.state).await;
    let s = app.book("DEAD-1").await;
    let id = s["id"].as_str().expect("id");
    // An instance claims the shipment and dies before polling it.
    let token = uuid::Uuid::new_v4();
    let mut tx = shipgate::store::begin(&app.db).await.expect("tx");
    let (start, _) =
        shipgate::store::tracking::lock_pace(&mut tx, &app.tenant_id, &app.connection_id).await.expect("pace");
    let claimed =
        shipgate::store::tracking::claim_due(&mut tx, &app.tenant_id, &app.connection_id, 10, 1.5, token, start, 0.2)
            .await
            .expect("claim");
    tx.commit().await.expect("commit");
    assert_eq!(claimed.len(), 1);
    let polls = app.sim_calls("GetJsonOrder");

    assert_eq!(engine.run_round().await.expect("round").claimed, 0, "leased to the dead instance");
    let lease_end = schedule(&app, id).await.poll_next_at.expect("leased");
    let wait = (lease_end - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100);
    tokio::time::sleep(wait).await;
    assert_eq!(engine.run_round().await.expect("round").claimed, 1, "taken over after the lease");
    engine.settle().await;
    assert_eq!(app.sim_calls("GetJsonOrder"), polls + 1);
    let after = schedule(&app, id).await;
    assert!(after.poll_last_at.is_some() && after.poll_claim.is_none(), "{after:?}");

    // The dead instance's late answer changes nothing.
    let mut conn = app.db.acquire().await.expect("conn");
    let late = shipgate::store::tracking::finish(&mut conn, &app.tenant_id, id, token, 1.0, 0).await.expect("finish");
    assert!(!late, "a claim taken over cannot be finished by its old holder");
    assert_eq!(schedule(&app, id).await.poll_next_at, after.poll_next_at);
}

#[tokio::test]
async fn the_schedule_sql_follows_the_domain_and_carrier_rules() {
    let app = spawn_app_with("").await;
    let subtags = [None, Some("Exception_010"), Some("Exception_011"), Some("Exception_013"), Some("Exception_020")];
    for status in shipgate::domain::Status::ALL {
        for subtag in subtags {
            let (sql,): (bool,) = sqlx::query_as("SELECT tracking_is_terminal($1, $2)")
                .bind(status.as_str())
                .bind(subtag)
                .fetch_one(&app.db)
                .await
                .expect("query");
            assert_eq!(sql, shipgate::domain::is_terminal(status, subtag), "{status:?} {subtag:?}");
        }
    }
    for carrier in shipgate::carriers::catalog() {
        let (sql,): (bool,) = sqlx::query_as("SELECT tracking_pollable_carrier($1)")
            .bind(carrier.slug)
            .fetch_one(&app.db)
            .await
            .expect("query");
        assert_eq!(
            sql,
            shipgate::carriers::supports(carrier.slug, shipgate::carriers::Capability::Refresh),
            "{}",
            carrier.slug
        );
    }
}

#[tokio::test]
async fn on_shutdown_refreshes_in_flight_finish_and_waiting_claims_are_given_back() {
    // 0.5 calls/s without a rate limit: three claims get slots 0 s, 2 s and 4 s ahead.
    let app =
        spawn_app_with(&format!("{FAST}tracking.default_rate_per_second = 0.5\ntracking.horizon_ms = 5000\n")).await;
    let (engine, stop) = engine(&app.state).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(app.book(&format!("STOP-{i}")).await["id"].as_str().expect("id").to_owned());
    }
    let polls = app.sim_calls("GetJsonOrder");
    let running = tokio::spawn(engine.run());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let first = loop {
        let mut polled = Vec::new();
        for id in &ids {
            if schedule(&app, id).await.poll_last_at.is_some() {
                polled.push(id.clone());
            }
        }
        if !polled.is_empty() || std::time::Instant::now() > deadline {
            break polled;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(first.len(), 1, "the first slot was polled");
    stop.send(true).expect("stop");
    running.await.expect("engine stops");

    assert_eq!(app.sim_calls("GetJsonOrder"), polls + 1, "waiting claims were not polled");
    for id in ids.iter().filter(|id| !first.contains(id)) {
        let s = schedule(&app, id).await;
        assert_eq!(s.poll_claim, None, "claim given back");
        assert!(s.poll_next_at.is_some_and(|t| t <= Utc::now()), "due again at once for another instance: {s:?}");
    }
}
