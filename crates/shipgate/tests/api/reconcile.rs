//! Reconciliation (issue 12): the carrier's own list walked page by page as a durable
//! job, compared with ours; carrier-only shipments reported or imported, status
//! disagreements fixed forward only, shipments deleted at the carrier reported and kept.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shipgate::jobs::{WorkerConfig, run_worker};

use crate::helpers::{TestApp, spawn_app};

/// Poll the job until `done` says so (at most `secs`).
async fn job_until(app: &TestApp, job_id: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let job = app.get(&format!("/v1/jobs/{job_id}")).await.json();
        if done(&job) {
            return job;
        }
        assert!(Instant::now() < until, "job never got there: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn start_worker(app: &TestApp, name: &str) -> (tokio::task::JoinHandle<()>, tokio::sync::watch::Sender<bool>) {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let cfg = WorkerConfig {
        concurrency: 2,
        poll_interval: Duration::from_millis(100),
        kinds: vec!["reconcile".to_owned()],
        name: name.to_owned(),
    };
    (tokio::spawn(run_worker(app.state.clone(), cfg, rx)), stop)
}

/// The most calls that started within any one second.
fn busiest_second(mut at: Vec<chrono::DateTime<chrono::Utc>>) -> usize {
    at.sort();
    let mut best = 0;
    let mut first = 0;
    for last in 0..at.len() {
        while at[last] - at[first] >= chrono::Duration::seconds(1) {
            first += 1;
        }
        best = best.max(last - first + 1);
    }
    best
}

#[tokio::test]
async fn a_10000_shipment_overview_reconciles_within_the_rate_limit_and_survives_a_restart() {
    let app = spawn_app().await;
    let limit = 20;
    let con = app
        .create_connection(json!({
            "carrier": "ecmr", "name": "eCMR sim", "base_url": format!("{}{}", app.base, shipgate::sandbox::ECMR_MOUNT),
            "credentials": {"organization_id": "org-demo", "api_token": "token-demo"},
            "settings": {"rate_limit_per_second": limit}
        }))
        .await;
    let numbers = app.ecmr.seed("org-demo", "BULK", 10_000);
    assert_eq!(numbers.len(), 10_000);

    let (first, _stop_a) = start_worker(&app, "worker-a");
    let began = Instant::now();
    let r = app.post(&format!("/v1/connections/{con}/reconcile"), &json!({"import": true})).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let job_id = r.json()["job_id"].as_str().expect("job_id").to_owned();

    // Kill the worker in the middle of the walk: its task and everything in flight end.
    let mid = job_until(&app, &job_id, 120, |j| j["progress"]["pages"].as_i64().is_some_and(|p| p >= 30)).await;
    first.abort();
    let _ = first.await;
    let pages_at_kill = mid["progress"]["pages"].as_i64().expect("pages");
    assert_eq!(mid["progress"]["state"], "running");
    let imported_at_kill: i64 = sqlx::query_scalar("SELECT count(*) FROM shipments WHERE connection_id = $1")
        .bind(&con)
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert!(imported_at_kill < 10_000, "killed before the end: {imported_at_kill}");
    // The dead worker's lease runs out (time moved on instead of waiting it out).
    sqlx::query("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE state = 'running'")
        .execute(&app.db)
        .await
        .expect("expire the lease");

    let (second, stop_b) = start_worker(&app, "worker-b");
    let done = job_until(&app, &job_id, 300, |j| j["state"] == "succeeded").await;
    let elapsed = began.elapsed();
    let _ = stop_b.send(true);
    let _ = second.await;

    let run = &done["progress"];
    assert_eq!(run["state"], "succeeded", "{run}");
    let report = &run["report"];
    assert_eq!(report["seen"], 10_000, "{report}");
    assert_eq!(report["total_at_carrier"], 10_000);
    assert_eq!((report["carrier_only"].as_u64(), report["imported"].as_u64()), (Some(10_000), Some(10_000)));
    assert_eq!(report["missing_at_carrier"], 0);
    assert!(run["pages"].as_i64().is_some_and(|p| p >= 100 && p > pages_at_kill), "{run}");
    // Complete and nothing duplicated: each carrier shipment exactly once.
    let (count, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT carrier_reference) FROM shipments WHERE connection_id = $1")
            .bind(&con)
            .fetch_one(&app.db)
            .await
            .expect("counts");
    assert_eq!((count, distinct), (10_000, 10_000));
    let history: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM shipment_history WHERE action = 'imported' AND actor_type = 'reconcile'",
    )
    .fetch_one(&app.db)
    .await
    .expect("history");
    assert_eq!(history, 10_000);
    // The walk resumed where it stopped: 100 pages, plus at most the one cut off.
    let calls: Vec<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "SELECT created_at FROM carrier_exchanges WHERE connection_id = $1 AND operation = 'overview'",
    )
    .bind(&con)
    .fetch_all(&app.db)
    .await
    .expect("exchanges");
    assert!((100..=101).contains(&calls.len()), "{} overview calls", calls.len());
    let all: Vec<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT created_at FROM carrier_exchanges WHERE connection_id = $1")
            .bind(&con)
            .fetch_all(&app.db)
            .await
            .expect("exchanges");
    let busiest = busiest_second(all.clone());
    assert!(busiest <= limit, "{busiest} calls in one second, limit {limit}");
    let first_call = all.iter().min().copied().expect("calls");
    let last_call = all.iter().max().copied().expect("calls");
    let span = (last_call - first_call).num_milliseconds().max(1) as f64 / 1000.0;
    eprintln!(
        "reconcile figures: {} shipments, {} pages walked ({} overview calls, {} calls in all), killed after {} pages, \
         busiest second {} calls (limit {}), {:.1} calls/s over {:.1} s of calls, {:.1} s end to end",
        report["seen"],
        run["pages"],
        calls.len(),
        all.len(),
        pages_at_kill,
        busiest,
        limit,
        all.len() as f64 / span,
        span,
        elapsed.as_secs_f64()
    );
}

#[tokio::test]
async fn a_shipment_deleted_at_the_carrier_is_reported_not_deleted_and_statuses_only_move_forward() {
    let app = spawn_app().await;
    let con = app.create_ecmr_connection().await;
    let mut ours = Vec::new();
    for reference in ["REC-1", "REC-2", "REC-3"] {
        let r = app.post("/v1/shipments", &crate::helpers::shipment_body(&con, reference)).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
        let s = r.json();
        ours.push((s["id"].as_str().expect("id").to_owned(), s["tracking_number"].as_str().expect("tn").to_owned()));
    }
    let (gone_id, gone_tn) = &ours[0];
    let (moved_id, moved_tn) = &ours[1];
    app.ecmr.delete(gone_tn).expect("delete at the carrier");
    for _ in 0..5 {
        app.ecmr.advance(moved_tn).expect("advance"); // … → departed: in transit
    }
    let extra = app.ecmr.seed("org-demo", "ELSEWHERE", 5);

    let r = app.post(&format!("/v1/connections/{con}/reconcile"), &json!({})).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let started = r.json();
    assert_eq!(started["reconciliation"]["import"], false);
    let job_id = started["job_id"].as_str().expect("job").to_owned();
    // Asked again while it runs: the same run.
    let again = app.post(&format!("/v1/connections/{con}/reconcile"), &json!({"import": true})).await.json();
    assert_eq!(again["job_id"], job_id.as_str());
    while app.run_due_jobs().await > 0 {}

    let job = app.get(&format!("/v1/jobs/{job_id}")).await.json();
    assert_eq!(job["state"], "succeeded", "{job}");
    let report = &job["progress"]["report"];
    assert_eq!((report["seen"].as_u64(), report["matched"].as_u64()), (Some(7), Some(2)), "{report}");
    // The deleted one: reported, still here, unchanged.
    assert_eq!(report["missing_at_carrier"], 1);
    assert_eq!(report["missing_sample"][0]["shipment_id"], gone_id.as_str());
    let gone = app.get(&format!("/v1/shipments/{gone_id}")).await;
    assert_eq!(gone.status, 200);
    assert_eq!(gone.json()["status"], "info_received");
    // The one the carrier moved on: fixed forward, by reconcile.
    assert_eq!((report["status_disagreements"].as_u64(), report["fixed_forward"].as_u64()), (Some(1), Some(1)));
    let moved = app.get(&format!("/v1/shipments/{moved_id}")).await.json();
    assert_eq!(moved["status"], "in_transit", "{moved}");
    let history = app.get(&format!("/v1/shipments/{moved_id}/history")).await.json();
    assert!(
        history["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|h| h["action"] == "status_changed" && h["actor_type"] == "reconcile"),
        "{history}"
    );
    // Carrier-only: reported, not imported.
    assert_eq!((report["carrier_only"].as_u64(), report["imported"].as_u64()), (Some(5), Some(0)));
    let listed: Vec<&str> = report["carrier_only_sample"]
        .as_array()
        .expect("sample")
        .iter()
        .filter_map(|e| e["tracking_number"].as_str())
        .collect();
    assert_eq!(listed, extra.iter().map(String::as_str).collect::<Vec<_>>());
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM shipments").fetch_one(&app.db).await.expect("count");
    assert_eq!(count, 3);

    // The report is kept and listed per connection; a run again imports and reports the same.
    let r = app.post(&format!("/v1/connections/{con}/reconcile"), &json!({"import": true})).await;
    let second_job = r.json()["job_id"].as_str().expect("job").to_owned();
    assert_ne!(second_job, job_id);
    while app.run_due_jobs().await > 0 {}
    let list = app.get(&format!("/v1/connections/{con}/reconciliations")).await.json();
    let runs = list["data"].as_array().expect("data");
    assert_eq!(runs.len(), 2, "{list}");
    assert_eq!(runs[0]["job_id"], second_job.as_str(), "newest first");
    assert_eq!(runs[0]["report"]["imported"], 5);
    assert_eq!(runs[0]["report"]["missing_at_carrier"], 1);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM shipments").fetch_one(&app.db).await.expect("count");
    assert_eq!(count, 8, "the deleted one is kept");
}

#[tokio::test]
async fn only_carriers_with_a_list_reconcile_and_the_schedule_is_a_setting() {
    let app = spawn_app().await;
    // e-Courier offers no list of orders.
    let r = app.post(&format!("/v1/connections/{}/reconcile", app.connection_id), &json!({})).await;
    r.problem(422, "capability_not_supported");
    let r = app
        .request(
            "PATCH",
            &format!("/v1/connections/{}", app.connection_id),
            Some(&app.key.clone()),
            Some(&json!({"settings": {"customer_code": "DEMO", "reconcile_every_hours": 24}})),
            &[],
        )
        .await;
    assert_eq!(r.problem(422, "validation_failed")["errors"][0]["field"], "settings.reconcile_every_hours");

    // Off by default; on, a scheduled run starts.
    let con = app.create_ecmr_connection().await;
    app.run_due_jobs().await;
    shipgate::jobs::kinds::ensure_periodic(&app.state).await.expect("periodic");
    app.run_due_jobs().await;
    let list = app.get(&format!("/v1/connections/{con}/reconciliations")).await.json();
    assert_eq!(list["data"].as_array().map(Vec::len), Some(0), "no schedule by default");
    let r = app
        .request(
            "PATCH",
            &format!("/v1/connections/{con}"),
            Some(&app.key.clone()),
            Some(&json!({"settings": {"reconcile_every_hours": 24}})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    // The periodic jobs repeat for ever: a few rounds (schedule, then the run it started).
    for _ in 0..3 {
        app.run_due_jobs().await;
    }
    let list = app.get(&format!("/v1/connections/{con}/reconciliations")).await.json();
    let runs = list["data"].as_array().expect("data");
    assert_eq!(runs.len(), 1, "{list}");
    assert_eq!((runs[0]["trigger"].as_str(), runs[0]["state"].as_str()), (Some("schedule"), Some("succeeded")));
}

/// AfterShip's tracking list walked as the 2024-04 API pages it: a tracking another
/// connection of the same account registered is carrier-only for this one, imported as
/// this connection's registration of the number, so registering the number again
/// through the API gives back the imported shipment instead of a second one.
#[tokio::test]
async fn an_aftership_import_is_the_registration_of_its_number() {
    let app = spawn_app().await;
    let con = app.create_aftership_connection().await;
    let other = app.create_aftership_connection().await;
    let body = |connection: &str| {
        json!({"connection_id": connection, "tracking_number": "RECON12345", "service": "dhl",
               "stops": [{"sequence": 1, "type": "delivery", "name": "Bryan Moore",
                          "address": {"line1": "2253 Orange Blossom Trail", "city": "Orlando", "country": "US"}}]})
    };
    let r = app.post("/v1/shipments", &body(&other)).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));

    let r = app.post(&format!("/v1/connections/{con}/reconcile"), &json!({"import": true})).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let job_id = r.json()["job_id"].as_str().expect("job").to_owned();
    while app.run_due_jobs().await > 0 {}
    let job = app.get(&format!("/v1/jobs/{job_id}")).await.json();
    assert_eq!(job["state"], "succeeded", "{job}");
    let report = &job["progress"]["report"];
    assert_eq!((report["carrier_only"].as_u64(), report["imported"].as_u64()), (Some(1), Some(1)), "{report}");
    let imported = report["carrier_only_sample"][0]["shipment_id"].as_str().expect("imported id").to_owned();
    let list_calls = app.aftership.requests().into_iter().filter(|r| r.op == "list").count();
    assert!(list_calls >= 1, "the tracking list was walked");

    let r = app.post("/v1/shipments", &body(&con)).await;
    assert_eq!(r.status, 200, "the registration exists: {}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["id"], imported.as_str());
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM shipments WHERE connection_id = $1")
        .bind(&con)
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(count, 1, "one shipment per number and connection");
}
