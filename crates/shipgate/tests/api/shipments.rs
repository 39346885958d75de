//! Input validation and listing.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn unknown_and_read_only_fields_are_refused_by_name() {
    let app = spawn_app().await;
    for (field, value, named) in [
        ("bogus", json!(1), "bogus"),
        ("id", json!("shp_x"), "id"),
        ("status", json!("delivered"), "status"),
        ("tenant_id", json!("ten_x"), "tenant_id"),
        ("created_at", json!("2026-01-01T00:00:00Z"), "created_at"),
    ] {
        let mut body = app.shipment_body("RO");
        body[field] = value;
        let p = app.post("/v1/shipments", &body).await.problem(422, "validation_failed");
        assert_eq!(p["errors"][0]["field"], named, "{p}");
    }
    let mut body = app.shipment_body("NESTED");
    body["stops"][1]["address"]["zip"] = json!("32804");
    let p = app.post("/v1/shipments", &body).await.problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "stops[1].address.zip");
    assert_eq!(app.sim.requests().len(), 0, "nothing reached the carrier");
    assert_eq!(app.get("/v1/shipments").await.json()["data"].as_array().map(Vec::len), Some(0), "nothing stored");
}

#[tokio::test]
async fn bad_values_are_named_and_cross_field_rules_checked() {
    let app = spawn_app().await;
    let mut body = app.shipment_body("BAD");
    body["stops"][0]["address"]["country"] = json!("USA");
    let p = app.post("/v1/shipments", &body).await.problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "stops[0].address.country");
    assert!(p["errors"][0]["message"].as_str().expect("msg").contains("ISO 3166"));

    let mut body = app.shipment_body("BAD2");
    body["declared_value"] = json!({"amount": "12,5", "currency": "USD"});
    assert_eq!(
        app.post("/v1/shipments", &body).await.problem(422, "validation_failed")["errors"][0]["field"],
        "declared_value.amount"
    );

    let mut body = app.shipment_body("BAD3");
    body["stops"][1]["type"] = json!("pickup");
    body["parcels"][0]["delivery_stop"] = json!(7);
    let p = app.post("/v1/shipments", &body).await.problem(422, "validation_failed");
    let fields: Vec<&str> =
        p["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().unwrap_or("")).collect();
    assert!(fields.contains(&"stops") && fields.contains(&"parcels[0].delivery_stop"), "{fields:?}");

    let mut body = app.shipment_body("BAD4");
    body["stops"][0]["scheduled_at"] = json!("tomorrow at nine");
    assert_eq!(
        app.post("/v1/shipments", &body).await.problem(422, "validation_failed")["errors"][0]["field"],
        "stops[0].scheduled_at"
    );

    let mut body = app.shipment_body("NUL");
    body["notes"] = json!("a\u{0000}b");
    app.post("/v1/shipments", &body).await.problem(422, "validation_failed");
}

#[tokio::test]
async fn malformed_oversized_and_non_json_bodies_get_problems() {
    let app = spawn_app().await;
    let url = format!("{}/v1/shipments", app.base);
    let r = app
        .http
        .post(&url)
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body("{\"connection_id\":")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<serde_json::Value>().await.expect("json")["code"], "malformed_json");
    let r = app
        .http
        .post(&url)
        .bearer_auth(&app.key)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 415);
    let big = format!("{{\"notes\":\"{}\"}}", "x".repeat(300 * 1024));
    let r = app
        .http
        .post(&url)
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(r.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
    let deep = format!("{{\"metadata\":{}1{}}}", "[".repeat(64), "]".repeat(64));
    let r = app
        .http
        .post(&url)
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 422);
}

#[tokio::test]
async fn capability_not_supported_is_a_422_not_a_500() {
    let app = spawn_app().await;
    let s = app.book("CAP-1").await;
    let id = s["id"].as_str().expect("id");
    let p = app.post(&format!("/v1/shipments/{id}/retrack"), &json!({})).await.problem(422, "capability_not_supported");
    assert!(p["detail"].as_str().expect("detail").contains("ecourier"));
    app.post(&format!("/v1/shipments/{id}/complete"), &json!({"reason": "lost"}))
        .await
        .problem(422, "capability_not_supported");
    let mut body = app.shipment_body("CAP-2");
    body["tracking_number"] = json!("1Z999");
    app.post("/v1/shipments", &body).await.problem(422, "capability_not_supported");
}

#[tokio::test]
async fn lists_filter_and_paginate_with_a_stable_cursor() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.book(&format!("LIST-{i}")).await["id"].as_str().expect("id").to_owned());
    }
    ids.reverse(); // newest first
    let page1 = app.get("/v1/shipments?limit=2").await.json();
    let got: Vec<&str> =
        page1["data"].as_array().expect("data").iter().map(|s| s["id"].as_str().unwrap_or("")).collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);
    let c = page1["next_cursor"].as_str().expect("cursor");
    let page2 = app.get(&format!("/v1/shipments?limit=2&cursor={c}")).await.json();
    let got2: Vec<&str> =
        page2["data"].as_array().expect("data").iter().map(|s| s["id"].as_str().unwrap_or("")).collect();
    assert_eq!(got2, [ids[2].as_str(), ids[3].as_str()]);
    let c = page2["next_cursor"].as_str().expect("cursor");
    let page3 = app.get(&format!("/v1/shipments?limit=2&cursor={c}")).await.json();
    assert_eq!(page3["data"].as_array().map(Vec::len), Some(1));
    assert!(page3["next_cursor"].is_null());

    let by_ref = app.get("/v1/shipments?reference=LIST-3").await.json();
    assert_eq!(by_ref["data"][0]["reference"], "LIST-3");
    assert_eq!(by_ref["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.get("/v1/shipments?status=info_received&carrier=ecourier").await.json()["data"].as_array().map(Vec::len),
        Some(5)
    );
    assert_eq!(app.get("/v1/shipments?status=delivered").await.json()["data"].as_array().map(Vec::len), Some(0));
    let future = app.get("/v1/shipments?created_after=2999-01-01T00:00:00Z").await.json();
    assert_eq!(future["data"].as_array().map(Vec::len), Some(0));
    for bad in ["limit=0", "limit=101", "status=lost", "cursor=%%%", "created_after=yesterday", "colour=red"] {
        app.get(&format!("/v1/shipments?{bad}")).await.problem(422, "validation_failed");
    }
}

#[tokio::test]
async fn a_reference_is_unique_per_tenant() {
    let app = spawn_app().await;
    app.book("DUP-1").await;
    let p = app.post("/v1/shipments", &app.shipment_body("DUP-1")).await.problem(409, "reference_taken");
    assert!(p["detail"].as_str().expect("detail").contains("reference"));
    assert_eq!(app.sim_calls("SaveOrder"), 1);
}

/// The reads show a shipment's JSON (stops, parcels, money, metadata, ...) as stored,
/// without reading it into the domain's types (QUALITY P4): what they answer must be
/// what the booking answered, with texts that need escaping, and as compact.
#[tokio::test]
async fn reads_answer_the_stored_json_as_the_booking_did() {
    let app = spawn_app().await;
    let mut body = crate::helpers::shipment_body(&app.connection_id, "RAW-1");
    body["stops"][0]["name"] = json!("Anna \"Nan\" O'Brien, Jr.: CEO");
    body["stops"][0]["address"]["line1"] = json!(r"Unit 4\B, 2251 Orange Blossom Trail");
    body["stops"][1]["address"]["city"] = json!("Zürich – Örlikon");
    body["stops"][1]["notes"] = json!("ring twice, then wait: {\"gate\": [1, 2]}");
    body["parcels"][0]["weight"] = json!({"value": 2.50, "unit": "kg"});
    body["parcels"][0]["dimensions"] = json!({"length": 40, "width": 30.5, "height": 0.25, "unit": "cm"});
    body["metadata"] = json!({"note": "a: b, c", "box": "📦", "k y": " spaced "});
    let booked = app.post("/v1/shipments", &body).await;
    assert_eq!(booked.status, 201, "{}", String::from_utf8_lossy(&booked.bytes));
    let booked = booked.json();
    let id = booked["id"].as_str().expect("id");

    let one = app.get(&format!("/v1/shipments/{id}")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json(), booked, "GET one differs from the booking's answer");
    let list = app.get("/v1/shipments?reference=RAW-1").await;
    assert_eq!(list.json()["data"][0], booked, "the list differs from the booking's answer");
    assert_eq!(list.json()["data"][0]["stops"][0]["name"], "Anna \"Nan\" O'Brien, Jr.: CEO");
    assert_eq!(list.json()["data"][0]["metadata"]["k y"], " spaced ");
    // As compact as serde_json writes it: no space was left between tokens.
    for (what, r) in [("GET one", &one), ("the list", &list)] {
        assert_eq!(r.bytes.len(), serde_json::to_vec(&r.json()).expect("json").len(), "{what} is not compact");
    }
}
