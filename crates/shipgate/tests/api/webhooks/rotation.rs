//! Secret rotation with an overlap (Standard Webhooks: several signatures per delivery).

use super::*;

// ---------- secret rotation with an overlap ----------

async fn rotate(app: &TestApp, endpoint_id: &str) -> Value {
    let r = app
        .request(
            "PATCH",
            &format!("/v1/webhook-endpoints/{endpoint_id}"),
            Some(&app.key),
            Some(&json!({"rotate_secret": true})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()
}

/// Deliver one event to `rx` and return the request it received.
async fn deliver_one(app: &TestApp, rx: &Receiver, endpoint_id: &str, reference: &str) -> Hit {
    let s = shipment(app, reference).await;
    let ids = emit(app, &s, &["shipment.status_changed"]).await;
    wait_status(app, endpoint_id, &ids[0], "succeeded").await;
    rx.hits_for(&ids[0]).pop().expect("delivered")
}

fn verifies(secret: &str, hit: &Hit) -> bool {
    standardwebhooks::Webhook::new(secret).expect("secret").verify(&hit.body, &hit.headers).is_ok()
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_for_the_overlap_then_only_the_new_one_does() {
    let (app, _w) = webhook_app("").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let id = ep["id"].as_str().expect("id").to_owned();
    let old = ep["secret"].as_str().expect("secret").to_owned();
    assert!(ep.get("previous_secret_expires_at").is_none(), "{ep}");

    let rotated = rotate(&app, &id).await;
    let new = rotated["secret"].as_str().expect("new secret").to_owned();
    assert_ne!(new, old);
    // The default overlap: 24 hours from now.
    let until = chrono::DateTime::parse_from_rfc3339(rotated["previous_secret_expires_at"].as_str().expect("until"))
        .expect("time");
    let hours = (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "{hours} h");

    // During the overlap a receiver holding either secret accepts the delivery.
    let hit = deliver_one(&app, &rx, &id, "ROT-1").await;
    assert_eq!(header(&hit.headers, "webhook-signature").split(' ').count(), 2, "two signatures");
    assert!(verifies(&old, &hit), "a receiver still on the old secret");
    assert!(verifies(&new, &hit), "a receiver already on the new secret");

    // The previous secret is sealed like the current one: not in the row in clear.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT previous_secret_enc FROM webhook_endpoints WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .expect("row");
    use base64::Engine as _;
    let raw =
        base64::engine::general_purpose::STANDARD.decode(old.strip_prefix("whsec_").expect("prefix")).expect("b64");
    assert!(!stored.windows(raw.len()).any(|w| w == raw.as_slice()));

    // The overlap ends: only the new secret signs.
    sqlx::query("UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(&id)
        .execute(&app.db)
        .await
        .expect("end the overlap");
    let hit = deliver_one(&app, &rx, &id, "ROT-2").await;
    assert_eq!(header(&hit.headers, "webhook-signature").split(' ').count(), 1);
    assert!(verifies(&new, &hit));
    assert!(!verifies(&old, &hit), "the old secret no longer verifies");
    let got = app.get(&format!("/v1/webhook-endpoints/{id}")).await.json();
    assert!(got.get("previous_secret_expires_at").is_none(), "{got}");
}

#[tokio::test]
async fn with_no_overlap_configured_the_new_secret_alone_signs_at_once() {
    let (app, _w) = webhook_app("webhook_secret_overlap_hours = 0\n").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let id = ep["id"].as_str().expect("id").to_owned();
    let old = ep["secret"].as_str().expect("secret").to_owned();
    let rotated = rotate(&app, &id).await;
    assert!(rotated.get("previous_secret_expires_at").is_none(), "{rotated}");
    let new = rotated["secret"].as_str().expect("new secret").to_owned();
    let hit = deliver_one(&app, &rx, &id, "ROT-0").await;
    assert!(verifies(&new, &hit));
    assert!(!verifies(&old, &hit));
}

// ---------- one timestamp format everywhere ----------

/// RFC 3339 in UTC with exactly six fractional digits: `2026-11-22T10:00:00.000000Z`.
fn micros_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27
        && b[26] == b'Z'
        && b[19] == b'.'
        && b[20..26].iter().all(u8::is_ascii_digit)
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

#[tokio::test]
async fn an_event_reads_the_same_in_its_webhook_and_in_v1_events() {
    let (app, _w) = webhook_app("").await;
    let rx = Receiver::start().await;
    let ep = create_endpoint(&app, json!({"url": rx.url})).await;
    let endpoint = ep["id"].as_str().expect("id").to_owned();

    // Real events (created, booked) carrying the shipment with its own timestamps, and
    // one written on a whole second (chrono would drop the fraction there).
    let booked = app.book("SAME-1").await;
    let shipment_id = booked["id"].as_str().expect("id").to_owned();
    let mut tx = shipgate::store::begin(&app.db).await.expect("tx");
    let whole = shipgate::store::events::emit(
        &mut tx,
        &app.tenant_id,
        &shipment_id,
        &[NewEvent { event_type: "shipment.status_changed", data: json!({"shipment": {"id": shipment_id}}) }],
    )
    .await
    .expect("emit");
    sqlx::query("UPDATE events SET created_at = '2026-11-22T10:00:00Z' WHERE id = $1")
        .bind(&whole[0])
        .execute(&mut *tx)
        .await
        .expect("whole second");
    tx.commit().await.expect("commit");

    let listed = app.get(&format!("/v1/events?shipment_id={shipment_id}")).await.json();
    let listed = listed["data"].as_array().expect("data").clone();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for e in &listed {
        let id = e["id"].as_str().expect("id");
        wait_status(&app, &endpoint, id, "succeeded").await;
        let hit = rx.hits_for(id).pop().expect("delivered");
        let payload: Value = serde_json::from_slice(&hit.body).expect("payload");
        assert!(micros_utc(e["timestamp"].as_str().expect("timestamp")), "{e}");
        for field in ["id", "type", "timestamp", "sequence", "data"] {
            assert_eq!(payload[field], e[field], "{field} of {id}");
        }
    }
    assert_eq!(listed[2]["timestamp"], "2026-11-22T10:00:00.000000Z");

    // The shipment inside an event and the shipment itself use the same format.
    let got = app.get(&format!("/v1/shipments/{shipment_id}")).await.json();
    for t in [&got["created_at"], &got["updated_at"], &got["booking"]["booked_at"]] {
        assert!(micros_utc(t.as_str().unwrap_or_default()), "{t}: {got}");
    }
    assert_eq!(listed[0]["data"]["shipment"]["created_at"], got["created_at"]);
    let delivery = delivery_of(&app, &endpoint, listed[0]["id"].as_str().expect("id")).await.expect("delivery");
    for field in ["created_at", "updated_at", "delivered_at"] {
        assert!(micros_utc(delivery[field].as_str().unwrap_or_default()), "{field}: {delivery}");
    }
    assert!(micros_utc(delivery["attempts"][0]["started_at"].as_str().unwrap_or_default()), "{delivery}");
}
