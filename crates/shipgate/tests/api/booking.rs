//! Booking through e-Courier, checked at the simulator.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn booking_logs_in_then_saves_the_order_with_our_order_number() {
    let app = spawn_app().await;
    let r = app.post("/v1/shipments", &app.shipment_body("SO-1001")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let shipment = r.json();
    let id = shipment["id"].as_str().expect("id");
    assert_eq!(r.header("location").as_deref(), Some(format!("/v1/shipments/{id}").as_str()));
    assert_eq!(shipment["booking"]["state"], "booked");
    assert_eq!(shipment["booking"]["attempts"], 1);
    assert_eq!(shipment["status"], "info_received");
    let order_number = shipment["carrier_reference"].as_str().expect("order number");
    assert_eq!(shipment["tracking_number"], order_number);

    let calls = app.sim.requests();
    let methods: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(methods, ["Login", "SaveOrder"]);
    let guid = app.sim.requests()[0].clone();
    assert!(guid.user_guid.is_none(), "Login carries no token");
    // The simulator's log redacts the password; the Login it accepted proves it was right.
    assert_eq!(guid.body, json!({"website": "demo", "username": "demo", "password": "<redacted>"}));
    assert_eq!(app.sim.stats().logins, 1);
    let save = &calls[1];
    let issued = save.user_guid.clone().expect("SaveOrder carries the UserGUID header");
    assert!(issued.starts_with('{') && issued.ends_with('}'), "{issued}");
    let order = &save.body["Order"];
    assert_eq!(order["CustomerCode"], "DEMO");
    assert_eq!(order["OrderNumber"], order_number);
    assert_eq!(order["Service"], "Route");
    assert_eq!(order["OtherReference"], "SO-1001");
    assert_eq!(order["DeclaredValue"], "120.00");
    let stops = order["Stops"]["Stop"].as_array().expect("stops");
    assert_eq!(stops.len(), 2);
    assert_eq!(stops[0]["StopType"], "P");
    assert_eq!(stops[0]["ScheduledDateTime"], "11/23/2026 6:00:00 AM");
    assert_eq!(stops[0]["ScheduledDateTimeTZ"], "EST");
    assert_eq!(stops[0]["Zip"], "32804");
    assert_eq!(stops[1]["StopType"], "D");
    let pickups: Vec<&Value> =
        stops[0]["OrderStopPieces"]["OrderStopPiece"].as_array().expect("pieces").iter().collect();
    assert_eq!(pickups.len(), 2, "both pieces picked up at stop 1");
    assert!(pickups.iter().all(|p| p["PieceAction"] == "P"));
    let pieces = order["Pieces"]["Piece"].as_array().expect("pieces");
    assert_eq!(pieces[0]["Reference"], "test1234barcode");
    assert_eq!(pieces[0]["Weight"], "2.5");
    assert_eq!(pieces[1]["Pieces"], "5");
    // Every scalar is a string, as the contract says (the simulator rejects anything else).
    assert!(app.sim.order(order_number).is_some(), "the order exists at the carrier");

    // History says who did what.
    let history = app.get(&format!("/v1/shipments/{id}/history")).await.json();
    let actions: Vec<&str> =
        history["data"].as_array().expect("data").iter().map(|h| h["action"].as_str().unwrap_or("")).collect();
    assert_eq!(actions, ["created", "booked"]);
    assert_eq!(history["data"][0]["actor_type"], "api_key");
}

#[tokio::test]
async fn every_exchange_is_kept_with_secrets_redacted() {
    let app = spawn_app().await;
    let shipment = app.book("SO-EX").await;
    let id = shipment["id"].as_str().expect("id");
    let r = app.get(&format!("/v1/shipments/{id}/exchanges")).await;
    assert_eq!(r.status, 200);
    let body = r.json();
    let ops: Vec<&str> =
        body["data"].as_array().expect("data").iter().map(|x| x["operation"].as_str().unwrap_or("")).collect();
    assert_eq!(ops, ["Login", "SaveOrder"]);
    let text = String::from_utf8_lossy(&r.bytes);
    assert!(!text.contains("demo-pass"), "password leaked: {text}");
    let guid = app.sim.requests()[1].user_guid.clone().expect("guid");
    assert!(!text.contains(guid.trim_matches(|c| c == '{' || c == '}')), "UserGUID leaked");
    assert!(text.contains("[REDACTED]"));
    assert_eq!(body["data"][1]["response_status"], 200);
    assert!(body["data"][1]["url"].as_str().expect("url").ends_with("/software/xml/ecJsonPost.asmx/SaveOrder"));

    // No plaintext secret anywhere in the database (canary scan over every text column).
    let dump: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(t)::text FROM (SELECT * FROM connections) t
         UNION ALL SELECT row_to_json(t)::text FROM (SELECT * FROM carrier_exchanges) t
         UNION ALL SELECT row_to_json(t)::text FROM (SELECT * FROM shipment_history) t
         UNION ALL SELECT row_to_json(t)::text FROM (SELECT * FROM api_keys) t",
    )
    .fetch_all(&app.db)
    .await
    .expect("dump");
    let all = dump.join("\n");
    assert!(!all.contains("demo-pass"), "password in a column");
    assert!(!all.contains(guid.trim_matches(|c| c == '{' || c == '}')), "token in a column");
    let secret_part = app.key.rsplit('_').next().expect("secret");
    assert!(!all.contains(secret_part), "API key secret in a column");
}

#[tokio::test]
async fn a_quote_prices_the_order_and_books_nothing() {
    let app = spawn_app().await;
    let r = app.post("/v1/quotes", &app.shipment_body("Q-1")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let q = r.json();
    // The simulator's price (docs/carriers/ecourier-simulator.md): $40.00 plus $5.00 per
    // piece beyond the first; the booking has 1 + 5 pieces. AmountCharged "$65.00" → USD.
    assert_eq!(q["quote"]["amount"], json!({"amount": "65.00", "currency": "USD"}));
    assert_eq!(q["quote"]["service"], "Route");
    // e-Courier writes DueDateTime with a two-digit year (seed: "12/05/20 11:00").
    let due_raw = q["quote"]["due_at_raw"].as_str().expect("due raw");
    assert_eq!((due_raw.len(), &due_raw[2..3], &due_raw[5..6]), (14, "/", "/"), "{due_raw}");
    assert!(q["quote"]["due_at"].as_str().is_some_and(|d| d.starts_with("20")), "two-digit year parsed: {q}");
    assert_eq!(app.sim.order_count(), 0);
    assert_eq!(app.sim_calls("QuoteOrder"), 1);
    let shipments = app.get("/v1/shipments").await.json();
    assert_eq!(shipments["data"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn update_is_forwarded_and_refused_changes_are_not_kept() {
    let app = spawn_app().await;
    let s = app.book("SO-UPD").await;
    let id = s["id"].as_str().expect("id");
    let number = s["carrier_reference"].as_str().expect("number");
    let r = app
        .request(
            "PATCH",
            &format!("/v1/shipments/{id}"),
            Some(&app.key),
            Some(&json!({"notes": "gate code 1234", "metadata": {"a": "b"}})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["notes"], "gate code 1234");
    assert_eq!(app.sim_calls("SaveOrder"), 2);
    // GetJsonOrder renders order fields as attributes (`@Notes`): the carrier kept it.
    assert_eq!(app.sim.order(number).expect("order")["Order"]["@Notes"], "gate code 1234");

    app.sim.advance(number).expect("advance");
    app.sim.advance(number).expect("advance"); // picked up: e-Courier refuses changes now
    let r = app
        .request("PATCH", &format!("/v1/shipments/{id}"), Some(&app.key), Some(&json!({"notes": "too late"})), &[])
        .await;
    let p = r.problem(409, "carrier_conflict");
    assert_eq!(p["detail"], "Order Unable to Modify");
    let now = app.get(&format!("/v1/shipments/{id}")).await.json();
    assert_eq!(now["notes"], "gate code 1234", "refused change not kept");
}

#[tokio::test]
async fn cancel_sends_status_x_and_a_picked_up_order_cannot_be_cancelled() {
    let app = spawn_app().await;
    let s = app.book("SO-CAN").await;
    let id = s["id"].as_str().expect("id");
    let number = s["carrier_reference"].as_str().expect("number");
    let r = app.post(&format!("/v1/shipments/{id}/cancel"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let body = r.json();
    assert_eq!(body["booking"]["state"], "cancelled");
    assert_eq!((body["status"].as_str(), body["subtag"].as_str()), (Some("exception"), Some("Exception_020")));
    assert_eq!(app.sim.order(number).expect("order")["Order"]["@OrderStatus"], "X");
    let saves: Vec<Value> =
        app.sim.requests().into_iter().filter(|r| r.method == "SaveOrder").map(|r| r.body).collect();
    let (booked, cancel) = (&saves[0], &saves[saves.len() - 1]);
    assert_eq!(cancel["Order"]["OrderStatus"], "X");
    // SaveOrder is create-or-update of the whole order: the cancel carries it all.
    let mut expected = booked.clone();
    expected["Order"]["OrderStatus"] = json!("X");
    assert_eq!(cancel, &expected, "the complete order as booked, only the status changed");
    // Cancelling again changes nothing and calls nobody.
    let before = app.sim_calls("SaveOrder");
    assert_eq!(app.post(&format!("/v1/shipments/{id}/cancel"), &json!({})).await.status, 200);
    assert_eq!(app.sim_calls("SaveOrder"), before);

    let s2 = app.book("SO-CAN-2").await;
    let n2 = s2["carrier_reference"].as_str().expect("number");
    app.sim.advance(n2).expect("advance");
    app.sim.advance(n2).expect("advance");
    let r = app.post(&format!("/v1/shipments/{}/cancel", s2["id"].as_str().expect("id")), &json!({})).await;
    assert_eq!(r.problem(409, "carrier_conflict")["detail"], "Order Unable to Cancel");
    let after = app.get(&format!("/v1/shipments/{}", s2["id"].as_str().expect("id"))).await.json();
    assert_eq!(after["booking"]["state"], "booked");
}
