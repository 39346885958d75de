//! Webhooks, state export/import, the control API and the standalone router.

use super::*;

type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>;

async fn webhook_receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let sink = got.clone();
    let router = Router::new().route(
        "/hooks/aftership",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    (format!("{}/hooks/aftership", serve(router).await), got)
}

#[tokio::test]
async fn webhooks_are_signed_2024_04_tracking_updates() {
    let api = api().await;
    let id = api.create_id("RA123456789CN").await;
    let (url, got) = webhook_receiver().await;
    let secret = "whsec-test";
    let first = api.sim.push_webhook(&url, secret, &id, "tracking_update").await.unwrap();
    assert_eq!((first.status, first.response.as_str()), (200, "ok"));
    api.sim.push_webhook(&url, secret, &id, "tracking_update").await.unwrap();
    api.sim.advance(&id).unwrap();
    api.sim.push_webhook(&url, secret, &id, "tracking_update").await.unwrap();
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    let (headers, body) = &got[0];
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(headers["aftership-hmac-sha256"].to_str().unwrap(), expected);
    assert_eq!(headers["as-webhook-version"], "2024-04");
    let bodies: Vec<Value> = got.iter().map(|(_, b)| serde_json::from_str(b).unwrap()).collect();
    assert_eq!(
        Answer::keys(&bodies[0]),
        ["event", "event_id", "is_tracking_first_tag", "msg", "ts"].map(String::from).into()
    );
    assert_eq!(bodies[0]["event"], "tracking_update");
    assert_eq!(bodies[0]["msg"]["id"].as_str(), Some(id.as_str()));
    assert_eq!(Answer::keys(&bodies[0]["msg"]).len(), 78);
    let firsts: Vec<bool> = bodies.iter().map(|b| b["is_tracking_first_tag"].as_bool().unwrap()).collect();
    assert_eq!(firsts, [true, false, true], "first under Pending, again Pending, first under InfoReceived");
    assert_ne!(bodies[0]["event_id"], bodies[1]["event_id"]);
    assert!(api.sim.push_webhook(&url, secret, "nope", "tracking_update").await.is_err());
}

#[tokio::test]
async fn state_survives_export_and_import() {
    let first = api().await;
    let id = first.create_id("RA123456789CN").await;
    first.sim.advance(&id).unwrap();
    let state = first.sim.export_state();
    let again = api().await;
    again.sim.import_state(state).unwrap();
    let a = again.call(Method::GET, &format!("/trackings/{id}"), None).await;
    assert_eq!(
        (a.tracking()["tag"].as_str(), a.tracking()["checkpoints"].as_array().map(Vec::len)),
        (Some("InfoReceived"), Some(1))
    );
    assert_error(
        &again.create(json!({"tracking_number": "RA123456789CN", "slug": "ecms"})).await,
        400,
        4003,
        "BadRequest",
    );
    let other = again.create_id("RA000000002CN").await;
    assert_ne!(other, id, "ids continue after an import");
    assert!(again.sim.import_state(json!({"trackings": 3})).is_err());
}

#[tokio::test]
async fn the_control_api_mirrors_the_knobs() {
    let api = api().await;
    let id = api.create_id("RA123456789CN").await;
    let ctl = |m: Method, p: &str, body: Option<Value>| {
        let api = &api;
        let url = format!("{}/_sim{p}", api.mount);
        async move {
            let mut r = api.http.request(m, url);
            if let Some(b) = body {
                r = r.json(&b);
            }
            let resp = r.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, t) = ctl(Method::POST, &format!("/trackings/{id}/advance"), None).await;
    assert_eq!((s, t["tag"].as_str()), (200, Some("InfoReceived")));
    let (s, t) = ctl(Method::POST, &format!("/trackings/{id}/expire"), None).await;
    assert_eq!((s, t["active"].as_bool()), (200, Some(false)));
    assert_eq!(ctl(Method::POST, &format!("/trackings/{id}/advance"), None).await.0, 409);
    assert_eq!(ctl(Method::POST, "/trackings/nope/advance", None).await.0, 404);
    assert_eq!(ctl(Method::GET, &format!("/trackings/{id}"), None).await.1["id"].as_str(), Some(id.as_str()));
    assert_eq!(ctl(Method::GET, "/trackings", None).await.1, json!({"count": 1}));
    let fault = json!({"op": "get", "count": 1, "fault": {"meta": {"http": 503, "code": 503, "type": "InternalError", "message": "down"}}});
    assert_eq!(ctl(Method::POST, "/faults", Some(fault)).await.0, 204);
    assert_error(&api.call(Method::GET, &format!("/trackings/{id}"), None).await, 503, 503, "InternalError");
    assert_eq!(
        ctl(Method::POST, "/faults", Some(json!({"count": 1, "fault": {"http": [418, {"t": 1}]}}))).await.0,
        204
    );
    assert_eq!(api.call(Method::GET, "/trackings", None).await.status, 418);
    assert_eq!(ctl(Method::POST, "/faults", Some(json!({"count": 1, "fault": "nonsense"}))).await.0, 422);
    assert_eq!(ctl(Method::POST, "/burst_429", Some(json!({"count": 1}))).await.0, 204);
    assert_eq!(api.call(Method::GET, "/trackings", None).await.status, 429);
    assert_eq!(ctl(Method::PUT, "/latency", Some(json!({"ms": 0}))).await.0, 204);
    let (_, stats) = ctl(Method::GET, "/stats", None).await;
    assert_eq!((stats["rate_limited"].as_u64(), stats["calls"]["get"].as_u64()), (Some(1), Some(1)));
    let (_, log) = ctl(Method::GET, "/requests", None).await;
    assert_eq!(log.as_array().map(Vec::len), Some(4));
    let (s, state) = ctl(Method::GET, "/state", None).await;
    assert_eq!(s, 200);
    assert_eq!(ctl(Method::POST, "/reset", None).await.0, 204);
    assert_eq!(api.sim.tracking_count(), 0);
    assert_eq!(ctl(Method::PUT, "/state", Some(state)).await.0, 204);
    assert_eq!(api.sim.tracking_count(), 1);
    assert_eq!(ctl(Method::PUT, "/state", Some(json!({"version": 9, "next_seq": 0, "trackings": []}))).await.0, 422);

    let (url, got) = webhook_receiver().await;
    let (s, d) = ctl(Method::POST, &format!("/trackings/{id}/webhook"), Some(json!({"url": url, "secret": "s"}))).await;
    assert_eq!((s, d["status"].as_u64()), (200, Some(200)));
    assert_eq!(got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_standalone_router_serves_under_its_mount() {
    let root = serve(Router::new().nest("/aftership", standalone_router())).await;
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{root}/aftership/tracking/2024-04/trackings"))
        .header("as-api-key", "as-demo-key")
        .json(&json!({"tracking": {"tracking_number": "RA123456789CN"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let stats: Value = http.get(format!("{root}/aftership/_sim/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["calls"]["create"], 1);
}
