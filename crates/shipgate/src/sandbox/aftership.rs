//! In-memory **AfterShip Tracking API (2024-04) simulator**, served as an axum router.
//!
//! It plays AfterShip's side strictly so that the adapter's tests mean something. Paths
//! are relative to the API base (`https://api.aftership.com/tracking/2024-04` at the
//! real carrier):
//!
//! | operation (stats name) | call |
//! |---|---|
//! | `create` | `POST /trackings` `{tracking:{...}}` |
//! | `list` | `GET /trackings?tracking_numbers=a,b&slug=x&limit=n` |
//! | `get` | `GET /trackings/{id}` |
//! | `update` | `PUT /trackings/{id}` `{tracking:{...}}` |
//! | `delete` | `DELETE /trackings/{id}` |
//! | `retrack` | `POST /trackings/{id}/retrack` |
//! | `mark_completed` | `POST /trackings/{id}/mark-as-completed` `{reason}` |
//! | `last_checkpoint` | `GET /last_checkpoint/{id}` |
//! | `predict_batch` | `POST /estimated-delivery-date/predict-batch` `{estimated_delivery_dates:[..]}` |
//!
//! Every answer uses the 2024-04 envelope `{meta:{code, message?, type?}, data:{...}}`.
//! Public meta codes (AfterShip's generated SDKs, `errorx/error_code.go` of
//! tracking-sdk-go): 4001 invalid JSON, 4003 already exists (HTTP 400, the existing
//! tracking in `data.tracking`), 4004 does not exist (404), 4005 invalid number, 4006
//! tracking object required, 4007 number required, 4008 invalid value, 4009 value
//! required, 4010 invalid slug, 4013 retrack not allowed (the tracking is still
//! active), 4016 retrack not allowed (limit reached), 401 bad key, 429 rate limited
//! (aftership-tracking-sdk 2.0.2 README "Error List"). The account limit
//! (10 req/s by default) is enforced over any sliding one-second window and answered
//! with 429 plus `X-RateLimit-Reset` (Unix seconds), `X-RateLimit-Limit` and
//! `X-RateLimit-Remaining`.
//!
//! Sources: seed `002_5011739573563659.txt`, shared/docs/CARRIERS.md "aftership", the
//! public 2024-04 SDK models (checkpoint fields `checkpoint_time`, `city`, `state`,
//! `zip`, `country_iso3`, `country_name`, `message`, `tag`, `subtag`, `subtag_message`,
//! `raw_tag`; predict-batch addresses `country` (alpha-3), `state`, `city`,
//! `postal_code`, `raw_location`; page-numbered lists; partial trackings answered by
//! retrack and delete). Where they are silent (ids, courier detection,
//! checkpoint texts, predicted dates) the behaviour is the simulator's own and
//! deterministic.
//!
//! Control API: `POST /_sim/trackings/{id}/advance`, `POST /_sim/trackings/{id}/expire`,
//! `GET /_sim/trackings/{id}`, `POST /_sim/faults`, `GET /_sim/stats`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

const API_KEY_HEADER: &str = "as-api-key";
/// Courier slugs the simulator knows (a small part of AfterShip's list).
pub const KNOWN_SLUGS: [&str; 10] =
    ["dhl", "ups", "fedex", "usps", "ecom-express", "delhivery", "bluedart", "royal-mail", "dpd", "tnt"];
const MAX_RETRACKS: u32 = 3;
const MAX_CONTACTS: usize = 3;
/// Request fields of API 2024-04 (aftership-tracking-sdk 2.0.2 request models; see
/// `carriers::aftership::wire::sdk_2024_04`): anything else is refused with 4008.
use crate::carriers::aftership::wire::sdk_2024_04::{
    ADDRESS_FIELDS, CREATE_FIELDS, ESTIMATE_FIELDS, ESTIMATED_PICKUP_FIELDS, UPDATE_FIELDS,
};

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct AftershipSimConfig {
    /// Accepted `as-api-key` values (one account each).
    pub api_keys: Vec<String>,
    /// The account limit over any one-second window (AfterShip 2024-04: 10).
    pub rate_limit_per_second: u32,
}

impl Default for AftershipSimConfig {
    fn default() -> Self {
        Self { api_keys: vec!["as-demo-key".to_owned()], rate_limit_per_second: 10 }
    }
}

/// A fault injected by [`AftershipSim::fail_next`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimFault {
    /// That HTTP status with `{meta:{code, message, type}, data:{}}`.
    Meta { http: u16, code: u32, message: String },
    /// HTTP 200 with a body that is not JSON.
    Garbage,
    /// The call is carried out, then the answer is lost on the way back (HTTP 504).
    ProcessThenFail,
}

impl SimFault {
    /// HTTP 500, meta 500.
    pub fn internal() -> SimFault {
        SimFault::Meta { http: 500, code: 500, message: "Something went wrong on AfterShip's end.".into() }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AftershipSimStats {
    /// Carrier calls per operation name (see the module table), faulted and refused ones included.
    pub calls: BTreeMap<String, u64>,
    /// Calls refused with 429 because the account went over its limit (not [`AftershipSim::burst_429`]).
    pub rate_limited: u64,
    /// Most carrier calls that arrived within any one-second window.
    pub max_requests_in_one_second: u64,
}

/// One carrier call as received.
#[derive(Clone, Debug, Serialize)]
pub struct AftershipSimRequest {
    pub op: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub api_key: Option<String>,
    /// The parsed body, `Null` when absent or not JSON.
    pub body: Value,
}

/// The simulator; cheap to clone (shared state).
#[derive(Clone)]
pub struct AftershipSim {
    inner: Arc<Mutex<Inner>>,
}

impl AftershipSim {
    pub fn new(config: AftershipSimConfig) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                api_keys: config.api_keys,
                limit: config.rate_limit_per_second.max(1),
                windows: HashMap::new(),
                arrivals: VecDeque::new(),
                trackings: BTreeMap::new(),
                next_id: 1,
                latency: Duration::ZERO,
                faults: Vec::new(),
                burst: 0,
                stats: AftershipSimStats::default(),
                requests: Vec::new(),
            })),
        }
    }

    /// Routes relative to the API base: the carrier API and the `/_sim` control API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/trackings", get(list_trackings).post(create_tracking))
            .route("/trackings/{id}", get(get_tracking).put(update_tracking).delete(delete_tracking))
            .route("/trackings/{id}/retrack", post(retrack))
            .route("/trackings/{id}/mark-as-completed", post(mark_completed))
            .route("/last_checkpoint/{id}", get(last_checkpoint))
            .route("/estimated-delivery-date/predict-batch", post(predict_batch))
            .route("/_sim/trackings/{id}/advance", post(ctl_advance))
            .route("/_sim/trackings/{id}/expire", post(ctl_expire))
            .route("/_sim/trackings/{id}", get(ctl_tracking))
            .route("/_sim/faults", post(ctl_faults))
            .route("/_sim/stats", get(ctl_stats))
            .fallback(|| async { meta_error(StatusCode::NOT_FOUND, 404, "The URI requested is invalid.") })
            .with_state(self.clone())
    }

    /// Adds a checkpoint and moves the tag one step along
    /// Pending → InfoReceived → InTransit → OutForDelivery → Delivered; returns the tag
    /// afterwards (unchanged when delivered, expired or completed).
    pub fn advance(&self, id: &str) -> Option<String> {
        let mut st = self.lock();
        let t = st.trackings.get_mut(id)?;
        t.advance();
        Some(t.tag.clone())
    }

    /// The tracking stops updating: tag `Expired` (so it may be retracked).
    pub fn expire(&self, id: &str) -> Option<String> {
        let mut st = self.lock();
        let t = st.trackings.get_mut(id)?;
        t.set_tag("Expired", "Expired_001", "No further updates");
        t.active = false;
        Some(t.tag.clone())
    }

    /// Delay applied to every carrier call before it is answered.
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// The next `count` calls (of operation `op`, or of any) answer with `fault`.
    /// `count == 0` clears pending faults for that selector.
    pub fn fail_next(&self, op: Option<&str>, count: u32, fault: SimFault) {
        let mut st = self.lock();
        let op = op.map(str::to_owned);
        if count == 0 {
            st.faults.retain(|f| f.op != op);
        } else {
            st.faults.push(FaultRule { op, remaining: count, fault });
        }
    }

    /// The next `count` authenticated calls get 429 with `X-RateLimit-Reset` one second ahead.
    pub fn burst_429(&self, count: u32) {
        self.lock().burst = count;
    }

    pub fn stats(&self) -> AftershipSimStats {
        self.lock().stats.clone()
    }

    /// Every carrier call so far, in arrival order.
    pub fn requests(&self) -> Vec<AftershipSimRequest> {
        self.lock().requests.clone()
    }

    /// The tracking as `GET /trackings/{id}` would answer it (`data.tracking`).
    pub fn tracking(&self, id: &str) -> Option<Value> {
        self.lock().trackings.get(id).map(SimTracking::render)
    }

    pub fn tracking_count(&self) -> usize {
        self.lock().trackings.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

struct Inner {
    api_keys: Vec<String>,
    limit: u32,
    /// Accepted calls of each key within the last second.
    windows: HashMap<String, VecDeque<Instant>>,
    /// Every call within the last second (for `max_requests_in_one_second`).
    arrivals: VecDeque<Instant>,
    trackings: BTreeMap<String, SimTracking>,
    next_id: u64,
    latency: Duration,
    faults: Vec<FaultRule>,
    burst: u32,
    stats: AftershipSimStats,
    requests: Vec<AftershipSimRequest>,
}

struct FaultRule {
    op: Option<String>,
    remaining: u32,
    fault: SimFault,
}

#[derive(Clone, Debug)]
struct SimTracking {
    id: String,
    tracking_number: String,
    slug: String,
    fields: Map<String, Value>,
    tag: String,
    subtag: String,
    subtag_message: String,
    checkpoints: Vec<Value>,
    active: bool,
    retracks: u32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    eta: Option<NaiveDate>,
}

const STEPS: [(&str, &str, &str, &str, &str); 4] = [
    ("InfoReceived", "InfoReceived_001", "Info Received", "Shipment information received", "Orlando"),
    ("InTransit", "InTransit_002", "Shipment picked up", "Picked up by the courier", "Orlando"),
    ("OutForDelivery", "OutForDelivery_001", "Out for Delivery", "Out for delivery", "Miami"),
    ("Delivered", "Delivered_001", "Delivered", "Delivered, front door", "Miami"),
];

impl SimTracking {
    fn set_tag(&mut self, tag: &str, subtag: &str, message: &str) {
        tag.clone_into(&mut self.tag);
        subtag.clone_into(&mut self.subtag);
        message.clone_into(&mut self.subtag_message);
        self.updated_at = Utc::now();
    }

    fn advance(&mut self) {
        let next = match self.tag.as_str() {
            "Pending" => 0,
            "InfoReceived" => 1,
            "InTransit" => 2,
            "OutForDelivery" => 3,
            _ => return,
        };
        let (tag, subtag, subtag_message, message, city) = STEPS[next];
        let at = self.created_at + ChronoDuration::hours(6 * (self.checkpoints.len() as i64 + 1));
        self.checkpoints.push(json!({
            "slug": self.slug,
            "created_at": rfc3339(Utc::now()),
            "checkpoint_time": at.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
            "location": format!("{city}, FL, USA"),
            "city": city,
            "state": "FL",
            "zip": if city == "Miami" { "33101" } else { "32804" },
            "country_iso3": "USA",
            "country_name": "United States",
            "message": message,
            "tag": tag,
            "subtag": subtag,
            "subtag_message": subtag_message,
            "raw_tag": format!("S{next}"),
        }));
        if tag == "InTransit" {
            self.eta = Some(at.date_naive() + ChronoDuration::days(3));
        }
        self.set_tag(tag, subtag, subtag_message);
        if tag == "Delivered" {
            self.active = false;
        }
    }

    /// What retrack and delete answer in 2024-04: a partial tracking (SDK
    /// `PartialUpdateTracking` / `PartialDeleteTracking`), never tag or checkpoints.
    fn render_partial(&self, with_active: bool) -> Value {
        let mut t = json!({
            "id": self.id,
            "tracking_number": self.tracking_number,
            "slug": self.slug,
        });
        for k in [
            "tracking_account_number",
            "tracking_key",
            "tracking_ship_date",
            "tracking_origin_country",
            "tracking_destination_country",
            "tracking_postal_code",
            "tracking_state",
        ] {
            t[k] = self.fields.get(k).cloned().unwrap_or(Value::Null);
        }
        if with_active {
            t["active"] = self.active.into();
        }
        t
    }

    fn render(&self) -> Value {
        let mut t = self.fields.clone();
        let eta = self.eta.map(|d| d.format("%Y-%m-%d").to_string());
        let fresh = json!({
            "id": self.id,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "tracking_number": self.tracking_number,
            "slug": self.slug,
            "active": self.active,
            "tag": self.tag,
            "subtag": self.subtag,
            "subtag_message": self.subtag_message,
            "return_to_sender": false,
            "checkpoints": self.checkpoints,
            "expected_delivery": eta,
            "latest_estimated_delivery": eta.as_ref().map(|d| json!({
                "type": "specific", "source": "Carrier EDD", "datetime": d, "datetime_min": null, "datetime_max": null,
            })),
        });
        if let Value::Object(m) = fresh {
            t.extend(m);
        }
        for k in ["title", "order_id", "note", "customer_name", "language", "order_promised_delivery_date"] {
            t.entry(k).or_insert(Value::Null);
        }
        for k in ["emails", "smses"] {
            t.entry(k).or_insert_with(|| json!([]));
        }
        if t.get("title").is_none_or(Value::is_null) {
            t.insert("title".into(), self.tracking_number.clone().into());
        }
        Value::Object(t)
    }
}

// ---------------------------------------------------------------------------------------------
// Carrier API
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Create,
    List,
    Get,
    Update,
    Delete,
    Retrack,
    MarkCompleted,
    LastCheckpoint,
    PredictBatch,
}

impl Op {
    const ALL: [Op; 9] = [
        Op::Create,
        Op::List,
        Op::Get,
        Op::Update,
        Op::Delete,
        Op::Retrack,
        Op::MarkCompleted,
        Op::LastCheckpoint,
        Op::PredictBatch,
    ];
    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::List => "list",
            Op::Get => "get",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Retrack => "retrack",
            Op::MarkCompleted => "mark_completed",
            Op::LastCheckpoint => "last_checkpoint",
            Op::PredictBatch => "predict_batch",
        }
    }
    fn method(self) -> &'static str {
        match self {
            Op::List | Op::Get | Op::LastCheckpoint => "GET",
            Op::Update => "PUT",
            Op::Delete => "DELETE",
            _ => "POST",
        }
    }
}

struct Call {
    op: Op,
    id: Option<String>,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

async fn create_tracking(State(sim): State<AftershipSim>, headers: HeaderMap, q: RawQuery, body: Bytes) -> Response {
    serve(sim, Call { op: Op::Create, id: None, query: q.0, headers, body }).await
}
async fn list_trackings(State(sim): State<AftershipSim>, headers: HeaderMap, q: RawQuery) -> Response {
    serve(sim, Call { op: Op::List, id: None, query: q.0, headers, body: Bytes::new() }).await
}
async fn get_tracking(
    State(sim): State<AftershipSim>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    serve(sim, Call { op: Op::Get, id: Some(id), query: q.0, headers, body: Bytes::new() }).await
}
async fn update_tracking(
    State(sim): State<AftershipSim>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: RawQuery,
    body: Bytes,
) -> Response {
    serve(sim, Call { op: Op::Update, id: Some(id), query: q.0, headers, body }).await
}
async fn delete_tracking(
    State(sim): State<AftershipSim>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    serve(sim, Call { op: Op::Delete, id: Some(id), query: q.0, headers, body: Bytes::new() }).await
}
async fn retrack(
    State(sim): State<AftershipSim>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: RawQuery,
    body: Bytes,
) -> Response {
    serve(sim, Call { op: Op::Retrack, id: Some(id), query: q.0, headers, body }).await
}
async fn mark_completed(
    State(sim): State<AftershipSim>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: RawQuery,
    body: Bytes,
) -> Response {
    serve(sim, Call { op: Op::MarkCompleted, id: Some(id), query: q.0, headers, body }).await
}
async fn last_checkpoint(
    State(sim): State<AftershipSim>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    serve(sim, Call { op: Op::LastCheckpoint, id: Some(id), query: q.0, headers, body: Bytes::new() }).await
}
async fn predict_batch(State(sim): State<AftershipSim>, headers: HeaderMap, q: RawQuery, body: Bytes) -> Response {
    serve(sim, Call { op: Op::PredictBatch, id: None, query: q.0, headers, body }).await
}

enum Gate {
    Go { fault: Option<SimFault>, latency: Duration, limit: u32, remaining: u32, reset: u64 },
    Stop(Response),
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Unix second at which `when` (a monotonic instant) happens, rounded up.
fn unix_at(when: Instant) -> u64 {
    let ahead = when.saturating_duration_since(Instant::now());
    let t = SystemTime::now() + ahead;
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn rate_headers(resp: &mut Response, limit: u32, remaining: u32, reset: u64) {
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-reset", reset.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
}

impl Inner {
    /// Record the call, check the key, the rate limit, bursts and faults.
    fn admit(&mut self, call: &Call) -> Gate {
        let now = Instant::now();
        let second = Duration::from_secs(1);
        *self.stats.calls.entry(call.op.name().to_owned()).or_default() += 1;
        while self.arrivals.front().is_some_and(|t| now.duration_since(*t) >= second) {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(now);
        self.stats.max_requests_in_one_second = self.stats.max_requests_in_one_second.max(self.arrivals.len() as u64);
        let key = call.headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let path = match &call.id {
            None if call.op == Op::PredictBatch => "/estimated-delivery-date/predict-batch".to_owned(),
            None => "/trackings".to_owned(),
            Some(id) => match call.op {
                Op::Retrack => format!("/trackings/{id}/retrack"),
                Op::MarkCompleted => format!("/trackings/{id}/mark-as-completed"),
                Op::LastCheckpoint => format!("/last_checkpoint/{id}"),
                _ => format!("/trackings/{id}"),
            },
        };
        // Keep the last REQUEST_LOG_CAP calls: a long sandbox or load run must not grow without bound.
        if self.requests.len() >= crate::sandbox::REQUEST_LOG_CAP {
            self.requests.drain(..crate::sandbox::REQUEST_LOG_CAP / 2);
        }
        self.requests.push(AftershipSimRequest {
            op: call.op.name().to_owned(),
            method: call.op.method().to_owned(),
            path,
            query: call.query.clone(),
            api_key: key.clone(),
            body: serde_json::from_slice(&call.body).unwrap_or(Value::Null),
        });
        let Some(key) = key.filter(|k| self.api_keys.contains(k)) else {
            return Gate::Stop(meta_error(StatusCode::UNAUTHORIZED, 401, "Invalid API key."));
        };
        let limit = self.limit;
        let window = self.windows.entry(key).or_default();
        while window.front().is_some_and(|t| now.duration_since(*t) >= second) {
            window.pop_front();
        }
        let reset = window.front().map(|t| unix_at(*t + second)).unwrap_or_else(|| unix_now() + 1);
        if self.burst > 0 || window.len() >= limit as usize {
            if self.burst > 0 {
                self.burst -= 1;
            } else {
                self.stats.rate_limited += 1;
            }
            let mut resp = meta_error(
                StatusCode::TOO_MANY_REQUESTS,
                429,
                "You have exceeded the API call rate limit. The default limit is 10 requests per second.",
            );
            rate_headers(&mut resp, limit, 0, reset.max(unix_now() + 1));
            return Gate::Stop(resp);
        }
        window.push_back(now);
        let remaining = limit.saturating_sub(u32::try_from(window.len()).unwrap_or(u32::MAX));
        let fault = self.take_fault(call.op);
        Gate::Go { fault, latency: self.latency, limit, remaining, reset }
    }

    fn take_fault(&mut self, op: Op) -> Option<SimFault> {
        let idx = self.faults.iter().position(|f| f.op.as_deref().is_none_or(|o| o == op.name()))?;
        let rule = &mut self.faults[idx];
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        if rule.remaining == 0 {
            self.faults.remove(idx);
        }
        Some(fault)
    }

    fn handle(&mut self, call: &Call) -> Response {
        let id = call.id.as_deref().unwrap_or_default();
        let result = match call.op {
            Op::Create => self.create(&call.body),
            Op::List => self.list(call.query.as_deref()),
            Op::Get => self.find(id).map(|t| ok(json!({ "tracking": t.render() }))),
            Op::Update => self.update(id, &call.body),
            Op::Delete => self.delete(id),
            Op::Retrack => self.retrack(id),
            Op::MarkCompleted => self.mark_completed(id, &call.body),
            Op::LastCheckpoint => self.last_checkpoint(id),
            Op::PredictBatch => predict(&call.body),
        };
        result.unwrap_or_else(ApiError::into_response)
    }

    fn find(&self, id: &str) -> Result<&SimTracking, ApiError> {
        self.trackings.get(id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, 4004, "Tracking does not exist."))
    }

    fn find_mut(&mut self, id: &str) -> Result<&mut SimTracking, ApiError> {
        self.trackings.get_mut(id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, 4004, "Tracking does not exist."))
    }

    fn create(&mut self, body: &[u8]) -> Result<Response, ApiError> {
        let t = tracking_object(body)?;
        let number = match t.get("tracking_number") {
            None | Some(Value::Null) => return Err(bad(4007, "`tracking_number` is required.")),
            Some(Value::String(s)) if (4..=100).contains(&s.chars().count()) => s.clone(),
            Some(_) => {
                return Err(bad(4005, "The value of `tracking_number` is invalid. It must have 4 to 100 characters."));
            }
        };
        check_fields(&t, &CREATE_FIELDS)?;
        let slug = match t.get("slug") {
            None | Some(Value::Null) => detect_slug(&number).to_owned(),
            Some(Value::String(s)) if KNOWN_SLUGS.contains(&s.as_str()) => s.clone(),
            Some(_) => return Err(bad(4010, "The value of `slug` is invalid.")),
        };
        if let Some(existing) = self.trackings.values().find(|x| x.tracking_number == number && x.slug == slug) {
            return Err(ApiError {
                data: Some(json!({ "tracking": existing.render() })),
                ..ApiError::new(StatusCode::BAD_REQUEST, 4003, "Tracking already exists.")
            });
        }
        let mut fields = Map::new();
        for (k, v) in t {
            if !matches!(k.as_str(), "tracking_number" | "slug") {
                fields.insert(k, v);
            }
        }
        let id = format!("as{:022x}", self.next_id * 0x9e37_79b9 + 0x5eed);
        self.next_id += 1;
        let now = Utc::now();
        let tracking = SimTracking {
            id: id.clone(),
            tracking_number: number,
            slug,
            fields,
            tag: "Pending".into(),
            subtag: "Pending_001".into(),
            subtag_message: "Pending".into(),
            checkpoints: Vec::new(),
            active: true,
            retracks: 0,
            created_at: now,
            updated_at: now,
            eta: None,
        };
        let rendered = tracking.render();
        self.trackings.insert(id, tracking);
        Ok(created(json!({ "tracking": rendered })))
    }

    fn list(&self, query: Option<&str>) -> Result<Response, ApiError> {
        let mut numbers: Option<Vec<String>> = None;
        let mut slugs: Option<Vec<String>> = None;
        let mut limit = 100usize;
        let mut page = 1usize;
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let list = || v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            match k.as_ref() {
                "tracking_numbers" => {
                    let n: Vec<String> = list();
                    if n.len() > 50 {
                        return Err(bad(4008, "`tracking_numbers` supports up to 50 tracking numbers."));
                    }
                    numbers = Some(n);
                }
                "slug" => slugs = Some(list()),
                "limit" => {
                    limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=200).contains(n))
                        .ok_or_else(|| bad(4008, "The value of `limit` is invalid (1 to 200)."))?;
                }
                "page" => {
                    page = v
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| bad(4008, "The value of `page` is invalid."))?;
                }
                // The other 2024-04 query parameters (SDK `get_trackings`); `cursor` is 2024-10.
                "keyword"
                | "transit_time"
                | "origin"
                | "destination"
                | "tag"
                | "created_at_min"
                | "created_at_max"
                | "updated_at_min"
                | "updated_at_max"
                | "fields"
                | "return_to_sender"
                | "courier_destination_country_iso3"
                | "shipment_tags"
                | "order_id" => {}
                other => return Err(bad(4008, &format!("Unknown query parameter `{other}`."))),
            }
        }
        let picked: Vec<Value> = self
            .trackings
            .values()
            .filter(|t| numbers.as_ref().is_none_or(|n| n.contains(&t.tracking_number)))
            .filter(|t| slugs.as_ref().is_none_or(|s| s.contains(&t.slug)))
            .map(SimTracking::render)
            .collect();
        let count = picked.len();
        let trackings: Vec<Value> = picked.into_iter().skip((page - 1).saturating_mul(limit)).take(limit).collect();
        // 2024-04's page-numbered list (SDK `DataTrackingResponseGetMultipleV1`; `get_trackings`
        // reads `count`, `page`, `limit` and `trackings` from `data`).
        Ok(ok(json!({
            "page": page,
            "limit": limit,
            "count": count,
            "keyword": "",
            "slug": slugs.map(|s| s.join(",")).unwrap_or_default(),
            "origin": [],
            "destination": [],
            "tag": null,
            "created_at_min": rfc3339(Utc::now() - ChronoDuration::days(30)),
            "created_at_max": rfc3339(Utc::now()),
            "last_updated_at": null,
            "return_to_sender": [],
            "courier_destination_country_iso3": [],
            "trackings": trackings,
        })))
    }

    fn update(&mut self, id: &str, body: &[u8]) -> Result<Response, ApiError> {
        self.find(id)?;
        let t = tracking_object(body)?;
        check_fields(&t, &UPDATE_FIELDS)?;
        let slug = match t.get("slug") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if KNOWN_SLUGS.contains(&s.as_str()) => Some(s.clone()),
            Some(_) => return Err(bad(4010, "The value of `slug` is invalid.")),
        };
        let tracking = self.find_mut(id)?;
        for (k, v) in t {
            if k != "slug" {
                tracking.fields.insert(k, v);
            }
        }
        if let Some(slug) = slug {
            tracking.slug = slug;
        }
        tracking.updated_at = Utc::now();
        Ok(ok(json!({ "tracking": tracking.render() })))
    }

    fn delete(&mut self, id: &str) -> Result<Response, ApiError> {
        let t = self.find(id)?.render_partial(false);
        self.trackings.remove(id);
        Ok(ok(json!({ "tracking": t })))
    }

    fn retrack(&mut self, id: &str) -> Result<Response, ApiError> {
        let t = self.find_mut(id)?;
        // SDK 2.0.2 error list: 4013 INACTIVE_RETRACK_NOT_ALLOWED, 4016 RETRACK_ONCE_ALLOWED
        // (the seed allows 3 retracks per tracking).
        if t.active {
            return Err(bad(4013, "Retrack is not allowed. You can only retrack an inactive tracking."));
        }
        if t.retracks >= MAX_RETRACKS {
            return Err(bad(4016, "Retrack is not allowed. You can only retrack each tracking 3 times."));
        }
        t.retracks += 1;
        t.active = true;
        t.set_tag("Pending", "Pending_001", "Pending");
        Ok(ok(json!({ "tracking": t.render_partial(true) })))
    }

    fn mark_completed(&mut self, id: &str, body: &[u8]) -> Result<Response, ApiError> {
        self.find(id)?;
        let v = json_object(body)?;
        let (tag, subtag, msg) = match v.get("reason") {
            None | Some(Value::Null) => return Err(bad(4009, "`reason` is required.")),
            Some(Value::String(r)) if r == "DELIVERED" => ("Delivered", "Delivered_001", "Delivered"),
            Some(Value::String(r)) if r == "LOST" => ("Exception", "Exception_013", "Shipment lost"),
            Some(Value::String(r)) if r == "RETURNED_TO_SENDER" => ("Exception", "Exception_011", "Returned to sender"),
            Some(_) => {
                return Err(bad(4008, "The value of `reason` is invalid: DELIVERED, LOST or RETURNED_TO_SENDER."));
            }
        };
        if let Some(extra) = v.keys().find(|k| *k != "reason") {
            return Err(bad(4008, &format!("Unknown field `{extra}`.")));
        }
        let t = self.find_mut(id)?;
        t.set_tag(tag, subtag, msg);
        t.active = false;
        Ok(ok(json!({ "tracking": t.render() })))
    }

    fn last_checkpoint(&self, id: &str) -> Result<Response, ApiError> {
        let t = self.find(id)?;
        let mut data = json!({
            "id": t.id,
            "tracking_number": t.tracking_number,
            "slug": t.slug,
            "tag": t.tag,
            "subtag": t.subtag,
            "subtag_message": t.subtag_message,
        });
        if let Some(c) = t.checkpoints.last() {
            data["checkpoint"] = c.clone();
        }
        Ok(ok(data))
    }
}

async fn serve(sim: AftershipSim, call: Call) -> Response {
    let gate = sim.lock().admit(&call);
    let (fault, latency, limit, remaining, reset) = match gate {
        Gate::Stop(resp) => return resp,
        Gate::Go { fault, latency, limit, remaining, reset } => (fault, latency, limit, remaining, reset),
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut resp = match fault {
        Some(SimFault::ProcessThenFail) => {
            let _lost = sim.lock().handle(&call);
            (StatusCode::GATEWAY_TIMEOUT, "<html><body>504 Gateway Time-out</body></html>").into_response()
        }
        Some(SimFault::Garbage) => (StatusCode::OK, "<html>not json</html>").into_response(),
        Some(SimFault::Meta { http, code, message }) => {
            meta_error(StatusCode::from_u16(http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), code, &message)
        }
        None => sim.lock().handle(&call),
    };
    rate_headers(&mut resp, limit, remaining, reset);
    resp
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad(4001, "Invalid JSON data: the body must be an object.")),
        Err(_) => Err(bad(4001, "Invalid JSON data.")),
    }
}

/// The body's `tracking` object (2024-04 wraps create and update bodies).
fn tracking_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut m = json_object(body)?;
    if m.keys().any(|k| k != "tracking") {
        return Err(bad(4006, "`tracking` object is required: wrap the fields in {\"tracking\":{...}}."));
    }
    match m.remove("tracking") {
        Some(Value::Object(t)) => Ok(t),
        _ => Err(bad(4006, "`tracking` object is required.")),
    }
}

fn check_fields(t: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    for (k, v) in t {
        if !allowed.contains(&k.as_str()) {
            return Err(bad(4008, &format!("Unknown or read-only field `{k}`.")));
        }
        match k.as_str() {
            "emails" | "smses" => {
                let Value::Array(items) = v else {
                    return Err(bad(4008, &format!("`{k}` must be an array of strings.")));
                };
                if items.len() > MAX_CONTACTS {
                    return Err(bad(4008, &format!("`{k}` supports up to {MAX_CONTACTS} values.")));
                }
                for i in items {
                    let ok = match (k.as_str(), i.as_str()) {
                        ("emails", Some(s)) => s.contains('@') && !s.starts_with('@') && !s.ends_with('@'),
                        ("smses", Some(s)) => {
                            s.len() >= 4 && s.trim_start_matches('+').bytes().all(|b| b.is_ascii_digit() || b == b' ')
                        }
                        _ => false,
                    };
                    if !ok {
                        return Err(bad(4008, &format!("The value of `{k}` is invalid: {i}.")));
                    }
                }
            }
            "order_promised_delivery_date" | "order_date" | "tracking_ship_date" => {
                if !(v.is_null() || v.as_str().is_some_and(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok())) {
                    return Err(bad(4008, &format!("The value of `{k}` is invalid: use YYYY-MM-DD.")));
                }
            }
            "language" => {
                if !(v.is_null()
                    || v.as_str().is_some_and(|s| s.len() == 2 && s.bytes().all(|b| b.is_ascii_lowercase())))
                {
                    return Err(bad(4008, "The value of `language` is invalid: use an ISO 639-1 code."));
                }
            }
            "custom_fields" => {
                if !(v.is_null() || v.is_object()) {
                    return Err(bad(4008, "`custom_fields` must be an object."));
                }
            }
            "shipment_tags" => {
                if !(v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string))) {
                    return Err(bad(4008, "`shipment_tags` must be an array of strings."));
                }
            }
            "next_couriers" => {
                let ok = v.is_null()
                    || v.as_array().is_some_and(|a| {
                        a.iter().all(|c| {
                            c.as_object().is_some_and(|o| {
                                o.iter().all(|(k, x)| matches!(k.as_str(), "slug" | "tracking_number") && x.is_string())
                            })
                        })
                    });
                if !ok {
                    return Err(bad(4008, "`next_couriers` must be an array of {slug, tracking_number}."));
                }
            }
            _ => {
                if !(v.is_null() || v.is_string()) {
                    return Err(bad(4008, &format!("The value of `{k}` is invalid: must be a string.")));
                }
            }
        }
    }
    Ok(())
}

fn detect_slug(number: &str) -> &'static str {
    if number.starts_with("1Z") { "ups" } else { "dhl" }
}

fn parse_pickup(s: &str) -> Option<NaiveDate> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .map(|d| d.date())
        .ok()
        .or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|d| d.date_naive()))
}

fn check_address(item: &Map<String, Value>, name: &str, at: &str) -> Result<(), String> {
    let Some(Value::Object(a)) = item.get(name) else {
        return Err(format!("{at}.{name} is required and must be an object"));
    };
    if let Some(k) = a.keys().find(|k| !ADDRESS_FIELDS.contains(&k.as_str())) {
        return Err(format!("{at}.{name}.{k} is not a known field"));
    }
    match a.get("country").and_then(Value::as_str) {
        Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => {}
        _ => return Err(format!("{at}.{name}.country must be an ISO 3166-1 alpha-3 code")),
    }
    for (k, v) in a {
        if k != "country" && !(v.is_null() || v.is_string()) {
            return Err(format!("{at}.{name}.{k} must be a string"));
        }
    }
    Ok(())
}

fn predict(body: &[u8]) -> Result<Response, ApiError> {
    let m = json_object(body)?;
    let Some(Value::Array(items)) = m.get("estimated_delivery_dates") else {
        return Err(bad(4009, "`estimated_delivery_dates` is required and must be an array."));
    };
    if items.is_empty() || items.len() > 5 {
        return Err(bad(4008, "`estimated_delivery_dates` must have 1 to 5 items."));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("estimated_delivery_dates[{i}]");
        let Value::Object(it) = item else { return Err(bad(4008, &format!("{at} must be an object"))) };
        if let Some(k) = it.keys().find(|k| !ESTIMATE_FIELDS.contains(&k.as_str())) {
            return Err(bad(4008, &format!("{at}.{k} is not a known field")));
        }
        match it.get("slug").and_then(Value::as_str) {
            Some(s) if KNOWN_SLUGS.contains(&s) => {}
            Some(_) => return Err(bad(4010, &format!("The value of `{at}.slug` is invalid."))),
            None => return Err(bad(4009, &format!("{at}.slug is required"))),
        }
        check_address(it, "origin_address", &at).map_err(|e| bad(4008, &e))?;
        check_address(it, "destination_address", &at).map_err(|e| bad(4008, &e))?;
        let pickup = match (it.get("pickup_time").and_then(Value::as_str), it.get("estimated_pickup")) {
            (Some(p), _) => parse_pickup(p).ok_or_else(|| bad(4008, &format!("{at}.pickup_time is invalid")))?,
            (None, Some(Value::Object(e))) if e.keys().all(|k| ESTIMATED_PICKUP_FIELDS.contains(&k.as_str())) => e
                .get("order_time")
                .and_then(Value::as_str)
                .and_then(parse_pickup)
                .ok_or_else(|| bad(4008, &format!("{at}.estimated_pickup.order_time is invalid")))?,
            _ => return Err(bad(4009, &format!("{at}: either pickup_time or estimated_pickup is required"))),
        };
        let mut answered = it.clone();
        let d = |days| (pickup + ChronoDuration::days(days)).format("%Y-%m-%d").to_string();
        answered.insert("estimated_delivery_date".into(), d(3).into());
        answered.insert("confidence_code".into(), json!(0.8));
        answered.insert("estimated_delivery_date_min".into(), d(2).into());
        answered.insert("estimated_delivery_date_max".into(), d(5).into());
        out.push(Value::Object(answered));
    }
    Ok(ok(json!({ "estimated_delivery_dates": out })))
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        429 => "TooManyRequests",
        _ => "InternalError",
    }
}

fn envelope(status: StatusCode, meta: Value, data: Value) -> Response {
    (status, Json(json!({ "meta": meta, "data": data }))).into_response()
}

fn ok(data: Value) -> Response {
    envelope(StatusCode::OK, json!({"code": 200}), data)
}

fn created(data: Value) -> Response {
    envelope(StatusCode::CREATED, json!({"code": 201}), data)
}

fn meta_error(status: StatusCode, code: u32, message: &str) -> Response {
    envelope(status, json!({"code": code, "message": message, "type": error_type(status)}), json!({}))
}

/// A refusal on its way to becoming an answer (small, unlike a `Response`).
struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
    /// `data` of the answer (4003 names the existing tracking); `{}` when `None`.
    data: Option<Value>,
}

impl ApiError {
    fn new(status: StatusCode, code: u32, message: &str) -> ApiError {
        ApiError { status, code, message: message.to_owned(), data: None }
    }

    fn into_response(self) -> Response {
        envelope(
            self.status,
            json!({"code": self.code, "message": self.message, "type": error_type(self.status)}),
            self.data.unwrap_or_else(|| json!({})),
        )
    }
}

fn bad(code: u32, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

// ---------------------------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------------------------

fn ctl_bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": msg.into() }))).into_response()
}

fn ctl_not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": "unknown tracking" }))).into_response()
}

async fn ctl_advance(State(sim): State<AftershipSim>, Path(id): Path<String>) -> Response {
    match sim.advance(&id) {
        Some(tag) => Json(json!({ "tag": tag })).into_response(),
        None => ctl_not_found(),
    }
}

async fn ctl_expire(State(sim): State<AftershipSim>, Path(id): Path<String>) -> Response {
    match sim.expire(&id) {
        Some(tag) => Json(json!({ "tag": tag })).into_response(),
        None => ctl_not_found(),
    }
}

async fn ctl_tracking(State(sim): State<AftershipSim>, Path(id): Path<String>) -> Response {
    match sim.tracking(&id) {
        Some(t) => Json(t).into_response(),
        None => ctl_not_found(),
    }
}

async fn ctl_stats(State(sim): State<AftershipSim>) -> Json<AftershipSimStats> {
    Json(sim.stats())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsRequest {
    latency_ms: Option<u64>,
    burst_429: Option<u32>,
    fail_next: Option<FailNext>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailNext {
    op: Option<String>,
    count: u32,
    http_status: Option<u16>,
    meta_code: Option<u32>,
    message: Option<String>,
    garbage: Option<bool>,
    process_then_fail: Option<bool>,
}

async fn ctl_faults(State(sim): State<AftershipSim>, body: Bytes) -> Response {
    let req: FaultsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return ctl_bad(e.to_string()),
    };
    let fail_next = match req.fail_next {
        None => None,
        Some(f) => {
            if let Some(op) = &f.op
                && !Op::ALL.iter().any(|o| o.name() == op)
            {
                return ctl_bad(format!("unknown op {op}"));
            }
            let fault = if f.garbage == Some(true) {
                SimFault::Garbage
            } else if f.process_then_fail == Some(true) {
                SimFault::ProcessThenFail
            } else {
                let http = f.http_status.unwrap_or(500);
                if StatusCode::from_u16(http).is_err() || http < 400 {
                    return ctl_bad(format!("invalid http_status {http}"));
                }
                SimFault::Meta {
                    http,
                    code: f.meta_code.unwrap_or(u32::from(http)),
                    message: f.message.unwrap_or_else(|| "Simulated fault".to_owned()),
                }
            };
            Some((f.op, f.count, fault))
        }
    };
    if let Some(ms) = req.latency_ms {
        sim.set_latency(Duration::from_millis(ms));
    }
    if let Some(n) = req.burst_429 {
        sim.burst_429(n);
    }
    if let Some((op, count, fault)) = fail_next {
        sim.fail_next(op.as_deref(), count, fault);
    }
    StatusCode::NO_CONTENT.into_response()
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

    const KEY: &str = "as-demo-key";

    /// A simulator whose account limit stays out of the way of functional tests.
    fn sim() -> AftershipSim {
        AftershipSim::new(AftershipSimConfig { rate_limit_per_second: 1000, ..AftershipSimConfig::default() })
    }

    async fn send_req(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let resp = app.clone().oneshot(req).await.expect("router answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, value)
    }

    async fn call(
        app: &Router,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path).header("content-type", "application/json");
        if let Some(k) = key {
            req = req.header(API_KEY_HEADER, k);
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
        let (s, _, v) = send_req(app, req.body(body).expect("request")).await;
        (s, v)
    }

    async fn create(app: &Router, number: &str, slug: &str) -> (StatusCode, Value) {
        call(app, "POST", "/trackings", Some(KEY), Some(json!({"tracking": {"tracking_number": number, "slug": slug}})))
            .await
    }

    fn assert_meta(status: StatusCode, body: &Value, http: u16, code: u64) {
        assert_eq!(status.as_u16(), http, "{body}");
        assert_eq!(body["meta"]["code"], code, "{body}");
        if http >= 400 {
            assert!(body["meta"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
            assert!(body["meta"]["type"].is_string(), "{body}");
        }
    }

    #[tokio::test]
    async fn the_api_key_is_required() {
        let app = sim().router();
        let (s, b) = call(&app, "GET", "/trackings", None, None).await;
        assert_meta(s, &b, 401, 401);
        let (s, b) = call(&app, "GET", "/trackings", Some("other"), None).await;
        assert_meta(s, &b, 401, 401);
        let (s, b) = call(&app, "GET", "/trackings?limit=1", Some(KEY), None).await;
        assert_meta(s, &b, 200, 200);
    }

    #[tokio::test]
    async fn create_is_strict_and_duplicates_get_4003_with_the_existing_tracking() {
        let app = sim().router();
        let (s, b) =
            call(&app, "POST", "/trackings", Some(KEY), Some(json!({"tracking_number": "FX123456", "slug": "fedex"})))
                .await;
        assert_meta(s, &b, 400, 4006);
        let (s, b) = call(&app, "POST", "/trackings", Some(KEY), Some(json!({"tracking": {}}))).await;
        assert_meta(s, &b, 400, 4007);
        let (s, b) = create(&app, "FX1", "fedex").await;
        assert_meta(s, &b, 400, 4005);
        let (s, b) = create(&app, &"9".repeat(101), "fedex").await;
        assert_meta(s, &b, 400, 4005);
        let (s, b) = create(&app, "FX123456", "pigeon").await;
        assert_meta(s, &b, 400, 4010);
        let (s, b) = call(
            &app,
            "POST",
            "/trackings",
            Some(KEY),
            Some(json!({"tracking": {"tracking_number": "FX123456",
            "emails": ["a@x.io", "b@x.io", "c@x.io", "d@x.io"]}})),
        )
        .await;
        assert_meta(s, &b, 400, 4008);
        let (s, b) = call(
            &app,
            "POST",
            "/trackings",
            Some(KEY),
            Some(json!({"tracking": {"tracking_number": "FX123456",
            "order_promised_delivery_date": "25/11/2026"}})),
        )
        .await;
        assert_meta(s, &b, 400, 4008);
        let (s, b) = call(
            &app,
            "POST",
            "/trackings",
            Some(KEY),
            Some(json!({"tracking": {"tracking_number": "FX123456",
            "colour": "red"}})),
        )
        .await;
        assert_meta(s, &b, 400, 4008);
        let (s, b) = call(&app, "POST", "/trackings", Some(KEY), None).await;
        assert_meta(s, &b, 400, 4001);

        let (s, b) = create(&app, "FX123456", "fedex").await;
        assert_meta(s, &b, 201, 201);
        let t = &b["data"]["tracking"];
        assert_eq!(t["tag"], "Pending");
        assert_eq!(t["title"], "FX123456");
        let id = t["id"].as_str().expect("id").to_owned();
        let (s, b) = create(&app, "FX123456", "fedex").await;
        assert_meta(s, &b, 400, 4003);
        assert_eq!(b["data"]["tracking"]["id"], id.as_str());
        // Same number at another courier is another tracking.
        let (s, _) = create(&app, "FX123456", "ups").await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, b) = call(&app, "GET", "/trackings?tracking_numbers=FX123456&slug=fedex", Some(KEY), None).await;
        assert_meta(s, &b, 200, 200);
        let list = b["data"]["trackings"].as_array().expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["id"], id.as_str());
        let (s, b) = call(&app, "GET", "/trackings?bogus=1", Some(KEY), None).await;
        assert_meta(s, &b, 400, 4008);
    }

    #[tokio::test]
    async fn unknown_ids_get_4004_and_update_delete_work() {
        let sim = sim();
        let app = sim.router();
        for (m, p) in [("GET", "/trackings/nope"), ("DELETE", "/trackings/nope"), ("GET", "/last_checkpoint/nope")] {
            let (s, b) = call(&app, m, p, Some(KEY), None).await;
            assert_meta(s, &b, 404, 4004);
        }
        let (_, b) = create(&app, "1Z999AA10123456784", "ups").await;
        let id = b["data"]["tracking"]["id"].as_str().expect("id").to_owned();
        let path = format!("/trackings/{id}");
        let (s, b) = call(&app, "PUT", &path, Some(KEY), Some(json!({"title": "x"}))).await;
        assert_meta(s, &b, 400, 4006);
        // A 2024-10 field is not part of the 2024-04 update model.
        let (s, b) = call(
            &app,
            "PUT",
            &path,
            Some(KEY),
            Some(json!({"tracking": {"courier_estimated_delivery_date":
            {"estimated_delivery_date": "2026-11-30"}}})),
        )
        .await;
        assert_meta(s, &b, 400, 4008);
        let (s, b) = call(&app, "PUT", &path, Some(KEY), Some(json!({"tracking": {"slug": "pigeon"}}))).await;
        assert_meta(s, &b, 400, 4010);
        let (s, b) =
            call(&app, "PUT", &path, Some(KEY), Some(json!({"tracking": {"smses": ["+1", "+2", "+3", "+4"]}}))).await;
        assert_meta(s, &b, 400, 4008);
        let (s, b) = call(
            &app,
            "PUT",
            &path,
            Some(KEY),
            Some(json!({"tracking": {"title": "T", "note": "n",
            "emails": ["a@x.io"], "language": "de", "order_promised_delivery_date": "2026-11-30"}})),
        )
        .await;
        assert_meta(s, &b, 200, 200);
        assert_eq!(b["data"]["tracking"]["title"], "T");
        assert_eq!(b["data"]["tracking"]["language"], "de");
        let (s, b) = call(&app, "DELETE", &path, Some(KEY), None).await;
        assert_meta(s, &b, 200, 200);
        // 2024-04 answers a partial tracking (SDK PartialDeleteTracking): no tag.
        assert_eq!(b["data"]["tracking"]["id"], id.as_str());
        assert!(b["data"]["tracking"].get("tag").is_none(), "{b}");
        assert_eq!(sim.tracking_count(), 0);
    }

    #[tokio::test]
    async fn lifecycle_checkpoints_and_last_checkpoint() {
        let sim = sim();
        let app = sim.router();
        let (_, b) = create(&app, "FX9000", "fedex").await;
        let id = b["data"]["tracking"]["id"].as_str().expect("id").to_owned();
        let (_, b) = call(&app, "GET", &format!("/last_checkpoint/{id}"), Some(KEY), None).await;
        assert_eq!(b["data"]["tag"], "Pending");
        assert!(b["data"].get("checkpoint").is_none());
        let tags: Vec<String> = (0..5).filter_map(|_| sim.advance(&id)).collect();
        assert_eq!(tags, ["InfoReceived", "InTransit", "OutForDelivery", "Delivered", "Delivered"]);
        let (s, b) =
            call(&app, "GET", &format!("/trackings/{id}?fields=tag,checkpoints&lang=en"), Some(KEY), None).await;
        assert_meta(s, &b, 200, 200);
        let t = &b["data"]["tracking"];
        assert_eq!(t["checkpoints"].as_array().map(Vec::len), Some(4));
        assert_eq!(t["subtag"], "Delivered_001");
        assert!(t["latest_estimated_delivery"]["datetime"].is_string());
        assert_eq!(t["expected_delivery"], t["latest_estimated_delivery"]["datetime"]);
        assert!(t.get("courier_estimated_delivery_date").is_none(), "a 2024-10 field: {t}");
        let (_, b) = call(&app, "GET", &format!("/last_checkpoint/{id}"), Some(KEY), None).await;
        assert_eq!(b["data"]["checkpoint"]["tag"], "Delivered");
        assert_eq!(b["data"]["checkpoint"]["country_iso3"], "USA");
        assert!(sim.advance("nope").is_none());
    }

    #[tokio::test]
    async fn lists_are_page_numbered_as_in_2024_04() {
        let app = sim().router();
        for slug in ["fedex", "ups", "dhl"] {
            let (s, _) = create(&app, "SAME12345", slug).await;
            assert_eq!(s, StatusCode::CREATED);
        }
        let (s, b) = call(&app, "GET", "/trackings?tracking_numbers=SAME12345&limit=2&page=2", Some(KEY), None).await;
        assert_meta(s, &b, 200, 200);
        let d = &b["data"];
        assert_eq!((d["page"].as_u64(), d["limit"].as_u64(), d["count"].as_u64()), (Some(2), Some(2), Some(3)), "{b}");
        assert_eq!(d["trackings"].as_array().map(Vec::len), Some(1));
        assert!(d.get("pagination").is_none(), "cursor pagination is 2024-10: {b}");
        let (s, b) = call(&app, "GET", "/trackings?cursor=abc", Some(KEY), None).await;
        assert_meta(s, &b, 400, 4008);
    }

    #[tokio::test]
    async fn retrack_needs_an_inactive_tracking_and_is_limited_and_completion_sets_tags() {
        let sim = sim();
        let app = sim.router();
        let (_, b) = create(&app, "FX9001", "fedex").await;
        let id = b["data"]["tracking"]["id"].as_str().expect("id").to_owned();
        let retrack = format!("/trackings/{id}/retrack");
        // 4013: only an inactive tracking can be retracked (SDK 2.0.2 error list).
        let (s, b) = call(&app, "POST", &retrack, Some(KEY), None).await;
        assert_meta(s, &b, 400, 4013);
        for _ in 0..3 {
            sim.expire(&id);
            let (s, b) = call(&app, "POST", &retrack, Some(KEY), None).await;
            assert_meta(s, &b, 200, 200);
            // A partial tracking (SDK PartialUpdateTracking): `active`, no tag.
            assert_eq!(b["data"]["tracking"]["active"], true, "{b}");
            assert!(b["data"]["tracking"].get("tag").is_none(), "{b}");
            assert_eq!(sim.tracking(&id).expect("kept")["tag"], "Pending");
        }
        sim.expire(&id);
        // 4016: the retrack limit is reached.
        let (s, b) = call(&app, "POST", &retrack, Some(KEY), None).await;
        assert_meta(s, &b, 400, 4016);

        let done = format!("/trackings/{id}/mark-as-completed");
        let (s, b) = call(&app, "POST", &done, Some(KEY), Some(json!({}))).await;
        assert_meta(s, &b, 400, 4009);
        let (s, b) = call(&app, "POST", &done, Some(KEY), Some(json!({"reason": "STOLEN"}))).await;
        assert_meta(s, &b, 400, 4008);
        for (reason, tag, subtag) in [
            ("DELIVERED", "Delivered", "Delivered_001"),
            ("LOST", "Exception", "Exception_013"),
            ("RETURNED_TO_SENDER", "Exception", "Exception_011"),
        ] {
            let (s, b) = call(&app, "POST", &done, Some(KEY), Some(json!({ "reason": reason }))).await;
            assert_meta(s, &b, 200, 200);
            assert_eq!(
                (b["data"]["tracking"]["tag"].as_str(), b["data"]["tracking"]["subtag"].as_str()),
                (Some(tag), Some(subtag))
            );
        }
    }

    #[tokio::test]
    async fn predict_batch_checks_items() {
        let app = sim().router();
        let item = json!({"slug": "dhl", "origin_address": {"country": "DEU", "city": "Berlin"},
            "destination_address": {"country": "FRA", "postal_code": "75001"}, "pickup_time": "2026-11-23 10:00:00"});
        let (s, b) = call(
            &app,
            "POST",
            "/estimated-delivery-date/predict-batch",
            Some(KEY),
            Some(json!({"estimated_delivery_dates": [item]})),
        )
        .await;
        assert_meta(s, &b, 200, 200);
        assert_eq!(b["data"]["estimated_delivery_dates"][0]["estimated_delivery_date"], "2026-11-26");
        assert_eq!(b["data"]["estimated_delivery_dates"][0]["confidence_code"], 0.8);
        let mut bad = item.clone();
        bad["origin_address"]["country"] = json!("DE");
        let mut later = item.clone();
        later["destination_address"] = json!({"country_region": "FRA"});
        for body in [
            json!({"estimated_delivery_dates": []}),
            json!({"estimated_delivery_dates": vec![item.clone(); 6]}),
            json!({"estimated_delivery_dates": [bad]}),
            json!({"estimated_delivery_dates": [later]}),
            json!({"estimated_delivery_dates": [{"slug": "dhl"}]}),
        ] {
            let (s, b) = call(&app, "POST", "/estimated-delivery-date/predict-batch", Some(KEY), Some(body)).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        }
    }

    #[tokio::test]
    async fn the_account_limit_is_enforced_with_rate_limit_headers() {
        let sim = AftershipSim::new(AftershipSimConfig::default());
        let app = sim.router();
        for _ in 0..10 {
            let (s, _) = call(&app, "GET", "/trackings", Some(KEY), None).await;
            assert_eq!(s, StatusCode::OK);
        }
        let req = Request::get("/trackings").header(API_KEY_HEADER, KEY).body(Body::empty()).expect("req");
        let (s, h, b) = send_req(&app, req).await;
        assert_meta(s, &b, 429, 429);
        let reset: u64 =
            h.get("x-ratelimit-reset").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("reset");
        assert!(reset > unix_now().saturating_sub(1) && reset <= unix_now() + 2, "{reset}");
        assert_eq!(h.get("x-ratelimit-limit").map(|v| v.as_bytes()), Some(&b"10"[..]));
        assert_eq!(h.get("x-ratelimit-remaining").map(|v| v.as_bytes()), Some(&b"0"[..]));
        let stats = sim.stats();
        assert_eq!(stats.rate_limited, 1);
        assert_eq!(stats.max_requests_in_one_second, 11);
        assert_eq!(stats.calls.get("list"), Some(&11));
    }

    #[tokio::test]
    async fn bursts_faults_and_the_control_api() {
        let sim = sim();
        let app = sim.router();
        sim.burst_429(1);
        let (s, b) = call(&app, "GET", "/trackings", Some(KEY), None).await;
        assert_meta(s, &b, 429, 429);
        let (s, _) = call(&app, "GET", "/trackings", Some(KEY), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(sim.stats().rate_limited, 0, "bursts are not the account limit");

        let (s, _) = call(
            &app,
            "POST",
            "/_sim/faults",
            None,
            Some(json!({"fail_next": {"op": "create", "count": 1,
            "http_status": 503}})),
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, b) = create(&app, "FX424242", "fedex").await;
        assert_meta(s, &b, 503, 503);
        let (s, _) = create(&app, "FX424242", "fedex").await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _) =
            call(&app, "POST", "/_sim/faults", None, Some(json!({"fail_next": {"op": "warp", "count": 1}}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        sim.fail_next(None, 1, SimFault::Garbage);
        let (s, b) = call(&app, "GET", "/trackings", Some(KEY), None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(b.is_string(), "not JSON: {b}");

        let (_, b) = call(&app, "GET", "/trackings?tracking_numbers=FX424242", Some(KEY), None).await;
        let id = b["data"]["trackings"][0]["id"].as_str().expect("id").to_owned();
        let (s, b) = call(&app, "POST", &format!("/_sim/trackings/{id}/advance"), None, None).await;
        assert_eq!((s, b["tag"].as_str()), (StatusCode::OK, Some("InfoReceived")));
        let (s, b) = call(&app, "POST", &format!("/_sim/trackings/{id}/expire"), None, None).await;
        assert_eq!((s, b["tag"].as_str()), (StatusCode::OK, Some("Expired")));
        let (s, b) = call(&app, "GET", &format!("/_sim/trackings/{id}"), None, None).await;
        assert_eq!((s, b["tag"].as_str()), (StatusCode::OK, Some("Expired")));
        let (s, b) = call(&app, "GET", "/_sim/stats", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(b["calls"]["create"].as_u64() >= Some(2), "{b}");
        let (s, b) = call(&app, "GET", "/nowhere", Some(KEY), None).await;
        assert_meta(s, &b, 404, 404);
        assert!(sim.requests().iter().all(|r| r.api_key.as_deref() == Some(KEY)));
    }

    #[tokio::test]
    async fn latency_delays_answers() {
        let sim = sim();
        let app = sim.router();
        sim.set_latency(Duration::from_millis(50));
        let started = std::time::Instant::now();
        let (s, _) = call(&app, "GET", "/trackings", Some(KEY), None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
