//! Inbound pushes: Ecom Express scans (Basic Auth, seed ack format) and AfterShip
//! webhooks (HMAC), status mappings and their tenant overrides.

use base64::Engine as _;
use chrono::{Duration, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sims::ecomexpress::{EcomPusher, Scan};

use crate::helpers::{TestApp, spawn_app};

struct Ecom {
    id: String,
    pusher: EcomPusher,
    url: String,
    user: String,
    password: String,
}

/// An ecomexpress connection created without credentials: they come back once.
async fn ecom_connection(app: &TestApp) -> Ecom {
    let r = app.post("/v1/connections", &json!({"carrier": "ecomexpress", "name": "Ecom pushes"})).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let b = r.json();
    let id = b["id"].as_str().expect("id").to_owned();
    assert_eq!(b["inbound_url"], format!("/v1/inbound/ecomexpress/{id}"));
    let user = b["generated_credentials"]["username"].as_str().expect("generated user").to_owned();
    let password = b["generated_credentials"]["password"].as_str().expect("generated password").to_owned();
    let url = format!("{}{}", app.base, b["inbound_url"].as_str().expect("url"));
    Ecom { pusher: EcomPusher::new(&url, &user, &password), id, url, user, password }
}

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 4, 30, 0).single().expect("time")
}

async fn count(app: &TestApp, sql: &str, arg: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned())).bind(arg).fetch_one(&app.db).await.expect("count")
}

async fn shipment_by_awb(app: &TestApp, awb: &str) -> Value {
    let list = app.get(&format!("/v1/shipments?tracking_number={awb}")).await.json();
    let data = list["data"].as_array().expect("data");
    assert_eq!(data.len(), 1, "exactly one shipment for {awb}: {list}");
    data[0].clone()
}

#[tokio::test]
async fn generated_credentials_are_shown_once_and_given_ones_are_accepted() {
    let app = spawn_app().await;
    let ecom = ecom_connection(&app).await;
    assert!(ecom.password.len() >= 32 && ecom.user.starts_with("ecom_"));
    let again = app.get(&format!("/v1/connections/{}", ecom.id)).await.json();
    assert!(again.get("generated_credentials").is_none(), "never shown again: {again}");
    assert_eq!(again["credentials_set"], json!(["password", "username"]));
    assert_eq!(again["inbound_url"], format!("/v1/inbound/ecomexpress/{}", ecom.id));
    let listed = app.get("/v1/connections").await;
    assert!(!String::from_utf8_lossy(&listed.bytes).contains(&ecom.password), "password never listed");

    let given = app
        .post(
            "/v1/connections",
            &json!({"carrier": "ecomexpress", "name": "given", "credentials": {"username": "ecomuser", "password": "a-long-secret-123"}}),
        )
        .await;
    assert_eq!(given.status, 201, "{}", String::from_utf8_lossy(&given.bytes));
    assert!(given.json().get("generated_credentials").is_none());
    let id = given.json()["id"].as_str().expect("id").to_owned();
    let pusher = EcomPusher::new(format!("{}/v1/inbound/ecomexpress/{id}", app.base), "ecomuser", "a-long-secret-123");
    assert!(pusher.push(&Scan::new("GIVEN1", "1", "001")).await.expect("push").accepted());

    let half = app
        .post("/v1/connections", &json!({"carrier": "ecomexpress", "name": "half", "credentials": {"username": "u"}}))
        .await;
    half.problem(422, "validation_failed");
}

#[tokio::test]
async fn a_push_is_acknowledged_after_commit_and_shows_up_everywhere() {
    let app = spawn_app().await;
    let ecom = ecom_connection(&app).await;
    let body = json!({
        "awb": "ECOM1001", "datetime": "2026-11-20 10:00:00", "status": "Shipment out for delivery",
        "reason_code": "006 - OUT FOR DELIVERY", "reason_code_number": "006", "location": "JRD",
        "Employee": "Ravi", "status_update_number": "44591782", "order_number": "ORD-77", "city": "Vadodara",
        "ref_awb": "", "received_by": "unknown extra field"
    });
    let ack = ecom.pusher.push_body(&body).await.expect("push");
    assert_eq!(ack.http_status, 200);
    assert_eq!(ack.body, json!({"awb": "ECOM1001", "status": true, "status_update_number": "44591782"}));

    // Unknown AWB: the shipment is created on this connection.
    let s = shipment_by_awb(&app, "ECOM1001").await;
    assert_eq!(s["carrier"], "ecomexpress");
    assert_eq!(s["connection_id"], ecom.id);
    assert_eq!(s["status"], "out_for_delivery");
    assert_eq!(s["subtag"], "OutForDelivery_001");
    assert_eq!(s["metadata"]["order_number"], "ORD-77");
    let id = s["id"].as_str().expect("id");

    let events = app.get(&format!("/v1/shipments/{id}/events")).await.json();
    let e = &events["data"][0];
    assert_eq!(events["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(e["source"], "push");
    assert_eq!(e["raw_code"], "006");
    assert_eq!(e["raw_text"], "006 - OUT FOR DELIVERY");
    assert_eq!(e["message"], "Shipment out for delivery");
    assert_eq!(e["actor"], "Ravi");
    assert_eq!(e["location"]["city"], "Vadodara");
    // 10:00 in India (+05:30) is 04:30 UTC.
    assert_eq!(e["occurred_at"].as_str().map(|s| s.starts_with("2026-11-20T04:30:00")), Some(true), "{e}");

    let history = app.get(&format!("/v1/shipments/{id}/history")).await.json();
    let actions: Vec<&str> =
        history["data"].as_array().expect("h").iter().filter_map(|h| h["action"].as_str()).collect();
    assert_eq!(actions, ["created", "events_added", "status_changed"]);
    assert!(history["data"].as_array().expect("h").iter().all(|h| h["actor_type"] == "carrier_push"));

    // Outbound events as GET /v1/events lists them (the outbox rows, in shipment order).
    let out: Vec<(String, Value)> =
        sqlx::query_as("SELECT type, data FROM events WHERE shipment_id = $1 ORDER BY shipment_seq")
            .bind(id)
            .fetch_all(&app.db)
            .await
            .expect("events");
    let types: Vec<&str> = out.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["shipment.created", "shipment.event_added", "shipment.status_changed"]);
    let changed = &out[2].1;
    assert_eq!(changed["previous_status"], "pending");
    assert_eq!(changed["shipment"]["status"], "out_for_delivery");
    assert_eq!(changed["shipment"], s, "the shipment as the API shows it");
    assert_eq!(out[1].1["event"]["raw_code"], "006");
}

#[tokio::test]
async fn a_duplicate_push_is_acknowledged_and_stored_once() {
    let app = spawn_app().await;
    let ecom = ecom_connection(&app).await;
    let scan = Scan::new("DUP1", "900", "002").at(t0());
    for _ in 0..3 {
        let ack = ecom.pusher.push(&scan).await.expect("push");
        assert!(ack.accepted(), "{:?}", ack.body);
        assert_eq!(ack.body["status_update_number"], "900");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_pushes WHERE connection_id = $1", &ecom.id).await, 1);
    let s = shipment_by_awb(&app, "DUP1").await;
    let id = s["id"].as_str().expect("id");
    assert_eq!(count(&app, "SELECT count(*) FROM tracking_events WHERE shipment_id = $1", id).await, 1);
    assert_eq!(
        count(&app, "SELECT count(*) FROM events WHERE shipment_id = $1", id).await,
        3,
        "created, added, changed"
    );
}

#[tokio::test]
async fn malformed_pushes_are_refused_naming_the_problem_and_nothing_is_stored() {
    let app = spawn_app().await;
    let ecom = ecom_connection(&app).await;
    let good = Scan::new("BAD1", "1", "002").at(t0()).body();
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut no_awb = good.clone();
    no_awb.as_object_mut().expect("obj").remove("awb");
    cases.push((no_awb, "awb is required"));
    let mut no_sun = good.clone();
    no_sun.as_object_mut().expect("obj").remove("status_update_number");
    cases.push((no_sun, "status_update_number is required"));
    let mut bad_date = good.clone();
    bad_date["datetime"] = json!("20/11/2026 10:00");
    cases.push((bad_date, "datetime \"20/11/2026 10:00\" is not \"YYYY-mm-dd H:M:S\""));
    let mut no_code = good.clone();
    no_code.as_object_mut().expect("obj").remove("reason_code_number");
    cases.push((no_code, "reason_code_number is required"));
    let mut number = good.clone();
    number["reason_code_number"] = json!(2);
    cases.push((number, "reason_code_number must be a string"));
    cases.push((json!(["not", "an", "object"]), "body must be a JSON object"));
    for (body, reason) in cases {
        let ack = ecom.pusher.push_body(&body).await.expect("push");
        assert_eq!(ack.http_status, 400, "{body}");
        assert_eq!(ack.body["status"], false);
        assert_eq!(ack.body["reason"], reason, "{body}");
        assert_eq!(ack.body["awb"], body.get("awb").cloned().unwrap_or(Value::Null));
    }
    // Not JSON at all.
    let r = app
        .http
        .post(&ecom.url)
        .basic_auth(&ecom.user, Some(&ecom.password))
        .header("content-type", "application/json")
        .body("{awb:")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let b: Value = r.json().await.expect("json");
    assert!(b["reason"].as_str().is_some_and(|r| r.starts_with("body is not valid JSON")), "{b}");
    // Too large.
    let mut big = good.clone();
    big["status"] = json!("x".repeat(20_000));
    assert_eq!(ecom.pusher.push_body(&big).await.expect("push").http_status, 413);

    assert_eq!(count(&app, "SELECT count(*) FROM inbound_pushes WHERE connection_id = $1", &ecom.id).await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM shipments WHERE connection_id = $1", &ecom.id).await, 0);
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_then_rate_limited() {
    let app = spawn_app().await;
    let ecom = ecom_connection(&app).await;
    let scan = Scan::new("AUTH1", "1", "002");
    let wrong = EcomPusher::new(&ecom.url, &ecom.user, "not-the-password");
    let ack = wrong.push(&scan).await.expect("push");
    assert_eq!(ack.http_status, 401);
    assert_eq!(
        ack.body,
        json!({"awb": "AUTH1", "status": false, "reason": "unauthorized", "status_update_number": "1"})
    );
    let r = app.http.post(&ecom.url).json(&scan.body()).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 401, "no credentials");
    assert_eq!(
        r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()),
        Some("Basic realm=\"shipgate inbound\"")
    );
    // Another connection's id with these credentials, and an unknown id: 401 as well.
    let other = EcomPusher::new(
        format!("{}/v1/inbound/ecomexpress/{}", app.base, app.connection_id),
        &ecom.user,
        &ecom.password,
    );
    assert_eq!(other.push(&scan).await.expect("push").http_status, 401);

    let mut last = 0;
    for _ in 0..12 {
        last = wrong.push(&scan).await.expect("push").http_status;
    }
    assert_eq!(last, 429, "rate limited after repeated failures");
    let r =
        app.http.post(&ecom.url).basic_auth(&ecom.user, Some("nope")).json(&scan.body()).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_pushes WHERE connection_id = $1", &ecom.id).await, 0);
}

#[tokio::test]
async fn an_unknown_code_keeps_the_status_and_is_listed_as_unmapped() {
    let app = spawn_app().await;
    let ecom = ecom_connection(&app).await;
    assert!(ecom.pusher.push(&Scan::new("UNK1", "1", "002").at(t0())).await.expect("push").accepted());
    let odd =
        Scan::new("UNK1", "2", "4242").at(t0() + Duration::hours(1)).status("mystery").reason_code("4242 - mystery");
    assert!(ecom.pusher.push(&odd).await.expect("push").accepted(), "accepted and kept");
    let s = shipment_by_awb(&app, "UNK1").await;
    assert_eq!(s["status"], "in_transit", "not moved by an unmapped code");
    let events = app.get(&format!("/v1/shipments/{}/events", s["id"].as_str().expect("id"))).await.json();
    let last = &events["data"][1];
    assert_eq!(last["raw_code"], "4242");
    assert_eq!(last["raw_text"], "4242 - mystery");
    assert_eq!(last["status"], Value::Null);

    let unmapped = app.get("/v1/status-mappings/unmapped?carrier=ecomexpress").await.json();
    assert_eq!(unmapped["data"][0]["code"], "4242", "{unmapped}");
    assert_eq!(unmapped["data"][0]["count"], 1);
    assert_eq!(unmapped["data"][0]["last_text"], "4242 - mystery");
    let metrics = app.request("GET", "/metrics", None, None, &[]).await;
    assert!(String::from_utf8_lossy(&metrics.bytes).contains("shipgate_unmapped_codes_total{carrier=\"ecomexpress\"}"));
}

#[tokio::test]
async fn a_tenant_override_changes_normalization_and_defaults_stay_listed() {
    let app = spawn_app().await;
    let ecom = ecom_connection(&app).await;
    let list = app.get("/v1/status-mappings?carrier=ecomexpress").await.json();
    let row = |list: &Value, code: &str| {
        list["data"].as_array().expect("data").iter().find(|m| m["code"] == code && m["after_code"] == "").cloned()
    };
    assert_eq!(row(&list, "006").expect("006")["status"], "out_for_delivery");
    assert_eq!(row(&list, "1350").expect("range expanded")["subtag"], "Exception_008");

    let bad = json!({"mappings": [{"carrier": "ecomexpress", "code": "006", "status": "teleported"}]});
    let r = app.request("PUT", "/v1/status-mappings", Some(&app.key), Some(&bad), &[]).await;
    assert_eq!(r.problem(422, "validation_failed")["errors"][0]["field"], "mappings[0].status");
    let bad = json!({"mappings": [{"carrier": "ecomexpress", "code": "006", "status": "delivered", "subtag": "Exception_011"}]});
    let r = app.request("PUT", "/v1/status-mappings", Some(&app.key), Some(&bad), &[]).await;
    assert_eq!(r.problem(422, "validation_failed")["errors"][0]["field"], "mappings[0].subtag");

    let put = json!({"mappings": [{"carrier": "ecomexpress", "code": "006", "status": "in_transit", "subtag": "InTransit_009", "description": "hub OFD"}]});
    let r = app.request("PUT", "/v1/status-mappings", Some(&app.key), Some(&put), &[]).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let o = row(&r.json(), "006").expect("006");
    assert_eq!((o["status"].as_str(), o["source"].as_str()), (Some("in_transit"), Some("tenant")));

    assert!(ecom.pusher.push(&Scan::new("OVR1", "1", "006").at(t0())).await.expect("push").accepted());
    let s = shipment_by_awb(&app, "OVR1").await;
    assert_eq!((s["status"].as_str(), s["subtag"].as_str()), (Some("in_transit"), Some("InTransit_009")));

    // Another tenant still gets the default.
    let (_, key_b) = crate::helpers::new_tenant(&app.state, "Tenant B").await;
    let other = app.request("GET", "/v1/status-mappings?carrier=ecomexpress", Some(&key_b), None, &[]).await.json();
    assert_eq!(row(&other, "006").expect("006")["status"], "out_for_delivery");
}

#[tokio::test]
async fn out_of_order_scans_never_regress_status_and_history_keeps_every_scan() {
    let app = spawn_app().await;
    let ecom = ecom_connection(&app).await;
    // Delivered arrives first, then the older scans.
    let scans = [
        Scan::new("OOO1", "4", "999").at(t0() + Duration::hours(3)),
        Scan::new("OOO1", "1", "001").at(t0()),
        Scan::new("OOO1", "3", "006").at(t0() + Duration::hours(2)),
        Scan::new("OOO1", "2", "002").at(t0() + Duration::hours(1)),
    ];
    for s in &scans {
        assert!(ecom.pusher.push(s).await.expect("push").accepted());
    }
    let s = shipment_by_awb(&app, "OOO1").await;
    assert_eq!((s["status"].as_str(), s["subtag"].as_str()), (Some("delivered"), Some("Delivered_001")));
    assert_eq!(s["last_event"]["raw_code"], "999", "a late scan does not become the last event");
    let id = s["id"].as_str().expect("id");
    let events = app.get(&format!("/v1/shipments/{id}/events")).await.json();
    let codes: Vec<&str> =
        events["data"].as_array().expect("e").iter().filter_map(|e| e["raw_code"].as_str()).collect();
    assert_eq!(codes, ["001", "002", "006", "999"], "every scan kept, in time order");
    let history = app.get(&format!("/v1/shipments/{id}/history")).await.json();
    let added = history["data"].as_array().expect("h").iter().filter(|h| h["action"] == "events_added").count();
    assert_eq!(added, 4);
    let changed = history["data"].as_array().expect("h").iter().filter(|h| h["action"] == "status_changed").count();
    assert_eq!(changed, 1, "only the first (delivered) scan moved the status");
}

#[tokio::test]
async fn delivered_after_return_to_shipper_means_returned() {
    let app = spawn_app().await;
    let ecom = ecom_connection(&app).await;
    for s in [Scan::new("RTS1", "1", "777").at(t0()), Scan::new("RTS1", "2", "999").at(t0() + Duration::hours(5))] {
        assert!(ecom.pusher.push(&s).await.expect("push").accepted());
    }
    let s = shipment_by_awb(&app, "RTS1").await;
    assert_eq!((s["status"].as_str(), s["subtag"].as_str()), (Some("exception"), Some("Exception_011")));
}

#[tokio::test]
async fn the_same_1k_pushes_sent_5_times_concurrently_store_1k_scans() {
    let app = spawn_app().await;
    let ecom = ecom_connection(&app).await;
    // 200 shipments x 5 scans each, every scan sent 5 times, all at once (QUALITY reliability 3).
    let codes = ["001", "0011", "002", "006", "999"];
    let scans: Vec<Scan> = (0..1000)
        .map(|i| {
            let (awb, step) = (i / 5, i % 5);
            Scan::new(format!("R3-{awb}"), format!("{}", 10_000 + i), codes[step])
                .at(t0() + Duration::minutes(step as i64))
        })
        .collect();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for _round in 0..5 {
        for s in scans.clone() {
            let (p, sem) = (ecom.pusher.clone(), sem.clone());
            tasks.spawn(async move {
                let _permit = sem.acquire_owned().await.expect("permit");
                p.push(&s).await.expect("push").accepted()
            });
        }
    }
    let mut acked = 0;
    while let Some(r) = tasks.join_next().await {
        acked += usize::from(r.expect("task"));
    }
    let scans_stored = count(&app, "SELECT count(*) FROM inbound_pushes WHERE connection_id = $1", &ecom.id).await;
    let events = count(
        &app,
        "SELECT count(*) FROM tracking_events e JOIN shipments s ON s.tenant_id = e.tenant_id AND s.id = e.shipment_id
         WHERE s.connection_id = $1",
        &ecom.id,
    )
    .await;
    let shipments = count(&app, "SELECT count(*) FROM shipments WHERE connection_id = $1", &ecom.id).await;
    let by_type = |t: &'static str| {
        let id = ecom.id.clone();
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM events e JOIN shipments s ON s.tenant_id = e.tenant_id AND s.id = e.shipment_id
                 WHERE s.connection_id = $1 AND e.type = $2",
            )
            .bind(id)
            .bind(t)
            .fetch_one(&db)
            .await
            .expect("count")
        }
    };
    let (created, added, changed) = (
        by_type("shipment.created").await,
        by_type("shipment.event_added").await,
        by_type("shipment.status_changed").await,
    );
    let changes_in_history = count(
        &app,
        "SELECT count(*) FROM shipment_history h JOIN shipments s ON s.tenant_id = h.tenant_id AND s.id = h.shipment_id
         WHERE s.connection_id = $1 AND h.action = 'status_changed'",
        &ecom.id,
    )
    .await;
    println!(
        "reliability 3: 5000 pushes sent, {acked} acked true, {scans_stored} scans stored, {events} events, \
         {shipments} shipments, outbound events: {created} created, {added} event_added, {changed} status_changed \
         ({changes_in_history} status changes in history)"
    );
    assert_eq!(acked, 5000, "every push (first or duplicate) is acknowledged true");
    assert_eq!(scans_stored, 1000);
    assert_eq!(events, 1000);
    assert_eq!(shipments, 200);
    // 0 extra outbound events: one per shipment created, one per stored scan, one per
    // actual status change (how many changes depends on the arrival order).
    assert_eq!((created, added), (200, 1000));
    assert_eq!(changed, changes_in_history);
    assert!((200..=1000).contains(&changed), "{changed}");
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn aftership_webhooks_are_verified_applied_and_deduplicated() {
    let app = spawn_app().await;
    let con = app
        .create_connection(json!({
            "carrier": "aftership", "name": "AfterShip sim", "base_url": app.aftership_base_url(),
            "credentials": {"api_key": "as-demo-key", "webhook_secret": "whsec-test-1234567"}
        }))
        .await;
    let c = app.get(&format!("/v1/connections/{con}")).await.json();
    assert_eq!(c["inbound_url"], format!("/v1/inbound/aftership/{con}"));
    let r = app
        .post(
            "/v1/shipments",
            &json!({"connection_id": con, "tracking_number": "WEBHOOK123", "service": "dhl", "reference": "WH-1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let s = r.json();
    let as_id = s["carrier_reference"].as_str().expect("aftership id").to_owned();
    app.aftership.advance(&as_id).expect("info received");
    app.aftership.advance(&as_id).expect("in transit");
    // The webhook as AfterShip sends it ({ts, event, event_id, is_tracking_first_tag, msg}).
    let hook = app.aftership.webhook_body(&as_id, "tracking_update").expect("webhook body");
    let body = hook.to_string();
    let url = format!("{}/v1/inbound/aftership/{con}", app.base);
    let post = |sig: Option<String>, body: String| {
        let mut req = app.http.post(&url).header("content-type", "application/json").body(body);
        if let Some(sig) = sig {
            req = req.header("aftership-hmac-sha256", sig);
        }
        req.send()
    };

    let r = post(Some(sign("wrong-secret", body.as_bytes())), body.clone()).await.expect("send");
    assert_eq!(r.status().as_u16(), 401);
    let r = post(None, body.clone()).await.expect("send");
    assert_eq!(r.status().as_u16(), 401);

    let r = post(Some(sign("whsec-test-1234567", body.as_bytes())), body.clone()).await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["outcome"], "applied", "{b}");
    let after = app.get(&format!("/v1/shipments/{}", s["id"].as_str().expect("id"))).await.json();
    assert_eq!(after["status"], "in_transit", "{after}");

    let r = post(Some(sign("whsec-test-1234567", body.as_bytes())), body.clone()).await.expect("send");
    assert_eq!(r.json::<Value>().await.expect("json")["outcome"], "duplicate");
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_webhooks WHERE connection_id = $1", &con).await, 1);

    let unknown = json!({"event": "tracking_update", "event_id": "evt-2", "msg": {"tracking_number": "NOPE999", "tag": "InTransit"}})
        .to_string();
    let r = post(Some(sign("whsec-test-1234567", unknown.as_bytes())), unknown).await.expect("send");
    assert_eq!(r.json::<Value>().await.expect("json")["outcome"], "unknown_tracking");
    assert_eq!(count(&app, "SELECT count(*) FROM inbound_webhooks WHERE connection_id = $1", &con).await, 2, "kept");
}
