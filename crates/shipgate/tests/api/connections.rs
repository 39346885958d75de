//! Connections: validation, secrets never returned, verify.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn credentials_are_validated_and_never_returned() {
    let app = spawn_app().await;
    let r = app.get(&format!("/v1/connections/{}", app.connection_id)).await;
    let c = r.json();
    assert_eq!(c["credentials_set"], json!(["password", "username", "website"]));
    assert!(!String::from_utf8_lossy(&r.bytes).contains("demo-pass"));
    assert_eq!(c["settings"]["customer_code"], "DEMO");

    let base = json!({"carrier": "ecourier", "name": "x", "base_url": "https://e.example", "settings": {"customer_code": "C"}});
    let mut missing = base.clone();
    missing["credentials"] = json!({"website": "w", "username": "u"});
    let p = app.post("/v1/connections", &missing).await.problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "credentials");
    let mut mixed = base.clone();
    mixed["credentials"] = json!({"website": "w", "username": "u", "password": "p", "user_guid": "{G}"});
    app.post("/v1/connections", &mixed).await.problem(422, "validation_failed");
    let mut direct = base.clone();
    direct["credentials"] = json!({"user_guid": "{011114A4-5391-46E0-B576-9835485F5731}"});
    assert_eq!(app.post("/v1/connections", &direct).await.status, 201);
    let mut no_code = direct.clone();
    no_code["settings"] = json!({"colour": "red"});
    let p = app.post("/v1/connections", &no_code).await.problem(422, "validation_failed");
    let fields: Vec<&str> =
        p["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().unwrap_or("")).collect();
    assert!(fields.contains(&"settings.colour") && fields.contains(&"settings.customer_code"), "{fields:?}");
    let mut no_url = direct.clone();
    no_url.as_object_mut().expect("obj").remove("base_url");
    assert_eq!(
        app.post("/v1/connections", &no_url).await.problem(422, "validation_failed")["errors"][0]["field"],
        "base_url"
    );
    // Ecom Express with no credentials: inbound ones are generated (tests/api/inbound.rs).
    let inbound = json!({"carrier": "ecomexpress", "name": "x", "credentials": {}});
    assert_eq!(app.post("/v1/connections", &inbound).await.status, 201);
    let unknown = json!({"carrier": "dhl", "name": "x", "credentials": {}});
    assert_eq!(
        app.post("/v1/connections", &unknown).await.problem(422, "validation_failed")["errors"][0]["field"],
        "carrier"
    );
}

#[tokio::test]
async fn verify_logs_in_and_a_direct_guid_is_refreshed() {
    let app = spawn_app().await;
    let r = app.post(&format!("/v1/connections/{}/verify", app.connection_id), &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert!(r.json()["verified_at"].is_string());
    assert_eq!(app.sim.stats().logins, 1);

    // A directly issued GUID that the courier does not know: refused, clearly.
    let body = json!({
        "carrier": "ecourier", "name": "direct", "base_url": format!("{}{}", app.base, shipgate::sandbox::ECOURIER_MOUNT),
        "credentials": {"user_guid": "{011114A4-5391-46E0-B576-9835485F5731}"}, "settings": {"customer_code": "DEMO"}
    });
    let id = app.post("/v1/connections", &body).await.json()["id"].as_str().expect("id").to_owned();
    let p =
        app.post(&format!("/v1/connections/{id}/verify"), &json!({})).await.problem(422, "connection_misconfigured");
    assert!(p["detail"].as_str().expect("detail").contains("directly issued"), "{p}");
    let refresh = app.sim.requests().into_iter().find(|r| r.method == "RefreshGUID").expect("RefreshGUID was called");
    assert_eq!(refresh.user_guid.as_deref(), Some("{011114A4-5391-46E0-B576-9835485F5731}"));
    assert_eq!(
        refresh.body,
        json!({"UserGUID": "011114A4-5391-46E0-B576-9835485F5731"}),
        "the reference's example body"
    );
}

#[tokio::test]
async fn list_update_and_delete() {
    let app = spawn_app().await;
    let r = app
        .request(
            "PATCH",
            &format!("/v1/connections/{}", app.connection_id),
            Some(&app.key),
            Some(&json!({"name": "Renamed"})),
            &[],
        )
        .await;
    assert_eq!(r.json()["name"], "Renamed");
    // Credentials kept when not given: booking still works.
    app.book("AFTER-RENAME").await;
    let list = app.get("/v1/connections").await.json();
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    let r = app
        .request(
            "PATCH",
            &format!("/v1/connections/{}", app.connection_id),
            Some(&app.key),
            Some(&json!({"credentials": {"website": "demo"}})),
            &[],
        )
        .await;
    r.problem(422, "validation_failed");
    let r = app.request("DELETE", &format!("/v1/connections/{}", app.connection_id), Some(&app.key), None, &[]).await;
    assert_eq!(r.status, 204);
    app.get(&format!("/v1/connections/{}", app.connection_id)).await.problem(404, "not_found");
    let wiped: Vec<u8> = sqlx::query_scalar("SELECT credentials_enc FROM connections WHERE id = $1")
        .bind(&app.connection_id)
        .fetch_one(&app.db)
        .await
        .expect("row");
    assert!(wiped.is_empty(), "secrets wiped on delete");
    // Its shipments stay readable.
    assert_eq!(app.get("/v1/shipments").await.json()["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn every_connection_takes_limit_settings() {
    let app = spawn_app().await;
    let body = json!({"carrier": "ecmr", "name": "limited", "base_url": "https://e.example",
        "credentials": {"organization_id": "o", "api_token": "t"}, "settings": {"rate_limit_per_second": 5, "max_concurrency": 2}});
    assert_eq!(app.post("/v1/connections", &body).await.status, 201);
    let mut bad = body.clone();
    bad["settings"]["max_concurrency"] = json!(0);
    assert_eq!(
        app.post("/v1/connections", &bad).await.problem(422, "validation_failed")["errors"][0]["field"],
        "settings.max_concurrency"
    );
}
