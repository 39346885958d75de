//! The e-Courier simulator driven over real HTTP, as an e-Courier client would, against
//! what the e-Courier API reference (seed 001) and its examples in
//! `contract/fixtures/ecourier/` say.

use serde_json::{Value, json};
use sims::ecourier::{EcourierSim, EcourierSimConfig, OrderStage, SaveOrderAnswer, SimAccount, SimFault};
use std::time::{Duration, Instant};

/// The UserGUID of the reference's Login / RefreshGUID examples.
const REFERENCE_GUID: &str = "{011114A4-5391-46E0-B576-9835485F5731}";

struct Harness {
    sim: EcourierSim,
    base: String,
    client: reqwest::Client,
}

/// Two customers: the reference examples' `Alpha` (website `example`, `user1`/`pass1`,
/// the examples' UserGUID issued directly) and a second one.
fn config() -> EcourierSimConfig {
    EcourierSimConfig {
        accounts: vec![
            SimAccount {
                website: "example".into(),
                username: "user1".into(),
                password: "pass1".into(),
                customer_code: "Alpha".into(),
                direct_guid: Some(REFERENCE_GUID.into()),
            },
            SimAccount {
                website: "example".into(),
                username: "user2".into(),
                password: "pass2".into(),
                customer_code: "Beta".into(),
                direct_guid: None,
            },
        ],
        ..EcourierSimConfig::default()
    }
}

async fn start(config: EcourierSimConfig) -> Harness {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = EcourierSim::new(config);
    let app = axum::Router::new().nest("/example", sim.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    Harness { sim, base: format!("http://{addr}/example"), client: reqwest::Client::new() }
}

struct Answer {
    status: u16,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// `(status, statusdescription)` of an error answer.
    fn error(&self) -> (u16, String, String) {
        let v = self.json();
        let text = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k} not a string in {v}")).to_owned();
        (self.status, text("status"), text("statusdescription"))
    }
}

impl Harness {
    async fn post(&self, method: &str, guid: Option<&str>, body: &str) -> Answer {
        let mut request = self
            .client
            .post(format!("{}/software/xml/ecJsonPost.asmx/{method}", self.base))
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        if let Some(guid) = guid {
            request = request.header("UserGUID", guid);
        }
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        Answer { status, content_type, text: response.text().await.expect("body") }
    }

    async fn call(&self, method: &str, guid: Option<&str>, body: &Value) -> Answer {
        self.post(method, guid, &body.to_string()).await
    }

    async fn login(&self, username: &str, password: &str) -> String {
        let answer =
            self.call("Login", None, &json!({"website": "example", "username": username, "password": password})).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json()["UserGUID"].as_str().expect("UserGUID").to_owned()
    }

    async fn get_order(&self, guid: &str, number: &str) -> Value {
        let answer = self.call("GetJsonOrder", Some(guid), &json!({ "OrderNumber": number })).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json()
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}/_sim{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json"))
    }
}

fn fixture(name: &str) -> String {
    let path = format!("{}/../../contract/fixtures/ecourier/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).expect("fixture is JSON")
}

/// The reference's SaveOrder example with an OrderNumber: a complete two-stop order.
fn order(number: &str) -> Value {
    let mut body = fixture_json("saveorder.request.json");
    body["Order"]["OrderNumber"] = json!(number);
    body
}

/// Every key of `expected` is in `actual` with the same JSON kind, recursively
/// (arrays: each actual item against the expected's first item).
fn assert_shape(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (key, ev) in e {
                let av = a.get(key).unwrap_or_else(|| panic!("{path}/{key} missing in {actual}"));
                assert_shape(av, ev, &format!("{path}/{key}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            for av in a {
                assert_shape(av, &e[0], path);
            }
        }
        (Value::String(_), Value::String(_)) => {}
        _ => panic!("{path}: {actual} is not shaped like {expected}"),
    }
}

/// Every scalar of an e-Courier answer is a string.
fn assert_all_strings(v: &Value, path: &str) {
    match v {
        Value::Object(map) => map.iter().for_each(|(k, v)| assert_all_strings(v, &format!("{path}/{k}"))),
        Value::Array(items) => items.iter().for_each(|v| assert_all_strings(v, path)),
        Value::String(_) => {}
        other => panic!("{path} is {other}, not a string"),
    }
}

/// A list that is "one or many": always as a Vec.
fn many(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Null => vec![],
        other => vec![other.clone()],
    }
}

fn is_ec_datetime(s: &str) -> bool {
    // 9/3/2020 2:43:00 AM
    let parts: Vec<&str> = s.split(' ').collect();
    parts.len() == 3
        && parts[0].split('/').count() == 3
        && parts[1].split(':').count() == 3
        && matches!(parts[2], "AM" | "PM")
        && !parts[0].starts_with('0')
        && !parts[1].starts_with('0')
}

fn status_text(code: &str) -> String {
    let codes = fixture_json("status-codes.json");
    let entry = codes["http_500"].as_array().expect("http_500").iter().find(|e| e["status"] == code).expect("code");
    entry["statusdescription"].as_str().expect("text").to_owned()
}

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

// ---- Tokens

#[tokio::test]
async fn tokens_are_renewed_by_use_and_expire_when_idle() {
    let h = start(EcourierSimConfig { token_ttl: Duration::from_millis(1000), ..config() }).await;
    let guid = h.login("user1", "pass1").await;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let a = h.call("GetJsonOrder", Some(&guid), &json!({"OrderNumber": "none"})).await;
        assert_eq!(a.error().1, "-4", "used within the TTL, the token still works");
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let a = h.call("GetJsonOrder", Some(&guid), &json!({"OrderNumber": "none"})).await;
    assert_eq!(a.error(), (500, "-5".into(), status_text("-5")));
    let a = h.call("RefreshGUID", Some(&guid), &json!({})).await;
    assert_eq!(a.error().1, "-5", "an expired token cannot be refreshed");
}

#[tokio::test]
async fn refreshguid_keeps_a_direct_guid_alive() {
    let h = start(EcourierSimConfig { token_ttl: Duration::from_millis(1000), ..config() }).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let a = h.call("RefreshGUID", Some(REFERENCE_GUID), &json!({})).await;
        assert_eq!(a.json()["UserGUID"], REFERENCE_GUID);
    }
    assert_eq!(h.call("SaveOrder", Some(REFERENCE_GUID), &order("D-1")).await.status, 200);
}

#[tokio::test]
async fn expiring_tokens_and_direct_guids() {
    let h = start(config()).await;
    let guid = h.login("user1", "pass1").await;
    h.sim.expire_tokens();
    assert_eq!(h.call("SaveOrder", Some(&guid), &order("T-1")).await.error().1, "-5");
    assert_eq!(h.call("SaveOrder", Some(REFERENCE_GUID), &order("T-1")).await.status, 200);
    h.sim.expire_direct_guids();
    assert_eq!(h.call("SaveOrder", Some(REFERENCE_GUID), &order("T-2")).await.error().1, "-5");
    let fresh = h.login("user1", "pass1").await;
    assert_ne!(fresh, guid);
    assert_eq!(h.call("SaveOrder", Some(&fresh), &order("T-2")).await.status, 200);
}

#[tokio::test]
async fn login_refusals() {
    let h = start(config()).await;
    let a = h.call("Login", None, &json!({"website": "example", "username": "user1", "password": "bad"})).await;
    assert_eq!(a.error(), (500, "-4".into(), "Login Failed: invalid username or password".into()));
    let a = h.call("Login", None, &json!({"website": "elsewhere", "username": "user1", "password": "pass1"})).await;
    let (status, code, text) = a.error();
    assert_eq!((status, code.as_str()), (500, "-6"));
    assert!(text.starts_with("No config file found: Configuration='"), "{text}");
    let a = h.call("Login", None, &json!({"website": "example", "username": "user1"})).await;
    assert!(a.error().2.contains("password"), "{}", a.text);
    assert_eq!(h.post("Login", None, "website=example").await.error().1, "-2");
    assert_eq!(h.sim.stats().logins, 0);
    assert_eq!(h.sim.stats().calls.get("Login"), Some(&4));
}

#[tokio::test]
async fn concurrent_logins_are_counted() {
    let h = start(config()).await;
    h.sim.set_latency(Duration::from_millis(1000));
    let url = format!("{}/software/xml/ecJsonPost.asmx/Login", h.base);
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let request =
                h.client.post(&url).json(&json!({"website": "example", "username": "user1", "password": "pass1"}));
            tokio::spawn(async move { request.send().await.expect("send").json::<Value>().await.expect("json") })
        })
        .collect();
    let mut guids = std::collections::BTreeSet::new();
    for task in tasks {
        guids.insert(task.await.expect("task")["UserGUID"].as_str().expect("UserGUID").to_owned());
    }
    assert_eq!(guids.len(), 5, "each Login issues its own GUID");
    let stats = h.sim.stats();
    assert_eq!((stats.logins, stats.max_concurrent_logins), (5, 5));
}

// ---- SaveOrder: validated like a create, every time

/// A change made to a complete order.
type Edit = fn(&mut Value);

/// Posts `body` to SaveOrder and returns the -4 description.
async fn refused(h: &Harness, body: &Value) -> String {
    let (status, code, text) = h.call("SaveOrder", Some(REFERENCE_GUID), body).await.error();
    assert_eq!((status, code.as_str()), (500, "-4"), "{text}");
    text
}

#[tokio::test]
async fn partial_orders_and_missing_elements_are_refused() {
    let h = start(config()).await;
    assert_eq!(h.call("SaveOrder", Some(REFERENCE_GUID), &order("P-1")).await.status, 200);
    // The partial cancel the reference does not define.
    let partial = json!({"Order": {"CustomerCode": "Alpha", "OrderNumber": "P-1", "OrderStatus": "X"}});
    assert!(refused(&h, &partial).await.contains("Order/Stops is required"));
    assert_eq!(h.sim.order("P-1").unwrap()["Order"]["@OrderStatus"], "N", "nothing changed");

    let cases: Vec<(Edit, &str)> = vec![
        (|o| o["Order"]["Stops"]["Stop"] = o["Order"]["Stops"]["Stop"][0].clone(), "no destination stop"),
        (|o| o["Order"]["Stops"]["Stop"] = o["Order"]["Stops"]["Stop"][1].clone(), "no pickup stop"),
        (|o| o["Order"]["Stops"] = json!({}), "Order/Stops is required"),
        (
            |o| o["Order"]["Stops"]["Stop"][0].as_object_mut().unwrap().retain(|k, _| k != "Sequence"),
            "Order/Stops/Stop[1]/Sequence is required",
        ),
        (
            |o| o["Order"]["Stops"]["Stop"][1].as_object_mut().unwrap().retain(|k, _| k != "StopType"),
            "Order/Stops/Stop[2]/StopType is required",
        ),
        (
            |o| o["Order"]["Stops"]["Stop"][1]["StopType"] = json!("X"),
            "Order/Stops/Stop[2]/StopType 'X' is not one of P, D, B",
        ),
        (
            |o| o["Order"]["Stops"]["Stop"][1]["Sequence"] = json!("1"),
            "Order/Stops/Stop[2]/Sequence 1 is used by another stop",
        ),
        (
            |o| o["Order"]["Stops"]["Stop"][1]["OrderStopPieces"]["OrderStopPiece"]["Sequence"] = json!("7"),
            "Sequence 7 matches no Order/Pieces/Piece",
        ),
        (
            |o| o["Order"]["Stops"]["Stop"][0]["OrderStopPieces"]["OrderStopPiece"]["PieceAction"] = json!("B"),
            "PieceAction 'B' is not one of P, D",
        ),
        (
            |o| o["Order"]["CustomerCode"] = json!("Beta"),
            "Order/CustomerCode 'Beta' is not a customer of this UserGUID",
        ),
        (|o| o["Order"]["OrderID"] = json!("9"), "Order/OrderID may not be set via API"),
        (|o| o["Order"]["SiteID"] = json!("1"), "Order/SiteID may not be set via API"),
        (|o| o["Order"]["SiteCode"] = json!("Corporate"), "Order/SiteCode may not be set via API"),
        (|o| o["Order"]["TransferID"] = json!("3"), "Order/TransferID may not be set via API"),
        (|o| o["Order"]["Jobs"] = json!({"Job": {"Sequence": "1"}}), "Order/Jobs may only be set by e-Courier"),
        (|o| o["Order"]["OrderEvents"] = json!({"OrderEvent": []}), "Order/OrderEvents may only be set by e-Courier"),
        (|o| o["Order"]["Colour"] = json!("red"), "Order/Colour is not a field of the e-Courier order model"),
        (|o| o["Order"]["Pieces"]["Piece"][0]["Length"] = json!("3"), "Order/Pieces/Piece[1]/Length is not a field"),
        (
            |o| o["Order"]["Stops"]["Stop"][0]["Sequence"] = json!(1),
            "Order/Stops/Stop[1]/Sequence must be a JSON string",
        ),
        (|o| o["Order"]["Stops"]["Stop"][0]["ScheduledDateTime"] = json!("13/11/2019 6:00"), "is not a date and time"),
        (|o| o["Order"]["Weight"] = json!("heavy"), "Order/Weight 'heavy' is not a number"),
        (|o| o["Order"]["PodRequired"] = json!("yes"), "Order/PodRequired 'yes' is not a boolean"),
        (|o| o["Order"]["OrderStatus"] = json!("A"), "Order/OrderStatus 'A' is set by e-Courier's dispatch"),
        (|o| o["Order"]["Service"] = json!({"x": "1"}), "Order/Service must be a JSON string"),
        (|o| o["Order"]["Stops"] = json!([{"Stop": {}}]), "Order/Stops must be an element holding Stop"),
        (|o| o["Order"]["@Service"] = json!("Route"), "Order/Service is given twice"),
        (|o| *o = json!({"Orders": o["Order"].clone()}), "Order element is missing"),
    ];
    for (change, expected) in cases {
        let mut body = order("P-2");
        change(&mut body);
        let text = refused(&h, &body).await;
        assert!(text.contains(expected), "expected '{expected}' in '{text}'");
    }
    assert_eq!(h.sim.order_count(), 1);
    // Several problems are all named.
    let mut body = order("P-2");
    body["Order"]["OrderID"] = json!("1");
    body["Order"]["Colour"] = json!("red");
    let text = refused(&h, &body).await;
    assert!(text.contains("OrderID") && text.contains("Colour"), "{text}");
}

#[tokio::test]
async fn every_field_of_the_reference_lists_is_accepted_and_returned() {
    let h = start(config()).await;
    let body: Value = serde_json::from_str(
        r#"{"Order": {
        "OrderNumber": "F-1", "OrderStatus": "N", "OrderAlias": "alias", "CustomerID": "65", "Notes": "n",
        "CustomerCode": "Alpha", "CreateDate": "11/12/2019", "CreateUserID": "4", "OrderDate": "11/13/2019",
        "Service": "Route", "VehicleTypeID": "2", "VehicleType": "Van", "@Pieces": "6", "Weight": "12.5",
        "PodRequired": "true", "PodSendType": "1", "AmountQuote": "40.00", "Caller": "Ann", "CallerPhone": "3015551212",
        "AmountCharged": "40", "AmountReceived": "0", "QualityFlag": "0", "AutoVerify": "1", "UserName": "ann",
        "PackageType": "Box", "CarrierTypeID": "1", "PriorityGroup": "A", "TotalMiles": "3.2", "HolidayNameID": "1",
        "IncludeHolidayNameID": "1", "DueTimeHolidayNameID": "1", "FeeMisc1": "false", "FeeMisc2": "false",
        "FeeMisc3": "false", "FeeMisc4": "false", "Description": "d", "OtherReference": "ref", "InvoiceReference": "inv",
        "Auth": "1234779", "PodName": "", "PodDateTime": "", "PodSign": "", "CodAmount": "0", "DeclaredValue": "99.90",
        "CallerEmail": "a@example.com", "TaskID": "1", "CompleteOrder": "1", "ReadyDateTime": "12/05/2020 09:00",
        "DueDateTime": "12/05/20 11:00", "DriverCode": "",
        "Pieces": {"Piece": {"Sequence": "1", "Reference": "r", "Pieces": "6", "Weight": "2.5", "Height": "1",
            "Width": "2", "Description": "box"}},
        "Stops": {"Stop": [
            {"Sequence": "1", "StopType": "P", "ScheduledDateTime": "2019-11-13T06:00:00", "EarlyDateTime": "11/13/2019 5:00 AM",
             "LateDateTime": "11/13/2019 7:00:00 AM", "TimeOfServiceCode": "AM", "Zone": "1", "DispatchZone": "N",
             "Name": "James Madison", "Address": "2251 Orange Blossom Trail", "City": "Orlando", "State": "FL",
             "Zip": "32804", "Country": "USA", "Phone": "3015551212", "See": "James", "Room": "2", "Note": "dock",
             "CustomerShipToCode": "S1", "LocationTypeID": "1", "DispatchGroupID": "2", "StopMiles": "0",
             "ZLatitude": "28.5", "ZLongitude": "-81.4", "Latitude": "28.55", "Longitude": "-81.41", "StopID": "501",
             "AVSQuality": "9", "ScheduledDateTimeTZ": "EST", "Pieces": "6", "Weight": "15", "Service": "Route",
             "Description": "pickup", "ContractNumber": "C1", "RouteNumber": "R1", "Frequency": "D", "DriverPay": "5",
             "AmountCharged": "20", "StopClassID": "1", "DriverCode": "",
             "OrderStopPieces": {"OrderStopPiece": {"PieceAction": "P", "Sequence": "1"}}},
            {"@Sequence": "2", "@StopType": "D", "Name": "Bryan Moore", "See": "Bryan",
             "OrderStopPieces": {"OrderStopPiece": {"PieceAction": "D", "Sequence": "1"}}}
        ]},
        "OrderFees": {"OrderFee": {"Sequence": "1", "SubSequence": "1", "FeeAmount": "4.5", "FeeValue": "fuel",
            "OverrideFlag": "false", "Notes": "", "FeeTitle": "Fuel", "FeeCode": "FS"}},
        "OrderNotifiers": {"OrderNotify": {"Sequence": "1", "OrderNotifyID": "10", "NotifyEmail": "a@example.com",
            "FromEmail": "", "Subject": "Delivered $OrderNumber", "StyleSheetID": "3", "CustomerNotifyID": "1"}},
        "Customer": {"CustomerID": "65", "CustomerCode": "Alpha", "Name": "Alpha Inc", "Address": "1 Main St",
            "City": "Orlando", "State": "FL", "Zip": "32801", "Country": "USA", "Phone": "3015550000", "See": "",
            "PState": "FL", "PCountry": "USA", "Notes": "", "Service": "Route", "VehicleTypeID": "1",
            "CreatedDate": "1/2/2015", "ReferencePrompt": "PO", "SiteID": "1", "CustomerTypeID": "1", "SiteCode": "",
            "OkCreditStatus": "1"}
    }}"#,
    )
    .expect("JSON");
    let a = h.call("SaveOrder", Some(REFERENCE_GUID), &body).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let o = h.sim.order("F-1").unwrap()["Order"].clone();
    assert_all_strings(&o, "Order");
    assert_eq!(o["@DeclaredValue"], "99.90");
    assert_eq!(o["@Pieces"], "6", "the Pieces attribute beside the Pieces element");
    assert!(o.get("@PodName").is_none(), "empty means not set");
    assert_eq!(o["Stops"]["Stop"][0]["@StopID"], "501");
    assert_eq!(o["Stops"]["Stop"][1]["@StopType"], "D", "@-prefixed attributes are read too");
    assert_eq!(o["OrderFees"]["OrderFee"]["@FeeCode"], "FS");
    assert_eq!(o["OrderNotifiers"]["OrderNotify"]["@OrderNotifyID"], "10");
    assert_eq!(o["Customer"]["@Name"], "Alpha Inc");
    // OrderNotify's NotifyDateTime is use="prohibited".
    let mut bad = body.clone();
    bad["Order"]["OrderNotifiers"]["OrderNotify"]["NotifyDateTime"] = json!("1/1/2020");
    assert!(refused(&h, &bad).await.contains("NotifyDateTime may not be set"));
}

#[tokio::test]
async fn saveorder_replaces_the_whole_order_and_keeps_its_history() {
    let h = start(config()).await;
    let guid = REFERENCE_GUID;
    let mut first = order("U-1");
    first["Order"]["Notes"] = json!("ring twice");
    first["Order"]["Description"] = json!("documents");
    assert_eq!(h.call("SaveOrder", Some(guid), &first).await.status, 200);
    let created = h.sim.order("U-1").unwrap()["Order"].clone();
    let mut second = order("U-1");
    second["Order"]["Notes"] = json!("ring once");
    assert_eq!(h.call("SaveOrder", Some(guid), &second).await.status, 200);
    let o = h.sim.order("U-1").unwrap()["Order"].clone();
    assert_eq!(o["@Notes"], "ring once");
    assert!(o.get("@Description").is_none(), "what the update leaves out is gone: the whole order is replaced");
    assert_eq!(o["@OrderID"], created["@OrderID"]);
    assert_eq!(o["@CreateDate"], created["@CreateDate"]);
    let events = many(&o["OrderEvents"]["OrderEvent"]);
    let types: Vec<&str> = events.iter().map(|e| e["@EventType"].as_str().unwrap()).collect();
    assert_eq!(types, ["Create", "Modify"]);
    assert_eq!(h.sim.order_count(), 1);
    // Another customer can neither see nor take the order number.
    let other = h.login("user2", "pass2").await;
    let a = h.call("GetJsonOrder", Some(&other), &json!({"OrderNumber": "U-1"})).await;
    assert_eq!(a.error(), (500, "-4".into(), "Order Not Found".into()));
    let mut theirs = order("U-1");
    theirs["Order"]["CustomerCode"] = json!("Beta");
    let (_, code, text) = h.call("SaveOrder", Some(&other), &theirs).await.error();
    assert_eq!(code, "-4");
    assert!(text.contains("belongs to another customer"), "{text}");
}

#[tokio::test]
async fn cancel_is_a_complete_order_with_status_x() {
    let h = start(config()).await;
    let guid = REFERENCE_GUID;
    let mut cancel = order("X-1");
    cancel["Order"]["OrderStatus"] = json!("X");
    assert_eq!(h.call("SaveOrder", Some(guid), &cancel).await.error(), (500, "-4".into(), "Order Not Found".into()));
    assert_eq!(h.call("SaveOrder", Some(guid), &order("X-1")).await.status, 200);
    h.sim.advance("X-1").unwrap();
    assert_eq!(h.call("SaveOrder", Some(guid), &cancel).await.status, 200, "an assigned order can still be cancelled");
    let o = h.get_order(guid, "X-1").await["Order"].clone();
    assert_eq!(o["@OrderStatus"], "X");
    let last = many(&o["OrderEvents"]["OrderEvent"]).pop().unwrap();
    assert_eq!(last["@Note"], "Status changed from A to X");
    assert_eq!(h.call("SaveOrder", Some(guid), &cancel).await.status, 200, "cancelling again is a no-op");
    let a = h.call("SaveOrder", Some(guid), &order("X-1")).await;
    assert_eq!(a.error(), (409, "-4".into(), "Order Unable to Modify".into()), "a deleted order stays deleted");
    assert!(h.sim.advance("X-1").is_err());
}

// ---- Lifecycle: where progress lives

#[tokio::test]
async fn progress_lives_on_jobs_jobstops_and_the_order_pod() {
    let h = start(config()).await;
    let guid = REFERENCE_GUID;
    assert_eq!(h.call("SaveOrder", Some(guid), &order("L-1")).await.status, 200);
    let ordered_stops = h.get_order(guid, "L-1").await["Order"]["Stops"].clone();

    assert_eq!(h.sim.advance("L-1"), Ok(OrderStage::Assigned));
    let o = h.get_order(guid, "L-1").await["Order"].clone();
    assert_eq!(o["@OrderStatus"], "A");
    let job = &o["Jobs"]["Job"];
    assert!(job.is_object(), "one Job: an object");
    assert!(job["Drivers"]["Driver"]["@DriverCode"].as_str().is_some_and(|c| !c.is_empty()));
    let job_stops = job["JobStops"]["JobStop"].as_array().expect("two JobStops").clone();
    assert!(job_stops.iter().all(|js| js.get("@ArriveDateTime").is_none() && js.get("@JobStopStatus").is_none()));
    assert_eq!(job_stops[0]["@StopID"], ordered_stops["Stop"][0]["@StopID"]);
    assert_eq!(job_stops[0]["@Address"], "2251 Orange Blossom Trail");

    assert_eq!(h.sim.advance("L-1"), Ok(OrderStage::PickedUp));
    let o = h.get_order(guid, "L-1").await["Order"].clone();
    assert_eq!(o["@OrderStatus"], "A", "no documented status for picked up");
    let pickup = &o["Jobs"]["Job"]["JobStops"]["JobStop"][0];
    for field in ["@ArriveDateTime", "@DepartDateTime"] {
        assert!(is_ec_datetime(pickup[field].as_str().unwrap_or("")), "{field}: {pickup}");
    }
    assert_eq!(pickup["@JobStopStatus"], "C");
    assert_eq!(pickup["JobStopPieces"]["JobStopPiece"]["@PieceActionStatus"], "C");
    assert_eq!(pickup["JobStopPieces"]["JobStopPiece"]["@PieceAction"], "P");
    let delivery = &o["Jobs"]["Job"]["JobStops"]["JobStop"][1];
    assert!(delivery.get("@ArriveDateTime").is_none() && delivery.get("@PodName").is_none());
    assert_eq!(o["Stops"], ordered_stops, "Stops.Stop holds only what was ordered");
    assert!(o.get("@PodName").is_none());
    let events = many(&o["OrderEvents"]["OrderEvent"]);
    assert_eq!(events.last().unwrap()["@EventType"], "Pickup");
    for event in &events {
        for field in ["@OrderEventID", "@EventType", "@EventDateTime", "@UserName", "@Note", "@EventSource"] {
            assert!(event.get(field).is_some(), "{field} in {event}");
        }
    }

    assert_eq!(h.sim.advance("L-1"), Ok(OrderStage::Delivered));
    let o = h.get_order(guid, "L-1").await["Order"].clone();
    assert_all_strings(&o, "Order");
    let delivery = &o["Jobs"]["Job"]["JobStops"]["JobStop"][1];
    assert_eq!(delivery["@PodName"], "Bryan Moore");
    assert!(is_ec_datetime(delivery["@PodDateTime"].as_str().unwrap()));
    assert_eq!(delivery["JobStopPieces"]["JobStopPiece"]["@PieceActionStatus"], "C");
    assert_eq!(o["@PodName"], "Bryan Moore");
    assert_eq!(o["@PodDateTime"], delivery["@PodDateTime"]);
    check_png(o["@PodSign"].as_str().expect("PodSign"));
    assert_eq!(many(&o["OrderEvents"]["OrderEvent"]).last().unwrap()["@EventType"], "POD");
    assert_eq!(o["Stops"], ordered_stops);
    assert!(h.sim.advance("L-1").is_err(), "delivered is the end");

    // A stale replica: one step back, the events stay.
    assert_eq!(h.sim.rewind("L-1"), Ok(OrderStage::PickedUp));
    let o = h.get_order(guid, "L-1").await["Order"].clone();
    assert!(o.get("@PodName").is_none() && o.get("@PodSign").is_none());
    assert!(o["Jobs"]["Job"]["JobStops"]["JobStop"][1].get("@PodName").is_none());
    assert_eq!(many(&o["OrderEvents"]["OrderEvent"]).last().unwrap()["@EventType"], "POD");
    assert_eq!(h.sim.rewind("L-1"), Ok(OrderStage::Assigned));
    assert_eq!(h.sim.rewind("L-1"), Ok(OrderStage::New));
    let o = h.get_order(guid, "L-1").await["Order"].clone();
    assert_eq!(o["@OrderStatus"], "N");
    assert!(o.get("Jobs").is_none());
    h.sim.set_order_status("L-1", "P").unwrap();
    assert_eq!(h.get_order(guid, "L-1").await["Order"]["@OrderStatus"], "P");
}

/// A third-party zlib and CRC-32 read the signature: PNG magic, IHDR, IDAT, IEND, and
/// the pixel data is as long as IHDR says.
fn check_png(b64: &str) {
    use base64::Engine;
    use std::io::Read;
    let png = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
    assert!(png.len() < 4096, "a small picture");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (mut at, mut chunks, mut idat) = (8, Vec::new(), Vec::new());
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + len];
        let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&png[at + 4..at + 8 + len]), "CRC of {}", String::from_utf8_lossy(kind));
        if kind == b"IDAT" {
            idat.extend_from_slice(data);
        }
        chunks.push((kind.to_vec(), data.to_vec()));
        at += 12 + len;
    }
    let kinds: Vec<&[u8]> = chunks.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(kinds, [&b"IHDR"[..], b"IDAT", b"IEND"]);
    let ihdr = &chunks[0].1;
    let width = u32::from_be_bytes(ihdr[0..4].try_into().unwrap()) as usize;
    let height = u32::from_be_bytes(ihdr[4..8].try_into().unwrap()) as usize;
    assert_eq!((ihdr[8], ihdr[9]), (1, 0), "1-bit grayscale");
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(idat.as_slice()).read_to_end(&mut raw).expect("zlib");
    assert_eq!(raw.len(), height * (1 + width.div_ceil(8)));
    assert!(raw.iter().any(|&b| b != 0 && b != 0xFF), "some ink");
}

#[tokio::test]
async fn the_clock_advances_open_orders() {
    let h = start(config()).await;
    for n in ["K-1", "K-2"] {
        assert_eq!(h.call("SaveOrder", Some(REFERENCE_GUID), &order(n)).await.status, 200);
    }
    let mut template = order("K-3");
    template["Order"]["OrderStatus"] = json!("T");
    assert_eq!(h.call("SaveOrder", Some(REFERENCE_GUID), &template).await.status, 200);
    h.sim.start_clock(Duration::from_millis(20));
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.sim.order("K-2").unwrap()["Order"].get("@PodName").is_none() {
        assert!(Instant::now() < deadline, "the clock did not deliver");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.sim.stop_clock();
    assert!(h.sim.order("K-1").unwrap()["Order"].get("@PodSign").is_some());
    assert_eq!(h.sim.order("K-3").unwrap()["Order"]["@OrderStatus"], "T", "templates do not move");
    assert!(h.sim.order("K-3").unwrap()["Order"].get("Jobs").is_none());
}

// ---- Faults, latency, transport

#[tokio::test]
async fn faults_apply_to_the_next_calls_only() {
    let h = start(config()).await;
    let guid = REFERENCE_GUID;
    h.sim.fail_next(Some("SaveOrder"), 1, SimFault::ProcessThenFail);
    let a = h.call("SaveOrder", Some(guid), &order("G-1")).await;
    assert_eq!(a.status, 504);
    assert!(serde_json::from_str::<Value>(&a.text).is_err());
    assert_eq!(h.sim.order_count(), 1, "the order was stored before the answer was lost");
    assert_eq!(h.call("SaveOrder", Some(guid), &order("G-1")).await.status, 200, "the retry updates it");
    assert_eq!(h.sim.order_count(), 1);

    h.sim.fail_next(None, 2, SimFault::Garbage);
    for _ in 0..2 {
        let a = h.call("GetJsonOrder", Some(guid), &json!({"OrderNumber": "G-1"})).await;
        assert_eq!(a.status, 200);
        assert!(serde_json::from_str::<Value>(&a.text).is_err(), "{}", a.text);
    }
    assert_eq!(h.call("GetJsonOrder", Some(guid), &json!({"OrderNumber": "G-1"})).await.status, 200);

    h.sim.fail_next(Some("SaveOrder"), 1, SimFault::Http(409, "Order Unable to Cancel".into()));
    assert_eq!(h.call("RefreshGUID", Some(guid), &json!({})).await.status, 200, "other methods are unaffected");
    let a = h.call("SaveOrder", Some(guid), &order("G-2")).await;
    assert_eq!(a.error(), (409, "-4".into(), "Order Unable to Cancel".into()));
    assert_eq!(h.sim.order_count(), 1);

    h.sim.set_latency(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(h.call("RefreshGUID", Some(guid), &json!({})).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn unknown_methods_and_other_verbs_get_the_asmx_answer() {
    let h = start(config()).await;
    let a = h.call("GetOrder", Some(REFERENCE_GUID), &json!({"OrderNumber": "1"})).await;
    assert_eq!(a.status, 500);
    assert!(a.content_type.starts_with("text/plain"));
    assert_eq!(
        a.text,
        "System.InvalidOperationException: Request format is unrecognized for URL unexpectedly ending in '/GetOrder'."
    );
    let a = h.call("saveorder", Some(REFERENCE_GUID), &order("V-1")).await;
    assert_eq!(a.status, 500, "method names are matched exactly");
    let url = format!("{}/software/xml/ecJsonPost.asmx/Login", h.base);
    let response = h.client.get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 500);
    assert!(response.text().await.unwrap().contains("'/Login'"));
    assert_eq!(h.sim.stats().calls.get("GetOrder"), Some(&1));
}

#[tokio::test]
async fn requests_are_logged_with_header_names_the_session_and_no_password() {
    let h = start(config()).await;
    h.login("user1", "pass1").await;
    h.post("SaveOrder", Some(REFERENCE_GUID), &fixture("quoteorder.request.json")).await;
    h.post("GetJsonOrder", None, "garbage").await;
    let log = h.sim.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].method, "Login");
    assert_eq!(log[0].path, "/example/software/xml/ecJsonPost.asmx/Login");
    assert_eq!(log[0].body["password"], "<redacted>");
    assert_eq!(log[0].body["username"], "user1");
    assert!(log[0].auth_headers.is_empty());
    assert_eq!(log[1].auth_headers, ["UserGUID"]);
    // The session a call used is the simulator's own token: tests check which one it was.
    assert_eq!(log[1].user_guid.as_deref(), Some(REFERENCE_GUID));
    assert_eq!(log[0].user_guid, None);
    assert_eq!(many(&log[1].body["Order"]["Stops"]["Stop"]).len(), 2, "logged as read: two stops");
    assert_eq!(log[2].body, Value::Null);
    let (status, logged) = h.control(reqwest::Method::GET, "/requests", None).await;
    assert_eq!(status, 200);
    assert_eq!(logged.as_array().map(Vec::len), Some(3));
    assert!(!logged.to_string().contains("pass1"));
}

// ---- The /_sim control API and state

#[tokio::test]
async fn the_control_api_mirrors_the_knobs() {
    use reqwest::Method;
    let h = start(config()).await;
    let guid = REFERENCE_GUID;
    let (status, _) =
        h.control(Method::POST, "/faults", Some(json!({"method": "SaveOrder", "fault": {"status": -3}}))).await;
    assert_eq!(status, 200);
    assert_eq!(h.call("SaveOrder", Some(guid), &order("H-1")).await.error().1, "-3");
    let (status, _) = h.control(Method::POST, "/faults", Some(json!({"fault": "process_then_fail", "count": 1}))).await;
    assert_eq!(status, 200);
    assert_eq!(h.call("SaveOrder", Some(guid), &order("H-1")).await.status, 504);
    let (status, body) = h.control(Method::POST, "/faults", Some(json!({"fault": "sometimes"}))).await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = h.control(Method::POST, "/orders/H-1/advance", None).await;
    assert_eq!((status, body), (200, json!({"order_number": "H-1", "stage": "assigned"})));
    let (status, body) = h.control(Method::GET, "/orders/H-1", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["Order"]["@OrderStatus"], "A");
    assert_eq!(h.control(Method::POST, "/orders/nope/advance", None).await.0, 404);
    let (status, body) = h.control(Method::POST, "/orders/H-1/rewind", None).await;
    assert_eq!((status, body["stage"].clone()), (200, json!("new")));
    assert_eq!(h.control(Method::POST, "/orders/H-1/rewind", None).await.0, 409);
    assert_eq!(h.control(Method::PUT, "/orders/H-1/status", Some(json!({"status": "I"}))).await.0, 200);
    assert_eq!(h.control(Method::PUT, "/orders/H-1/status", Some(json!({"status": "Q"}))).await.0, 400);

    let (_, stats) = h.control(Method::GET, "/stats", None).await;
    assert_eq!(stats["calls"]["SaveOrder"], 2);
    let (_, orders) = h.control(Method::GET, "/orders", None).await;
    assert_eq!(orders, json!({"count": 1, "order_numbers": ["H-1"]}));

    let login = h.login("user1", "pass1").await;
    assert_eq!(h.control(Method::POST, "/tokens/expire", None).await.0, 200);
    assert_eq!(h.call("RefreshGUID", Some(&login), &json!({})).await.error().1, "-5");
    assert_eq!(h.control(Method::POST, "/direct-guids/expire", None).await.0, 200);
    assert_eq!(h.call("RefreshGUID", Some(guid), &json!({})).await.error().1, "-5");

    assert_eq!(h.control(Method::PUT, "/latency", Some(json!({"ms": 0}))).await.0, 200);
    let answer = json!({"answer": "status_description"});
    assert_eq!(h.control(Method::PUT, "/save-answer", Some(answer)).await.0, 200);
    assert_eq!(h.control(Method::POST, "/clock", Some(json!({"every_ms": 0}))).await.0, 400);

    assert_eq!(h.control(Method::POST, "/reset", None).await.0, 200);
    assert_eq!(h.sim.order_count(), 0);
    assert!(h.sim.requests().is_empty());
    assert_eq!(h.sim.stats().calls.len(), 0);
    let a = h.call("SaveOrder", Some(guid), &order("H-2")).await;
    assert_eq!(a.json(), fixture_json("saveorder.response.json"), "direct GUIDs and the default answer are back");
}

#[tokio::test]
async fn state_survives_a_restart() {
    let h = start(config()).await;
    let login = h.login("user1", "pass1").await;
    assert_eq!(h.call("SaveOrder", Some(&login), &order("S-1")).await.status, 200);
    h.sim.advance("S-1").unwrap();
    let before = h.sim.order("S-1").unwrap();
    let (status, state) = h.control(reqwest::Method::GET, "/state", None).await;
    assert_eq!(status, 200);

    let h2 = start(config()).await;
    let (status, _) = h2.control(reqwest::Method::PUT, "/state", Some(state)).await;
    assert_eq!(status, 200);
    assert_eq!(h2.sim.order("S-1"), Some(before));
    assert_eq!(h2.call("RefreshGUID", Some(&login), &json!({})).await.status, 200, "the session survives");
    assert_eq!(h2.call("SaveOrder", Some(&login), &order("S-2")).await.status, 200);
    let ids: Vec<Value> =
        ["S-1", "S-2"].iter().map(|n| h2.sim.order(n).unwrap()["Order"]["@OrderID"].clone()).collect();
    assert_ne!(ids[0], ids[1], "new orders do not reuse OrderIDs");
    assert!(h2.sim.import_state(json!({"version": 9})).is_err());
    let (status, _) = h2.control(reqwest::Method::PUT, "/state", Some(json!([1, 2]))).await;
    assert_eq!(status, 400);
}
