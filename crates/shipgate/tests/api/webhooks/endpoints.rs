//! Endpoints: create, read, update, delete; the SSRF guard at creation; `/v1/events`;
//! tenant isolation.

use super::*;

#[tokio::test]
async fn endpoints_crud_shows_the_secret_only_once() {
    let app = spawn_app_with("webhook_allow_networks = \"127.0.0.1/32\"").await;
    let created = create_endpoint(
        &app,
        json!({"url": "http://127.0.0.1:9/hook", "description": "ERP", "event_types": ["shipment.status_changed"]}),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("whe_"));
    let secret = created["secret"].as_str().expect("secret shown on create");
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64");
    assert!(raw.len() >= 24, "secret has {} bytes", raw.len());
    assert_eq!(created["event_types"], json!(["shipment.status_changed"]));
    assert_eq!(created["enabled"], true);

    let got = app.get(&format!("/v1/webhook-endpoints/{id}")).await.json();
    assert!(got.get("secret").is_none(), "no secret on read: {got}");
    assert_eq!(got["url"], "http://127.0.0.1:9/hook");
    let listed = app.get("/v1/webhook-endpoints").await.json();
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert!(listed["data"][0].get("secret").is_none());
    assert!(!String::from_utf8_lossy(&app.get("/v1/webhook-endpoints").await.bytes).contains(secret));

    let patched = app
        .request(
            "PATCH",
            &format!("/v1/webhook-endpoints/{id}"),
            Some(&app.key),
            Some(&json!({"description": "ERP v2", "event_types": []})),
            &[],
        )
        .await;
    assert_eq!(patched.status, 200);
    assert!(patched.json().get("secret").is_none());
    assert_eq!(patched.json()["event_types"], json!([]));
    let rotated = app
        .request(
            "PATCH",
            &format!("/v1/webhook-endpoints/{id}"),
            Some(&app.key),
            Some(&json!({"rotate_secret": true})),
            &[],
        )
        .await
        .json();
    let new_secret = rotated["secret"].as_str().expect("new secret shown once");
    assert_ne!(new_secret, secret);

    // the secret is not stored in plaintext
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_enc FROM webhook_endpoints WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .expect("row");
    let b64 = new_secret.strip_prefix("whsec_").expect("prefix");
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).expect("b64");
    assert!(!stored.windows(raw.len()).any(|w| w == raw.as_slice()));

    let bad = app
        .post("/v1/webhook-endpoints", &json!({"url": "http://127.0.0.1:9/h", "event_types": ["shipment.teleported"]}))
        .await;
    assert_eq!(bad.problem(422, "validation_failed")["errors"][0]["field"], "event_types");
    let unknown = app.post("/v1/webhook-endpoints", &json!({"url": "http://127.0.0.1:9/h", "secret": "whsec_x"})).await;
    assert_eq!(unknown.status, 422);

    let del = app.request("DELETE", &format!("/v1/webhook-endpoints/{id}"), Some(&app.key), None, &[]).await;
    assert_eq!(del.status, 204);
    app.get(&format!("/v1/webhook-endpoints/{id}")).await.problem(404, "not_found");
}

#[tokio::test]
async fn private_and_metadata_urls_are_refused_at_creation() {
    let app = spawn_app().await; // no allow-list
    for url in [
        "http://127.0.0.1/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://100.64.0.1/hook",
        "http://localhost:8080/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
    ] {
        let r = app.post("/v1/webhook-endpoints", &json!({"url": url})).await;
        let body = r.problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "url", "{url}: {body}");
    }
    assert_eq!(app.get("/v1/webhook-endpoints").await.json()["data"], json!([]));
}

#[tokio::test]
async fn events_are_listed_in_order_with_cursor_paging_and_filters() {
    let app = spawn_app().await;
    let a = shipment(&app, "EV-1").await;
    let b = shipment(&app, "EV-2").await;
    let mut mine = emit(&app, &a, &["shipment.status_changed", "shipment.event_added"]).await;
    mine.extend(emit(&app, &b, &["shipment.status_changed"]).await);
    mine.extend(emit(&app, &a, &["shipment.cancelled", "shipment.event_added"]).await);
    // every event of shipment a, page by page
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page = app.get(&format!("/v1/events?shipment_id={a}&limit=2{q}")).await.json();
        for e in page["data"].as_array().expect("data") {
            seen.push((e["id"].as_str().expect("id").to_owned(), e["sequence"].as_i64().expect("seq")));
            assert_eq!(e["shipment_id"], a.as_str());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected: Vec<&String> = mine.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, id)| id).collect();
    let seen_ids: Vec<&String> = seen.iter().map(|(id, _)| id).filter(|id| mine.contains(id)).collect();
    assert_eq!(seen_ids, expected, "in the order written");
    assert!(seen.windows(2).all(|w| w[1].1 > w[0].1), "per-shipment sequence increases: {seen:?}");
    let typed = app.get("/v1/events?type=shipment.cancelled").await.json();
    assert_eq!(typed["data"].as_array().expect("data").len(), 1);
    assert_eq!(typed["data"][0]["id"], mine[3].as_str());
    app.get("/v1/events?type=shipment.teleported").await.problem(422, "validation_failed");
    app.get("/v1/events?cursor=bm90LWEtY3Vyc29y").await.problem(422, "validation_failed");
    app.get("/v1/events?limit=101").await.problem(422, "validation_failed");
}

#[tokio::test]
async fn another_tenant_sees_none_of_it() {
    let (app, _w) = webhook_app("").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().expect("id");
    let sid = shipment(&app, "WH-TEN-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    let d = wait_status(&app, ep_id, &ids[0], "succeeded").await;
    let (_, other) = new_tenant(&app.state, "Tenant B").await;
    let k = Some(other.as_str());
    for (method, path, body) in [
        ("GET", format!("/v1/webhook-endpoints/{ep_id}"), None),
        ("PATCH", format!("/v1/webhook-endpoints/{ep_id}"), Some(json!({"description": "mine now"}))),
        ("DELETE", format!("/v1/webhook-endpoints/{ep_id}"), None),
        ("GET", format!("/v1/webhook-endpoints/{ep_id}/deliveries"), None),
        ("POST", format!("/v1/webhook-endpoints/{ep_id}/replay"), Some(json!({"since": "2020-01-01T00:00:00Z"}))),
        ("POST", format!("/v1/webhook-deliveries/{}/retry", d["id"].as_str().expect("id")), None),
    ] {
        let r = app.request(method, &path, k, body.as_ref(), &[]).await;
        r.problem(404, "not_found");
    }
    let listed = app.request("GET", "/v1/webhook-endpoints", k, None, &[]).await.json();
    assert_eq!(listed["data"], json!([]));
    let events = app.request("GET", "/v1/events", k, None, &[]).await.json();
    assert_eq!(events["data"], json!([]));
    // and tenant B's endpoints never receive tenant A's events
    let rx_b = Receiver::start().await;
    let r = app.request("POST", "/v1/webhook-endpoints", k, Some(&json!({"url": rx_b.url})), &[]).await;
    assert_eq!(r.status, 201);
    let more = emit(&app, &sid, &["shipment.event_added"]).await;
    wait_status(&app, ep_id, &more[0], "succeeded").await;
    assert!(rx_b.hits().is_empty());
}
