//! Trackings: create, get, update, list, lifecycle, retrack, complete, delete (API 2024-04).

use super::*;

#[tokio::test]
async fn create_answers_201_with_the_2024_04_tracking_model() {
    let api = api().await;
    let a = api
        .create(json!({
            "tracking_number": "RA123456789CN", "slug": "ecms", "title": "Order 1001", "order_id": "1001",
            "order_promised_delivery_date": "2024-05-10", "emails": ["buyer@example.com"],
            "destination_country_iso3": "USA", "custom_fields": {"channel": "web"},
            "next_couriers": [{"slug": "usps", "tracking_number": "9400111899223100001234"}]
        }))
        .await;
    assert_eq!((a.status, a.body["meta"].clone()), (201, json!({"code": 201})));
    let t = a.tracking();
    let keys = Answer::keys(t);
    // The 2024-04 Tracking model has 78 fields (SDK 2.0.2 models/tracking.py); 2024-10's
    // courier_estimated_delivery_date is not one of them.
    assert_eq!(keys.len(), 78);
    assert!(keys.contains("expected_delivery") && keys.contains("subtag_message") && keys.contains("order_tags"));
    assert!(!keys.contains("courier_estimated_delivery_date"));
    assert_eq!(
        (t["tag"].as_str(), t["subtag"].as_str(), t["active"].as_bool()),
        (Some("Pending"), Some("Pending_001"), Some(true))
    );
    assert_eq!(t["title"], "Order 1001");
    assert_eq!(t["courier_destination_country_iso3"], "USA");
    assert_eq!(
        t["next_couriers"],
        json!([{"slug": "usps", "tracking_number": "9400111899223100001234", "source": null}])
    );
    let id = t["id"].as_str().unwrap();
    assert!(id.len() == 24 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    assert_eq!(api.sim.tracking_count(), 1);

    // Without a slug the account's first courier is detected; the title defaults to the number.
    let b = api.create(json!({"tracking_number": "ECMS0000000002"})).await;
    assert_eq!((b.tracking()["slug"].as_str(), b.tracking()["title"].as_str()), (Some("ecms"), Some("ECMS0000000002")));
}

#[tokio::test]
async fn create_refuses_what_aftership_refuses() {
    let api = api().await;
    api.create_id("RA123456789CN").await;
    // 4003: same slug and number again, HTTP 400.
    assert_error(
        &api.create(json!({"tracking_number": "RA123456789CN", "slug": "ecms"})).await,
        400,
        4003,
        "BadRequest",
    );
    // 4006: the body forgot the {"tracking": ...} wrapper.
    let a = api.call(Method::POST, "/trackings", Some(json!({"tracking_number": "RA000000001CN"}))).await;
    assert_error(&a, 400, 4006, "BadRequest");
    assert_error(&api.create(json!({"slug": "ecms"})).await, 400, 4007, "BadRequest");
    assert_error(&api.create(json!({"tracking_number": "abc"})).await, 400, 4005, "BadRequest");
    assert_error(&api.create(json!({"tracking_number": "1".repeat(101)})).await, 400, 4005, "BadRequest");
    assert_error(&api.create(json!({"tracking_number": "AB\u{7}1234"})).await, 400, 4017, "BadRequest");
    assert_error(
        &api.create(json!({"tracking_number": "RA000000002CN", "slug": "DHL"})).await,
        400,
        4010,
        "BadRequest",
    );
    assert_error(
        &api.create(json!({"tracking_number": "RA000000002CN", "slug": "nope"})).await,
        400,
        4010,
        "BadRequest",
    );
    // A field of a later version, or a wrong type: schema validation error naming it.
    let a = api.create(json!({"tracking_number": "RA000000003CN", "courier_estimated_delivery_date": {}})).await;
    assert_error(&a, 400, 400, "BadRequest");
    assert!(a.body["meta"]["message"].as_str().unwrap().contains("courier_estimated_delivery_date"));
    let a = api.create(json!({"tracking_number": "RA000000003CN", "title": 7})).await;
    assert_error(&a, 400, 400, "BadRequest");
    assert_error(
        &api.create(json!({"tracking_number": "RA000000003CN", "order_promised_delivery_date": "10/05/2024"})).await,
        400,
        4008,
        "BadRequest",
    );
    let resp = api
        .http
        .post(format!("{}/tracking/2024-04/trackings", api.mount))
        .header("as-api-key", KEY)
        .header("content-type", "application/json")
        .body("{\"tracking\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["meta"]["code"], 4001);
    let oversized = json!({"tracking": {"tracking_number": "RA000000004CN", "note": "x".repeat(1 << 20)}});
    assert_error(&api.call(Method::POST, "/trackings", Some(oversized)).await, 400, 4001, "BadRequest");
    assert_eq!(api.sim.tracking_count(), 1);
}

#[tokio::test]
async fn auth_and_versions_answer_in_the_meta_envelope() {
    let api = api().await;
    for key in [None, Some("wrong")] {
        let a = api.send(Method::GET, "/tracking/2024-04/trackings", key, None).await;
        assert_error(&a, 401, 401, "Unauthorized");
        assert!(a.headers.contains_key("x-ratelimit-limit"));
    }
    for path in [
        "/tracking/2024-10/trackings",
        "/tracking/2025-01/trackings",
        "/v4/trackings",
        "/tracking/2024-04/couriers/x/y/z",
    ] {
        let a = api.send(Method::GET, path, Some(KEY), None).await;
        assert_error(&a, 404, 404, "NotFound");
    }
    assert_eq!(api.sim.stats().unauthorized, 2);
}

#[tokio::test]
async fn get_by_id_and_slug_with_fields_and_lang() {
    let api = api().await;
    let id = api.create_id("RA123456789CN").await;
    let a = api.call(Method::GET, &format!("/trackings/{id}"), None).await;
    assert_eq!((a.status, a.tracking()["id"].as_str()), (200, Some(id.as_str())));
    let a = api.call(Method::GET, &format!("/trackings/{id}?fields=title,tag&lang=en"), None).await;
    let keys: Vec<String> = Answer::keys(a.tracking()).into_iter().collect();
    assert_eq!(keys, ["id", "slug", "tag", "title", "tracking_number"]);
    assert_error(
        &api.call(Method::GET, &format!("/trackings/{id}?fields=courier_estimated_delivery_date"), None).await,
        400,
        4008,
        "BadRequest",
    );
    assert_error(&api.call(Method::GET, &format!("/trackings/{id}?lang=xx"), None).await, 400, 4008, "BadRequest");
    let a = api.call(Method::GET, "/trackings/ecms/RA123456789CN", None).await;
    assert_eq!(a.tracking()["id"].as_str(), Some(id.as_str()));
    assert_error(&api.call(Method::GET, "/trackings/ecms/RA000000000CN", None).await, 404, 4004, "BadRequest");
    assert_error(&api.call(Method::GET, "/trackings/not-a-tracking-id", None).await, 400, 4015, "BadRequest");
    assert_error(
        &api.call(Method::GET, &format!("/trackings/{}", "z".repeat(24)), None).await,
        404,
        4004,
        "BadRequest",
    );
}

#[tokio::test]
async fn update_sets_what_the_2024_04_update_models_allow() {
    let api = api().await;
    let id = api.create_id("RA123456789CN").await;
    api.create_id("1234567890").await;
    let put = |path: String, t: Value| {
        let api = &api;
        async move { api.call(Method::PUT, &path, Some(json!({ "tracking": t }))).await }
    };
    let by_id = format!("/trackings/{id}");
    let a = put(
        by_id.clone(),
        json!({"note": "leave at door", "emails": ["a@example.com"], "shipment_type": "box", "order_id": "1001"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        (a.tracking()["note"].as_str(), a.tracking()["shipment_type"].as_str()),
        (Some("leave at door"), Some("box"))
    );
    // Fields not given stay; null clears.
    let a = put(by_id.clone(), json!({"title": "Gift", "order_id": null})).await;
    assert_eq!((a.tracking()["note"].as_str(), a.tracking()["order_id"].clone()), (Some("leave at door"), Value::Null));
    // The legacy by-slug model has no shipment_type; neither model has tracking_number.
    assert_error(
        &put("/trackings/ecms/RA123456789CN".into(), json!({"shipment_type": "box"})).await,
        400,
        400,
        "BadRequest",
    );
    assert_error(&put(by_id.clone(), json!({"tracking_number": "X1234"})).await, 400, 400, "BadRequest");
    assert_error(&put(by_id.clone(), json!({"smses": ["1", "2", "3", "4"]})).await, 400, 4008, "BadRequest");
    // Moving to a slug where that number already exists would duplicate it; elsewhere it moves.
    let a = api.create(json!({"tracking_number": "RA123456789CN", "slug": "dhl"})).await;
    assert_eq!(a.status, 201);
    assert_error(&put(by_id.clone(), json!({"slug": "dhl"})).await, 400, 4003, "BadRequest");
    let a = put(by_id.clone(), json!({"slug": "fedex"})).await;
    assert_eq!(a.tracking()["slug"], "fedex");
    assert_eq!(api.call(Method::GET, "/trackings/fedex/RA123456789CN", None).await.status, 200);
    assert_error(&api.call(Method::GET, "/trackings/ecms/RA123456789CN", None).await, 404, 4004, "BadRequest");
}

#[tokio::test]
async fn list_pages_the_2024_04_way() {
    let api = api().await;
    for n in ["RA000000001CN", "RA000000002CN", "RA000000003CN"] {
        api.create_id(n).await;
    }
    let a = api.call(Method::GET, "/trackings?page=2&limit=2", None).await;
    let d = &a.body["data"];
    assert_eq!((d["page"].as_i64(), d["limit"].as_i64(), d["count"].as_i64()), (Some(2), Some(2), Some(3)));
    // Newest first: page 2 of 2 holds the first one created.
    assert_eq!(d["trackings"].as_array().unwrap().len(), 1);
    assert_eq!(d["trackings"][0]["tracking_number"], "RA000000001CN");
    // 2024-04 paging is page/limit/count, not 2024-10's pagination/cursor.
    assert!(d.get("pagination").is_none());
    let a = api.call(Method::GET, "/trackings?keyword=000000002&tag=Pending&slug=ecms", None).await;
    assert_eq!(a.body["data"]["count"], 1);
    assert_eq!(a.body["data"]["tag"], "Pending");
    assert_error(&api.call(Method::GET, "/trackings?limit=201", None).await, 400, 4008, "BadRequest");
    assert_error(&api.call(Method::GET, "/trackings?tag=Lost", None).await, 400, 4008, "BadRequest");
    assert_error(&api.call(Method::GET, "/trackings?origin=CN", None).await, 400, 4008, "BadRequest");
}

#[tokio::test]
async fn lifecycle_checkpoints_and_last_checkpoint() {
    let api = api().await;
    let a = api
        .create(json!({"tracking_number": "RA123456789CN", "slug": "ecms", "origin_city": "Shenzhen",
                       "origin_country_iso3": "CHN", "destination_city": "New York", "customer_name": "Ada"}))
        .await;
    let id = a.tracking()["id"].as_str().unwrap().to_owned();
    let pending = api.call(Method::GET, &format!("/last_checkpoint/{id}"), None).await;
    assert_eq!(
        (pending.body["data"]["tag"].as_str(), pending.body["data"]["checkpoint"].clone()),
        (Some("Pending"), json!({}))
    );
    let mut subtags = Vec::new();
    for _ in 0..4 {
        let t = api.sim.advance(&id).unwrap();
        subtags.push(t["subtag"].as_str().unwrap().to_owned());
    }
    assert_eq!(subtags, ["InfoReceived_001", "InTransit_001", "OutForDelivery_001", "Delivered_001"]);
    assert!(api.sim.advance(&id).is_err(), "a delivered tracking moves no further");
    let t = api.call(Method::GET, &format!("/trackings/{id}"), None).await;
    let t = t.tracking();
    assert_eq!(
        (t["tag"].as_str(), t["active"].as_bool(), t["signed_by"].as_str()),
        (Some("Delivered"), Some(false), Some("Ada"))
    );
    assert!(
        t["expected_delivery"].is_string()
            && t["shipment_pickup_date"].is_string()
            && t["shipment_delivery_date"].is_string()
    );
    let cps = t["checkpoints"].as_array().unwrap();
    assert_eq!(cps.len(), 4);
    assert_eq!(Answer::keys(&cps[0]).len(), 16, "the 2024-04 Checkpoint model has 16 fields");
    assert_eq!((cps[0]["city"].as_str(), cps[3]["city"].as_str()), (Some("Shenzhen"), Some("New York")));
    assert!(cps[0].get("coordinates").is_none() && cps[0].get("coordinate").is_some());

    let last = api.call(Method::GET, "/last_checkpoint/ecms/RA123456789CN?fields=city,tag", None).await;
    let d = &last.body["data"];
    assert_eq!(
        Answer::keys(d),
        ["checkpoint", "id", "slug", "subtag", "subtag_message", "tag", "tracking_number"].map(String::from).into()
    );
    assert_eq!(d["checkpoint"], json!({"city": "New York", "tag": "Delivered"}));
    assert_error(
        &api.call(Method::GET, &format!("/last_checkpoint/{id}?fields=title"), None).await,
        400,
        4008,
        "BadRequest",
    );
}

#[tokio::test]
async fn retrack_only_inactive_trackings_three_times() {
    let api = api().await;
    let id = api.create_id("RA123456789CN").await;
    let retrack = format!("/trackings/{id}/retrack");
    // 4013: still active.
    assert_error(&api.call(Method::POST, &retrack, None).await, 400, 4013, "BadRequest");
    for _ in 0..3 {
        api.sim.expire(&id).unwrap();
        assert_eq!(api.sim.tracking(&id).unwrap()["tag"], "Expired");
        let a = api.call(Method::POST, &retrack, None).await;
        assert_eq!(a.status, 200, "{}", a.body);
        // A partial tracking (PartialUpdateTracking): ids, number, slug, additional fields, active; no tag.
        assert_eq!(Answer::keys(a.tracking()).len(), 11);
        assert_eq!(a.tracking()["active"], true);
        assert!(a.tracking().get("tag").is_none());
    }
    api.sim.expire(&id).unwrap();
    // 4016: the fourth retrack.
    assert_error(&api.call(Method::POST, &retrack, None).await, 400, 4016, "BadRequest");
    // By slug and number too.
    let other = api.create_id("1234567890").await;
    api.sim.expire(&other).unwrap();
    assert_eq!(api.call(Method::POST, "/trackings/ecms/1234567890/retrack", None).await.status, 200);
}

#[tokio::test]
async fn mark_as_completed_sets_the_seeds_tags() {
    let api = api().await;
    for (n, (reason, tag, subtag)) in [
        ("DELIVERED", "Delivered", "Delivered_001"),
        ("LOST", "Exception", "Exception_013"),
        ("RETURNED_TO_SENDER", "Exception", "Exception_011"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = api.create_id(&format!("RA00000000{n}CN")).await;
        let a = api
            .call(Method::POST, &format!("/trackings/{id}/mark-as-completed"), Some(json!({"reason": reason})))
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        let t = a.tracking();
        assert_eq!(
            (t["tag"].as_str(), t["subtag"].as_str(), t["active"].as_bool()),
            (Some(tag), Some(subtag), Some(false))
        );
        assert_eq!(t["return_to_sender"], reason == "RETURNED_TO_SENDER");
    }
    let id = api.create_id("RA123456789CN").await;
    let path = format!("/trackings/{id}/mark-as-completed");
    assert_error(&api.call(Method::POST, &path, Some(json!({"reason": "STOLEN"}))).await, 400, 4008, "BadRequest");
    assert_error(&api.call(Method::POST, &path, Some(json!({}))).await, 400, 4009, "BadRequest");
    assert_error(
        &api.call(Method::POST, &path, Some(json!({"reason": "LOST", "note": "x"}))).await,
        400,
        400,
        "BadRequest",
    );
    let a = api
        .call(Method::POST, "/trackings/ecms/RA123456789CN/mark-as-completed", Some(json!({"reason": "LOST"})))
        .await;
    assert_eq!(a.tracking()["subtag"], "Exception_013");
}

#[tokio::test]
async fn delete_answers_a_partial_tracking() {
    let api = api().await;
    let id = api.create_id("RA123456789CN").await;
    let a = api.call(Method::DELETE, &format!("/trackings/{id}"), None).await;
    assert_eq!(a.status, 200);
    // PartialDeleteTracking: no tag, no active.
    assert_eq!(Answer::keys(a.tracking()).len(), 10);
    assert!(a.tracking().get("tag").is_none() && a.tracking().get("active").is_none());
    assert_eq!(a.tracking()["id"].as_str(), Some(id.as_str()));
    assert_error(&api.call(Method::GET, &format!("/trackings/{id}"), None).await, 404, 4004, "BadRequest");
    assert_error(&api.call(Method::DELETE, &format!("/trackings/{id}"), None).await, 404, 4004, "BadRequest");
    api.create_id("1234567890").await;
    assert_eq!(api.call(Method::DELETE, "/trackings/ecms/1234567890", None).await.status, 200);
    assert_eq!(api.sim.tracking_count(), 0);
}
