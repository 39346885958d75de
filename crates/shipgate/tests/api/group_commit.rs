//! Group commit of inbound scans (docs/quality.md P1): concurrent pushes share one
//! transaction, each is acknowledged only once its transaction committed, and a push
//! that fails takes none of the others with it.

use std::sync::Arc;

use serde_json::{Value, json};
use sims::ecomexpress::{EcomPusher, Scan};
use tokio::task::JoinSet;

use crate::helpers::{TestApp, spawn_app_with};

async fn ecom_pusher(app: &TestApp) -> (String, EcomPusher) {
    let b = app.post("/v1/connections", &json!({"carrier": "ecomexpress", "name": "grouped"})).await.json();
    let id = b["id"].as_str().expect("id").to_owned();
    let url = format!("{}{}", app.base, b["inbound_url"].as_str().expect("url"));
    let user = b["generated_credentials"]["username"].as_str().expect("user");
    let password = b["generated_credentials"]["password"].as_str().expect("password");
    (id.clone(), EcomPusher::new(&url, user, password))
}

/// Make every tracking-event insert take a little time (so pushes queue up behind the
/// one committer) and refuse the scan code `666` (a database failure inside a group).
async fn slow_and_refusing(app: &TestApp) {
    for sql in [
        "CREATE FUNCTION test_slow_scan() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           PERFORM pg_sleep(0.01);
           IF NEW.raw_code = '666' THEN RAISE EXCEPTION 'test: scan code 666 refused by the database'; END IF;
           RETURN NEW;
         END $$",
        "CREATE TRIGGER test_slow_scan BEFORE INSERT ON tracking_events FOR EACH ROW EXECUTE FUNCTION test_slow_scan()",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&app.db).await.expect("trigger");
    }
}

async fn stored(db: &sqlx::PgPool, connection_id: &str, awb: &str, sun: &str) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM inbound_pushes WHERE connection_id = $1 AND awb = $2 AND status_update_number = $3)",
    )
    .bind(connection_id)
    .bind(awb)
    .bind(sun)
    .fetch_one(db)
    .await
    .expect("stored?")
}

/// How many transactions wrote a connection's scans (`xmin` of the rows).
async fn transactions(db: &sqlx::PgPool, connection_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM inbound_pushes WHERE connection_id = $1")
        .bind(connection_id)
        .fetch_one(db)
        .await
        .expect("transactions")
}

#[tokio::test]
async fn concurrent_scans_share_commits_and_each_is_acked_only_once_committed() {
    let app = spawn_app_with("inbound_commit_workers = 1\n").await;
    slow_and_refusing(&app).await;
    let (con, pusher) = ecom_pusher(&app).await;
    let mut tasks = JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    for i in 0..120 {
        let (p, db, con, sem) = (pusher.clone(), app.db.clone(), con.clone(), sem.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await.expect("permit");
            let (awb, sun) = (format!("GC-{}", i % 30), format!("{}", 50_000 + i));
            let ack = p.push(&Scan::new(&awb, &sun, "002")).await.expect("push");
            // The moment the carrier hears "stored", another session sees the scan.
            let visible = stored(&db, &con, &awb, &sun).await;
            (ack.accepted(), visible)
        });
    }
    let (mut acked, mut visible_at_ack) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (ok, visible) = r.expect("task");
        acked += usize::from(ok);
        visible_at_ack += usize::from(ok && visible);
    }
    assert_eq!(acked, 120, "every push acknowledged");
    assert_eq!(visible_at_ack, 120, "each push acknowledged only after the commit that holds it");
    let scans: i64 = sqlx::query_scalar("SELECT count(*) FROM inbound_pushes WHERE connection_id = $1")
        .bind(&con)
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(scans, 120);
    let txs = transactions(&app.db, &con).await;
    assert!(txs < 60, "120 concurrent scans written by {txs} transactions: they were not grouped");
    // Where the groups' time went is on /metrics, phase by phase (docs/operations.md).
    let metrics = String::from_utf8(app.request("GET", "/metrics", None, None, &[]).await.bytes).expect("utf8");
    for phase in ["queue", "acquire", "statements", "commit", "answer"] {
        let count = format!("shipgate_inbound_group_phase_seconds_count{{phase=\"{phase}\"}} ");
        let n: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&count))
            .unwrap_or_else(|| panic!("no {count} on /metrics"))
            .parse()
            .expect("a count");
        assert!(n > 0, "{count}{n}");
    }
    // Each shipment's events are numbered without a gap whatever the grouping.
    let gaps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT shipment_id, max(shipment_seq) - count(*) AS gap FROM events GROUP BY 1) g
         WHERE gap <> 0",
    )
    .fetch_one(&app.db)
    .await
    .expect("gaps");
    assert_eq!(gaps, 0, "per-shipment event numbers stay 1..n");
}

#[tokio::test]
async fn a_scan_the_database_refuses_fails_alone_and_the_rest_of_its_group_is_stored() {
    let app = spawn_app_with("inbound_commit_workers = 1\n").await;
    slow_and_refusing(&app).await;
    let (con, pusher) = ecom_pusher(&app).await;
    let mut tasks = JoinSet::new();
    for i in 0..40 {
        let p = pusher.clone();
        tasks.spawn(async move {
            let code = if i % 13 == 5 { "666" } else { "002" };
            let (awb, sun) = (format!("GF-{}", i % 10), format!("{}", 70_000 + i));
            let ack = p.push(&Scan::new(&awb, &sun, code)).await.expect("push");
            (code, awb, sun, ack.accepted(), ack.http_status)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(r) = tasks.join_next().await {
        outcomes.push(r.expect("task"));
    }
    let bad: Vec<_> = outcomes.iter().filter(|o| o.0 == "666").collect();
    let good: Vec<_> = outcomes.iter().filter(|o| o.0 != "666").collect();
    assert_eq!((bad.len(), good.len()), (3, 37));
    for (_, awb, sun, accepted, status) in &bad {
        assert!(!accepted, "a scan the database refused is not acknowledged");
        assert!(*status >= 500, "the carrier is told to retry it (status {status})");
        assert!(!stored(&app.db, &con, awb, sun).await, "nothing of it is stored");
    }
    for (_, awb, sun, accepted, _) in &good {
        assert!(accepted, "{awb}/{sun} shared a group with a failing scan and must still be stored");
        assert!(stored(&app.db, &con, awb, sun).await);
    }
}

#[tokio::test]
async fn grouped_scans_apply_the_after_rules_and_statuses_as_lone_scans_do() {
    let app = spawn_app_with("inbound_commit_workers = 1\n").await;
    let (_, pusher) = ecom_pusher(&app).await;
    // A 777 (return to shipper started) on half the numbers, one at a time.
    for k in 0..8 {
        assert!(
            pusher.push(&Scan::new(format!("GA-{k}"), format!("{}", 1000 + k), "777")).await.expect("push").accepted()
        );
    }
    slow_and_refusing(&app).await;
    // Then, all at once (so they are written in groups), a 999 on every number and an
    // in-transit scan on the new ones.
    let mut tasks = JoinSet::new();
    for k in 0..16 {
        let p = pusher.clone();
        tasks.spawn(async move {
            let a = p.push(&Scan::new(format!("GA-{k}"), format!("{}", 2000 + k), "999")).await.expect("push");
            a.accepted()
        });
    }
    while let Some(r) = tasks.join_next().await {
        assert!(r.expect("task"), "acknowledged");
    }
    for k in 0..16 {
        let list = app.get(&format!("/v1/shipments?tracking_number=GA-{k}")).await.json();
        let s = &list["data"][0];
        let expected = if k < 8 { ("exception", "Exception_011") } else { ("delivered", "Delivered_001") };
        assert_eq!((s["status"].as_str(), s["subtag"].as_str()), (Some(expected.0), Some(expected.1)), "GA-{k}: {s}");
        assert_eq!(s["last_event"]["raw_code"], "999", "GA-{k}: the latest scan is the shipment's last event");
        let events = app.get(&format!("/v1/events?shipment_id={}", s["id"].as_str().expect("id"))).await.json();
        let types: Vec<&str> =
            events["data"].as_array().expect("data").iter().filter_map(|e| e["type"].as_str()).collect();
        let mut expected_types = vec!["shipment.created", "shipment.event_added", "shipment.status_changed"];
        if k < 8 {
            expected_types.extend(["shipment.event_added", "shipment.status_changed"]);
        }
        assert_eq!(types, expected_types, "GA-{k}");
        let last = events["data"].as_array().and_then(|d| d.last()).expect("last");
        assert_eq!(last["data"]["shipment"]["status"], expected.0, "the event carries the shipment as it became");
        if k < 8 {
            // Events 1 and 2 came from the lone 777 scan, 3 and 4 from the grouped 999:
            // a subscriber gets the same members either way.
            let data: Vec<&Value> = events["data"].as_array().expect("data").iter().map(|e| &e["data"]).collect();
            let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
            assert_eq!(keys(data[3]), keys(data[1]), "GA-{k}: event_added data, grouped vs lone");
            assert_eq!(keys(data[4]), keys(data[2]), "GA-{k}: status_changed data, grouped vs lone");
            assert_eq!(keys(&data[3]["shipment"]), keys(&data[1]["shipment"]), "GA-{k}: the shipment's members");
            assert_eq!(data[3]["event"]["raw_code"], "999", "GA-{k}");
            assert_eq!(data[4]["previous_status"], data[2]["shipment"]["status"], "GA-{k}: the status before the 999");
            assert_eq!(data[4]["previous_subtag"], data[2]["shipment"]["subtag"], "GA-{k}");
            let shown = app.get(&format!("/v1/shipments/{}", s["id"].as_str().expect("id"))).await.json();
            assert_eq!(data[4]["shipment"], shown, "GA-{k}: the last event shows the shipment as GET shows it");
        }
    }
}

#[tokio::test]
async fn a_scan_repeated_in_one_group_is_stored_once_and_every_copy_is_acknowledged() {
    let app = spawn_app_with("inbound_commit_workers = 1\n").await;
    let (con, pusher) = ecom_pusher(&app).await;
    // Six shipments, each with one scan already stored (written alone).
    for k in 0..6 {
        let ack = pusher.push(&Scan::new(format!("GR-{k}"), format!("{}", 1000 + k), "002")).await.expect("push");
        assert!(ack.accepted());
    }
    slow_and_refusing(&app).await;
    // Then at once (one committer, slow inserts: they queue into groups): each number's
    // new scan four times, and its stored scan once more, as a carrier resending would.
    let mut tasks = JoinSet::new();
    for copy in 0..5 {
        for k in 0..6 {
            let p = pusher.clone();
            let sun = if copy == 4 { 1000 + k } else { 3000 + k };
            tasks.spawn(async move {
                let scan = Scan::new(format!("GR-{k}"), format!("{sun}"), if copy == 4 { "002" } else { "006" });
                p.push(&scan).await.expect("push").accepted()
            });
        }
    }
    while let Some(r) = tasks.join_next().await {
        assert!(r.expect("task"), "every copy is acknowledged true");
    }
    let count = |sql: &'static str| {
        let (db, con) = (app.db.clone(), con.clone());
        async move { sqlx::query_scalar::<_, i64>(sql).bind(con).fetch_one(&db).await.expect("count") }
    };
    assert_eq!(count("SELECT count(*) FROM inbound_pushes WHERE connection_id = $1").await, 12, "each key stored once");
    assert_eq!(
        count(
            "SELECT count(*) FROM tracking_events e JOIN shipments s ON s.id = e.shipment_id WHERE s.connection_id = $1"
        )
        .await,
        12,
        "one tracking event per scan"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM events e JOIN shipments s ON s.id = e.shipment_id
             WHERE s.connection_id = $1 AND e.type = 'shipment.event_added'"
        )
        .await,
        12,
        "one event_added per scan, none for a copy"
    );
    let txs = count(
        "SELECT count(DISTINCT xmin::text) FROM inbound_pushes WHERE connection_id = $1 AND status_update_number >= '3000'",
    )
    .await;
    assert!(txs < 6, "the six new scans were written by {txs} transactions: their copies were not grouped");
    for k in 0..6 {
        let list = app.get(&format!("/v1/shipments?tracking_number=GR-{k}")).await.json();
        let s = &list["data"][0];
        assert_eq!(s["last_event"]["raw_code"], "006", "GR-{k}: the new scan is the shipment's last event: {s}");
    }
    assert_eq!(
        count(
            "SELECT count(*) FROM (SELECT e.shipment_id, max(e.shipment_seq) - count(*) AS gap FROM events e
             JOIN shipments s ON s.id = e.shipment_id WHERE s.connection_id = $1 GROUP BY 1) g WHERE gap <> 0"
        )
        .await,
        0,
        "per-shipment event numbers stay 1..n"
    );
}

/// When the status moved: (status, status_changed_at) of a shipment, from the database
/// (the tracking engine's staleness rule reads it; the API does not show it).
async fn status_and_since(db: &sqlx::PgPool, awb: &str) -> (String, chrono::DateTime<chrono::Utc>) {
    sqlx::query_as("SELECT status, status_changed_at FROM shipments WHERE tracking_number = $1")
        .bind(awb)
        .fetch_one(db)
        .await
        .expect("shipment")
}

#[tokio::test]
async fn a_group_stamps_the_status_change_time_only_on_the_shipments_whose_status_moved() {
    let app = spawn_app_with("inbound_commit_workers = 1\n").await;
    let (con, pusher) = ecom_pusher(&app).await;
    for k in 0..6 {
        let ack = pusher.push(&Scan::new(format!("GS-{k}"), format!("{}", 1000 + k), "002")).await.expect("push");
        assert!(ack.accepted());
    }
    let mut before = Vec::new();
    for k in 0..6 {
        before.push(status_and_since(&app.db, &format!("GS-{k}")).await);
    }
    slow_and_refusing(&app).await;
    // At once, so they are written in groups: another in-transit scan on GS-0..2 (no
    // move), a delivery on GS-3..5.
    let mut tasks = JoinSet::new();
    for k in 0..6 {
        let p = pusher.clone();
        tasks.spawn(async move {
            let code = if k < 3 { "002" } else { "999" };
            p.push(&Scan::new(format!("GS-{k}"), format!("{}", 2000 + k), code)).await.expect("push").accepted()
        });
    }
    while let Some(r) = tasks.join_next().await {
        assert!(r.expect("task"), "acknowledged");
    }
    // Six lone transactions before; the six new scans must have shared some.
    let txs = transactions(&app.db, &con).await;
    assert!(txs < 12, "the new scans were written by {} transactions: not grouped", txs - 6);
    for (k, (was, was_since)) in before.iter().enumerate() {
        let awb = format!("GS-{k}");
        let (status, since) = status_and_since(&app.db, &awb).await;
        let list = app.get(&format!("/v1/shipments?tracking_number={awb}")).await.json();
        let s = &list["data"][0];
        assert_eq!(s["last_event"]["raw_code"], if k < 3 { "002" } else { "999" }, "{awb}: the new scan is applied");
        if k < 3 {
            assert_eq!((&status, since), (was, *was_since), "{awb}: nothing moved");
        } else {
            assert_eq!(status, "delivered", "{awb}");
            assert!(since > *was_since, "{awb}: the move is stamped ({since} after {was_since})");
        }
        assert_eq!(s["status"], status.as_str(), "{awb}: the API shows what is stored");
    }
}

/// The unlocked write (`store::scan_groups::write_unlocked`) computed from a shipment as
/// read: if another writer changed the shipment after the read, it must write nothing
/// at all (SQLSTATE 40001, so the gateway writes the group again under lock); with the
/// version as it now is, the same write goes through and commits by itself.
#[tokio::test]
async fn an_unlocked_group_write_from_a_stale_read_writes_nothing() {
    use shipgate::store::scan_groups::{self, Number, Outbound, ScanRows, ShipmentState};
    use shipgate::store::shipments::NewEvent;

    let app = spawn_app_with("inbound_commit_workers = 1\n").await;
    let (con, pusher) = ecom_pusher(&app).await;
    assert!(pusher.push(&Scan::new("GU-1", "100", "002")).await.expect("push").accepted());
    let tenant = app.tenant_id.as_str();
    let number = Number { tenant_id: tenant, connection_id: &con, tracking_number: "GU-1", after_codes: vec!["777"] };
    let mut conn = app.db.acquire().await.expect("conn");
    let read = scan_groups::read_unlocked(&mut conn, &[number]).await.expect("read");
    assert_eq!(read.len(), 1, "the shipment of GU-1 is found");
    let (row, version, now) = (&read[0].doc, read[0].version.clone(), read[0].now);
    assert!(read[0].seen.is_empty(), "GU-1 has no 777 yet");
    let counts = async |db: &sqlx::PgPool| -> (i64, i64, i64, i64, i64) {
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM inbound_pushes WHERE awb = 'GU-1'),
                    (SELECT count(*) FROM tracking_events e JOIN shipments s ON s.id = e.shipment_id
                       WHERE s.tracking_number = 'GU-1'),
                    (SELECT count(*) FROM shipment_history h JOIN shipments s ON s.id = h.shipment_id
                       WHERE s.tracking_number = 'GU-1'),
                    (SELECT count(*) FROM events v JOIN shipments s ON s.id = v.shipment_id
                       WHERE s.tracking_number = 'GU-1'),
                    (SELECT event_seq::int8 FROM shipments WHERE tracking_number = 'GU-1')",
        )
        .fetch_one(db)
        .await
        .expect("counts")
    };
    let before = counts(&app.db).await;

    let event = NewEvent {
        occurred_at: now,
        status: None,
        subtag: None,
        message: Some("second scan"),
        location: None,
        raw_code: Some("003"),
        raw_text: None,
        actor: None,
        source: "push",
        dedup_key: "ecomexpress:101",
    };
    let payload = json!({"awb": "GU-1", "status_update_number": "101"});
    let scan = ScanRows {
        tenant_id: tenant,
        connection_id: &con,
        awb: "GU-1",
        status_update_number: "101",
        shipment_id: &row.id,
        payload: &payload,
        event: &event,
    };
    let state = ShipmentState {
        tenant_id: tenant,
        id: &row.id,
        status: row.status.as_str(),
        subtag: None,
        carrier_status: Some("003"),
        last_event: None,
        events: 1,
        moved: false,
    };
    let history = [(tenant, row.id.as_str(), "events_added", json!({"count": 1}))];
    let outbound = || {
        [Outbound {
            tenant_id: tenant,
            id: shipgate::ids::new_id("evt"),
            shipment_id: &row.id,
            back: 0,
            event_type: "shipment.event_added",
            data: "{}".to_owned(),
        }]
    };

    // Another writer changes the shipment after the read (as a refresh setting the
    // estimated delivery does).
    sqlx::query("UPDATE shipments SET estimated_delivery = now() WHERE tracking_number = 'GU-1'")
        .execute(&app.db)
        .await
        .expect("concurrent change");
    let err = scan_groups::write_unlocked(
        &mut conn,
        std::slice::from_ref(&state),
        &[&version],
        now,
        std::slice::from_ref(&scan),
        &history,
        &outbound(),
    )
    .await
    .expect_err("a write computed from a stale read must fail");
    let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("40001"), "{err}");
    assert_eq!(counts(&app.db).await, before, "nothing of the stale write is kept");

    // Read again: the write goes through, and is visible to another session at once.
    let number = Number { tenant_id: tenant, connection_id: &con, tracking_number: "GU-1", after_codes: vec![] };
    let fresh = scan_groups::read_unlocked(&mut conn, &[number]).await.expect("read");
    assert_ne!(fresh[0].version, version, "the change made a new version");
    scan_groups::write_unlocked(
        &mut conn,
        std::slice::from_ref(&state),
        &[&fresh[0].version],
        now,
        std::slice::from_ref(&scan),
        &history,
        &outbound(),
    )
    .await
    .expect("a write from the current version");
    let after = counts(&app.db).await;
    assert_eq!(after, (before.0 + 1, before.1 + 1, before.2 + 1, before.3 + 1, before.4 + 1));

    // The same scan again: already stored, so the statement fails whole (23505) and the
    // gateway takes the careful path, which answers it as a duplicate.
    let fresh = scan_groups::read_unlocked(
        &mut conn,
        &[Number { tenant_id: tenant, connection_id: &con, tracking_number: "GU-1", after_codes: vec![] }],
    )
    .await
    .expect("read");
    let err =
        scan_groups::write_unlocked(&mut conn, &[state], &[&fresh[0].version], now, &[scan], &history, &outbound())
            .await
            .expect_err("a scan stored before");
    let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("23505"), "{err}");
    assert_eq!(counts(&app.db).await, after, "nothing of it is kept");
    // And through the gateway, the resent scan is acknowledged and stored once.
    assert!(pusher.push(&Scan::new("GU-1", "101", "003")).await.expect("push").accepted());
    assert_eq!(counts(&app.db).await, after);
    assert!(stored(&app.db, &con, "GU-1", "101").await);
}
