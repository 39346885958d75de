//! Online master-key rotation: every secret is re-encrypted under the new key while the
//! service runs, after which the old key can be dropped.

use shipgate::app::AppState;
use shipgate::config::Config;

use crate::helpers::{MASTER_KEY, spawn_app_with};

const NEW_KEY: &str = "bmV3LW1hc3Rlci1rZXktMzItYnl0ZXMtbG9uZyEhISE="; // base64 of 32 bytes, tests only

#[tokio::test]
async fn rotate_keys_re_encrypts_every_secret_and_the_old_key_can_then_be_dropped() {
    let app = spawn_app_with("webhook_allow_networks = \"127.0.0.1/32\"").await;
    app.book("ROT-1").await; // caches the e-Courier UserGUID (a second ciphertext)
    let r = app.post("/v1/webhook-endpoints", &serde_json::json!({"url": "http://127.0.0.1:9/hook"})).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    // A rotated signing secret: the previous one keeps signing during its overlap.
    let endpoint = r.json()["id"].as_str().expect("id").to_owned();
    let body = serde_json::json!({"rotate_secret": true});
    let r = app.request("PATCH", &format!("/v1/webhook-endpoints/{endpoint}"), Some(&app.key), Some(&body), &[]).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let endpoint_key = || async {
        sqlx::query_as::<_, (i32, i32)>(
            "SELECT get_byte(secret_enc, 0), get_byte(previous_secret_enc, 0) FROM webhook_endpoints",
        )
        .fetch_one(&app.db)
        .await
        .expect("endpoint")
    };
    assert_eq!(endpoint_key().await, (1, 1));
    let key_ids = || async {
        sqlx::query_as::<_, (i32, Option<i32>)>(
            "SELECT get_byte(credentials_enc, 0), CASE WHEN token_enc IS NULL THEN NULL ELSE get_byte(token_enc, 0) END FROM connections",
        )
        .fetch_all(&app.db)
        .await
        .expect("blobs")
    };
    assert_eq!(key_ids().await, vec![(1, Some(1))]);

    // Step 1: deploy the new key as current, the old one as previous; rotate online.
    let both = Config::from_toml_overrides(&format!(
        "master_key = \"{NEW_KEY}\"\nmaster_key_id = 2\nprevious_master_keys = \"1:{MASTER_KEY}\"\napi_key_env = \"test\""
    ))
    .expect("config");
    let rotating = AppState::new(app.db.clone(), both).expect("state");
    let r = shipgate::service::rotation::rotate_all(&rotating).await.expect("rotate");
    assert_eq!(
        (r.rewritten, r.skipped, r.undecryptable),
        (4, 0, 0),
        "credentials, token, webhook secret and the previous one"
    );
    assert_eq!(key_ids().await, vec![(2, Some(2))]);
    assert_eq!(endpoint_key().await, (2, 2));
    assert_eq!(shipgate::service::rotation::rotate_all(&rotating).await.expect("again").rewritten, 0);

    // Step 2: the old key is gone from the configuration; everything still decrypts.
    let only_new = Config::from_toml_overrides(&format!(
        "master_key = \"{NEW_KEY}\"\nmaster_key_id = 2\napi_key_env = \"test\"\nworkers_enabled = false"
    ))
    .expect("config");
    let state = AppState::new(app.db.clone(), only_new).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = shipgate::http::router(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let logins = app.sim.stats().logins;
    let r = app
        .http
        .post(format!("{base}/v1/shipments"))
        .bearer_auth(&app.key)
        .json(&app.shipment_body("ROT-2"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap_or_default());
    assert_eq!(app.sim.stats().logins, logins, "the re-encrypted UserGUID was reused: no new Login");
}
