//! In-memory **ecomdash simulator** (channel sink), served as an axum router.
//!
//! It plays ecomdash's side of `POST {mount}/api/Shipments/submitTrackingInfo` strictly,
//! so that tests of the ecomdash adapter mean something:
//! - `Ocp-Apim-Subscription-Key` missing or unknown → 401 from the API gateway
//!   (`{"statusCode":401,"message":...}`, Azure API Management's shape);
//!   `ecd-subscription-key` missing or unknown → 403 with the seed's `{"Message": ...}`;
//! - `Content-Type` other than JSON → 415; a body that is not a JSON array → 400;
//!   more than 50 items → 400 (CARRIERS.md: up to 50 per call);
//! - per item: no `ShipmentId`, no `TrackingNumber` and no `LineItems`, a line item
//!   without `LineItemId` or without a tracking number (its own or the base one), or a
//!   shipment id not in `known_shipment_ids` → that item `WasSuccessful:false` with a
//!   message; the others go through;
//! - more calls in flight than `max_concurrency` → 429 "Try again in 1 seconds"
//!   (counted in `over_concurrency`).
//!
//! Success answers the seed's envelope and echoes each item as `Request`, with numeric
//! ids written as decimals (`28.0`), as public clients see them.
//!
//! Source: seed 004_ad6b9d4634b2b6ed.txt and shared/docs/CARRIERS.md ("ecomdash"). The
//! 401/415/429 bodies and per-item messages are the simulator's own (the seed is silent).
//!
//! Control API: `POST /_sim/faults` (`latency_ms`, `fail_next`, `fail_item`),
//! `GET /_sim/stats`, `GET /_sim/submitted`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub const SUBSCRIPTION_HEADER: &str = "Ocp-Apim-Subscription-Key";
pub const INTEGRATION_HEADER: &str = "ecd-subscription-key";
/// Most items one call may carry.
pub const MAX_ITEMS: usize = 50;
/// The seed's 403 text.
const FORBIDDEN_MESSAGE: &str = "The provided 'ecd-subscription-key' / 'application-id' combination is not valid or \
                                 does not belong to a company with a current ecomdash subscription.";
/// The seed's 500 text.
const SERVER_ERROR_MESSAGE: &str = "Oops, something went wrong while processing your request";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct EcomdashSimConfig {
    /// Accepted `Ocp-Apim-Subscription-Key` values (developer keys).
    pub subscription_keys: Vec<String>,
    /// Accepted `ecd-subscription-key` values (merchant integration keys).
    pub integration_keys: Vec<String>,
    /// Shipments that exist; `None` accepts any id.
    pub known_shipment_ids: Option<Vec<String>>,
    /// Calls allowed in flight at once; more answer 429.
    pub max_concurrency: u32,
}

impl Default for EcomdashSimConfig {
    fn default() -> Self {
        Self {
            subscription_keys: vec!["sub-demo".to_owned()],
            integration_keys: vec!["ecd-demo".to_owned()],
            known_shipment_ids: None,
            max_concurrency: 3,
        }
    }
}

/// A fault injected by [`EcomdashSim::fail_next`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimFault {
    /// HTTP 500 with the seed's `{"Message": ...}`.
    ServerError,
    /// HTTP 429 "Rate limit is exceeded. Try again in N seconds." (no `Retry-After`).
    RateLimited(u64),
    /// HTTP 403 with the seed's `{"Message": ...}`.
    Forbidden,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct EcomdashSimStats {
    /// Calls to submitTrackingInfo (faulted and refused ones included).
    pub calls: u64,
    /// Items received in calls that got as far as item checks.
    pub items: u64,
    /// Most calls in flight at the same time.
    pub max_in_flight: u64,
    /// Calls refused with 429 because more than `max_concurrency` were in flight.
    pub over_concurrency: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubmittedLineItem {
    pub line_item_id: String,
    /// Its own tracking number, or the base one it inherits.
    pub tracking_number: Option<String>,
}

/// An item ecomdash accepted (`WasSuccessful: true`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubmittedItem {
    /// Normalized (`28.0` → `28`).
    pub shipment_id: String,
    pub tracking_number: Option<String>,
    pub carrier_id: Option<String>,
    pub line_items: Vec<SubmittedLineItem>,
}

/// One call as received.
#[derive(Clone, Debug, Serialize)]
pub struct SimRequest {
    pub subscription_key: Option<String>,
    pub integration_key: Option<String>,
    pub content_type: Option<String>,
    /// The parsed body, `Null` when it was not JSON.
    pub body: Value,
}

/// The simulator; cheap to clone (shared state).
#[derive(Clone)]
pub struct EcomdashSim {
    inner: Arc<Mutex<Inner>>,
}

impl EcomdashSim {
    pub fn new(config: EcomdashSimConfig) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                config,
                latency: Duration::ZERO,
                faults: Vec::new(),
                item_faults: HashMap::new(),
                stats: EcomdashSimStats::default(),
                submitted: Vec::new(),
                requests: Vec::new(),
                in_flight: 0,
            })),
        }
    }

    /// Routes relative to the mount point: the API and the `/_sim` control API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/Shipments/submitTrackingInfo", post(submit))
            .route("/_sim/faults", post(ctl_faults))
            .route("/_sim/stats", get(ctl_stats))
            .route("/_sim/submitted", get(ctl_submitted))
            .with_state(self.clone())
    }

    /// Delay applied to every call before it is answered (while it counts as in flight).
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// The next `count` calls answer with `fault`; `count == 0` clears pending faults.
    pub fn fail_next(&self, count: u32, fault: SimFault) {
        let mut st = self.lock();
        if count == 0 {
            st.faults.clear();
        } else {
            st.faults.push((count, fault));
        }
    }

    /// The item with this shipment id answers `WasSuccessful:false` with `message` in the
    /// next `times` calls that carry it; `times == 0` clears it.
    pub fn fail_item(&self, shipment_id: &str, message: &str, times: u32) {
        let mut st = self.lock();
        let id = normalize_id_str(shipment_id);
        if times == 0 {
            st.item_faults.remove(&id);
        } else {
            st.item_faults.insert(id, (message.to_owned(), times));
        }
    }

    pub fn stats(&self) -> EcomdashSimStats {
        self.lock().stats.clone()
    }

    /// Every accepted item, in arrival order.
    pub fn submitted(&self) -> Vec<SubmittedItem> {
        self.lock().submitted.clone()
    }

    /// Every call so far, in arrival order.
    pub fn requests(&self) -> Vec<SimRequest> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock_inner(&self.inner)
    }
}

fn lock_inner(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

struct Inner {
    config: EcomdashSimConfig,
    latency: Duration,
    /// (remaining, fault), consumed front first.
    faults: Vec<(u32, SimFault)>,
    /// Normalized shipment id → (message, remaining).
    item_faults: HashMap<String, (String, u32)>,
    stats: EcomdashSimStats,
    submitted: Vec<SubmittedItem>,
    requests: Vec<SimRequest>,
    in_flight: u64,
}

impl Inner {
    fn take_fault(&mut self) -> Option<SimFault> {
        let first = self.faults.first_mut()?;
        first.0 -= 1;
        let fault = first.1.clone();
        if first.0 == 0 {
            self.faults.remove(0);
        }
        Some(fault)
    }
}

/// Decrements the in-flight counter when the call ends (or is dropped).
struct InFlight(Arc<Mutex<Inner>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = lock_inner(&self.0);
        st.in_flight = st.in_flight.saturating_sub(1);
    }
}

// ---------------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------------

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "Message": text }))).into_response()
}

/// API Management's own answers (401, 429) use `{statusCode, message}`.
fn gateway(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "statusCode": status.as_u16(), "message": text }))).into_response()
}

fn rate_limited(seconds: u64) -> Response {
    gateway(StatusCode::TOO_MANY_REQUESTS, &format!("Rate limit is exceeded. Try again in {seconds} seconds."))
}

async fn submit(State(sim): State<EcomdashSim>, headers: HeaderMap, body: Bytes) -> Response {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let (latency, over, guard) = {
        let mut st = sim.lock();
        st.stats.calls += 1;
        // Keep the last REQUEST_LOG_CAP calls: a long sandbox or load run must not grow without bound.
        if st.requests.len() >= crate::sandbox::REQUEST_LOG_CAP {
            st.requests.drain(..crate::sandbox::REQUEST_LOG_CAP / 2);
        }
        st.requests.push(SimRequest {
            subscription_key: text(SUBSCRIPTION_HEADER),
            integration_key: text(INTEGRATION_HEADER),
            content_type: text(header::CONTENT_TYPE.as_str()),
            body: parsed.clone().unwrap_or(Value::Null),
        });
        st.in_flight += 1;
        st.stats.max_in_flight = st.stats.max_in_flight.max(st.in_flight);
        let over = st.in_flight > u64::from(st.config.max_concurrency);
        if over {
            st.stats.over_concurrency += 1;
        }
        (st.latency, over, InFlight(Arc::clone(&sim.inner)))
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = if over {
        let mut r = rate_limited(1);
        r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        r
    } else {
        let mut st = sim.lock();
        match st.take_fault() {
            Some(SimFault::ServerError) => message(StatusCode::INTERNAL_SERVER_ERROR, SERVER_ERROR_MESSAGE),
            Some(SimFault::RateLimited(n)) => rate_limited(n),
            Some(SimFault::Forbidden) => message(StatusCode::FORBIDDEN, FORBIDDEN_MESSAGE),
            None => st.handle(&headers, parsed),
        }
    };
    drop(guard);
    response
}

impl Inner {
    fn handle(&mut self, headers: &HeaderMap, parsed: Option<Value>) -> Response {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match text(SUBSCRIPTION_HEADER) {
            None => {
                return gateway(
                    StatusCode::UNAUTHORIZED,
                    "Access denied due to missing subscription key. Make sure to include subscription key when \
                     making requests to an API.",
                );
            }
            Some(k) if !self.config.subscription_keys.iter().any(|s| s == k) => {
                return gateway(
                    StatusCode::UNAUTHORIZED,
                    "Access denied due to invalid subscription key. Make sure to provide a valid key for an active \
                     subscription.",
                );
            }
            Some(_) => {}
        }
        if !text(INTEGRATION_HEADER).is_some_and(|k| self.config.integration_keys.iter().any(|s| s == k)) {
            return message(StatusCode::FORBIDDEN, FORBIDDEN_MESSAGE);
        }
        let json_type = text(header::CONTENT_TYPE.as_str())
            .is_some_and(|t| t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
        if !json_type {
            return message(StatusCode::UNSUPPORTED_MEDIA_TYPE, "The request entity's media type is not supported.");
        }
        let Some(Value::Array(items)) = parsed else {
            return message(StatusCode::BAD_REQUEST, "The request is invalid: the body must be a JSON array.");
        };
        if items.len() > MAX_ITEMS {
            return message(
                StatusCode::BAD_REQUEST,
                &format!("The request is invalid: at most {MAX_ITEMS} items per call, got {}.", items.len()),
            );
        }
        self.stats.items += items.len() as u64;
        let data: Vec<Value> = items.into_iter().map(|item| self.item(item)).collect();
        (StatusCode::OK, Json(json!({"status": "Success", "messages": [], "pagination": null, "data": data})))
            .into_response()
    }

    /// Check one item; answer its `data` entry.
    fn item(&mut self, item: Value) -> Value {
        let obj = match item {
            Value::Object(obj) => obj,
            other => {
                return json!({"Request": other, "WasSuccessful": false, "Messages": ["The item must be an object."]});
            }
        };
        let echoed = Value::Object(echo(&obj));
        let verdict = self.check(&obj);
        match verdict {
            Ok(accepted) => {
                self.submitted.push(accepted);
                json!({"Request": echoed, "WasSuccessful": true, "Messages": null})
            }
            Err(m) => json!({"Request": echoed, "WasSuccessful": false, "Messages": [m]}),
        }
    }

    fn check(&mut self, obj: &Map<String, Value>) -> Result<SubmittedItem, String> {
        let shipment_id = obj.get("ShipmentId").and_then(normalize_id).ok_or("ShipmentId is required.")?;
        let tracking_number = obj.get("TrackingNumber").and_then(Value::as_str).filter(|s| !s.is_empty());
        let line_items = match obj.get("LineItems") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(l)) => l.clone(),
            Some(_) => return Err("LineItems must be an array.".into()),
        };
        if tracking_number.is_none() && line_items.is_empty() {
            return Err("TrackingNumber is required if LineItems are not passed in.".into());
        }
        let mut lines = Vec::new();
        for l in &line_items {
            let id = l.get("LineItemId").and_then(normalize_id).ok_or("LineItems[i].LineItemId is required.")?;
            let own = l.get("TrackingNumber").and_then(Value::as_str).filter(|s| !s.is_empty());
            let number = own
                .or(tracking_number)
                .ok_or_else(|| format!("LineItem {id}: TrackingNumber is required when the base request has none."))?;
            lines.push(SubmittedLineItem { line_item_id: id, tracking_number: Some(number.to_owned()) });
        }
        if let Some(known) = &self.config.known_shipment_ids
            && !known.iter().any(|k| normalize_id_str(k) == shipment_id)
        {
            return Err(format!("Shipment {shipment_id} was not found."));
        }
        if let Some((m, left)) = self.item_faults.get_mut(&shipment_id) {
            let m = m.clone();
            *left -= 1;
            if *left == 0 {
                self.item_faults.remove(&shipment_id);
            }
            return Err(m);
        }
        Ok(SubmittedItem {
            shipment_id,
            tracking_number: tracking_number.map(str::to_owned),
            carrier_id: obj.get("CarrierId").and_then(normalize_id),
            line_items: lines,
        })
    }
}

/// The item as ecomdash echoes it: ids (ShipmentId, CarrierId, LineItemId) as decimals.
fn echo(obj: &Map<String, Value>) -> Map<String, Value> {
    let mut out = obj.clone();
    for key in ["ShipmentId", "CarrierId"] {
        if let Some(v) = out.get_mut(key) {
            *v = as_decimal(v);
        }
    }
    if let Some(Value::Array(lines)) = out.get_mut("LineItems") {
        for l in lines.iter_mut().filter_map(Value::as_object_mut) {
            for key in ["LineItemId", "CarrierId"] {
                if let Some(v) = l.get_mut(key) {
                    *v = as_decimal(v);
                }
            }
        }
    }
    out
}

/// A numeric id as a JSON float (`28` → `28.0`); anything else unchanged.
fn as_decimal(v: &Value) -> Value {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|f| f.is_finite()).map(Value::from).unwrap_or_else(|| v.clone())
}

fn normalize_id(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(normalize_id_str(&n.to_string())),
        Value::String(s) if !s.trim().is_empty() => Some(normalize_id_str(s)),
        _ => None,
    }
}

fn normalize_id_str(s: &str) -> String {
    let s = s.trim();
    match s.split_once('.') {
        Some((int, frac)) if !int.is_empty() && frac.bytes().all(|b| b == b'0') => int.to_owned(),
        _ => s.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsRequest {
    latency_ms: Option<u64>,
    fail_next: Option<FailNextRequest>,
    fail_item: Option<FailItemRequest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailNextRequest {
    count: u32,
    /// `server_error` (500), `rate_limited` (429) or `forbidden` (403).
    kind: String,
    /// For `rate_limited`: the N of "Try again in N seconds" (default 1).
    seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailItemRequest {
    shipment_id: String,
    message: String,
    times: u32,
}

async fn ctl_faults(State(sim): State<EcomdashSim>, body: Bytes) -> Response {
    let req: FaultsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))).into_response(),
    };
    let fault = match &req.fail_next {
        None => None,
        Some(f) => Some(match f.kind.as_str() {
            "server_error" => SimFault::ServerError,
            "rate_limited" => SimFault::RateLimited(f.seconds.unwrap_or(1)),
            "forbidden" => SimFault::Forbidden,
            other => {
                let e = format!("unknown kind {other}: server_error, rate_limited or forbidden");
                return (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response();
            }
        }),
    };
    if let Some(ms) = req.latency_ms {
        sim.set_latency(Duration::from_millis(ms));
    }
    if let (Some(f), Some(fault)) = (req.fail_next, fault) {
        sim.fail_next(f.count, fault);
    }
    if let Some(f) = req.fail_item {
        sim.fail_item(&f.shipment_id, &f.message, f.times);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn ctl_stats(State(sim): State<EcomdashSim>) -> Json<EcomdashSimStats> {
    Json(sim.stats())
}

async fn ctl_submitted(State(sim): State<EcomdashSim>) -> Json<Vec<SubmittedItem>> {
    Json(sim.submitted())
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    const PATH: &str = "/api/Shipments/submitTrackingInfo";

    fn sim() -> EcomdashSim {
        EcomdashSim::new(EcomdashSimConfig::default())
    }

    async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value, String) {
        let resp = app.clone().oneshot(req).await.expect("router answers");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::String(raw.clone()));
        (status, value, raw)
    }

    async fn call_with(app: &Router, sub: Option<&str>, ecd: Option<&str>, body: &str) -> (StatusCode, Value, String) {
        let mut req = Request::post(PATH).header("content-type", "application/json");
        if let Some(k) = sub {
            req = req.header(SUBSCRIPTION_HEADER, k);
        }
        if let Some(k) = ecd {
            req = req.header(INTEGRATION_HEADER, k);
        }
        send(app, req.body(Body::from(body.to_owned())).expect("request")).await
    }

    async fn call(app: &Router, body: Value) -> (StatusCode, Value, String) {
        call_with(app, Some("sub-demo"), Some("ecd-demo"), &body.to_string()).await
    }

    #[tokio::test]
    async fn accepts_the_seed_body_and_echoes_decimal_ids() {
        let sim = sim();
        let app = sim.router();
        let (s, b, raw) = call(
            &app,
            json!([{"ShipmentId": 28, "CarrierId": 4, "TrackingNumber": "ABC123XYZ", "ShippedDate": "2016-07-18T12:57:33"},
                   {"ShipmentId": 29, "LineItems": [{"LineItemId": 7, "TrackingNumber": "L1"}]}]),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["status"], "Success");
        assert_eq!(b["pagination"], Value::Null);
        assert!(raw.contains("\"ShipmentId\":28.0"), "{raw}");
        assert_eq!(b["data"][0]["WasSuccessful"], true);
        assert_eq!(b["data"][1]["WasSuccessful"], true);
        let sub = sim.submitted();
        assert_eq!(sub.len(), 2);
        assert_eq!(sub[0].shipment_id, "28");
        assert_eq!(sub[0].carrier_id.as_deref(), Some("4"));
        assert_eq!(
            sub[1].line_items,
            vec![SubmittedLineItem { line_item_id: "7".into(), tracking_number: Some("L1".into()) }]
        );
        assert_eq!(sim.stats().items, 2);
    }

    #[tokio::test]
    async fn keys_are_checked() {
        let app = sim().router();
        let body = "[]";
        let (s, b, _) = call_with(&app, None, Some("ecd-demo"), body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
        let (s, _, _) = call_with(&app, Some("nope"), Some("ecd-demo"), body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, b, _) = call_with(&app, Some("sub-demo"), None, body).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(b["Message"].as_str().is_some_and(|m| m.contains("ecd-subscription-key")), "{b}");
        let (s, _, _) = call_with(&app, Some("sub-demo"), Some("bad"), body).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, b, _) = call_with(&app, Some("sub-demo"), Some("ecd-demo"), body).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b["data"], json!([]));
    }

    #[tokio::test]
    async fn shape_is_enforced() {
        let app = sim().router();
        let (s, _, _) = call(&app, json!({"ShipmentId": 1, "TrackingNumber": "T"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "an object, not an array");
        let (s, _, _) = call_with(&app, Some("sub-demo"), Some("ecd-demo"), "not json").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let many: Vec<Value> = (0..51).map(|i| json!({"ShipmentId": i, "TrackingNumber": "T"})).collect();
        let (s, _, _) = call(&app, Value::Array(many)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let req = Request::post(PATH)
            .header(SUBSCRIPTION_HEADER, "sub-demo")
            .header(INTEGRATION_HEADER, "ecd-demo")
            .header("content-type", "text/plain")
            .body(Body::from("[]"))
            .expect("request");
        let (s, _, _) = send(&app, req).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[tokio::test]
    async fn bad_items_fail_alone() {
        let sim = EcomdashSim::new(EcomdashSimConfig {
            known_shipment_ids: Some(vec!["1".into(), "2".into(), "3".into(), "4".into()]),
            ..Default::default()
        });
        let app = sim.router();
        let (s, b, _) = call(
            &app,
            json!([{"TrackingNumber": "T"}, {"ShipmentId": 2}, {"ShipmentId": 3, "TrackingNumber": "T"},
                   {"ShipmentId": 99, "TrackingNumber": "T"}, {"ShipmentId": 4, "LineItems": [{"LineItemId": 1}]}]),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let ok: Vec<bool> =
            b["data"].as_array().expect("data").iter().map(|d| d["WasSuccessful"].as_bool().unwrap_or(true)).collect();
        assert_eq!(ok, vec![false, false, true, false, false]);
        assert!(b["data"][3]["Messages"][0].as_str().is_some_and(|m| m.contains("not found")), "{b}");
        assert_eq!(sim.submitted().len(), 1);
    }

    #[tokio::test]
    async fn faults_and_item_faults() {
        let sim = sim();
        let app = sim.router();
        sim.fail_next(1, SimFault::ServerError);
        sim.fail_next(1, SimFault::RateLimited(7));
        sim.fail_next(1, SimFault::Forbidden);
        let body = json!([{"ShipmentId": 5, "TrackingNumber": "T"}]);
        let (s, b, _) = call(&app, body.clone()).await;
        assert_eq!((s, b["Message"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some(SERVER_ERROR_MESSAGE)));
        let (s, b, _) = call(&app, body.clone()).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        assert!(b["message"].as_str().is_some_and(|m| m.contains("Try again in 7 seconds")), "{b}");
        let (s, _, _) = call(&app, body.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        sim.fail_item("5", "Database busy, try again", 1);
        let (_, b, _) = call(&app, body.clone()).await;
        assert_eq!(b["data"][0]["WasSuccessful"], false);
        assert_eq!(b["data"][0]["Messages"][0], "Database busy, try again");
        let (_, b, _) = call(&app, body).await;
        assert_eq!(b["data"][0]["WasSuccessful"], true);
        assert_eq!(sim.stats().calls, 5);
    }

    #[tokio::test]
    async fn too_many_in_flight_is_refused() {
        let sim = EcomdashSim::new(EcomdashSimConfig { max_concurrency: 2, ..Default::default() });
        sim.set_latency(Duration::from_millis(50));
        let app = sim.router();
        let body = json!([{"ShipmentId": 1, "TrackingNumber": "T"}]);
        let (a, b, c) = tokio::join!(call(&app, body.clone()), call(&app, body.clone()), call(&app, body.clone()));
        let mut statuses = vec![a.0, b.0, c.0];
        statuses.sort();
        assert_eq!(statuses, vec![StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]);
        let st = sim.stats();
        assert_eq!((st.max_in_flight, st.over_concurrency), (3, 1));
    }

    #[tokio::test]
    async fn control_api() {
        let sim = sim();
        let app = sim.router();
        let post = |body: Value| {
            Request::post("/_sim/faults")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .expect("req")
        };
        let (s, _, _) =
            send(&app, post(json!({"fail_next": {"count": 1, "kind": "rate_limited", "seconds": 3}}))).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _, _) = send(&app, post(json!({"fail_next": {"count": 1, "kind": "bogus"}}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _, _) =
            send(&app, post(json!({"fail_item": {"shipment_id": "9", "message": "nope", "times": 1}}))).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _, _) = call(&app, json!([{"ShipmentId": 9, "TrackingNumber": "T"}])).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        let (_, b, _) = call(&app, json!([{"ShipmentId": 9, "TrackingNumber": "T"}])).await;
        assert_eq!(b["data"][0]["Messages"][0], "nope");
        call(&app, json!([{"ShipmentId": 9, "TrackingNumber": "T"}])).await;
        let (_, b, _) = send(&app, Request::get("/_sim/stats").body(Body::empty()).expect("req")).await;
        assert_eq!(b["calls"], 3);
        let (_, b, _) = send(&app, Request::get("/_sim/submitted").body(Body::empty()).expect("req")).await;
        assert_eq!(b, json!([{"shipment_id": "9", "tracking_number": "T", "carrier_id": null, "line_items": []}]));
    }
}
