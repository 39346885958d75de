//! The durable job queue: pending bookings are booked later, exactly once; a worker that
//! lost its lease cannot record a result; dead jobs are visible and re-runnable; two
//! instances on one database run every job once (docs/quality.md reliability 5, 6, 8).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use shipgate::app::AppState;
use shipgate::config::Config;
use sims::ecourier::SimFault;

use crate::helpers::{MASTER_KEY, TestApp, spawn_app_with};

async fn events_of(app: &TestApp, id: &str, event_type: &str) -> usize {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE shipment_id = $1 AND type = $2")
        .bind(id)
        .bind(event_type)
        .fetch_one(&app.db)
        .await
        .expect("count events");
    n as usize
}

#[tokio::test]
async fn a_carrier_down_for_minutes_keeps_every_booking_and_books_each_once_after_recovery() {
    let app = spawn_app_with("carrier_breaker_cooldown_ms = 50").await;
    // Down: every SaveOrder answers -3 (database unavailable), whatever the number of calls.
    app.sim.fail_next(Some("SaveOrder"), 10_000, SimFault::Status(-3));
    let mut ids = Vec::new();
    for i in 0..20 {
        let s = app.post("/v1/shipments", &app.shipment_body(&format!("DOWN-{i}"))).await.accepted();
        ids.push(s["id"].as_str().expect("id").to_owned());
    }
    // Jobs run while it is still down: nothing is lost, nothing booked, retries scheduled.
    app.run_due_jobs().await;
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'booking' AND state = 'queued'")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(queued, 20, "every booking has its retry queued");
    let retry_at: Vec<(i32, f64)> = sqlx::query_as(
        "SELECT attempts, extract(epoch from run_at - now())::float8 FROM jobs WHERE kind = 'booking' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .expect("jobs");
    assert!(retry_at.iter().all(|(a, secs)| *a == 1 && *secs > 10.0), "backed off: {retry_at:?}");
    assert_eq!(app.sim.order_count(), 0);

    // Recovery.
    app.sim.fail_next(Some("SaveOrder"), 0, SimFault::Status(-3));
    // Workers keep running due jobs; the circuit breaker lets a probe through after its
    // cooldown and closes, then the rest follow.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        if app.run_due_jobs().await == 0 {
            break;
        }
    }
    let mut booked = 0;
    for id in &ids {
        let s = app.get(&format!("/v1/shipments/{id}")).await.json();
        if s["booking"]["state"] == "booked" {
            booked += 1;
        }
        assert_eq!(events_of(&app, id, "shipment.booked").await, 1, "one shipment.booked for {id}");
    }
    println!(
        "reliability 5: {} bookings kept (202), {booked} booked after recovery, {} orders at the carrier",
        ids.len(),
        app.sim.order_count()
    );
    assert_eq!(booked, 20);
    assert_eq!(app.sim.order_count(), 20, "0 duplicate orders at the carrier");
    // Finished jobs do not run again.
    assert_eq!(app.run_due_jobs().await, 0);
}

#[tokio::test]
async fn an_ambiguous_timeout_is_resolved_by_the_job_looking_the_order_up() {
    let app = spawn_app_with("").await;
    app.sim.fail_next(Some("SaveOrder"), 1, SimFault::ProcessThenFail);
    let s = app.post("/v1/shipments", &app.shipment_body("AMB-JOB")).await.accepted();
    let id = s["id"].as_str().expect("id");
    assert_eq!(app.sim.order_count(), 1, "the carrier stored it; the answer was lost");
    let saves = app.sim_calls("SaveOrder");
    app.run_due_jobs().await;
    let s = app.get(&format!("/v1/shipments/{id}")).await.json();
    assert_eq!(s["booking"]["state"], "booked");
    assert_eq!(app.sim_calls("SaveOrder"), saves, "found by lookup, never created again");
    assert_eq!(app.sim.order_count(), 1);
    let history = app.get(&format!("/v1/shipments/{id}/history")).await.json();
    assert!(
        history["data"].as_array().expect("history").iter().any(|h| h["detail"]["found_by_lookup"] == true),
        "{history}"
    );
}

#[tokio::test]
async fn a_booking_that_keeps_failing_is_dead_lettered_reported_and_can_be_rerun() {
    let app = spawn_app_with("carrier_breaker_threshold = 1000").await;
    app.sim.fail_next(Some("SaveOrder"), 10_000, SimFault::Status(-1));
    let s = app.post("/v1/shipments", &app.shipment_body("DEAD-1")).await.accepted();
    let id = s["id"].as_str().expect("id").to_owned();
    // Use up the job's attempts quickly.
    sqlx::query("UPDATE jobs SET max_attempts = 3 WHERE kind = 'booking'").execute(&app.db).await.expect("shrink");
    for _ in 0..3 {
        app.run_due_jobs().await;
    }
    let dead = app.get("/v1/jobs?state=dead").await.json();
    let jobs = dead["data"].as_array().expect("data");
    assert_eq!(jobs.len(), 1, "{dead}");
    assert_eq!(jobs[0]["kind"], "booking");
    assert_eq!(jobs[0]["payload"]["shipment_id"], id.as_str());
    assert_eq!(jobs[0]["attempts"], 3);
    assert!(jobs[0]["last_error"].as_str().expect("error").contains("transient"), "{dead}");
    let s = app.get(&format!("/v1/shipments/{id}")).await.json();
    assert_eq!(s["booking"]["state"], "failed");
    assert_eq!(s["booking"]["last_error"]["code"], "retries_exhausted");
    assert_eq!(events_of(&app, &id, "shipment.booking_failed").await, 1);

    // Fixed at the carrier; ops re-run the dead job.
    app.sim.fail_next(Some("SaveOrder"), 0, SimFault::Status(-1));
    let job_id = jobs[0]["id"].as_str().expect("id");
    let r = app.post(&format!("/v1/jobs/{job_id}/retry"), &json!({})).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["state"], "queued");
    app.post(&format!("/v1/jobs/{job_id}/retry"), &json!({})).await.problem(409, "job_not_dead");
    app.run_due_jobs().await;
    let s = app.get(&format!("/v1/shipments/{id}")).await.json();
    assert_eq!(s["booking"]["state"], "booked");
    assert_eq!(app.sim.order_count(), 1);
    assert_eq!(events_of(&app, &id, "shipment.booked").await, 1);
    // Another tenant sees none of it.
    let (_, other_key) = crate::helpers::new_tenant(&app.state, "Tenant B").await;
    let r = app.request("GET", &format!("/v1/jobs/{job_id}"), Some(&other_key), None, &[]).await;
    r.problem(404, "not_found");
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_cannot_record_a_result() {
    let app = spawn_app_with("").await;
    let mut conn = app.db.acquire().await.expect("conn");
    let id = shipgate::jobs::enqueue(&mut conn, None, "keepalive", &json!({}), None, None).await.expect("enqueue");
    let kinds = vec!["keepalive".to_owned()];
    let first = shipgate::store::jobs::claim(&mut conn, &kinds, 10, "worker-a").await.expect("claim");
    assert_eq!(first.len(), 1);
    assert!(
        shipgate::store::jobs::claim(&mut conn, &kinds, 10, "worker-b").await.expect("claim").is_empty(),
        "claimed once"
    );
    // Worker A stalls past its lease; the job is taken back and claimed by worker B.
    sqlx::query("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .expect("expire");
    assert_eq!(shipgate::store::jobs::reap_expired(&mut conn).await.expect("reap"), 1);
    let second = shipgate::store::jobs::claim(&mut conn, &kinds, 10, "worker-b").await.expect("claim");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, 2);
    let stale = shipgate::store::jobs::complete(&mut conn, id, first[0].claim_token).await.expect("complete");
    assert!(!stale, "A's late result is refused");
    let state: String =
        sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1").bind(id).fetch_one(&mut *conn).await.expect("state");
    assert_eq!(state, "running", "B still owns it");
    assert!(shipgate::store::jobs::complete(&mut conn, id, second[0].claim_token).await.expect("complete"));
}

#[tokio::test]
async fn work_enqueued_while_a_unique_job_runs_makes_it_run_once_more() {
    let app = spawn_app_with("").await;
    let mut conn = app.db.acquire().await.expect("conn");
    let kinds = vec!["sink_flush".to_owned()];
    let id =
        shipgate::jobs::enqueue(&mut conn, None, "sink_flush", &Value::Null, Some("all"), None).await.expect("enqueue");
    let claimed = shipgate::store::jobs::claim(&mut conn, &kinds, 10, "w").await.expect("claim");
    let again =
        shipgate::jobs::enqueue(&mut conn, None, "sink_flush", &Value::Null, Some("all"), None).await.expect("enqueue");
    assert_eq!(again, id, "one job per unique key");
    assert!(shipgate::store::jobs::complete(&mut conn, id, claimed[0].claim_token).await.expect("complete"));
    let state: String =
        sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1").bind(id).fetch_one(&mut *conn).await.expect("state");
    assert_eq!(state, "queued", "it runs again for the work added meanwhile");
}

async fn second_instance(app: &TestApp) -> AppState {
    let config = Config::from_toml_overrides(&format!(
        "master_key = \"{MASTER_KEY}\"\napi_key_env = \"test\"\ncarrier_request_timeout_ms = 3000\njobs_poll_interval_ms = 50\nworker_concurrency = 8"
    ))
    .expect("config");
    AppState::new(app.db.clone(), config).expect("state")
}

#[tokio::test]
async fn two_instances_run_every_job_once_and_take_over_a_dead_instances_leases() {
    let app = spawn_app_with("carrier_breaker_threshold = 1000").await;
    app.sim.fail_next(Some("SaveOrder"), 10_000, SimFault::Status(-3));
    let mut ids = Vec::new();
    for i in 0..40 {
        let s = app.post("/v1/shipments", &app.shipment_body(&format!("TWO-{i}"))).await.accepted();
        ids.push(s["id"].as_str().expect("id").to_owned());
    }
    app.sim.fail_next(Some("SaveOrder"), 0, SimFault::Status(-3));
    tokio::time::sleep(Duration::from_millis(60)).await;
    // A third instance claimed 10 of the jobs and died (kill -9): its leases run out.
    let mut conn = app.db.acquire().await.expect("conn");
    sqlx::query("UPDATE jobs SET run_at = now() WHERE state = 'queued'").execute(&mut *conn).await.expect("due");
    let dead_claims =
        shipgate::store::jobs::claim(&mut conn, &["booking".to_owned()], 10, "killed").await.expect("claim");
    assert_eq!(dead_claims.len(), 10);
    sqlx::query(
        "UPDATE jobs SET lease_until = now() + interval '300 ms' WHERE claimed_by = 'killed' AND state = 'running'",
    )
    .execute(&mut *conn)
    .await
    .expect("short lease");

    // Two live instances with their workers on the same database.
    let (a, b) = (second_instance(&app).await, second_instance(&app).await);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let mut cfg_a = shipgate::jobs::WorkerConfig::from_state(&a);
    cfg_a.name = "instance-a".into();
    let mut cfg_b = shipgate::jobs::WorkerConfig::from_state(&b);
    cfg_b.name = "instance-b".into();
    let wa = tokio::spawn(shipgate::jobs::run_worker(a, cfg_a, rx.clone()));
    let wb = tokio::spawn(shipgate::jobs::run_worker(b, cfg_b, rx));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'booking' AND state <> 'succeeded'")
            .fetch_one(&app.db)
            .await
            .expect("count");
        if left == 0 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let _ = tokio::join!(wa, wb);

    let by: Vec<(String, i32)> = sqlx::query_as("SELECT claimed_by, attempts FROM jobs WHERE kind = 'booking'")
        .fetch_all(&app.db)
        .await
        .expect("jobs");
    let instances: HashSet<&str> = by.iter().map(|(w, _)| w.as_str()).collect();
    println!(
        "reliability 8: {} jobs, finished by {:?}, {} orders at the carrier, {} SaveOrder calls",
        by.len(),
        instances,
        app.sim.order_count(),
        app.sim_calls("SaveOrder")
    );
    assert!(!instances.contains("killed"), "the dead instance's jobs were taken over: {by:?}");
    let mut booked = 0;
    for id in &ids {
        let s = app.get(&format!("/v1/shipments/{id}")).await.json();
        booked += usize::from(s["booking"]["state"] == "booked");
        assert_eq!(events_of(&app, id, "shipment.booked").await, 1, "{id} booked once");
    }
    assert_eq!(booked, 40);
    assert_eq!(app.sim.order_count(), 40, "every job ran once: no duplicate order");
    // 40 failed attempts during the outage, then exactly one SaveOrder per shipment.
    assert_eq!(app.sim_calls("SaveOrder"), 80);
}

#[tokio::test]
async fn readiness_reports_whether_the_job_worker_runs_and_shutdown_drains_it() {
    let app = spawn_app_with("workers_enabled = true\njobs_poll_interval_ms = 50").await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["workers"], "stopped");
    let workers = shipgate::runtime::spawn_workers(&app.state);
    let mut ready = false;
    for _ in 0..40 {
        let r = app.get("/readyz").await;
        if r.status == 200 {
            assert_eq!(r.json()["workers"], "ok");
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the worker reports in");
    // The running worker books a pending shipment by itself (woken by NOTIFY or polling).
    app.sim.fail_next(Some("SaveOrder"), 1, SimFault::Status(-3));
    let s = app.post("/v1/shipments", &app.shipment_body("LIVE-1")).await.accepted();
    let id = s["id"].as_str().expect("id");
    sqlx::query("UPDATE jobs SET run_at = now() WHERE state = 'queued'").execute(&app.db).await.expect("due");
    sqlx::query("SELECT pg_notify('shipgate_jobs', '')").execute(&app.db).await.expect("notify");
    let mut booked = false;
    for _ in 0..60 {
        if app.get(&format!("/v1/shipments/{id}")).await.json()["booking"]["state"] == "booked" {
            booked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(booked, "booked by the background worker");
    workers.shutdown().await;
    assert_eq!(app.get("/readyz").await.json()["workers"], "stopped");
}

#[tokio::test]
async fn a_booking_settled_on_its_first_attempt_leaves_no_job_behind() {
    let app = spawn_app_with("").await;
    app.book("FIRST-TIME").await;
    app.sim.fail_next(Some("SaveOrder"), 1, SimFault::Status(-4));
    app.post("/v1/shipments", &app.shipment_body("REFUSED")).await.problem(422, "carrier_rejected");
    let queued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'booking'").fetch_one(&app.db).await.expect("count");
    assert_eq!(queued, 0, "the safety-net jobs of booked and refused shipments are gone");
    app.sim.fail_next(Some("SaveOrder"), 1, SimFault::Status(-3));
    app.post("/v1/shipments", &app.shipment_body("PENDING")).await.accepted();
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'booking' AND state = 'queued'")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(queued, 1, "a pending booking keeps its job");
}

#[tokio::test]
async fn the_booked_event_carries_the_shipment_exactly_as_the_api_shows_it() {
    let app = spawn_app_with("").await;
    // Booked on the first attempt (one statement writes row, history and event) ...
    let first = app.book("EXACT-1").await;
    // ... and booked later by the job, after an outage.
    app.sim.fail_next(Some("SaveOrder"), 1, SimFault::Status(-3));
    let later = app.post("/v1/shipments", &app.shipment_body("EXACT-2")).await.accepted();
    app.run_due_jobs().await;
    for s in [first, later] {
        let id = s["id"].as_str().expect("id");
        let shown = app.get(&format!("/v1/shipments/{id}")).await.json();
        assert_eq!(shown["booking"]["state"], "booked");
        let events = app.get(&format!("/v1/events?shipment_id={id}")).await.json();
        let booked: Vec<&Value> =
            events["data"].as_array().expect("events").iter().filter(|e| e["type"] == "shipment.booked").collect();
        assert_eq!(booked.len(), 1, "{events}");
        assert_eq!(booked[0]["data"]["shipment"], shown, "event vs GET for {id}");
        let created = &events["data"][0];
        assert_eq!(created["type"], "shipment.created");
        assert_eq!(created["sequence"].as_i64().or(created["shipment_seq"].as_i64()), Some(1), "{created}");
    }
}

#[tokio::test]
async fn a_pending_booking_whose_request_died_is_adopted_by_the_sweep_and_booked() {
    let app = spawn_app_with("").await;
    app.sim.fail_next(Some("SaveOrder"), 1, SimFault::Status(-3));
    let pending = app.post("/v1/shipments", &app.shipment_body("ORPHAN")).await.accepted();
    let id = pending["id"].as_str().expect("id").to_owned();
    // As if the request had died before writing its job: no job, untouched for an hour.
    sqlx::query("DELETE FROM jobs WHERE kind = 'booking'").execute(&app.db).await.expect("delete");
    let fresh = app.post("/v1/shipments", &app.shipment_body("FRESH")).await.json();
    assert_eq!(fresh["booking"]["state"], "booked");
    sqlx::query("UPDATE shipments SET updated_at = now() - interval '1 hour' WHERE id = $1")
        .bind(&id)
        .execute(&app.db)
        .await
        .expect("age");
    assert_eq!(shipgate::jobs::adopt_orphan_bookings(&app.state).await.expect("sweep"), 1, "only the orphan");
    assert_eq!(shipgate::jobs::adopt_orphan_bookings(&app.state).await.expect("sweep"), 0, "adopted once");
    app.run_due_jobs().await;
    let booked = app.get(&format!("/v1/shipments/{id}")).await.json();
    assert_eq!(booked["booking"]["state"], "booked", "{booked}");
    assert_eq!(app.sim_calls("SaveOrder"), 3, "refused once, then the fresh one, then the adopted one: no extra order");
}
