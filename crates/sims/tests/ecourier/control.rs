//! Faults, latency, transport, the /_sim control API and state.

use super::*;

// ---- Faults, latency, transport

#[tokio::test]
async fn faults_apply_to_the_next_calls_only() {
    let h = start(config()).await;
    let guid = REFERENCE_GUID;
    h.sim.fail_next(Some("SaveOrder"), 1, SimFault::ProcessThenFail);
    let a = h.call("SaveOrder", Some(guid), &order("G-1")).await;
    assert_eq!(a.status, 504);
    assert!(serde_json::from_str::<Value>(&a.text).is_err());
    assert_eq!(h.sim.order_count(), 1, "the order was stored before the answer was lost");
    assert_eq!(h.call("SaveOrder", Some(guid), &order("G-1")).await.status, 200, "the retry updates it");
    assert_eq!(h.sim.order_count(), 1);

    h.sim.fail_next(None, 2, SimFault::Garbage);
    for _ in 0..2 {
        let a = h.call("GetJsonOrder", Some(guid), &json!({"OrderNumber": "G-1"})).await;
        assert_eq!(a.status, 200);
        assert!(serde_json::from_str::<Value>(&a.text).is_err(), "{}", a.text);
    }
    assert_eq!(h.call("GetJsonOrder", Some(guid), &json!({"OrderNumber": "G-1"})).await.status, 200);

    h.sim.fail_next(Some("SaveOrder"), 1, SimFault::Http(409, "Order Unable to Cancel".into()));
    assert_eq!(h.call("RefreshGUID", Some(guid), &json!({})).await.status, 200, "other methods are unaffected");
    let a = h.call("SaveOrder", Some(guid), &order("G-2")).await;
    assert_eq!(a.error(), (409, "-4".into(), "Order Unable to Cancel".into()));
    assert_eq!(h.sim.order_count(), 1);

    h.sim.set_latency(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(h.call("RefreshGUID", Some(guid), &json!({})).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn unknown_methods_and_other_verbs_get_the_asmx_answer() {
    let h = start(config()).await;
    let a = h.call("GetOrder", Some(REFERENCE_GUID), &json!({"OrderNumber": "1"})).await;
    assert_eq!(a.status, 500);
    assert!(a.content_type.starts_with("text/plain"));
    assert_eq!(
        a.text,
        "System.InvalidOperationException: Request format is unrecognized for URL unexpectedly ending in '/GetOrder'."
    );
    let a = h.call("saveorder", Some(REFERENCE_GUID), &order("V-1")).await;
    assert_eq!(a.status, 500, "method names are matched exactly");
    let url = format!("{}/software/xml/ecJsonPost.asmx/Login", h.base);
    let response = h.client.get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 500);
    assert!(response.text().await.unwrap().contains("'/Login'"));
    assert_eq!(h.sim.stats().calls.get("GetOrder"), Some(&1));
}

#[tokio::test]
async fn requests_are_logged_with_header_names_the_session_and_no_password() {
    let h = start(config()).await;
    h.login("user1", "pass1").await;
    h.post("SaveOrder", Some(REFERENCE_GUID), &fixture("quoteorder.request.json")).await;
    h.post("GetJsonOrder", None, "garbage").await;
    let log = h.sim.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].method, "Login");
    assert_eq!(log[0].path, "/example/software/xml/ecJsonPost.asmx/Login");
    assert_eq!(log[0].body["password"], "<redacted>");
    assert_eq!(log[0].body["username"], "user1");
    assert!(log[0].auth_headers.is_empty());
    assert_eq!(log[1].auth_headers, ["UserGUID"]);
    // The session a call used is the simulator's own token: tests check which one it was.
    assert_eq!(log[1].user_guid.as_deref(), Some(REFERENCE_GUID));
    assert_eq!(log[0].user_guid, None);
    assert_eq!(many(&log[1].body["Order"]["Stops"]["Stop"]).len(), 2, "logged as read: two stops");
    assert_eq!(log[2].body, Value::Null);
    let (status, logged) = h.control(reqwest::Method::GET, "/requests", None).await;
    assert_eq!(status, 200);
    assert_eq!(logged.as_array().map(Vec::len), Some(3));
    assert!(!logged.to_string().contains("pass1"));
}

// ---- The /_sim control API and state

#[tokio::test]
async fn the_control_api_mirrors_the_knobs() {
    use reqwest::Method;
    let h = start(config()).await;
    let guid = REFERENCE_GUID;
    let (status, _) =
        h.control(Method::POST, "/faults", Some(json!({"method": "SaveOrder", "fault": {"status": -3}}))).await;
    assert_eq!(status, 200);
    assert_eq!(h.call("SaveOrder", Some(guid), &order("H-1")).await.error().1, "-3");
    let (status, _) = h.control(Method::POST, "/faults", Some(json!({"fault": "process_then_fail", "count": 1}))).await;
    assert_eq!(status, 200);
    assert_eq!(h.call("SaveOrder", Some(guid), &order("H-1")).await.status, 504);
    let (status, body) = h.control(Method::POST, "/faults", Some(json!({"fault": "sometimes"}))).await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = h.control(Method::POST, "/orders/H-1/advance", None).await;
    assert_eq!((status, body), (200, json!({"order_number": "H-1", "stage": "assigned"})));
    let (status, body) = h.control(Method::GET, "/orders/H-1", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["Order"]["@OrderStatus"], "A");
    assert_eq!(h.control(Method::POST, "/orders/nope/advance", None).await.0, 404);
    let (status, body) = h.control(Method::POST, "/orders/H-1/rewind", None).await;
    assert_eq!((status, body["stage"].clone()), (200, json!("new")));
    assert_eq!(h.control(Method::POST, "/orders/H-1/rewind", None).await.0, 409);
    assert_eq!(h.control(Method::PUT, "/orders/H-1/status", Some(json!({"status": "I"}))).await.0, 200);
    assert_eq!(h.control(Method::PUT, "/orders/H-1/status", Some(json!({"status": "Q"}))).await.0, 400);

    let (_, stats) = h.control(Method::GET, "/stats", None).await;
    assert_eq!(stats["calls"]["SaveOrder"], 2);
    let (_, orders) = h.control(Method::GET, "/orders", None).await;
    assert_eq!(orders, json!({"count": 1, "order_numbers": ["H-1"]}));

    let login = h.login("user1", "pass1").await;
    assert_eq!(h.control(Method::POST, "/tokens/expire", None).await.0, 200);
    assert_eq!(h.call("RefreshGUID", Some(&login), &json!({})).await.error().1, "-5");
    assert_eq!(h.control(Method::POST, "/direct-guids/expire", None).await.0, 200);
    assert_eq!(h.call("RefreshGUID", Some(guid), &json!({})).await.error().1, "-5");

    assert_eq!(h.control(Method::PUT, "/latency", Some(json!({"ms": 0}))).await.0, 200);
    let answer = json!({"answer": "status_description"});
    assert_eq!(h.control(Method::PUT, "/save-answer", Some(answer)).await.0, 200);
    assert_eq!(h.control(Method::POST, "/clock", Some(json!({"every_ms": 0}))).await.0, 400);

    assert_eq!(h.control(Method::POST, "/reset", None).await.0, 200);
    assert_eq!(h.sim.order_count(), 0);
    assert!(h.sim.requests().is_empty());
    assert_eq!(h.sim.stats().calls.len(), 0);
    let a = h.call("SaveOrder", Some(guid), &order("H-2")).await;
    assert_eq!(a.json(), fixture_json("saveorder.response.json"), "direct GUIDs and the default answer are back");
}

#[tokio::test]
async fn state_survives_a_restart() {
    let h = start(config()).await;
    let login = h.login("user1", "pass1").await;
    assert_eq!(h.call("SaveOrder", Some(&login), &order("S-1")).await.status, 200);
    h.sim.advance("S-1").unwrap();
    let before = h.sim.order("S-1").unwrap();
    let (status, state) = h.control(reqwest::Method::GET, "/state", None).await;
    assert_eq!(status, 200);

    let h2 = start(config()).await;
    let (status, _) = h2.control(reqwest::Method::PUT, "/state", Some(state)).await;
    assert_eq!(status, 200);
    assert_eq!(h2.sim.order("S-1"), Some(before));
    assert_eq!(h2.call("RefreshGUID", Some(&login), &json!({})).await.status, 200, "the session survives");
    assert_eq!(h2.call("SaveOrder", Some(&login), &order("S-2")).await.status, 200);
    let ids: Vec<Value> =
        ["S-1", "S-2"].iter().map(|n| h2.sim.order(n).unwrap()["Order"]["@OrderID"].clone()).collect();
    assert_ne!(ids[0], ids[1], "new orders do not reuse OrderIDs");
    assert!(h2.sim.import_state(json!({"version": 9})).is_err());
    let (status, _) = h2.control(reqwest::Method::PUT, "/state", Some(json!([1, 2]))).await;
    assert_eq!(status, 400);
}
