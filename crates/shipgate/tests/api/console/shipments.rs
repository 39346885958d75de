//! Shipments list and page, their actions, CSRF refusals and tenant isolation.

use super::Console;
use crate::helpers::{new_tenant, spawn_app};

#[tokio::test]
async fn search_finds_a_shipment_by_reference_tracking_number_or_id_and_filters_refuse_bad_values() {
    let app = spawn_app().await;
    let a = app.book("CONSOLE-FIND-A").await;
    let b = app.book("CONSOLE-FIND-B").await;
    let c = Console::signed_in(&app, &app.key).await;

    let list = c.get("/console/shipments").await;
    assert!(list.text.contains("CONSOLE-FIND-A") && list.text.contains("CONSOLE-FIND-B"));

    let r = c.get("/console/shipments?q=CONSOLE-FIND-A").await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("CONSOLE-FIND-A") && !r.text.contains("CONSOLE-FIND-B"), "{}", r.text);

    let tracking = b["tracking_number"].as_str().expect("tracking number");
    let r = c.get(&format!("/console/shipments?q={tracking}")).await;
    assert!(r.text.contains("CONSOLE-FIND-B") && !r.text.contains("CONSOLE-FIND-A"), "{}", r.text);

    let id = a["id"].as_str().expect("id");
    let r = c.get(&format!("/console/shipments?q={id}")).await;
    assert!(r.text.contains("CONSOLE-FIND-A") && !r.text.contains("CONSOLE-FIND-B"));

    let r = c.get("/console/shipments?q=NOTHING-LIKE-THIS").await;
    assert!(r.text.contains("No shipment matches"));

    // Filters as the API: a wrong value is a 422 page naming the field.
    let r = c.get("/console/shipments?status=lost_in_space").await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("status:"), "{}", r.text);
    let r = c.get("/console/shipments?created_after=yesterday").await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("created_after:"));
    let r = c.get("/console/shipments?carrier=pigeon").await;
    assert_eq!(r.status, 422);
    let r = c.get("/console/shipments?status=pending").await;
    assert_eq!(r.status, 200);
    assert!(!r.text.contains("CONSOLE-FIND-A"), "booked shipments are not pending");
}

#[tokio::test]
async fn pages_are_keyset_paged() {
    let app = spawn_app().await;
    for i in 0..52 {
        app.book(&format!("CONSOLE-PAGE-{i:02}")).await;
    }
    let c = Console::signed_in(&app, &app.key).await;
    let first = c.get("/console/shipments").await;
    let count = |t: &str| t.matches("CONSOLE-PAGE-").count();
    assert_eq!(count(&first.text), 50);
    let at = first.text.find("rel=\"next\"").expect("a next page link");
    let href_at = first.text[..at].rfind("href=\"").expect("href") + 6;
    let href = first.text[href_at..].split('"').next().expect("href").replace("&amp;", "&");
    let second = c.get(&href).await;
    assert_eq!(count(&second.text), 2, "{}", second.text);
    assert!(second.text.contains("CONSOLE-PAGE-00") && second.text.contains("CONSOLE-PAGE-01"));
    assert!(!second.text.contains("rel=\"next\""));
}

#[tokio::test]
async fn a_shipment_page_shows_its_timeline_with_actors_and_carrier_calls() {
    let app = spawn_app().await;
    let s = app.book("CONSOLE-TIMELINE").await;
    let id = s["id"].as_str().expect("id");
    let c = Console::signed_in(&app, &app.key).await;
    let page = c.get(&format!("/console/shipments/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let key_id = app.key.split('_').nth(2).expect("key id");
    assert!(page.text.contains("CONSOLE-TIMELINE"));
    assert!(page.text.contains("history"), "history entries");
    assert!(page.text.contains(key_id), "the history names the API key that acted");
    assert!(page.text.contains("carrier call"), "the booking's exchange");
    assert!(page.text.contains(&format!("/console/shipments/{id}/refresh")));
    // Times are rendered in UTC with the offset, machine-readable for the script.
    assert!(page.text.contains("<time datetime=\"") && page.text.contains("UTC+00:00"));
}

#[tokio::test]
async fn actions_need_the_sessions_csrf_token_and_this_sites_origin() {
    let app = spawn_app().await;
    let s = app.book("CONSOLE-CSRF").await;
    let id = s["id"].as_str().expect("id");
    let action = format!("/console/shipments/{id}/cancel");
    let c = Console::signed_in(&app, &app.key).await;
    let page = c.get(&format!("/console/shipments/{id}")).await;
    let fields = page.form(&action);
    let idem = fields.iter().find(|(k, _)| k == "idem").map(|(_, v)| v.clone()).expect("idem");

    // No token.
    let r = c.post_raw(&action, &[("idem", &idem)], true).await;
    assert_eq!(r.status, 403);
    assert!(r.text.contains("security token"), "{}", r.text);
    // Another session's token.
    let other = Console::signed_in(&app, &app.key).await;
    let other_page = other.get(&format!("/console/shipments/{id}")).await;
    let other_token = other_page.form(&action).into_iter().find(|(k, _)| k == "csrf").expect("csrf").1;
    let r = c.post_raw(&action, &[("csrf", &other_token), ("idem", &idem)], true).await;
    assert_eq!(r.status, 403);
    // The right token from another site.
    let own: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = c.post_with(&action, &own, Some("https://evil.example")).await;
    assert_eq!(r.status, 403);
    assert!(r.text.contains("another site"));
    let shipment = app.get(&format!("/v1/shipments/{id}")).await.json();
    assert_eq!(shipment["booking"]["state"], "booked", "nothing was done");

    // All right: the cancel runs, as the key, once however often the form is sent.
    let r = c.submit(&page, &action, &[]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some(format!("/console/shipments/{id}?done=cancelled")));
    let again = c.submit(&page, &action, &[]).await;
    assert_eq!(again.status, 303, "the same form again replays: {}", again.text);
    let shipment = app.get(&format!("/v1/shipments/{id}")).await.json();
    assert_eq!(shipment["booking"]["state"], "cancelled");
    let history = app.get(&format!("/v1/shipments/{id}/history")).await.json();
    let cancels: Vec<_> =
        history["data"].as_array().expect("history").iter().filter(|h| h["action"] == "cancelled").collect();
    assert_eq!(cancels.len(), 1, "{history}");
    let key_id = app.key.split('_').nth(2).expect("key id");
    assert_eq!(cancels[0]["actor_id"], key_id);
    let done = c.get(&format!("/console/shipments/{id}?done=cancelled")).await;
    assert!(done.text.contains("Cancelled."));
    // A notice is chosen from a fixed list; a link cannot put text on the page.
    let forged = c.get(&format!("/console/shipments/{id}?done=%3Cb%3EHello")).await;
    assert!(!forged.text.contains("Hello"));
}

#[tokio::test]
async fn another_tenants_shipment_is_not_found_and_not_listed() {
    let app = spawn_app().await;
    let s = app.book("CONSOLE-TENANT-A").await;
    let id = s["id"].as_str().expect("id");
    let (_, other_key) = new_tenant(&app.state, "Tenant B").await;
    let b = Console::signed_in(&app, &other_key).await;

    let r = b.get(&format!("/console/shipments/{id}")).await;
    assert_eq!(r.status, 404);
    assert!(!r.text.contains("CONSOLE-TENANT-A"));
    let r = b.get("/console/shipments?q=CONSOLE-TENANT-A").await;
    assert!(!r.text.contains(id));
    let r = b.get(&format!("/console/shipments?q={id}")).await;
    assert!(r.text.contains("No shipment matches"));
    let r = b.get("/console/shipments").await;
    assert!(!r.text.contains(id));

    // Nor can it act on it.
    let page = b.get("/console/shipments").await;
    let csrf = page.form("/console/sign-out").into_iter().find(|(k, _)| k == "csrf").expect("csrf").1;
    let r = b.post_raw(&format!("/console/shipments/{id}/cancel"), &[("csrf", &csrf), ("idem", "abc123")], true).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let shipment = app.get(&format!("/v1/shipments/{id}")).await.json();
    assert_eq!(shipment["booking"]["state"], "booked");
}

#[tokio::test]
async fn a_created_range_is_paged_newest_first_through_the_api_and_the_console() {
    let app = spawn_app().await;
    // Seven shipments created a day apart (day 0 newest); the range takes days 1-5.
    for day in 0..7 {
        let s = app.book(&format!("CONSOLE-RANGE-{day}")).await;
        sqlx::query("UPDATE shipments SET created_at = now() - make_interval(days => $1) WHERE id = $2")
            .bind(day)
            .bind(s["id"].as_str().expect("id"))
            .execute(&app.db)
            .await
            .expect("age");
    }
    let after = (chrono::Utc::now() - chrono::Duration::hours(24 * 5 + 12)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let before = (chrono::Utc::now() - chrono::Duration::hours(12)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/shipments?limit=2&created_after={after}&created_before={before}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get(&path).await.json();
        for s in page["data"].as_array().expect("data") {
            seen.push(s["reference"].as_str().expect("reference").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (1..=5).map(|d| format!("CONSOLE-RANGE-{d}")).collect();
    assert_eq!(seen, expected, "every shipment in range once, newest first");

    let c = Console::signed_in(&app, &app.key).await;
    let page = c.get(&format!("/console/shipments?created_after={after}&created_before={before}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let positions: Vec<usize> = expected.iter().map(|r| page.text.find(r.as_str()).expect("listed")).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "newest first");
    assert!(!page.text.contains("CONSOLE-RANGE-0") && !page.text.contains("CONSOLE-RANGE-6"));
}
