//! Retention by partition (issue 13, service::retention): months past their table's
//! retention are dropped whole; the current month, the months ahead and the default
//! partition stay; rows no month holds are reported. Maintenance is run "as of" a later
//! date to let months age, the way housekeeping runs it with the current time.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use shipgate::service::retention::{TableReport, maintain};
use shipgate::store::partitions::{TABLES, add_months, month_start};
use sims::ecomexpress::{EcomPusher, Scan};

use crate::helpers::{TestApp, spawn_app_with};

const CONFIG: &str = "exchange_retention_days = 30\noutbound_event_retention_days = 60\n\
                      tracking_event_retention_days = 60\nwebhook_allow_networks = \"127.0.0.1/32\"\n";

/// The partitions of `table`, by name, as an operator lists them.
async fn partitions(app: &TestApp, table: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT relid::text FROM pg_partition_tree($1::regclass) WHERE isleaf ORDER BY relid::text")
        .bind(table)
        .fetch_all(&app.db)
        .await
        .expect("partitions")
}

fn report<'a>(reports: &'a [TableReport], table: &str) -> &'a TableReport {
    reports.iter().find(|r| r.table == table).expect("a report per table")
}

fn no_errors(reports: &[TableReport]) {
    for r in reports {
        assert!(r.errors.is_empty(), "{}: {:?}", r.table, r.errors);
    }
}

async fn data_len(app: &TestApp, path: &str) -> usize {
    let r = app.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", String::from_utf8_lossy(&r.bytes));
    r.json()["data"].as_array().expect("data").len()
}

/// A booked shipment with exchanges, outbound events and their deliveries, and a pushed
/// shipment with a tracking event and its raw push: a row in every partitioned table.
async fn a_month_of_activity(app: &TestApp) -> (String, String, String) {
    let ep = app.post("/v1/webhook-endpoints", &json!({"url": "http://127.0.0.1:9/hook"})).await;
    assert_eq!(ep.status, 201, "{}", String::from_utf8_lossy(&ep.bytes));
    let endpoint = ep.json()["id"].as_str().expect("id").to_owned();
    let booked = app.book("RET-1").await["id"].as_str().expect("id").to_owned();
    let r = app.post("/v1/connections", &json!({"carrier": "ecomexpress", "name": "pushes"})).await;
    let con = r.json();
    let pusher = EcomPusher::new(
        format!("{}{}", app.base, con["inbound_url"].as_str().expect("url")),
        con["generated_credentials"]["username"].as_str().expect("user"),
        con["generated_credentials"]["password"].as_str().expect("password"),
    );
    assert!(pusher.push(&Scan::new("RET-AWB-1", "1", "002")).await.expect("push").accepted());
    let list = app.get("/v1/shipments?tracking_number=RET-AWB-1").await.json();
    let pushed = list["data"][0]["id"].as_str().expect("pushed shipment").to_owned();
    // Rounds until the events are fanned out (an open transaction anywhere in the
    // cluster holds a round back).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while shipgate::webhooks::dispatch_once(&app.state).await.expect("dispatch").events == 0 {
        assert!(std::time::Instant::now() < deadline, "events never dispatched");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // One delivery attempt logged (the endpoint refuses connections).
    let mut conn = app.db.acquire().await.expect("conn");
    let token = uuid::Uuid::new_v4();
    let claimed = shipgate::store::webhooks::claim_due(&mut conn, 1, 60_000.0, token).await.expect("claim");
    let c = claimed.first().expect("a delivery to claim");
    let outcome = shipgate::store::webhooks::Outcome {
        tenant_id: c.tenant_id.clone(),
        delivery_id: c.id.clone(),
        claim_token: token,
        attempt: c.attempt,
        state: "failed",
        next_attempt_at: None,
        started_at: Utc::now(),
        duration_ms: 1,
        response_status: None,
        error_code: Some("connect".to_owned()),
        response_excerpt: None,
    };
    assert_eq!(shipgate::store::webhooks::record(&mut conn, &[outcome]).await.expect("record"), 1);
    (booked, pushed, endpoint)
}

async fn activity_counts(app: &TestApp, booked: &str, pushed: &str, endpoint: &str) -> [usize; 5] {
    [
        data_len(app, &format!("/v1/shipments/{booked}/exchanges")).await,
        data_len(app, &format!("/v1/events?shipment_id={booked}")).await,
        data_len(app, &format!("/v1/shipments/{pushed}/events")).await,
        data_len(app, &format!("/v1/webhook-endpoints/{endpoint}/deliveries")).await,
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM webhook_attempts").fetch_one(&app.db).await.expect("n")
            as usize
            + sqlx::query_scalar::<_, i64>("SELECT count(*) FROM inbound_pushes").fetch_one(&app.db).await.expect("n")
                as usize,
    ]
}

/// The month partitions maintenance keeps ready as of `at`: its month and three more.
fn months_from(table: &str, at: DateTime<Utc>) -> Vec<String> {
    let t = TABLES.iter().find(|t| t.name == table).expect("table");
    (0..=3).map(|i| t.month_partition(add_months(month_start(at), i))).collect()
}

#[tokio::test]
async fn months_past_retention_are_dropped_and_the_current_one_and_the_default_stay() {
    let app = spawn_app_with(CONFIG).await;
    let (booked, pushed, endpoint) = a_month_of_activity(&app).await;
    // An exchange from a time no month partition covers: it lands in the default one.
    sqlx::query(
        "INSERT INTO carrier_exchanges (tenant_id, connection_id, carrier, operation, method, url, duration_ms, created_at)
         VALUES ($1, $2, 'ecourier', 'Old', 'POST', 'http://x', 1, '2020-01-01T00:00:00Z')",
    )
    .bind(&app.tenant_id)
    .bind(&app.connection_id)
    .execute(&app.db)
    .await
    .expect("old exchange");
    let before = activity_counts(&app, &booked, &pushed, &endpoint).await;
    assert!(before.iter().all(|n| *n > 0), "a row in every table: {before:?}");

    // Today: nothing is past retention; the months ahead are there.
    let now = Utc::now();
    let reports = maintain(&app.db, &app.state.config, now).await;
    no_errors(&reports);
    for table in TABLES {
        assert!(report(&reports, table.name).dropped.is_empty(), "{}", table.name);
        let have = partitions(&app, table.name).await;
        for month in months_from(table.name, now) {
            assert!(have.contains(&month), "{month} in {have:?}");
        }
        assert!(have.contains(&table.default_partition()), "{have:?}");
    }
    assert_eq!(activity_counts(&app, &booked, &pushed, &endpoint).await, before, "nothing went");
    // The old exchange is reported, not dropped.
    let x = report(&reports, "carrier_exchanges");
    assert_eq!((x.default_rows, x.default_rows_past_retention), (1, 1));
    assert_eq!(report(&reports, "events").default_rows, 0);

    // 100 days on, every table's retention (30 or 60 days) covers the whole of this month.
    let later = now + Duration::days(100);
    let reports = maintain(&app.db, &app.state.config, later).await;
    no_errors(&reports);
    for table in TABLES {
        let r = report(&reports, table.name);
        let this_month = table.month_partition(month_start(now));
        assert!(r.dropped.contains(&this_month), "{}: dropped {:?}", table.name, r.dropped);
        let have = partitions(&app, table.name).await;
        assert!(!have.contains(&this_month), "{have:?}");
        for month in months_from(table.name, later) {
            assert!(have.contains(&month), "{month} in {have:?}");
        }
        assert!(have.contains(&table.default_partition()), "the default partition stays: {have:?}");
    }
    assert!(report(&reports, "events").deliveries_deleted >= 1, "deliveries went before their events");
    assert_eq!(activity_counts(&app, &booked, &pushed, &endpoint).await, [0; 5]);
    // The shipments themselves stay.
    for id in [&booked, &pushed] {
        assert_eq!(app.get(&format!("/v1/shipments/{id}")).await.status, 200);
    }
    // The row in the default partition is still there, still reported.
    let x = report(&reports, "carrier_exchanges");
    assert_eq!((x.default_rows, x.default_rows_past_retention), (1, 1));
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM carrier_exchanges WHERE operation = 'Old'")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(kept, 1);

    // Writing goes on in the months that are left.
    assert_eq!(app.book("RET-2").await["status"], json!("info_received"));
}

#[tokio::test]
async fn two_maintenance_runs_at_once_both_succeed_and_do_the_work_once() {
    let app = spawn_app_with(CONFIG).await;
    let (booked, pushed, endpoint) = a_month_of_activity(&app).await;
    let later = Utc::now() + Duration::days(100);
    let (a, b) = tokio::join!(maintain(&app.db, &app.state.config, later), maintain(&app.db, &app.state.config, later));
    no_errors(&a);
    no_errors(&b);
    for table in TABLES {
        let (ra, rb) = (report(&a, table.name), report(&b, table.name));
        let mut dropped: Vec<&String> = ra.dropped.iter().chain(&rb.dropped).collect();
        let mut created: Vec<&String> = ra.created.iter().chain(&rb.created).collect();
        let (nd, nc) = (dropped.len(), created.len());
        dropped.sort();
        dropped.dedup();
        created.sort();
        created.dedup();
        assert_eq!((dropped.len(), created.len()), (nd, nc), "{}: each change made once", table.name);
        assert!(dropped.contains(&&table.month_partition(month_start(Utc::now()))), "{}", table.name);
        let have = partitions(&app, table.name).await;
        for month in months_from(table.name, later) {
            assert!(have.contains(&month), "{month} in {have:?}");
        }
    }
    assert_eq!(activity_counts(&app, &booked, &pushed, &endpoint).await, [0; 5]);
    let again: Vec<Value> = maintain(&app.db, &app.state.config, later)
        .await
        .iter()
        .map(|r| json!({"table": r.table, "created": r.created, "dropped": r.dropped, "errors": r.errors}))
        .collect();
    for r in &again {
        assert_eq!((&r["created"], &r["dropped"], &r["errors"]), (&json!([]), &json!([]), &json!([])), "{r}");
    }
}
