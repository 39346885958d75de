//! Sign-in, the cookie, expiry, sign-out and revocation (docs/console.md "Sign-in and sessions").

use super::{Console, session_cookie};
use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn an_api_key_signs_in_with_a_strict_http_only_cookie_and_pages_need_it() {
    let app = spawn_app().await;
    app.book("CONSOLE-SIGNIN-1").await;

    // Without a session a page sends the browser to sign in, and back afterwards.
    let anon = Console::anonymous(&app);
    let r = anon.get("/console/shipments?status=pending").await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location").as_deref(),
        Some("/console/sign-in?next=%2Fconsole%2Fshipments%3Fstatus%3Dpending")
    );
    let form = anon.get("/console/sign-in").await;
    assert_eq!(form.status, 200);
    assert!(form.text.contains("type=\"password\""), "{}", form.text);

    let r = anon.post_raw("/console/sign-in", &[("api_key", &app.key), ("next", "/console/shipments")], true).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location").as_deref(), Some("/console/shipments"));
    let set = r.header("set-cookie").expect("set-cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=86400"] {
        assert!(set.split("; ").any(|p| p == part), "{part} in {set}");
    }
    assert!(!set.contains("Secure"), "plain http: no Secure flag ({set})");
    // The cookie is random, not the key.
    let value = session_cookie(&r).expect("value");
    assert!(!value.contains(&app.key) && value.len() >= 40, "{value}");

    let signed = Console { cookie: Some(value), ..Console::anonymous(&app) };
    let page = signed.get("/console/shipments").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("CONSOLE-SIGNIN-1"), "{}", page.text);
    assert!(page.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    let timing = page.header("server-timing").expect("Server-Timing");
    assert!(timing.starts_with("app;dur="), "{timing}");
    assert!(page.header("content-security-policy").is_some_and(|c| c.contains("default-src 'none'")));
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));

    // The session is stored as a hash only.
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT id_hash FROM console_sessions").fetch_one(&app.db).await.expect("row");
    assert_eq!(stored.len(), 32);
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_a_next_elsewhere_is_ignored() {
    let app = spawn_app().await;
    let anon = Console::anonymous(&app);
    let wrong = format!("{}x", app.key);
    let r = anon.post_raw("/console/sign-in", &[("api_key", &wrong), ("next", "/console/shipments")], true).await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("not valid"), "{}", r.text);
    assert!(r.header("set-cookie").is_none());
    // The key typed is not echoed back.
    assert!(!r.text.contains(&wrong));

    let r = anon.post_raw("/console/sign-in", &[("api_key", "")], true).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("api_key"), "{}", r.text);

    // After sign-in only a console path is followed.
    let r = anon.post_raw("/console/sign-in", &[("api_key", &app.key), ("next", "//evil.example/x")], true).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location").as_deref(), Some("/console/"));

    // A sign-in form posted from another site is refused.
    let r = anon.post_with("/console/sign-in", &[("api_key", &app.key)], Some("https://evil.example")).await;
    assert_eq!(r.status, 403);
    assert!(r.header("set-cookie").is_none());
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_like_api_keys() {
    let app = spawn_app().await;
    let anon = Console::anonymous(&app);
    let mut last = 0;
    for _ in 0..200 {
        last = anon.post_raw("/console/sign-in", &[("api_key", "sg_test_keynope_wrong")], true).await.status;
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "failed sign-ins end up throttled");
    // A valid key still signs in (the key is checked first).
    Console::signed_in(&app, &app.key).await;
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_console_is_served_over_https() {
    let app = spawn_app_with("public_base_url = \"https://gateway.example.com\"").await;
    let r = Console::anonymous(&app).post_raw("/console/sign-in", &[("api_key", &app.key)], true).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let set = r.header("set-cookie").expect("set-cookie");
    assert!(set.split("; ").any(|p| p == "Secure"), "{set}");
}

#[tokio::test]
async fn idle_old_signed_out_and_revoked_key_sessions_end() {
    let app = spawn_app().await;
    let expect_signed_out = |status: u16, location: Option<String>| {
        assert_eq!(status, 303);
        assert!(location.is_some_and(|l| l.starts_with("/console/sign-in")));
    };

    // Idle longer than console_session_idle_minutes (480).
    let c = Console::signed_in(&app, &app.key).await;
    assert_eq!(c.get("/console/shipments").await.status, 200);
    sqlx::query("UPDATE console_sessions SET last_seen_at = now() - interval '481 minutes'")
        .execute(&app.db)
        .await
        .expect("age");
    let r = c.get("/console/shipments").await;
    expect_signed_out(r.status, r.header("location"));

    // Past its absolute end, however recently used.
    let c = Console::signed_in(&app, &app.key).await;
    sqlx::query("UPDATE console_sessions SET expires_at = now() - interval '1 second' WHERE revoked_at IS NULL AND last_seen_at > now() - interval '1 minute'")
        .execute(&app.db)
        .await
        .expect("expire");
    let r = c.get("/console/shipments").await;
    expect_signed_out(r.status, r.header("location"));

    // Signed out: the same cookie no longer works, and the answer clears it.
    let c = Console::signed_in(&app, &app.key).await;
    let page = c.get("/console/shipments").await;
    let out = c.submit(&page, "/console/sign-out", &[]).await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").is_some_and(|s| s.contains("Max-Age=0")));
    let r = c.get("/console/shipments").await;
    expect_signed_out(r.status, r.header("location"));
    // A signed-out session cannot post either.
    let r = c.post_raw("/console/sign-out", &[("csrf", "00")], true).await;
    assert_eq!(r.status, 403);

    // Revoking the API key ends the sessions opened with it.
    let c = Console::signed_in(&app, &app.key).await;
    assert_eq!(c.get("/console/shipments").await.status, 200);
    let key_id = app.key.split('_').nth(2).expect("key id").to_owned();
    let mut conn = app.db.acquire().await.expect("conn");
    assert!(shipgate::store::tenants::revoke_api_key(&mut conn, &key_id).await.expect("revoke"));
    let r = c.get("/console/shipments").await;
    expect_signed_out(r.status, r.header("location"));
}
