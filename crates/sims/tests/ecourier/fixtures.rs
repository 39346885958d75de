//! Golden fixtures: the reference's requests accepted, its answers' shapes reproduced.

use super::*;

// ---- Golden fixtures: the reference's requests accepted, its answers' shapes reproduced

#[tokio::test]
async fn login_example_is_accepted_and_answered_like_the_reference() {
    let h = start(config()).await;
    let answer = h.post("Login", None, &fixture("login.request.json")).await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_shape(&body, &fixture_json("login.response.json"), "");
    assert_eq!(body["status"], "0");
    let guid = body["UserGUID"].as_str().unwrap();
    assert!(guid.len() == 38 && guid.starts_with('{') && guid.ends_with('}'), "{guid}");
    assert_eq!(guid, guid.to_uppercase());
    assert_eq!(h.sim.stats().logins, 1);
}

#[tokio::test]
async fn refreshguid_example_answers_exactly_the_reference_answer() {
    let h = start(config()).await;
    let answer = h.post("RefreshGUID", Some(REFERENCE_GUID), &fixture("refreshguid.request.json")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), fixture_json("refreshguid.response.json"));
    // The body is ignored: the token comes from the header only.
    let answer = h.post("RefreshGUID", None, &fixture("refreshguid.request.json")).await;
    assert_eq!(answer.error(), (500, "-5".into(), status_text("-5")));
    let answer = h.post("RefreshGUID", Some(REFERENCE_GUID), "not json at all").await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn saveorder_example_is_accepted_with_either_success_body() {
    let h = start(config()).await;
    let answer = h.post("SaveOrder", Some(REFERENCE_GUID), &fixture("saveorder.request.json")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json(), fixture_json("saveorder.response.json"));
    assert_eq!(h.sim.order_count(), 1);
    // Posted without an OrderNumber, the order is numbered with its OrderID.
    let number = h.sim.order_numbers().remove(0);
    let saved = h.get_order(REFERENCE_GUID, &number).await;
    assert_eq!(saved["Order"]["@OrderNumber"], saved["Order"]["@OrderID"]);

    h.sim.set_save_order_answer(SaveOrderAnswer::StatusDescription);
    let answer = h.call("SaveOrder", Some(REFERENCE_GUID), &order("SO-2")).await;
    assert_eq!(answer.json(), fixture_json("status-codes.json")["http_200"]);
}

#[tokio::test]
async fn getjsonorder_example_answers_in_the_reference_shape() {
    let h = start(config()).await;
    assert_eq!(h.call("SaveOrder", Some(REFERENCE_GUID), &order("5648172")).await.status, 200);
    let answer = h.post("GetJsonOrder", Some(REFERENCE_GUID), &fixture("getjsonorder.request.json")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert_shape(&body, &fixture_json("getjsonorder.response.json"), "");
    assert_all_strings(&body, "");
    let o = &body["Order"];
    assert_eq!(o["@OrderNumber"], "5648172");
    assert_eq!(o["@OrderStatus"], "N");
    assert_eq!(o["@UserGUID"], REFERENCE_GUID);
    assert!(is_ec_datetime(o["@CreateDate"].as_str().unwrap()), "{}", o["@CreateDate"]);
    // What was ordered, as XML-derived JSON: @ attributes, one-or-many lists.
    assert_eq!(o["@CustomerCode"], "Alpha");
    assert_eq!(o["@Service"], "Route");
    let stops = o["Stops"]["Stop"].as_array().expect("two stops: an array");
    assert_eq!(stops[0]["@StopType"], "P");
    assert_eq!(stops[0]["@ScheduledDateTime"], "11/13/2019 6:00:00 AM");
    assert_eq!(stops[0]["OrderStopPieces"]["OrderStopPiece"], json!({"@PieceAction": "P", "@Sequence": "1"}));
    assert_eq!(o["Pieces"]["Piece"].as_array().unwrap()[1]["@Reference"], "test1235barcode");
    let events = many(&o["OrderEvents"]["OrderEvent"]);
    assert_eq!(events.len(), 1);
    assert!(o["OrderEvents"]["OrderEvent"].is_object(), "a single event is an object");
    assert!(o.get("Jobs").is_none(), "no Job before dispatch");
    assert_eq!(h.sim.order("5648172").as_ref(), Some(&body));
}

#[tokio::test]
async fn quoteorder_example_is_read_as_two_stops_and_answered_like_the_reference() {
    let h = start(config()).await;
    let answer = h.post("QuoteOrder", Some(REFERENCE_GUID), &fixture("quoteorder.request.json")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert_shape(&body, &fixture_json("quoteorder.response.json"), "");
    assert_all_strings(&body, "");
    let q = &body["Order"];
    assert_eq!(q["AmountCharged"], "$40.00");
    assert_eq!(q["Service"], "Route");
    assert_eq!(q["Pieces"], fixture_json("quoteorder.response.json")["Order"]["Pieces"]);
    assert_eq!(q["ReadyDateTime"], "11/13/2019 06:00");
    assert_eq!(q["DueDateTime"], "11/13/19 17:00");
    assert_eq!(q["Stops"]["Stop"].as_array().map(Vec::len), Some(2), "the repeated Stop key is two stops");
    assert_eq!(h.sim.order_count(), 0, "a quote saves nothing");

    // What a map-building JSON reader would see (the last Stop only) is refused.
    let last_only: Value = serde_json::from_str(&fixture("quoteorder.request.json")).unwrap();
    let (status, code, text) = h.call("QuoteOrder", Some(REFERENCE_GUID), &last_only).await.error();
    assert_eq!((status, code.as_str()), (500, "-4"));
    assert!(text.contains("no pickup stop"), "{text}");

    // Saved, the same body is a two-stop order.
    let mut body: String = fixture("quoteorder.request.json");
    body = body.replacen("\"CustomerCode\"", "\"OrderNumber\": \"Q-1\",\n\"CustomerCode\"", 1);
    assert_eq!(h.post("SaveOrder", Some(REFERENCE_GUID), &body).await.status, 200);
    let stops = h.sim.order("Q-1").unwrap()["Order"]["Stops"]["Stop"].clone();
    assert_eq!(many(&stops).len(), 2);
}

#[tokio::test]
async fn error_answers_carry_the_reference_codes_and_texts() {
    let h = start(config()).await;
    let guid = REFERENCE_GUID;
    // -2: not JSON (the reference's own typographic quotes are not JSON either).
    let a = h.post("SaveOrder", Some(guid), "{“Order”: {}}").await;
    assert_eq!(a.error(), (500, "-2".into(), status_text("-2")));
    assert!(a.content_type.starts_with("application/json"));
    // -4: unknown order.
    let a = h.call("GetJsonOrder", Some(guid), &json!({"OrderNumber": "nope"})).await;
    assert_eq!(a.error(), (500, "-4".into(), status_text("-4")));
    // -5: no token, an unknown token, an empty one.
    for token in [None, Some("{00000000-1111-2222-3333-444444444444}"), Some("")] {
        let a = h.call("GetJsonOrder", token, &json!({"OrderNumber": "1"})).await;
        assert_eq!(a.error(), (500, "-5".into(), status_text("-5")), "{token:?}");
    }
    // -1, -3, -6 (and -5 again) as faults, with the reference's texts.
    for code in [-1, -3, -6, -5] {
        h.sim.fail_next(Some("SaveOrder"), 1, SimFault::Status(code));
        let a = h.call("SaveOrder", Some(guid), &order("E-1")).await;
        assert_eq!(a.error(), (500, code.to_string(), status_text(&code.to_string())));
    }
    assert_eq!(h.sim.order_count(), 0, "a faulted call does nothing");
    // The braces are optional and the case does not matter in the header.
    let bare = REFERENCE_GUID.trim_matches(|c| c == '{' || c == '}').to_lowercase();
    assert_eq!(h.call("SaveOrder", Some(&bare), &order("E-2")).await.status, 200);
}

#[tokio::test]
async fn http_409_texts_come_from_the_business_rules() {
    let h = start(config()).await;
    let guid = REFERENCE_GUID;
    let expected = fixture_json("status-codes.json")["http_409"].clone();
    assert_eq!(h.call("SaveOrder", Some(guid), &order("C-1")).await.status, 200);
    h.sim.advance("C-1").unwrap();
    h.sim.advance("C-1").unwrap();
    let mut changed = order("C-1");
    changed["Order"]["Notes"] = json!("leave at the door");
    let a = h.call("SaveOrder", Some(guid), &changed).await;
    assert_eq!(a.error(), (409, "-4".into(), expected[1].as_str().unwrap().into()));
    // The same order sent again (a retry) changes nothing and succeeds.
    assert_eq!(h.call("SaveOrder", Some(guid), &order("C-1")).await.status, 200);
    h.sim.advance("C-1").unwrap();
    let mut cancel = order("C-1");
    cancel["Order"]["OrderStatus"] = json!("X");
    let a = h.call("SaveOrder", Some(guid), &cancel).await;
    assert_eq!(a.error(), (409, "-4".into(), expected[0].as_str().unwrap().into()));
    assert_eq!(h.sim.order("C-1").unwrap()["Order"]["@OrderStatus"], "A");
}
