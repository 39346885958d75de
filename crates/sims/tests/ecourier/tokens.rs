//! Tokens: Login, RefreshGUID, expiry.

use super::*;

// ---- Tokens

#[tokio::test]
async fn tokens_are_renewed_by_use_and_expire_when_idle() {
    let h = start(EcourierSimConfig { token_ttl: Duration::from_millis(1000), ..config() }).await;
    let guid = h.login("user1", "pass1").await;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let a = h.call("GetJsonOrder", Some(&guid), &json!({"OrderNumber": "none"})).await;
        assert_eq!(a.error().1, "-4", "used within the TTL, the token still works");
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let a = h.call("GetJsonOrder", Some(&guid), &json!({"OrderNumber": "none"})).await;
    assert_eq!(a.error(), (500, "-5".into(), status_text("-5")));
    let a = h.call("RefreshGUID", Some(&guid), &json!({})).await;
    assert_eq!(a.error().1, "-5", "an expired token cannot be refreshed");
}

#[tokio::test]
async fn refreshguid_keeps_a_direct_guid_alive() {
    let h = start(EcourierSimConfig { token_ttl: Duration::from_millis(1000), ..config() }).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let a = h.call("RefreshGUID", Some(REFERENCE_GUID), &json!({})).await;
        assert_eq!(a.json()["UserGUID"], REFERENCE_GUID);
    }
    assert_eq!(h.call("SaveOrder", Some(REFERENCE_GUID), &order("D-1")).await.status, 200);
}

#[tokio::test]
async fn expiring_tokens_and_direct_guids() {
    let h = start(config()).await;
    let guid = h.login("user1", "pass1").await;
    h.sim.expire_tokens();
    assert_eq!(h.call("SaveOrder", Some(&guid), &order("T-1")).await.error().1, "-5");
    assert_eq!(h.call("SaveOrder", Some(REFERENCE_GUID), &order("T-1")).await.status, 200);
    h.sim.expire_direct_guids();
    assert_eq!(h.call("SaveOrder", Some(REFERENCE_GUID), &order("T-2")).await.error().1, "-5");
    let fresh = h.login("user1", "pass1").await;
    assert_ne!(fresh, guid);
    assert_eq!(h.call("SaveOrder", Some(&fresh), &order("T-2")).await.status, 200);
}

#[tokio::test]
async fn login_refusals() {
    let h = start(config()).await;
    let a = h.call("Login", None, &json!({"website": "example", "username": "user1", "password": "bad"})).await;
    assert_eq!(a.error(), (500, "-4".into(), "Login Failed: invalid username or password".into()));
    let a = h.call("Login", None, &json!({"website": "elsewhere", "username": "user1", "password": "pass1"})).await;
    let (status, code, text) = a.error();
    assert_eq!((status, code.as_str()), (500, "-6"));
    assert!(text.starts_with("No config file found: Configuration='"), "{text}");
    let a = h.call("Login", None, &json!({"website": "example", "username": "user1"})).await;
    assert!(a.error().2.contains("password"), "{}", a.text);
    assert_eq!(h.post("Login", None, "website=example").await.error().1, "-2");
    assert_eq!(h.sim.stats().logins, 0);
    assert_eq!(h.sim.stats().calls.get("Login"), Some(&4));
}

#[tokio::test]
async fn concurrent_logins_are_counted() {
    let h = start(config()).await;
    h.sim.set_latency(Duration::from_millis(1000));
    let url = format!("{}/software/xml/ecJsonPost.asmx/Login", h.base);
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let request =
                h.client.post(&url).json(&json!({"website": "example", "username": "user1", "password": "pass1"}));
            tokio::spawn(async move { request.send().await.expect("send").json::<Value>().await.expect("json") })
        })
        .collect();
    let mut guids = std::collections::BTreeSet::new();
    for task in tasks {
        guids.insert(task.await.expect("task")["UserGUID"].as_str().expect("UserGUID").to_owned());
    }
    assert_eq!(guids.len(), 5, "each Login issues its own GUID");
    let stats = h.sim.stats();
    assert_eq!((stats.logins, stats.max_concurrent_logins), (5, 5));
}
