//! Coalesced reads of one shipment (docs/quality.md P4, `service::shipments::reads`):
//! reads by id that arrive together are answered by one statement, each with its own
//! tenant's row, and a row that cannot be read fails only its own request.
//!
//! To make the reads meet, each test holds an ACCESS EXCLUSIVE lock on `shipments` from
//! another session: the first read's statement waits on it, and with one reader every
//! other read queues behind that statement until the lock goes.

use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinSet;

use crate::helpers::{TestApp, new_tenant, spawn_app_with};

/// Sessions of the test's database whose statement reading shipment rows is waiting on
/// a lock (the test makes no other such read). The text is matched on its start: the
/// server keeps the first 1 kB of it (`track_activity_query_size`), within the column list.
async fn waiting_reads(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'
           AND query LIKE 'SELECT tenant_id, id, reference, connection_id, %'",
    )
    .fetch_one(&app.db)
    .await
    .expect("pg_stat_activity")
}

/// Book `n` shipments referenced `{prefix}-0`, `{prefix}-1`, ...; their ids in that order.
async fn book(app: &TestApp, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(app.book(&format!("{prefix}-{i}")).await["id"].as_str().expect("id").to_owned());
    }
    ids
}

/// Start the reads, each `(key, path)`, while `shipments` is locked; wait until they
/// are all in the gateway and assert they wait as one statement; then release the lock
/// and return each answer (status, body) in the order given.
async fn read_together(app: &TestApp, reads: Vec<(String, String)>) -> Vec<(u16, Value)> {
    let mut lock = shipgate::store::begin(&app.db).await.expect("begin");
    sqlx::query("LOCK TABLE shipments IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.expect("lock");
    let n = reads.len();
    let mut tasks = JoinSet::new();
    for (i, (key, path)) in reads.into_iter().enumerate() {
        let (http, url) = (app.http.clone(), format!("{}{}", app.base, path));
        tasks.spawn(async move {
            let r = http.get(url).bearer_auth(key).send().await.expect("request");
            let status = r.status().as_u16();
            (i, status, r.json::<Value>().await.expect("JSON body"))
        });
    }
    // The first read's statement waits on the lock; give the others time to arrive.
    let mut waited = 0;
    while waiting_reads(app).await == 0 {
        waited += 1;
        assert!(waited < 200, "no read reached the database");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(waiting_reads(app).await, 1, "{n} concurrent reads should wait as one statement (one reader)");
    lock.rollback().await.expect("unlock");
    let mut answers = vec![(0, Value::Null); n];
    while let Some(done) = tasks.join_next().await {
        let (i, status, body) = done.expect("task");
        answers[i] = (status, body);
    }
    answers
}

#[tokio::test]
async fn reads_that_meet_are_one_statement_and_each_gets_its_own_tenants_shipment() {
    let app = spawn_app_with("read_group_workers = 1\n").await;
    let ids = book(&app, "CR", 5).await;
    let (_, other_key) = new_tenant(&app.state, "Tenant B").await;
    // 30 reads by the owner (each id six times), 10 by another tenant of the same ids,
    // 2 of a well-formed id nobody has.
    let missing = "shp_0000000000000000000000000000beef".to_owned();
    let mut reads = Vec::new();
    for i in 0..30 {
        reads.push((app.key.clone(), format!("/v1/shipments/{}", ids[i % 5])));
    }
    for i in 0..10 {
        reads.push((other_key.clone(), format!("/v1/shipments/{}", ids[i % 5])));
    }
    reads.push((app.key.clone(), format!("/v1/shipments/{missing}")));
    reads.push((other_key.clone(), format!("/v1/shipments/{missing}")));
    let answers = read_together(&app, reads).await;
    for (i, (status, body)) in answers[..30].iter().enumerate() {
        assert_eq!(*status, 200, "owner's read {i}: {body}");
        assert_eq!(body["id"], ids[i % 5].as_str(), "owner's read {i} got another shipment");
        assert_eq!(body["reference"], format!("CR-{}", i % 5), "owner's read {i}");
    }
    for (i, (status, body)) in answers[30..40].iter().enumerate() {
        assert_eq!(*status, 404, "another tenant read {}: {body}", ids[i % 5]);
        assert_eq!(body["code"], "not_found");
        assert!(!body.to_string().contains("CR-"), "another tenant's read leaked the shipment: {body}");
    }
    for (status, body) in &answers[40..] {
        assert_eq!(*status, 404, "{body}");
    }
}

#[tokio::test]
async fn a_shipment_that_cannot_be_read_fails_alone_and_the_rest_of_its_group_is_answered() {
    let app = spawn_app_with("read_group_workers = 1\n").await;
    let ids = book(&app, "CRF", 3).await;
    // A row the gateway cannot decode (a status it does not know), written behind its
    // back. (Its JSON columns are shown as stored, so a bad one there would not do.)
    sqlx::query("UPDATE shipments SET status = 'teleported' WHERE id = $1")
        .bind(&ids[1])
        .execute(&app.db)
        .await
        .expect("spoil one row");
    let reads = (0..12).map(|i| (app.key.clone(), format!("/v1/shipments/{}", ids[i % 3]))).collect();
    let answers = read_together(&app, reads).await;
    for (i, (status, body)) in answers.iter().enumerate() {
        if i % 3 == 1 {
            assert_eq!(*status, 500, "the unreadable shipment: {body}");
            assert_eq!(body["code"], "internal_error", "{body}");
        } else {
            assert_eq!(*status, 200, "read {i} shared a group with an unreadable row: {body}");
            assert_eq!(body["id"], ids[i % 3].as_str());
        }
    }
}

/// The backend of the read statement now waiting on the lock, once there is one.
async fn waiting_read_pid(app: &TestApp) -> i32 {
    for _ in 0..200 {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND query LIKE 'SELECT tenant_id, id, reference, connection_id, %'",
        )
        .fetch_optional(&app.db)
        .await
        .expect("pg_stat_activity");
        if let Some(pid) = pid {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no read statement is waiting");
}

async fn terminate(app: &TestApp, pid: i32) {
    let done: bool =
        sqlx::query_scalar("SELECT pg_terminate_backend($1)").bind(pid).fetch_one(&app.db).await.expect("terminate");
    assert!(done, "backend {pid} terminated");
}

#[tokio::test]
async fn a_group_whose_connection_dies_answers_each_of_its_reads_503_and_the_next_read_works() {
    let app = spawn_app_with("read_group_workers = 1\n").await;
    let ids = book(&app, "CRO", 3).await;
    let get = |id: String| {
        let (http, url, key) = (app.http.clone(), format!("{}/v1/shipments/{id}", app.base), app.key.clone());
        tokio::spawn(async move {
            let r = http.get(url).bearer_auth(key).send().await.expect("request");
            (r.status().as_u16(), r.json::<Value>().await.expect("JSON body"))
        })
    };
    let mut lock = shipgate::store::begin(&app.db).await.expect("begin");
    sqlx::query("LOCK TABLE shipments IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.expect("lock");
    // The first read is read alone and waits; nine more queue behind it as one group.
    let first = get(ids[0].clone());
    let alone = waiting_read_pid(&app).await;
    let group: Vec<_> = (0..9).map(|i| get(ids[i % 3].clone())).collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The database goes away under the lone read, then under the group's statement.
    terminate(&app, alone).await;
    let (status, body) = first.await.expect("first");
    assert_eq!(status, 503, "the lone read: {body}");
    assert_eq!(body["code"], "database_unavailable");
    let grouped = waiting_read_pid(&app).await;
    assert_ne!(grouped, alone);
    terminate(&app, grouped).await;
    for read in group {
        let (status, body) = read.await.expect("read");
        assert_eq!(status, 503, "a read of the group whose statement died: {body}");
        assert_eq!(body["code"], "database_unavailable");
    }
    lock.rollback().await.expect("unlock");
    let again = app.get(&format!("/v1/shipments/{}", ids[1])).await;
    assert_eq!(again.status, 200, "the next read, on a new connection");
    assert_eq!(again.json()["id"], ids[1].as_str());
}
