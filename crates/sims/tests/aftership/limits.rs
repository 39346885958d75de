//! The account rate limit, faults, latency and the request log.

use super::*;

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn header_u64(a: &Answer, name: &str) -> u64 {
    a.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}"))
}

#[tokio::test]
async fn rate_limit_is_ten_calls_in_any_second() {
    let api = api_with(AftershipSimConfig::default()).await;
    let api = Arc::new(api);
    let started = Instant::now();
    let calls = (0..12).map(|_| {
        let api = api.clone();
        tokio::spawn(async move { api.call(Method::GET, "/trackings", None).await })
    });
    let mut answers = Vec::new();
    for c in calls {
        answers.push(c.await.unwrap());
    }
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(ok + limited.len(), 12);
    let stats = api.sim.stats();
    assert!(ok <= 10 && stats.max_calls_per_second as usize >= ok);
    if started.elapsed() >= Duration::from_millis(900) {
        // A machine so busy that 12 concurrent calls spread over a second proves only the
        // invariants above; the window's arithmetic is unit-tested in limiter.rs.
        return;
    }
    assert_eq!((ok, limited.len()), (10, 2));
    for a in &limited {
        assert_error(a, 429, 429, "TooManyRequests");
        assert_eq!(header_u64(a, "x-ratelimit-remaining"), 0);
        assert!(header_u64(a, "x-ratelimit-reset") >= unix_now());
    }
    for a in &answers {
        assert_eq!(header_u64(a, "x-ratelimit-limit"), 10);
    }
    assert_eq!((stats.max_calls_per_second, stats.rate_limited, stats.over_limit), (12, 2, 2));
    assert_eq!(stats.calls["list"], 12);
    // A second later the window is free again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = api.call(Method::GET, "/trackings", None).await;
    assert_eq!((a.status, header_u64(&a, "x-ratelimit-remaining")), (200, 9));
}

#[tokio::test]
async fn paced_calls_never_see_a_429_and_the_peak_is_reported() {
    let api = api_with(AftershipSimConfig { rate_limit_per_second: 5, ..Default::default() }).await;
    for _ in 0..8 {
        assert_eq!(api.call(Method::GET, "/trackings", None).await.status, 200);
        tokio::time::sleep(Duration::from_millis(210)).await;
    }
    let stats = api.sim.stats();
    assert!(stats.max_calls_per_second <= 5, "{stats:?}");
    assert_eq!(stats.rate_limited, 0);
}

#[tokio::test]
async fn faults_answer_instead_of_the_work() {
    let api = api().await;
    let id = api.create_id("RA123456789CN").await;
    let get = format!("/trackings/{id}");
    api.sim.fail_next(Some("get"), 1, SimFault::Http(503, json!({"oops": true})));
    let a = api.call(Method::GET, &get, None).await;
    assert_eq!((a.status, a.body.clone()), (503, json!({"oops": true})));
    assert!(a.headers.contains_key("x-ratelimit-reset"), "rate headers come with every answer");
    api.sim.fail_next(None, 1, SimFault::Http(502, json!("<html>Bad Gateway</html>")));
    let a = api.call(Method::GET, &get, None).await;
    assert_eq!((a.status, a.body.clone()), (502, json!("<html>Bad Gateway</html>")));
    api.sim.fail_next(
        Some("create"),
        2,
        SimFault::Meta { http: 400, code: 4012, r#type: "BadRequest".into(), message: "Cannot detect courier.".into() },
    );
    // A fault for `create` leaves `get` alone, and counts down per call.
    assert_eq!(api.call(Method::GET, &get, None).await.status, 200);
    for _ in 0..2 {
        assert_error(&api.create(json!({"tracking_number": "RA000000001CN"})).await, 400, 4012, "BadRequest");
    }
    assert_eq!(api.create(json!({"tracking_number": "RA000000001CN"})).await.status, 201);
    api.sim.fail_next(Some("list"), 1, SimFault::RateLimited(7));
    let a = api.call(Method::GET, "/trackings", None).await;
    assert_error(&a, 429, 429, "TooManyRequests");
    let reset = header_u64(&a, "x-ratelimit-reset");
    assert!((unix_now() + 6..=unix_now() + 8).contains(&reset), "reset {reset}");
    api.sim.fail_next(Some("retrack"), 1, SimFault::ServerError);
    assert_error(&api.call(Method::POST, &format!("{get}/retrack"), None).await, 500, 500, "InternalError");
    api.sim.burst_429(2);
    assert_eq!(api.call(Method::GET, &get, None).await.status, 429);
    assert_eq!(api.call(Method::GET, "/trackings", None).await.status, 429);
    assert_eq!(api.call(Method::GET, &get, None).await.status, 200);
    // count 0 clears a selector's pending faults.
    api.sim.fail_next(Some("get"), 5, SimFault::ServerError);
    api.sim.fail_next(Some("get"), 0, SimFault::ServerError);
    assert_eq!(api.call(Method::GET, &get, None).await.status, 200);
    assert_eq!(api.sim.stats().rate_limited, 3);
}

#[tokio::test]
async fn latency_delays_answers() {
    let api = api().await;
    api.sim.set_latency(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(api.call(Method::GET, "/trackings", None).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn the_request_log_has_names_not_secrets() {
    let api = api().await;
    api.create_id("RA123456789CN").await;
    api.call(Method::GET, "/trackings?limit=5", None).await;
    api.send(Method::GET, "/tracking/2024-10/trackings", None, None).await;
    let log = api.sim.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(
        (log[0].method.as_str(), log[0].op.as_str(), log[0].path.as_str()),
        ("POST", "create", "/tracking/2024-04/trackings")
    );
    assert_eq!(log[0].body["tracking"]["tracking_number"], "RA123456789CN");
    assert!(log[0].headers.iter().any(|h| h == "as-api-key"));
    assert!(!serde_json::to_string(&log).unwrap().contains(KEY), "header values are never logged");
    assert_eq!(
        (log[1].op.as_str(), log[1].query.as_deref(), log[1].body.clone()),
        ("list", Some("limit=5"), Value::Null)
    );
    assert_eq!(log[2].op, "unknown");
    assert_eq!(api.sim.stats().total_calls, 3);
}
