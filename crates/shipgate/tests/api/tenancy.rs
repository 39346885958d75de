//! Tenant isolation: tenant B's key on tenant A's ids answers 404 on every id route.

use serde_json::json;

use crate::helpers::{new_tenant, spawn_app};

#[tokio::test]
async fn another_tenants_ids_are_not_found_on_every_route() {
    let app = spawn_app().await;
    let s = app.book("ISO-1").await;
    let sid = s["id"].as_str().expect("id");
    let cid = app.connection_id.clone();
    let owner: String = sqlx::query_scalar("SELECT tenant_id FROM shipments WHERE id = $1")
        .bind(sid)
        .fetch_one(&app.db)
        .await
        .expect("row");
    assert_eq!(owner, app.tenant_id);
    let (_, b_key) = new_tenant(&app.state, "Tenant B").await;
    let routes = [
        ("GET", format!("/v1/shipments/{sid}"), None),
        ("PATCH", format!("/v1/shipments/{sid}"), Some(json!({"notes": "x"}))),
        ("POST", format!("/v1/shipments/{sid}/cancel"), None),
        ("POST", format!("/v1/shipments/{sid}/refresh"), None),
        ("POST", format!("/v1/shipments/{sid}/retrack"), None),
        ("POST", format!("/v1/shipments/{sid}/complete"), Some(json!({"reason": "delivered"}))),
        ("GET", format!("/v1/shipments/{sid}/events"), None),
        ("GET", format!("/v1/shipments/{sid}/history"), None),
        ("GET", format!("/v1/shipments/{sid}/exchanges"), None),
        ("GET", format!("/v1/connections/{cid}"), None),
        ("PATCH", format!("/v1/connections/{cid}"), Some(json!({"name": "mine now"}))),
        ("POST", format!("/v1/connections/{cid}/verify"), None),
        ("DELETE", format!("/v1/connections/{cid}"), None),
    ];
    let calls_before = app.sim.requests().len();
    for (method, path, body) in &routes {
        let r = app.request(method, path, Some(&b_key), body.as_ref(), &[]).await;
        let p = r.problem(404, "not_found");
        assert!(!String::from_utf8_lossy(&r.bytes).contains("ISO-1"), "{method} {path} leaked data: {p}");
    }
    assert_eq!(app.sim.requests().len(), calls_before, "no carrier call on behalf of another tenant");
    // Booking on A's connection with B's key: the connection does not exist for B.
    let r = app.request("POST", "/v1/shipments", Some(&b_key), Some(&app.shipment_body("ISO-2")), &[]).await;
    assert_eq!(r.problem(422, "validation_failed")["errors"][0]["field"], "connection_id");
    // Lists are scoped too.
    let list = app.request("GET", "/v1/shipments", Some(&b_key), None, &[]).await.json();
    assert_eq!(list["data"].as_array().map(Vec::len), Some(0));
    let list = app.request("GET", "/v1/connections", Some(&b_key), None, &[]).await.json();
    assert_eq!(list["data"].as_array().map(Vec::len), Some(0));
    // And A still has everything.
    let a = app.get(&format!("/v1/shipments/{sid}")).await;
    assert_eq!(a.status, 200);
    assert_eq!(app.get(&format!("/v1/connections/{cid}")).await.json()["name"], "e-Courier sim");
}

#[tokio::test]
async fn bad_missing_and_revoked_keys_are_401_with_a_challenge() {
    let app = spawn_app().await;
    for key in [None, Some("nonsense"), Some("sg_test_keyabc_wrongsecret")] {
        let r = app.request("GET", "/v1/shipments", key, None, &[]).await;
        r.problem(401, "unauthorized");
        assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer realm=\"shipgate\""));
    }
    // Right id, wrong secret.
    let mut forged = app.key.clone();
    forged.pop();
    forged.push(if app.key.ends_with('A') { 'B' } else { 'A' });
    app.request("GET", "/v1/shipments", Some(&forged), None, &[]).await.problem(401, "unauthorized");
    // Revoked: refused at once on this instance.
    let id = app.key.split('_').nth(2).expect("id part");
    let mut conn = app.db.acquire().await.expect("conn");
    assert!(shipgate::store::tenants::revoke_api_key(&mut conn, id).await.expect("revoke"));
    app.state.key_cache.evict(id);
    app.request("GET", "/v1/shipments", Some(&app.key), None, &[]).await.problem(401, "unauthorized");
}
