//! Token expiry under load: one Login, never two at once.

use std::time::Duration;

use crate::helpers::spawn_app;

#[tokio::test]
async fn an_expired_token_causes_exactly_one_relogin_under_200_concurrent_bookings() {
    let app = spawn_app().await;
    app.book("WARM").await;
    assert_eq!(app.sim.stats().logins, 1);
    app.sim.expire_tokens();
    // Latency makes the 200 calls overlap at the carrier (docs/quality.md reliability 7).
    app.sim.set_latency(Duration::from_millis(40));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (http, base, key, body) =
            (app.http.clone(), app.base.clone(), app.key.clone(), app.shipment_body(&format!("STAMPEDE-{i}")));
        tasks.push(tokio::spawn(async move {
            http.post(format!("{base}/v1/shipments"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join").expect("request"), 201);
    }
    let stats = app.sim.stats();
    println!(
        "reliability 7 (e-Courier): 200 concurrent bookings after expiry -> {} Login(s) after the warm-up, at most {} at once",
        stats.logins - 1,
        stats.max_concurrent_logins
    );
    assert_eq!(stats.logins, 2, "one Login at start, one after the expiry");
    assert_eq!(stats.max_concurrent_logins, 1);
    assert_eq!(app.sim.order_count(), 201);
}

#[tokio::test]
async fn the_token_survives_a_restart_encrypted_in_the_database() {
    let app = spawn_app().await;
    app.book("T-A").await;
    let blob: Option<Vec<u8>> = sqlx::query_scalar("SELECT token_enc FROM connections WHERE id = $1")
        .bind(&app.connection_id)
        .fetch_one(&app.db)
        .await
        .expect("row");
    let blob = blob.expect("token cached");
    let guid = app.sim.requests()[1].user_guid.clone().expect("guid");
    assert!(!String::from_utf8_lossy(&blob).contains(guid.trim_matches(|c| c == '{' || c == '}')), "stored encrypted");
    // A second instance on the same database reuses it: no new Login.
    let other = shipgate::app::AppState::new(app.db.clone(), app.state.config.clone()).expect("state");
    let router = shipgate::http::router(other);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let r = app
        .http
        .post(format!("{base}/v1/shipments"))
        .bearer_auth(&app.key)
        .json(&app.shipment_body("T-B"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(app.sim.stats().logins, 1);
}
