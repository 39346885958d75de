//! e-Courier through the API against the reference's own answers: a scripted carrier
//! answers with the examples of the e-Courier API reference (`contract/fixtures/ecourier/`)
//! and with orders written in the reference's shape (progress on
//! `Jobs.Job.JobStops.JobStop`, attributes with `@`), not with our simulator's habits.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contract/fixtures/ecourier/", $name))
    };
}

fn fixture_json(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

#[derive(Default)]
struct Script {
    /// (method, UserGUID header, body) of every call.
    calls: Vec<(String, Option<String>, Value)>,
    /// What GetJsonOrder answers; `None`: -4 "Order Not Found".
    order: Option<Value>,
    /// The next SaveOrder answers this HTTP 500 body instead.
    save_fault: Option<Value>,
}

/// A carrier that answers with the reference's examples.
#[derive(Clone, Default)]
struct Scripted(Arc<Mutex<Script>>);

impl Scripted {
    fn calls(&self, method: &str) -> Vec<(Option<String>, Value)> {
        let s = self.0.lock().expect("lock");
        s.calls.iter().filter(|c| c.0 == method).map(|c| (c.1.clone(), c.2.clone())).collect()
    }
    fn methods(&self) -> Vec<String> {
        self.0.lock().expect("lock").calls.iter().map(|c| c.0.clone()).collect()
    }
    fn set_order(&self, order: Option<Value>) {
        self.0.lock().expect("lock").order = order;
    }
}

fn error(status: &str, description: &str) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"status": status, "statusdescription": description})))
        .into_response()
}

fn ok(text: &str) -> Response {
    (StatusCode::OK, axum::Json(fixture_json(text))).into_response()
}

async fn answer(State(s): State<Scripted>, Path(method): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let guid = headers.get("UserGUID").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut st = s.0.lock().expect("lock");
    st.calls.push((method.clone(), guid.clone(), body.clone()));
    if method != "Login" && guid.as_deref() != Some("{011114A4-5391-46E0-B576-9835485F5731}") {
        return error("-5", "No UserGUID Received");
    }
    match method.as_str() {
        "Login" => ok(fixture!("login.response.json")),
        "RefreshGUID" => ok(fixture!("refreshguid.response.json")),
        "SaveOrder" => {
            if let Some(fault) = st.save_fault.take() {
                return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(fault)).into_response();
            }
            // SaveOrder is validated like a create (reference, status -4).
            if body["Order"].get("Stops").is_none() {
                return error("-4", "Stops element missing");
            }
            ok(fixture!("saveorder.response.json"))
        }
        "QuoteOrder" => ok(fixture!("quoteorder.response.json")),
        "GetJsonOrder" => match &st.order {
            Some(o) => (StatusCode::OK, axum::Json(o.clone())).into_response(),
            None => error("-4", "Order Not Found"),
        },
        _ => (StatusCode::NOT_FOUND, "Unknown web method").into_response(),
    }
}

/// The scripted carrier and a connection to it; `auth`: the connection's `auth` setting.
async fn start(app: &TestApp, auth: Option<&str>) -> (Scripted, String) {
    let script = Scripted::default();
    let router = axum::Router::new()
        .route("/example/software/xml/ecJsonPost.asmx/{method}", axum::routing::post(answer))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}/example", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let login: Value = fixture_json(fixture!("login.request.json"));
    let mut settings = json!({"customer_code": "Alpha", "utc_offset": "-05:00"});
    if let Some(a) = auth {
        settings["auth"] = json!(a);
    }
    let connection = app
        .create_connection(json!({
            "carrier": "ecourier", "name": "e-Courier as the reference answers", "base_url": base,
            "credentials": login, "settings": settings
        }))
        .await;
    (script, connection)
}

/// The reference examples' order: James Madison to Bryan Moore, Orlando, 11/13/2019.
fn example_order(connection: &str, reference: &str, parcels: Value) -> Value {
    let stop = |seq: u32, kind: &str, name: &str, line1: &str, at: &str| {
        json!({"sequence": seq, "type": kind, "name": name, "phone": "3015551212", "scheduled_at": at,
               "address": {"line1": line1, "city": "Orlando", "state": "FL", "postal_code": "32804", "country": "US"}})
    };
    json!({
        "connection_id": connection, "reference": reference, "service": "Route",
        "stops": [
            stop(1, "pickup", "James Madison", "2251 Orange Blossom Trail", "2019-11-13T06:00:00-05:00"),
            stop(2, "delivery", "Bryan Moore", "2253 Orange Blossom Trail", "2019-11-13T17:00:00-05:00")
        ],
        "parcels": parcels
    })
}

fn two_parcels() -> Value {
    json!([{"reference": "test1234barcode", "quantity": 1}, {"reference": "test1235barcode", "quantity": 5}])
}

fn non_string_scalars(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::String(_) => {}
        Value::Object(m) => m.iter().for_each(|(k, v)| non_string_scalars(v, &format!("{path}.{k}"), out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| non_string_scalars(v, &format!("{path}[{i}]"), out)),
        other => out.push(format!("{path} = {other}")),
    }
}

/// The reference's GetJsonOrder example, completed with what the reference's order model
/// lists: the ordered stops, one Job whose JobStops carry the progress, and events.
fn order_in_reference_shape(pickup: Value, delivery: Value, events: Value) -> Value {
    let mut o = fixture_json(fixture!("getjsonorder.response.json"));
    let order = o["Order"].as_object_mut().expect("order");
    order.insert("@OrderStatus".into(), json!("A"));
    order.insert(
        "Stops".into(),
        json!({"Stop": [
            {"@Sequence": "1", "@StopType": "P", "@Name": "James Madison", "@Address": "2251 Orange Blossom Trail",
             "@City": "Orlando", "@State": "FL", "@Zip": "32804", "@Country": "USA"},
            {"@Sequence": "2", "@StopType": "D", "@Name": "Bryan Moore", "@Address": "2253 Orange Blossom Trail",
             "@City": "Orlando", "@State": "FL", "@Zip": "32804", "@Country": "USA"}
        ]}),
    );
    order.insert(
        "Jobs".into(),
        json!({"Job": {"@Sequence": "1", "@JobID": "88", "@Service": "Route", "@RouteNumber": "",
            "Drivers": {"Driver": {"@Sequence": "1", "@DriverCode": "D101"}},
            "JobStops": {"JobStop": [pickup, delivery]}}}),
    );
    order.insert("OrderEvents".into(), events);
    o
}

fn job_stop(kind: &str, address: &str, progress: Value) -> Value {
    let mut js = json!({"@StopType": kind, "@Address": address, "@City": "Orlando", "@Zip": "32804",
        "JobStopPieces": {"JobStopPiece": {"@Sequence": "1", "@PieceAction": kind}}});
    if let (Some(m), Some(p)) = (js.as_object_mut(), progress.as_object()) {
        m.extend(p.clone());
    }
    js
}

#[tokio::test]
async fn the_reference_answers_drive_a_booking_a_quote_and_refreshes() {
    let app = spawn_app().await;
    let (carrier, connection) = start(&app, Some("1234779")).await;

    let r = app.post("/v1/shipments", &example_order(&connection, "SO-REF", two_parcels())).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let s = r.json();
    assert_eq!(s["booking"]["state"], "booked", "SaveOrder's example answer is a success: {s}");
    let id = s["id"].as_str().expect("id");
    assert_eq!(carrier.methods(), ["Login", "SaveOrder"]);
    assert_eq!(carrier.calls("Login")[0].1, fixture_json(fixture!("login.request.json")));
    let (guid, save) = carrier.calls("SaveOrder").remove(0);
    assert_eq!(guid.as_deref(), Some("{011114A4-5391-46E0-B576-9835485F5731}"), "the token from the Login example");
    let order = &save["Order"];
    let mut bad = Vec::new();
    non_string_scalars(&save, "", &mut bad);
    assert!(bad.is_empty(), "every scalar a string: {bad:?}");
    let example = fixture_json(fixture!("saveorder.request.json"));
    for key in ["CustomerCode", "Service", "Auth"] {
        assert_eq!(order[key], example["Order"][key], "{key}");
    }
    assert_eq!(order["Pieces"], example["Order"]["Pieces"]);
    let (ours, theirs) = (order["Stops"]["Stop"].as_array().expect("Stops.Stop[]"), &example["Order"]["Stops"]["Stop"]);
    assert_eq!(ours.len(), 2);
    for (i, stop) in ours.iter().enumerate() {
        let mut stop = stop.clone();
        let links = stop.as_object_mut().and_then(|s| s.remove("OrderStopPieces")).expect("links");
        assert!(
            links["OrderStopPiece"]
                .as_array()
                .is_some_and(|l| l.contains(&theirs[i]["OrderStopPieces"]["OrderStopPiece"]))
        );
        let mut theirs = theirs[i].clone();
        theirs.as_object_mut().map(|s| s.remove("OrderStopPieces"));
        assert_eq!(stop, theirs, "stop {i}: dates 11/13/2019 6:00:00 AM, EST, USA as the example");
    }

    // QuoteOrder: the example's answer, "$40.00" and a two-digit year.
    let q =
        app.post("/v1/quotes", &example_order(&connection, "Q-REF", json!([{"reference": "test1234barcode"}]))).await;
    assert_eq!(q.status, 200, "{}", String::from_utf8_lossy(&q.bytes));
    let q = q.json();
    assert_eq!(q["quote"]["amount"], json!({"amount": "40.00", "currency": "USD"}));
    assert_eq!(q["quote"]["due_at_raw"], "12/05/20 11:00");
    assert_eq!(q["quote"]["due_at"], "2020-12-05T16:00:00.000000Z", "the site's -05:00, year 2020");
    let quoted = carrier.calls("QuoteOrder").remove(0).1;
    assert!(quoted["Order"]["Pieces"]["Piece"].is_object(), "one piece is an object, as in the example: {quoted}");
    assert!(quoted["Order"].get("OrderNumber").is_none(), "a quote books nothing");

    let (path, empty) = (format!("/v1/shipments/{id}/refresh"), json!({}));
    let refresh = || app.post(&path, &empty);
    // The GetJsonOrder example itself: a new order.
    carrier.set_order(Some(fixture_json(fixture!("getjsonorder.response.json"))));
    let b = refresh().await.json();
    assert_eq!((b["status"].as_str(), b["carrier_status"].as_str()), (Some("info_received"), Some("N")), "{b}");

    // Picked up: the ordered stops say nothing, the pickup JobStop is done.
    let picked_up = order_in_reference_shape(
        job_stop(
            "P",
            "2251 Orange Blossom Trail",
            json!({"@ArriveDateTime": "11/13/2019 6:02:00 AM", "@DepartDateTime": "11/13/2019 6:10:00 AM"}),
        ),
        job_stop("D", "2253 Orange Blossom Trail", json!({})),
        json!({"OrderEvent": {"@OrderEventID": "9001", "@EventType": "Pickup", "@EventDateTime": "11/13/2019 6:10:00 AM", "@UserName": "D101"}}),
    );
    carrier.set_order(Some(picked_up));
    let b = refresh().await.json();
    assert_eq!((b["status"].as_str(), b["subtag"].as_str()), (Some("in_transit"), Some("InTransit_002")), "{b}");
    assert_eq!(b["carrier_status"], "A");

    let delivered = order_in_reference_shape(
        job_stop("P", "2251 Orange Blossom Trail", json!({"@DepartDateTime": "11/13/2019 6:10:00 AM"})),
        job_stop(
            "D",
            "2253 Orange Blossom Trail",
            json!({"@ArriveDateTime": "11/13/2019 4:40:00 PM", "@PodName": "B. MOORE", "@PodDateTime": "11/13/2019 4:45:00 PM"}),
        ),
        json!({"OrderEvent": [
            {"@OrderEventID": "9001", "@EventType": "Pickup", "@EventDateTime": "11/13/2019 6:10:00 AM", "@UserName": "D101"},
            {"@OrderEventID": "9002", "@EventType": "POD", "@EventDateTime": "11/13/2019 4:45:00 PM", "@UserName": "D101"}
        ]}),
    );
    carrier.set_order(Some(delivered));
    let b = refresh().await.json();
    assert_eq!((b["status"].as_str(), b["subtag"].as_str()), (Some("delivered"), Some("Delivered_003")), "{b}");
    let events = app.get(&format!("/v1/shipments/{id}/events")).await.json();
    let seen: Vec<(&str, &str, &str)> = events["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| {
            (
                e["raw_code"].as_str().unwrap_or(""),
                e["occurred_at"].as_str().unwrap_or(""),
                e["actor"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("Pickup", "2019-11-13T11:10:00.000000Z", "D101"), ("POD", "2019-11-13T21:45:00.000000Z", "D101")],
        "each event once, in the site's time zone"
    );
}

#[tokio::test]
async fn update_and_cancel_send_the_whole_order_as_booked() {
    let app = spawn_app().await;
    let (carrier, connection) = start(&app, None).await;
    let s = app.post("/v1/shipments", &example_order(&connection, "SO-WHOLE", two_parcels())).await.json();
    let id = s["id"].as_str().expect("id");
    let booked = carrier.calls("SaveOrder").remove(0).1;

    let r = app
        .request(
            "PATCH",
            &format!("/v1/shipments/{id}"),
            Some(&app.key),
            Some(&json!({"notes": "Gate code 1234"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let updated = carrier.calls("SaveOrder").remove(1).1;
    let mut expected = booked.clone();
    expected["Order"]["Notes"] = json!("Gate code 1234");
    assert_eq!(updated, expected, "the whole order with the change applied");

    carrier.set_order(Some(order_in_reference_shape(json!({}), json!({}), json!(""))));
    let r = app.post(&format!("/v1/shipments/{id}/cancel"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["booking"]["state"], "cancelled");
    assert_eq!(carrier.methods()[2..], ["SaveOrder", "GetJsonOrder", "SaveOrder"]);
    let cancel = carrier.calls("SaveOrder").remove(2).1;
    let mut expected = updated;
    expected["Order"]["OrderStatus"] = json!("X");
    assert_eq!(cancel, expected, "the whole order as it stands, only the status changed");
}

#[tokio::test]
async fn a_pending_booking_the_carrier_never_got_is_cancelled_without_creating_it() {
    let app = spawn_app().await;
    let (carrier, connection) = start(&app, None).await;
    carrier.0.lock().expect("lock").save_fault =
        Some(json!({"status": "-3", "statusdescription": "Unable to Connect to Database"}));
    let s = app.post("/v1/shipments", &example_order(&connection, "SO-LOST", two_parcels())).await.accepted();
    let id = s["id"].as_str().expect("id");
    carrier.set_order(None);
    let r = app.post(&format!("/v1/shipments/{id}/cancel"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["booking"]["state"], "cancelled");
    assert_eq!(carrier.calls("SaveOrder").len(), 1, "no full-body SaveOrder that would create a deleted order");

    // A carrier that already deleted the order: nothing more to send.
    let s = app.post("/v1/shipments", &example_order(&connection, "SO-GONE", two_parcels())).await.json();
    let mut gone = fixture_json(fixture!("getjsonorder.response.json"));
    gone["Order"]["@OrderStatus"] = json!("X");
    carrier.set_order(Some(gone));
    let r = app.post(&format!("/v1/shipments/{}/cancel", s["id"].as_str().expect("id")), &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(carrier.calls("SaveOrder").len(), 2, "only the booking was saved");
}

#[tokio::test]
async fn a_directly_issued_guid_is_kept_alive_with_the_reference_example() {
    let app = spawn_app().await;
    let (carrier, _) = start(&app, None).await;
    let base = {
        let login = carrier.calls("Login");
        assert!(login.is_empty());
        let c = app.get("/v1/connections").await.json();
        let first = c["data"]
            .as_array()
            .expect("data")
            .iter()
            .find(|c| c["name"] == "e-Courier as the reference answers")
            .cloned();
        first.expect("connection")["base_url"].as_str().expect("base").to_owned()
    };
    let id = app
        .create_connection(json!({
            "carrier": "ecourier", "name": "direct GUID", "base_url": base,
            "credentials": {"user_guid": "{011114A4-5391-46E0-B576-9835485F5731}"}, "settings": {"customer_code": "Alpha"}
        }))
        .await;
    let r = app.post(&format!("/v1/connections/{id}/verify"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(carrier.methods(), ["RefreshGUID"], "no Login with a directly issued GUID");
    let (guid, body) = carrier.calls("RefreshGUID").remove(0);
    assert_eq!(guid.as_deref(), Some("{011114A4-5391-46E0-B576-9835485F5731}"));
    assert_eq!(body, fixture_json(fixture!("refreshguid.request.json")), "the body the reference's example posts");
}
