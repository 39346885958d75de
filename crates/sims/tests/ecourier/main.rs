//! The e-Courier simulator driven over real HTTP, as an e-Courier client would, against
//! what the e-Courier API reference (seed 001) and its examples in
//! `contract/fixtures/ecourier/` say.

use serde_json::{Value, json};
use sims::ecourier::{EcourierSim, EcourierSimConfig, OrderStage, SaveOrderAnswer, SimAccount, SimFault};
use std::time::{Duration, Instant};

mod control;
mod fixtures;
mod lifecycle;
mod orders;
mod tokens;

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
