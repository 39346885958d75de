//! AfterShip through the API: register, adopt on 4003, update, delete, refresh,
//! retrack, complete, predictions, rate limit.

use serde_json::json;

use crate::helpers::spawn_app;

fn tracking(con: &str, number: &str) -> serde_json::Value {
    json!({
        "connection_id": con, "tracking_number": number, "service": "dhl", "reference": format!("ORD-{number}"),
        "metadata": {"order_id": "4711"},
        "stops": [{"sequence": 1, "type": "delivery", "name": "Bryan Moore", "email": "bryan@example.com",
                   "address": {"line1": "2253 Orange Blossom Trail", "city": "Orlando", "country": "US"}}]
    })
}

#[tokio::test]
async fn a_tracking_number_is_registered_refreshed_updated_and_deleted() {
    let app = spawn_app().await;
    let con = app.create_aftership_connection().await;
    let r = app.post("/v1/shipments", &tracking(&con, "1234567890")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let s = r.json();
    let id = s["id"].as_str().expect("id").to_owned();
    let as_id = s["carrier_reference"].as_str().expect("aftership id").to_owned();
    assert_eq!(s["tracking_number"], "1234567890");
    let created = app.aftership.requests().into_iter().find(|r| r.op == "create").expect("create");
    assert_eq!(created.body["tracking"]["tracking_number"], "1234567890", "wrapped in tracking");
    assert_eq!(created.body["tracking"]["slug"], "dhl");

    app.aftership.advance(&as_id).expect("info received");
    app.aftership.advance(&as_id).expect("in transit");
    let b = app.post(&format!("/v1/shipments/{id}/refresh"), &json!({})).await.json();
    assert_eq!(b["status"], "in_transit", "{b}");
    let events = app.get(&format!("/v1/shipments/{id}/events")).await.json();
    assert!(events["data"].as_array().is_some_and(|e| !e.is_empty()), "checkpoints become events: {events}");

    let patch = json!({"notes": "leave at the door", "stops": [{"sequence": 1, "type": "delivery", "name": "Bryan Moore",
        "email": "b2@example.com", "address": {"line1": "2253 Orange Blossom Trail", "city": "Orlando", "country": "US"}}]});
    let r = app.request("PATCH", &format!("/v1/shipments/{id}"), Some(&app.key), Some(&patch), &[]).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let update = app.aftership.requests().into_iter().find(|r| r.op == "update").expect("update");
    assert_eq!(update.body["tracking"]["note"], "leave at the door");
    assert_eq!(update.body["tracking"]["emails"], json!(["b2@example.com"]));

    let r = app.post(&format!("/v1/shipments/{id}/cancel"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert!(app.aftership.tracking(&as_id).is_none(), "deleted at AfterShip");
}

#[tokio::test]
async fn a_tracking_another_connection_registered_is_adopted_not_refused() {
    let app = spawn_app().await;
    let con = app.create_aftership_connection().await;
    let other = app.create_aftership_connection().await;
    let first = app.post("/v1/shipments", &tracking(&con, "ADOPT12345")).await.json();
    // The same AfterShip account through another connection: AfterShip answers 4003,
    // and the existing tracking is adopted.
    let mut again = tracking(&other, "ADOPT12345");
    again["reference"] = json!("ORD-OTHER");
    let r = app.post("/v1/shipments", &again).await;
    assert_eq!(r.status, 201, "4003 must not fail the client: {}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["carrier_reference"], first["carrier_reference"]);
    assert_eq!(app.aftership.tracking_count(), 1);
}

/// Issue 8: registering the same number twice on one connection created two shipments
/// with the same carrier reference. The second registration gets the first shipment
/// back (200), unchanged, without a carrier call.
#[tokio::test]
async fn a_number_is_registered_once_per_connection() {
    let app = spawn_app().await;
    let con = app.create_aftership_connection().await;
    let r = app.post("/v1/shipments", &tracking(&con, "TWICE12345")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let first = r.json();
    let creates = app.aftership.stats().calls.get("create").copied();
    for number in ["TWICE12345", " twice12345 "] {
        let mut again = tracking(&con, number);
        again["reference"] = json!("ORD-SECOND");
        let r = app.post("/v1/shipments", &again).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
        assert_eq!(r.header("location"), Some(format!("/v1/shipments/{}", first["id"].as_str().expect("id"))));
        let b = r.json();
        assert_eq!((&b["id"], &b["reference"]), (&first["id"], &first["reference"]), "the first, unchanged: {b}");
    }
    assert_eq!(app.aftership.stats().calls.get("create").copied(), creates, "no second call");
    let list = app.get("/v1/shipments?tracking_number=TWICE12345").await.json();
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");

    // Once cancelled, the number may be registered again: a new shipment.
    let id = first["id"].as_str().expect("id");
    assert_eq!(app.post(&format!("/v1/shipments/{id}/cancel"), &json!({})).await.status, 200);
    let mut again = tracking(&con, "TWICE12345");
    again["reference"] = json!("ORD-THIRD");
    let r = app.post("/v1/shipments", &again).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    assert_ne!(r.json()["id"], first["id"]);

    // A failed registration does not hold the number either.
    let mut bad = tracking(&con, "FAILED12345");
    bad["service"] = json!("no-such-courier");
    app.post("/v1/shipments", &bad).await.problem(422, "carrier_rejected");
    let mut good = tracking(&con, "FAILED12345");
    good["reference"] = json!("ORD-FIXED");
    let r = app.post("/v1/shipments", &good).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_registrations_of_one_number_at_once_make_one_shipment() {
    let app = spawn_app().await;
    let con = app.create_aftership_connection().await;
    for round in 0..5 {
        let number = format!("RACE{round:06}");
        let send = |reference: &str| {
            let mut body = tracking(&con, &number);
            body["reference"] = json!(reference);
            let (http, base, key) = (app.http.clone(), app.base.clone(), app.key.clone());
            async move {
                let r = http.post(format!("{base}/v1/shipments")).bearer_auth(key).json(&body).send().await;
                let r = r.expect("request");
                let status = r.status().as_u16();
                (status, r.json::<serde_json::Value>().await.expect("json"))
            }
        };
        let (a, b) = tokio::join!(send(&format!("A-{round}")), send(&format!("B-{round}")));
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 201], "{a:?} {b:?}");
        assert_eq!(a.1["id"], b.1["id"], "one shipment: {a:?} {b:?}");
        let list = app.get(&format!("/v1/shipments?tracking_number={number}")).await.json();
        assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
    }
    assert_eq!(app.aftership.tracking_count(), 5);
}

#[tokio::test]
async fn invalid_numbers_and_slugs_are_clear_client_errors() {
    let app = spawn_app().await;
    let con = app.create_aftership_connection().await;
    let mut bad_slug = tracking(&con, "1234567890");
    bad_slug["service"] = json!("no-such-courier");
    let p = app.post("/v1/shipments", &bad_slug).await.problem(422, "carrier_rejected");
    assert!(p["shipment"]["booking"]["state"] == "failed");
    app.post("/v1/shipments", &tracking(&con, "12")).await.problem(422, "carrier_rejected");
    // Booking is not an AfterShip capability.
    let mut no_number = tracking(&con, "x");
    no_number.as_object_mut().expect("obj").remove("tracking_number");
    app.post("/v1/shipments", &no_number).await.problem(422, "capability_not_supported");
}

#[tokio::test]
async fn retrack_only_when_expired_and_complete_sets_the_outcome() {
    let app = spawn_app().await;
    let con = app.create_aftership_connection().await;
    let s = app.post("/v1/shipments", &tracking(&con, "RETRACK123")).await.json();
    let id = s["id"].as_str().expect("id");
    let as_id = s["carrier_reference"].as_str().expect("as id");
    // Still active: AfterShip answers 4013 (only an inactive tracking can be retracked).
    let p = app.post(&format!("/v1/shipments/{id}/retrack"), &json!({})).await.problem(422, "carrier_rejected");
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("4013") && d.contains("still active")), "{p}");
    app.aftership.expire(as_id).expect("expire");
    let r = app.post(&format!("/v1/shipments/{id}/retrack"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));

    let s2 = app.post("/v1/shipments", &tracking(&con, "LOST123456")).await.json();
    let r = app
        .post(&format!("/v1/shipments/{}/complete", s2["id"].as_str().expect("id")), &json!({"reason": "lost"}))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let b = r.json();
    assert_eq!((b["status"].as_str(), b["subtag"].as_str()), (Some("exception"), Some("Exception_013")));
    let p = app
        .post(&format!("/v1/shipments/{}/complete", s2["id"].as_str().expect("id")), &json!({"reason": "stolen"}))
        .await;
    assert_eq!(p.problem(422, "validation_failed")["errors"][0]["field"], "reason");
}

#[tokio::test]
async fn delivery_dates_are_predicted_for_valid_items_only() {
    let app = spawn_app().await;
    let con = app.create_aftership_connection().await;
    // AfterShip 2024-04's own item (aftership-tracking-sdk 2.0.2 EstimatedDeliveryDateRequest):
    // addresses carry `country`, ISO 3166-1 alpha-3.
    let item = json!({"slug": "fedex", "service_type_name": "FEDEX HOME DELIVERY",
        "origin_address": {"country": "USA", "state": "WA", "postal_code": "98108",
            "raw_location": "Seattle, Washington, 98108, USA, United States"},
        "destination_address": {"country": "USA", "state": "CA", "postal_code": "92019"},
        "weight": {"unit": "kg", "value": 8}, "package_count": 1,
        "pickup_time": "2026-11-23 15:00:00"});
    let r = app.post("/v1/estimated-delivery-dates", &json!({"connection_id": con, "items": [item]})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let b = r.json();
    assert_eq!(b["data"].as_array().map(Vec::len), Some(1));
    // AfterShip's prediction passed through as it answered it (the dates come from the
    // simulator's own model): after the pickup, inside its own window.
    let day = |k: &str| {
        chrono::NaiveDate::parse_from_str(b["data"][0][k].as_str().unwrap_or(""), "%Y-%m-%d")
            .unwrap_or_else(|e| panic!("{k}: {e} in {b}"))
    };
    let date = day("estimated_delivery_date");
    assert!(date > chrono::NaiveDate::from_ymd_opt(2026, 11, 23).expect("date"), "{b}");
    assert!(day("estimated_delivery_date_min") <= date && date <= day("estimated_delivery_date_max"), "{b}");
    assert_eq!(b["data"][0]["slug"], "fedex", "{b}");
    let sent = app.aftership.requests().into_iter().find(|r| r.op == "predict_batch").expect("sent");
    assert_eq!(sent.body["estimated_delivery_dates"][0]["origin_address"]["country"], "USA", "{}", sent.body);
    // The estimated_pickup form, with every 2024-04 field.
    let mut by_order = item.clone();
    by_order.as_object_mut().expect("obj").remove("pickup_time");
    by_order["estimated_pickup"] = json!({"order_time": "2026-11-23 09:30:00", "order_cutoff_time": "18:00:00",
        "business_days": [1, 2, 3, 4, 5], "order_processing_time": {"unit": "day", "value": 1}});
    let r = app.post("/v1/estimated-delivery-dates", &json!({"connection_id": con, "items": [by_order]})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    // 2025-01's `country_region` is not 2024-04: refused, with a hint, before any call.
    let calls = app.aftership.stats().calls.get("predict_batch").copied().unwrap_or(0);
    let mut later = item.clone();
    later["destination_address"] = json!({"country_region": "USA", "postal_code": "92019"});
    let p = app
        .post("/v1/estimated-delivery-dates", &json!({"connection_id": con, "items": [later]}))
        .await
        .problem(422, "validation_failed");
    let hint = p["errors"].as_array().and_then(|e| {
        e.iter().find(|e| e["field"] == "items[0].destination_address.country_region").map(|e| e["message"].clone())
    });
    assert!(hint.as_ref().and_then(|m| m.as_str()).is_some_and(|m| m.contains("`country`")), "{p}");
    let six: Vec<_> = (0..6).map(|_| item.clone()).collect();
    app.post("/v1/estimated-delivery-dates", &json!({"connection_id": con, "items": six}))
        .await
        .problem(422, "validation_failed");
    let mut no_origin = item.clone();
    no_origin.as_object_mut().expect("obj").remove("origin_address");
    let p = app
        .post("/v1/estimated-delivery-dates", &json!({"connection_id": con, "items": [no_origin]}))
        .await
        .problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "items[0].origin_address");
    assert_eq!(
        app.aftership.stats().calls.get("predict_batch").copied().unwrap_or(0),
        calls,
        "invalid items never sent"
    );
    let p =
        app.post("/v1/estimated-delivery-dates", &json!({"connection_id": app.connection_id, "items": [item]})).await;
    p.problem(422, "capability_not_supported");
}

#[tokio::test]
async fn the_account_rate_limit_is_never_exceeded() {
    let app = spawn_app().await;
    let con = app.create_aftership_connection().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.post("/v1/shipments", &tracking(&con, &format!("RATE{i:06}"))).await.json()["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let mut tasks = Vec::new();
    for i in 0..30 {
        let (http, base, key, id) = (app.http.clone(), app.base.clone(), app.key.clone(), ids[i % ids.len()].clone());
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
    let stats = app.aftership.stats();
    println!(
        "reliability 10 (AfterShip 10 req/s): 30 concurrent refreshes -> at most {} calls in one second, {} answered 429",
        stats.max_calls_per_second, stats.rate_limited
    );
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert!(stats.max_calls_per_second <= 10, "{stats:?}");
}

/// Duplicates registered before migration 20261130000005: the earliest keeps the
/// number, so the unique index can be built; later registrations find that one.
#[tokio::test]
async fn the_migration_keeps_the_earliest_of_existing_duplicates() {
    let app = spawn_app().await;
    let con = app.create_aftership_connection().await;
    let first = app.post("/v1/shipments", &tracking(&con, "OLDDUP0001")).await.json();
    let second = app.post("/v1/shipments", &tracking(&con, "OLDDUP0002")).await.json();
    // As before the index: the same number twice, no registration keys yet.
    sqlx::raw_sql(
        "DROP INDEX shipments_registration_uq; UPDATE shipments SET registration_key = NULL, \
         tracking_number = 'olddup0001' WHERE tracking_number = 'OLDDUP0002'",
    )
    .execute(&app.db)
    .await
    .expect("duplicates as before");
    sqlx::raw_sql(include_str!("../../../../migrations/20261130000005_unique_registrations.sql"))
        .execute(&app.db)
        .await
        .expect("migration runs again");
    let mut again = tracking(&con, "OLDDUP0001");
    again["reference"] = json!("ORD-AFTER");
    let r = app.post("/v1/shipments", &again).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["id"], first["id"], "the earliest is the registration");
    let kept = app.get(&format!("/v1/shipments/{}", second["id"].as_str().expect("id"))).await;
    assert_eq!(kept.status, 200, "the later duplicate is kept as it was");
}
