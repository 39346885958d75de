//! Delivery mechanics: signatures, filters, retries, 410, Retry-After, redirects, the
//! guard at connect time, replay.

use super::*;

#[tokio::test]
async fn a_delivery_is_signed_per_standard_webhooks_and_numbered_per_shipment() {
    let (app, _w) = webhook_app("").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let (ep_id, secret) = (ep["id"].as_str().expect("id"), ep["secret"].as_str().expect("secret"));
    let sid = shipment(&app, "WH-SIGN-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed", "shipment.event_added", "shipment.cancelled"]).await;
    for id in &ids {
        wait_status(&app, ep_id, id, "succeeded").await;
    }
    let mut sequences = Vec::new();
    for id in &ids {
        let hits = rx.hits_for(id);
        assert_eq!(hits.len(), 1, "one POST per event");
        let hit = &hits[0];
        verify(secret, hit);
        assert!(header(&hit.headers, "webhook-signature").starts_with("v1,"));
        assert_eq!(header(&hit.headers, "content-type"), "application/json");
        let body: Value = serde_json::from_slice(&hit.body).expect("json body");
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["data"]["shipment"]["id"], sid.as_str());
        assert!(body["timestamp"].is_string());
        sequences.push((body["type"].as_str().expect("type").to_owned(), body["sequence"].as_i64().expect("sequence")));
    }
    assert!(sequences.windows(2).all(|w| w[1].1 == w[0].1 + 1), "sequences increase by one: {sequences:?}");
    assert_eq!(sequences[0].0, "shipment.status_changed");
    // a signature made with another secret is refused by the same verifier
    let other = standardwebhooks::Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
    assert!(other.verify(&rx.hits_for(&ids[0])[0].body, &rx.hits_for(&ids[0])[0].headers).is_err());

    let d = delivery_of(&app, ep_id, &ids[0]).await.expect("delivery");
    assert_eq!(d["event_type"], "shipment.status_changed");
    assert_eq!(d["attempts"].as_array().expect("attempts").len(), 1);
    assert_eq!(d["attempts"][0]["response_status"], 200);
    assert_eq!(d["attempts"][0]["response_excerpt"], "reply body");
    assert!(d["attempts"][0]["error_code"].is_null());
    assert!(d["delivered_at"].is_string());
    // outcome counter and attempt latency are exported
    let metrics = String::from_utf8(app.request("GET", "/metrics", None, None, &[]).await.bytes).expect("utf8");
    assert!(metrics.contains("shipgate_webhook_deliveries_total{outcome=\"succeeded\"}"), "{metrics}");
    assert!(metrics.contains("shipgate_webhook_attempt_duration_seconds_bucket"), "{metrics}");
}

#[tokio::test]
async fn the_event_type_filter_selects_what_an_endpoint_receives() {
    let (app, _w) = webhook_app("").await;
    let all = Receiver::start().await;
    let some = Receiver::start().await;
    let ep_all = create_endpoint(&app, json!({"url": all.url})).await["id"].as_str().expect("id").to_owned();
    let ep_some =
        create_endpoint(&app, json!({"url": some.url, "event_types": ["shipment.status_changed"]})).await["id"]
            .as_str()
            .expect("id")
            .to_owned();
    let sid = shipment(&app, "WH-FILTER-1").await;
    let ids = emit(&app, &sid, &["shipment.event_added", "shipment.status_changed"]).await;
    wait_status(&app, &ep_all, &ids[0], "succeeded").await;
    wait_status(&app, &ep_all, &ids[1], "succeeded").await;
    wait_status(&app, &ep_some, &ids[1], "succeeded").await;
    assert!(delivery_of(&app, &ep_some, &ids[0]).await.is_none(), "filtered out: no delivery");
    assert!(some.hits_for(&ids[0]).is_empty());
    let types: Vec<String> = some
        .hits()
        .iter()
        .map(|h| serde_json::from_slice::<Value>(&h.body).expect("json")["type"].as_str().expect("t").to_owned())
        .collect();
    assert!(types.iter().all(|t| t == "shipment.status_changed"), "{types:?}");
}

#[tokio::test]
async fn failures_are_retried_on_the_schedule_and_every_attempt_is_logged() {
    let (app, _w) = webhook_app("").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().expect("id");
    rx.script(&[(500, &[]), (500, &[])]);
    let sid = shipment(&app, "WH-RETRY-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    let d = wait_status(&app, ep_id, &ids[0], "succeeded").await;
    let attempts = d["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 3, "{d}");
    assert_eq!(attempts[0]["error_code"], "http_500");
    assert_eq!(attempts[0]["response_status"], 500);
    assert_eq!(attempts[1]["error_code"], "http_500");
    assert!(attempts[2]["error_code"].is_null());
    // the schedule (200 ms, 400 ms) is respected: no retry comes early
    let hits = rx.hits_for(&ids[0]);
    assert_eq!(hits.len(), 3);
    assert!(hits[1].at - hits[0].at >= Duration::from_millis(190), "{:?}", hits[1].at - hits[0].at);
    assert!(hits[2].at - hits[1].at >= Duration::from_millis(390), "{:?}", hits[2].at - hits[1].at);
    // same webhook-id on every attempt; each attempt signed for its own timestamp
    let secret = ep["secret"].as_str().expect("secret");
    for h in &hits {
        verify(secret, h);
    }

    // a subscriber that keeps failing: the delivery ends failed after 1 + 2 attempts
    rx.set_down(true);
    let ids = emit(&app, &sid, &["shipment.event_added"]).await;
    let d = wait_status(&app, ep_id, &ids[0], "failed").await;
    assert_eq!(d["attempts"].as_array().expect("attempts").len(), 3);
    assert_eq!(d["last_error"], "http_503");
    let failed = deliveries(&app, ep_id, "&status=failed").await;
    assert_eq!(failed.len(), 1);
    // ... and can be re-run by hand once the subscriber is back
    rx.set_down(false);
    let r = app.post(&format!("/v1/webhook-deliveries/{}/retry", d["id"].as_str().expect("id")), &json!({})).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let d = wait_status(&app, ep_id, &ids[0], "succeeded").await;
    assert_eq!(d["attempts"].as_array().expect("attempts").len(), 4);
}

#[tokio::test]
async fn a_closed_port_is_logged_as_a_connect_failure() {
    let (app, _w) = webhook_app("webhook_retry_schedule_ms = []").await;
    let ep = create_endpoint(&app, json!({"url": "http://127.0.0.1:1/hook"})).await;
    let sid = shipment(&app, "WH-CONNECT-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    let d = wait_status(&app, ep["id"].as_str().expect("id"), &ids[0], "failed").await;
    assert_eq!(d["attempts"][0]["error_code"], "connect");
    assert!(d["attempts"][0]["response_status"].is_null());
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_stops_its_deliveries() {
    let (app, _w) = webhook_app("").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().expect("id");
    rx.script(&[(410, &[])]);
    let sid = shipment(&app, "WH-GONE-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    let d = wait_status(&app, ep_id, &ids[0], "failed").await;
    assert_eq!(d["last_error"], "http_410");
    let got = app.get(&format!("/v1/webhook-endpoints/{ep_id}")).await.json();
    assert_eq!(got["enabled"], false);
    assert!(got["disabled_reason"].as_str().expect("reason").contains("410"));
    // later events are not delivered to it (another endpoint shows they were dispatched)
    let other = Receiver::start().await;
    let witness = create_endpoint(&app, json!({"url": other.url})).await;
    let later = emit(&app, &sid, &["shipment.event_added"]).await;
    wait_status(&app, witness["id"].as_str().expect("id"), &later[0], "succeeded").await;
    assert!(delivery_of(&app, ep_id, &later[0]).await.is_none());
    assert_eq!(rx.hits().len(), 1);
    let r = app.post(&format!("/v1/webhook-deliveries/{}/retry", d["id"].as_str().expect("id")), &json!({})).await;
    r.problem(409, "endpoint_disabled");
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let (app, _w) = webhook_app("webhook_retry_schedule_ms = [100]").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    rx.script(&[(429, &[("retry-after", "2")])]);
    let sid = shipment(&app, "WH-429-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    let d = wait_status(&app, ep["id"].as_str().expect("id"), &ids[0], "succeeded").await;
    assert_eq!(d["attempts"][0]["error_code"], "http_429");
    let hits = rx.hits_for(&ids[0]);
    assert_eq!(hits.len(), 2);
    let gap = hits[1].at - hits[0].at;
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}, Retry-After said 2 s");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (app, _w) = webhook_app("webhook_retry_schedule_ms = []").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let elsewhere = rx.url.replace("/hook", "/elsewhere");
    rx.script(&[(302, &[("location", elsewhere.as_str())])]);
    let sid = shipment(&app, "WH-302-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    let d = wait_status(&app, ep["id"].as_str().expect("id"), &ids[0], "failed").await;
    assert_eq!(d["attempts"][0]["error_code"], "http_302");
    let paths: Vec<String> = rx.hits().iter().map(|h| h.path.clone()).collect();
    assert_eq!(paths, vec!["/hook".to_owned()], "the redirect target was never called");
}

#[tokio::test]
async fn the_guard_also_applies_at_connect_time() {
    // Created while the allow-list admitted loopback ...
    let app = spawn_app_with("webhook_allow_networks = \"127.0.0.1/32, ::1/128\"").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    // a name that resolves to loopback: only the resolver can stop it at connect time
    let by_name = create_endpoint(&app, json!({"url": rx.url.replace("127.0.0.1", "localhost")})).await;
    // ... delivered by an instance without the allow-list.
    let strict = shipgate::config::Config::from_toml_overrides(&format!(
        "master_key = \"{}\"\nwebhook_retry_schedule_ms = []\nwebhook_poll_interval_ms = 20",
        crate::helpers::MASTER_KEY
    ))
    .expect("config");
    let state = shipgate::app::AppState::new(app.db.clone(), strict).expect("state");
    let _w = shipgate::webhooks::spawn(state).expect("workers");
    let sid = shipment(&app, "WH-SSRF-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed"]).await;
    for e in [&ep, &by_name] {
        let d = wait_status(&app, e["id"].as_str().expect("id"), &ids[0], "failed").await;
        assert_eq!(d["attempts"][0]["error_code"], "ssrf_blocked", "{d}");
    }
    assert!(rx.hits().is_empty(), "nothing reached the private address");
}

#[tokio::test]
async fn replay_resends_failed_deliveries_since_a_time() {
    let (app, _w) = webhook_app("webhook_retry_schedule_ms = [50]").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().expect("id");
    let since = chrono::Utc::now().to_rfc3339();
    rx.set_down(true);
    let sid = shipment(&app, "WH-REPLAY-1").await;
    let ids = emit(&app, &sid, &["shipment.status_changed", "shipment.event_added", "shipment.cancelled"]).await;
    for id in &ids {
        wait_status(&app, ep_id, id, "failed").await;
    }
    rx.set_down(false);
    let r = app.post(&format!("/v1/webhook-endpoints/{ep_id}/replay"), &json!({"since": since})).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["replayed"], 3);
    for id in &ids {
        let d = wait_status(&app, ep_id, id, "succeeded").await;
        assert_eq!(d["attempts"].as_array().expect("attempts").len(), 3);
        let hits = rx.hits_for(id);
        verify(ep["secret"].as_str().expect("secret"), hits.last().expect("hit"));
    }
    let r = app.post(&format!("/v1/webhook-endpoints/{ep_id}/replay"), &json!({"since": since})).await;
    assert_eq!(r.json()["replayed"], 0, "nothing left to replay");
}
