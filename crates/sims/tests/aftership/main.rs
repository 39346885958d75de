//! The AfterShip 2024-04 simulator over real HTTP, as an AfterShip client sees it: seed
//! 002's operations and errors, the 2024-04 shapes (checked field by field against the
//! official SDK 2.0.2 in `contract/aftership/`), strictness, the rate limit, knobs,
//! webhooks, and the seed's request fixtures.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sims::aftership::{AftershipSim, AftershipSimConfig, SimFault, standalone_router};

mod fixtures;
mod limits;
mod predict;
mod trackings;
mod webhooks;

const KEY: &str = "as-demo-key";

struct Api {
    sim: AftershipSim,
    /// The mount point, e.g. `http://127.0.0.1:1234/aftership`.
    mount: String,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn meta_code(&self) -> i64 {
        self.body["meta"]["code"].as_i64().unwrap_or(-1)
    }
    fn tracking(&self) -> &Value {
        &self.body["data"]["tracking"]
    }
    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
    }
}

async fn serve(router: Router) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// A simulator mounted at `/aftership`, with a roomy rate limit unless told otherwise.
async fn api_with(config: AftershipSimConfig) -> Api {
    let sim = AftershipSim::new(config);
    let root = serve(Router::new().nest("/aftership", sim.router())).await;
    Api { sim, mount: format!("{root}/aftership"), http: reqwest::Client::new() }
}

async fn api() -> Api {
    api_with(AftershipSimConfig { rate_limit_per_second: 10_000, ..Default::default() }).await
}

impl Api {
    async fn send(&self, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.mount));
        if let Some(k) = key {
            req = req.header("as-api-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, headers, body }
    }

    /// An authenticated call under `/tracking/2024-04`.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.send(method, &format!("/tracking/2024-04{path}"), Some(KEY), body).await
    }

    async fn create(&self, tracking: Value) -> Answer {
        self.call(Method::POST, "/trackings", Some(json!({ "tracking": tracking }))).await
    }

    async fn create_id(&self, number: &str) -> String {
        let a = self.create(json!({"tracking_number": number, "slug": "ecms"})).await;
        assert_eq!(a.status, 201, "{}", a.body);
        a.tracking()["id"].as_str().unwrap().to_owned()
    }
}

fn assert_error(a: &Answer, status: u16, code: i64, kind: &str) {
    assert_eq!((a.status, a.meta_code()), (status, code), "{}", a.body);
    assert_eq!(a.body["meta"]["type"], kind, "{}", a.body);
    assert!(a.body["meta"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(a.body["data"], json!({}));
}
