//! In-memory **eCMR.services carrier simulator**, served as an axum router.
//!
//! It plays the carrier's side of the eCMR API strictly, so that tests of the eCMR adapter
//! mean something. Paths are the defaults of CARRIERS.md "ecmr" (which are *ours*: the seed
//! `000_e40b7ecac6f8ee32.txt` names the operations but no paths):
//!
//! - `POST /api/token` `{client_id, code}` → `{access_token, token_type:"Bearer", expires_in}`;
//!   a wrong organisation id or API token is 401, a body without them 400;
//! - `POST /api/shipments` `{shipment:{...}}` → 201 `{tracking_number, reference, status}`
//!   (200 when a shipment of the organisation with the same `reference` is updated, ours);
//!   a body without the wrapper, or without consignor, consignee, taking-over place and
//!   date, delivery place or goods (each line with `packages` ≥ 1 and a `description`) is
//!   422 `{error, field}`, as is an unknown field (so adapter typos do not pass silently);
//! - `GET /api/shipments/{tracking_number}` → `{tracking_number, reference, status,
//!   history:[{status, at, by, note?}], documents:[{type:"cmr", url}]}`, 404 when unknown
//!   (or another organisation's);
//! - `GET /api/shipments?page=N&per_page=M` → `{shipments, page, per_page, total}`.
//!
//! Every call but the token exchange needs `Authorization: Bearer <access_token>`; a
//! missing, unknown or expired one is 401. With `rate_limit_per_second`, calls over the
//! limit get 429 with `Retry-After`. Shipments move along created → sent → accepted →
//! planned → loading → departed → in_progress → arrived → unloaded → delivered (or
//! cancelled) through [`EcmrSim::advance`], each step adding a history entry with a
//! plausible actor. Actors, notes, tracking-number format and the CMR PDF are the
//! simulator's own and deterministic apart from times.
//!
//! Control API for demos and manual testing: `POST /_sim/shipments/{tracking_number}/advance`,
//! `POST /_sim/shipments/{tracking_number}/cancel`, `GET /_sim/shipments/{tracking_number}`,
//! `POST /_sim/faults` and `GET /_sim/stats`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

/// The lifecycle [`EcmrSim::advance`] walks (CARRIERS.md status values, in order).
const LIFECYCLE: [&str; 10] = [
    "created",
    "sent",
    "accepted",
    "planned",
    "loading",
    "departed",
    "in_progress",
    "arrived",
    "unloaded",
    "delivered",
];
/// Past this step the consignment note is in the driver's hands: a store may no longer change it.
const LAST_CHANGEABLE: usize = 3;
const CANCELLED: &str = "cancelled";
const FIRST_TRACKING_NUMBER: u64 = 10_000_001;
const CARRIER_NAME: &str = "Demo Transport B.V. (carrier)";
const PLANNER: &str = "Planner M. Janssen (carrier)";
const DRIVER: &str = "Driver P. de Vries";
const SHIPMENT_FIELDS: [&str; 7] =
    ["reference", "consignor", "consignee", "taking_over", "delivery", "goods", "instructions"];
const PARTY_FIELDS: [&str; 5] = ["name", "address", "postal_code", "city", "country"];
const PLACE_FIELDS: [&str; 4] = ["address", "postal_code", "city", "country"];
const GOODS_FIELDS: [&str; 6] = ["marks", "packages", "packing", "description", "gross_weight_kg", "volume_m3"];
const MAX_PER_PAGE: u64 = 100;
/// A minimal one-page PDF served as the CMR document (no xref table: viewers rebuild it).
const CMR_PDF: &[u8] = b"%PDF-1.4\n\
    1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n\
    2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n\
    3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n\
    trailer<</Root 1 0 R>>\n%%EOF\n";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Simulator configuration: the organisations that may exchange tokens and an optional
/// per-second rate limit over all carrier calls.
#[derive(Clone, Debug)]
pub struct EcmrSimConfig {
    pub organizations: Vec<SimOrganization>,
    pub rate_limit_per_second: Option<u32>,
}

impl Default for EcmrSimConfig {
    fn default() -> Self {
        Self {
            organizations: vec![SimOrganization {
                organization_id: "org-demo".to_owned(),
                api_token: "token-demo".to_owned(),
                token_ttl: Duration::from_secs(3600),
            }],
            rate_limit_per_second: None,
        }
    }
}

/// One organisation: its id, the API token it created (seed step 1) and how long the
/// access tokens issued for it live.
#[derive(Clone, Debug)]
pub struct SimOrganization {
    pub organization_id: String,
    pub api_token: String,
    pub token_ttl: Duration,
}

/// A fault injected by [`EcmrSim::fail_next`].
#[derive(Clone, Debug, PartialEq)]
pub enum SimFault {
    /// That HTTP status with that JSON body (a 429 also gets `Retry-After: 1`).
    Http(u16, Value),
    /// HTTP 200 with a body that is not JSON.
    Garbage,
}

/// Call counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EcmrSimStats {
    /// Carrier calls per operation (`token`, `store`, `details`, `overview`, `document`),
    /// as received: faulted and rate-limited calls included.
    pub calls: BTreeMap<String, u64>,
    /// Successful token exchanges (access tokens issued).
    pub token_exchanges: u64,
    /// Most token calls in flight at the same time.
    pub max_concurrent_exchanges: u64,
    /// Calls answered 429 by the rate limit.
    pub rate_limited: u64,
}

/// One carrier call as received.
#[derive(Clone, Debug, Serialize)]
pub struct SimRequest {
    pub op: String,
    pub method: String,
    /// Path and query below the mount point.
    pub path: String,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
    /// The parsed body, `Null` when absent or not JSON.
    pub body: Value,
}

/// The simulator; cheap to clone (shared state).
#[derive(Clone)]
pub struct EcmrSim {
    inner: Arc<Mutex<Inner>>,
}

impl EcmrSim {
    pub fn new(config: EcmrSimConfig) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                organizations: config.organizations,
                rate_limit: config.rate_limit_per_second,
                window: None,
                tokens: HashMap::new(),
                shipments: BTreeMap::new(),
                next_number: FIRST_TRACKING_NUMBER,
                latency: Duration::ZERO,
                faults: Vec::new(),
                stats: EcmrSimStats::default(),
                requests: Vec::new(),
                exchanges_in_flight: 0,
            })),
        }
    }

    /// Routes relative to the mount point: the carrier API and the `/_sim` control API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/token", post(token_call))
            .route("/api/shipments", post(store_call).get(overview_call))
            .route("/api/shipments/{tracking_number}", get(details_call))
            .route("/documents/{tracking_number}/cmr.pdf", get(document_call))
            .route("/_sim/shipments/{tracking_number}/advance", post(ctl_advance))
            .route("/_sim/shipments/{tracking_number}/cancel", post(ctl_cancel))
            .route("/_sim/shipments/{tracking_number}", get(ctl_shipment))
            .route("/_sim/faults", post(ctl_faults))
            .route("/_sim/stats", get(ctl_stats))
            .with_state(self.clone())
    }

    /// Moves a shipment one lifecycle step and records who did it; returns its status
    /// afterwards (unchanged once `delivered` or `cancelled`). `None`: unknown number.
    pub fn advance(&self, tracking_number: &str) -> Option<String> {
        let mut st = self.lock();
        let org_id = {
            let s = st.shipments.get(tracking_number)?;
            st.organizations.get(s.org).map(|o| o.organization_id.clone()).unwrap_or_default()
        };
        let s = st.shipments.get_mut(tracking_number)?;
        s.advance(&org_id);
        Some(s.status().to_owned())
    }

    /// Cancels a shipment (by its consignor); returns its status afterwards. A delivered
    /// shipment stays delivered.
    pub fn cancel(&self, tracking_number: &str) -> Option<String> {
        let mut st = self.lock();
        let s = st.shipments.get_mut(tracking_number)?;
        if s.step != Step::At(LIFECYCLE.len() - 1) && s.step != Step::Cancelled {
            s.step = Step::Cancelled;
            let by = format!("{} (consignor)", s.party_name("consignor"));
            s.push_history(CANCELLED, by, Some("Transport cancelled by the consignor".into()));
        }
        Some(s.status().to_owned())
    }

    /// Delay applied to every carrier call before it is answered.
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// The next `count` calls (of operation `op`: `token`, `store`, `details`, `overview`;
    /// or of any) answer with `fault`. `count == 0` clears pending faults for that selector.
    pub fn fail_next(&self, op: Option<&str>, count: u32, fault: SimFault) {
        let mut st = self.lock();
        let op = op.map(str::to_owned);
        if count == 0 {
            st.faults.retain(|f| f.op != op);
        } else {
            st.faults.push(FaultRule { op, remaining: count, fault });
        }
    }

    /// Every access token issued so far becomes unknown (API tokens stay valid).
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    pub fn stats(&self) -> EcmrSimStats {
        self.lock().stats.clone()
    }

    /// Every carrier call so far, in arrival order.
    pub fn requests(&self) -> Vec<SimRequest> {
        self.lock().requests.clone()
    }

    /// What the details call would answer for this shipment (document link relative to
    /// the mount point).
    pub fn shipment(&self, tracking_number: &str) -> Option<Value> {
        self.lock().shipments.get(tracking_number).map(|s| s.details(""))
    }

    pub fn shipment_count(&self) -> usize {
        self.lock().shipments.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock_inner(&self.inner)
    }

    /// Bookkeeping shared by every carrier call: count and record it, apply the rate
    /// limit, pick a fault, track concurrent token exchanges, wait the latency; then answer.
    async fn serve(&self, call: Call) -> Response {
        let (latency, fault, guard) = {
            let mut st = self.lock();
            *st.stats.calls.entry(call.op.name().to_owned()).or_default() += 1;
            // Keep the last REQUEST_LOG_CAP calls: a long sandbox or load run must not grow without bound.
            if st.requests.len() >= crate::sandbox::REQUEST_LOG_CAP {
                st.requests.drain(..crate::sandbox::REQUEST_LOG_CAP / 2);
            }
            st.requests.push(SimRequest {
                op: call.op.name().to_owned(),
                method: call.method.to_owned(),
                path: call.path.clone(),
                authorization: call.authorization.clone(),
                body: call.body.clone().unwrap_or(Value::Null),
            });
            if let Some(wait) = st.over_rate_limit() {
                st.stats.rate_limited += 1;
                let mut resp = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded").into_response();
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
                return resp;
            }
            let fault = st.take_fault(call.op);
            let guard = (call.op == Op::Token).then(|| {
                st.exchanges_in_flight += 1;
                st.stats.max_concurrent_exchanges = st.stats.max_concurrent_exchanges.max(st.exchanges_in_flight);
                ExchangeGuard(Arc::clone(&self.inner))
            });
            (st.latency, fault, guard)
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let response = match fault {
            Some(fault) => fault_response(&fault),
            None => self.lock().handle(&call),
        };
        drop(guard);
        response
    }
}

fn lock_inner(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

struct Inner {
    organizations: Vec<SimOrganization>,
    rate_limit: Option<u32>,
    /// Start of the current one-second window and the calls admitted in it.
    window: Option<(Instant, u32)>,
    tokens: HashMap<String, AccessToken>,
    /// Keyed by tracking number; numbers are sequential, so this is creation order.
    shipments: BTreeMap<String, SimShipment>,
    next_number: u64,
    latency: Duration,
    faults: Vec<FaultRule>,
    stats: EcmrSimStats,
    requests: Vec<SimRequest>,
    exchanges_in_flight: u64,
}

struct AccessToken {
    org: usize,
    expires_at: Instant,
}

struct FaultRule {
    op: Option<String>,
    remaining: u32,
    fault: SimFault,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Token,
    Store,
    Details,
    Overview,
    Document,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Token => "token",
            Op::Store => "store",
            Op::Details => "details",
            Op::Overview => "overview",
            Op::Document => "document",
        }
    }
    /// The operations a fault can be aimed at.
    fn parse(s: &str) -> Option<Op> {
        [Op::Token, Op::Store, Op::Details, Op::Overview].into_iter().find(|o| o.name() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    At(usize),
    Cancelled,
}

struct SimShipment {
    org: usize,
    tracking_number: String,
    reference: Option<String>,
    step: Step,
    /// The stored `shipment` object as last sent.
    data: Map<String, Value>,
    history: Vec<Value>,
}

impl SimShipment {
    fn status(&self) -> &'static str {
        match self.step {
            Step::At(i) => LIFECYCLE.get(i).copied().unwrap_or("delivered"),
            Step::Cancelled => CANCELLED,
        }
    }

    fn party_name(&self, role: &str) -> String {
        self.data.get(role).and_then(|p| p.get("name")).and_then(Value::as_str).unwrap_or(role).to_owned()
    }

    fn city(&self, part: &str) -> String {
        self.data
            .get(part)
            .and_then(|p| p.get("place"))
            .and_then(|p| p.get("city"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    }

    fn push_history(&mut self, status: &str, by: String, note: Option<String>) {
        let mut entry = json!({"status": status, "at": now_rfc3339(), "by": by});
        if let Some(n) = note {
            entry["note"] = Value::String(n);
        }
        self.history.push(entry);
    }

    fn advance(&mut self, org_id: &str) {
        let Step::At(i) = self.step else { return };
        if i + 1 >= LIFECYCLE.len() {
            return;
        }
        self.step = Step::At(i + 1);
        let status = LIFECYCLE[i + 1];
        let (by, note): (String, Option<String>) = match status {
            "sent" => (format!("{} (consignor)", self.party_name("consignor")), Some(format!("eCMR sent by {org_id}"))),
            "accepted" => (CARRIER_NAME.into(), Some("Transport order accepted".into())),
            "planned" => (PLANNER.into(), Some("Planned on truck 12-ABC-3".into())),
            "loading" => (DRIVER.into(), Some(format!("Loading at {}", self.city("taking_over")))),
            "departed" => (DRIVER.into(), Some(format!("Departed {}", self.city("taking_over")))),
            "in_progress" => (DRIVER.into(), None),
            "arrived" => (DRIVER.into(), Some(format!("Arrived at {}", self.city("delivery")))),
            "unloaded" => (DRIVER.into(), Some("Goods unloaded".into())),
            _ => (
                format!("{} (consignee)", self.party_name("consignee")),
                Some("Delivery signed without reservations".into()),
            ),
        };
        self.push_history(status, by, note);
    }

    fn summary(&self) -> Value {
        json!({"tracking_number": self.tracking_number, "reference": self.reference, "status": self.status()})
    }

    /// The details answer; `base` is prepended to the document path.
    fn details(&self, base: &str) -> Value {
        json!({
            "tracking_number": self.tracking_number,
            "reference": self.reference,
            "status": self.status(),
            "history": self.history,
            "documents": [{"type": "cmr", "url": format!("{base}/documents/{}/cmr.pdf", self.tracking_number)}],
        })
    }
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Decrements the in-flight exchange counter when the call ends (or is dropped).
struct ExchangeGuard(Arc<Mutex<Inner>>);

impl Drop for ExchangeGuard {
    fn drop(&mut self) {
        let mut st = lock_inner(&self.0);
        st.exchanges_in_flight = st.exchanges_in_flight.saturating_sub(1);
    }
}

/// `{error, field?}` with its HTTP status; 401s also carry `WWW-Authenticate` (RFC 6750).
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    error: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError { status, error: error.into(), field: None }
    }
    fn invalid(field: impl Into<String>, error: impl Into<String>) -> Self {
        ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, error: error.into(), field: Some(field.into()) }
    }
    fn unauthorized(error: &str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self.field {
            Some(f) => json!({"error": self.error, "field": f}),
            None => json!({"error": self.error}),
        };
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
        }
        resp
    }
}

// ---------------------------------------------------------------------------------------------
// Carrier API
// ---------------------------------------------------------------------------------------------

struct Call {
    op: Op,
    method: &'static str,
    path: String,
    authorization: Option<String>,
    body: Option<Value>,
    tracking_number: Option<String>,
    query: BTreeMap<String, String>,
    /// Scheme, host and mount prefix, for absolute document links.
    base: String,
}

impl Call {
    fn new(op: Op, method: &'static str, uri: &Uri, headers: &HeaderMap) -> Call {
        Call {
            op,
            method,
            path: uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default(),
            authorization: headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned),
            body: None,
            tracking_number: None,
            query: BTreeMap::new(),
            base: String::new(),
        }
    }
}

/// `http://host/mount`: the router may be nested, so the mount is what the original
/// path has before the routed one.
fn public_base(headers: &HeaderMap, original: &Uri, routed: &Uri) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    let mount = original.path().strip_suffix(routed.path()).unwrap_or("");
    format!("http://{host}{mount}")
}

async fn token_call(State(sim): State<EcmrSim>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut call = Call::new(Op::Token, "POST", &uri, &headers);
    call.body = serde_json::from_slice(&body).ok();
    sim.serve(call).await
}

async fn store_call(State(sim): State<EcmrSim>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut call = Call::new(Op::Store, "POST", &uri, &headers);
    call.body = serde_json::from_slice(&body).ok();
    sim.serve(call).await
}

async fn overview_call(
    State(sim): State<EcmrSim>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut call = Call::new(Op::Overview, "GET", &uri, &headers);
    call.query = query;
    sim.serve(call).await
}

async fn details_call(
    State(sim): State<EcmrSim>,
    Path(tracking_number): Path<String>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new(Op::Details, "GET", &uri, &headers);
    call.base = public_base(&headers, &original, &uri);
    call.tracking_number = Some(tracking_number);
    sim.serve(call).await
}

/// The CMR PDF. Links are handed to people outside the API, so (ours) no bearer is needed.
async fn document_call(State(sim): State<EcmrSim>, Path(tracking_number): Path<String>) -> Response {
    let mut st = sim.lock();
    *st.stats.calls.entry(Op::Document.name().to_owned()).or_default() += 1;
    if st.shipments.contains_key(&tracking_number) {
        ([(header::CONTENT_TYPE, "application/pdf")], CMR_PDF).into_response()
    } else {
        ApiError::new(StatusCode::NOT_FOUND, "document not found").into_response()
    }
}

fn fault_response(fault: &SimFault) -> Response {
    match fault {
        SimFault::Http(status, body) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = (status, Json(body.clone())).into_response();
            if status == StatusCode::TOO_MANY_REQUESTS {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            resp
        }
        SimFault::Garbage => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
    }
}

impl Inner {
    /// `Some(seconds to wait)` when this call is over the per-second limit (a fixed
    /// one-second window; the call is not admitted).
    fn over_rate_limit(&mut self) -> Option<u64> {
        let limit = self.rate_limit?;
        let now = Instant::now();
        let (start, count) = match self.window {
            Some((start, count)) if now.saturating_duration_since(start) < Duration::from_secs(1) => (start, count),
            _ => (now, 0),
        };
        if count >= limit {
            self.window = Some((start, count));
            return Some(1);
        }
        self.window = Some((start, count + 1));
        None
    }

    fn take_fault(&mut self, op: Op) -> Option<SimFault> {
        let idx = self.faults.iter().position(|f| f.remaining > 0 && f.op.as_deref().is_none_or(|o| o == op.name()))?;
        let rule = &mut self.faults[idx];
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        if rule.remaining == 0 {
            self.faults.remove(idx);
        }
        Some(fault)
    }

    fn handle(&mut self, call: &Call) -> Response {
        let result = match call.op {
            Op::Token => self.token(call.body.as_ref()),
            op => self.authenticate(call.authorization.as_deref()).and_then(|org| match op {
                Op::Store => self.store(org, call.body.as_ref()),
                Op::Details => self.details(org, call.tracking_number.as_deref().unwrap_or(""), &call.base),
                _ => self.overview(org, &call.query),
            }),
        };
        match result {
            Ok((status, v)) => (status, Json(v)).into_response(),
            Err(e) => e.into_response(),
        }
    }

    fn token(&mut self, body: Option<&Value>) -> Result<(StatusCode, Value), ApiError> {
        let field = |k: &str| body.and_then(|b| b.get(k)).and_then(Value::as_str);
        let (Some(client_id), Some(code)) = (field("client_id"), field("code")) else {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_request: client_id and code are required"));
        };
        let org = self
            .organizations
            .iter()
            .position(|o| o.organization_id == client_id && o.api_token == code)
            .ok_or_else(|| ApiError::unauthorized("invalid_client: unknown organization id or API token"))?;
        let ttl = self.organizations.get(org).map(|o| o.token_ttl).unwrap_or_default();
        let value = uuid::Uuid::new_v4().simple().to_string();
        self.tokens.insert(value.clone(), AccessToken { org, expires_at: Instant::now() + ttl });
        self.stats.token_exchanges += 1;
        Ok((StatusCode::OK, json!({"access_token": value, "token_type": "Bearer", "expires_in": ttl.as_secs()})))
    }

    fn authenticate(&mut self, authorization: Option<&str>) -> Result<usize, ApiError> {
        let header = authorization.ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let (scheme, value) = header.trim().split_once(' ').unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || value.trim().is_empty() {
            return Err(ApiError::unauthorized("missing bearer token"));
        }
        let value = value.trim();
        let token = self.tokens.get(value).ok_or_else(|| ApiError::unauthorized("invalid access token"))?;
        if Instant::now() >= token.expires_at {
            self.tokens.remove(value);
            return Err(ApiError::unauthorized("access token expired"));
        }
        Ok(token.org)
    }

    fn store(&mut self, org: usize, body: Option<&Value>) -> Result<(StatusCode, Value), ApiError> {
        let shipment = validate_store_body(body)?;
        let reference = shipment.get("reference").and_then(Value::as_str).map(str::to_owned);
        let existing = reference
            .as_ref()
            .and_then(|r| self.shipments.values_mut().find(|s| s.org == org && s.reference.as_ref() == Some(r)));
        if let Some(s) = existing {
            if !matches!(s.step, Step::At(i) if i <= LAST_CHANGEABLE) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("shipment {} is {} and can no longer be changed", s.tracking_number, s.status()),
                ));
            }
            s.data = shipment.clone();
            return Ok((StatusCode::OK, s.summary()));
        }
        let tracking_number = format!("ECMR{:08}", self.next_number);
        self.next_number += 1;
        let org_id = self.organizations.get(org).map(|o| o.organization_id.clone()).unwrap_or_default();
        let mut s = SimShipment {
            org,
            tracking_number: tracking_number.clone(),
            reference,
            step: Step::At(0),
            data: shipment.clone(),
            history: Vec::new(),
        };
        s.push_history("created", format!("{org_id} (API)"), Some("Shipment created via the API".into()));
        let summary = s.summary();
        self.shipments.insert(tracking_number, s);
        Ok((StatusCode::CREATED, summary))
    }

    fn details(&self, org: usize, tracking_number: &str, base: &str) -> Result<(StatusCode, Value), ApiError> {
        self.shipments
            .get(tracking_number)
            .filter(|s| s.org == org)
            .map(|s| (StatusCode::OK, s.details(base)))
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "shipment not found"))
    }

    fn overview(&self, org: usize, query: &BTreeMap<String, String>) -> Result<(StatusCode, Value), ApiError> {
        let number = |k: &str, default: u64| match query.get(k) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().map_err(|_| ApiError::invalid(k, "must be a positive integer")),
        };
        let page = number("page", 1)?;
        let per_page = number("per_page", 20)?;
        if page == 0 {
            return Err(ApiError::invalid("page", "must be at least 1"));
        }
        if per_page == 0 || per_page > MAX_PER_PAGE {
            return Err(ApiError::invalid("per_page", format!("must be between 1 and {MAX_PER_PAGE}")));
        }
        let own: Vec<&SimShipment> = self.shipments.values().filter(|s| s.org == org).collect();
        let skip = usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX);
        let take = usize::try_from(per_page).unwrap_or(usize::MAX);
        let shipments: Vec<Value> = own.iter().skip(skip).take(take).map(|s| s.summary()).collect();
        Ok((StatusCode::OK, json!({"shipments": shipments, "page": page, "per_page": per_page, "total": own.len()})))
    }
}

// ---------------------------------------------------------------------------------------------
// Store body validation
// ---------------------------------------------------------------------------------------------

fn object<'a>(v: Option<&'a Value>, field: &str) -> Result<&'a Map<String, Value>, ApiError> {
    match v {
        Some(Value::Object(m)) => Ok(m),
        None | Some(Value::Null) => Err(ApiError::invalid(field, "is required")),
        Some(_) => Err(ApiError::invalid(field, "must be an object")),
    }
}

fn known_fields(m: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), ApiError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(format!("{at}.{k}"), "unknown field")),
        None => Ok(()),
    }
}

fn text(m: &Map<String, Value>, key: &str, at: &str, required: bool) -> Result<(), ApiError> {
    match m.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
        Some(Value::String(_)) => Err(ApiError::invalid(format!("{at}.{key}"), "must not be empty")),
        None | Some(Value::Null) if !required => Ok(()),
        None | Some(Value::Null) => Err(ApiError::invalid(format!("{at}.{key}"), "is required")),
        Some(_) => Err(ApiError::invalid(format!("{at}.{key}"), "must be a string")),
    }
}

fn country(m: &Map<String, Value>, at: &str) -> Result<(), ApiError> {
    text(m, "country", at, true)?;
    match m.get("country").and_then(Value::as_str) {
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) => Ok(()),
        _ => Err(ApiError::invalid(format!("{at}.country"), "must be an ISO 3166-1 alpha-2 code")),
    }
}

fn party(v: Option<&Value>, at: &str) -> Result<(), ApiError> {
    let m = object(v, at)?;
    known_fields(m, &PARTY_FIELDS, at)?;
    text(m, "name", at, true)?;
    text(m, "address", at, true)?;
    text(m, "postal_code", at, false)?;
    text(m, "city", at, true)?;
    country(m, at)
}

fn place(v: Option<&Value>, at: &str) -> Result<(), ApiError> {
    let m = object(v, at)?;
    known_fields(m, &PLACE_FIELDS, at)?;
    text(m, "address", at, true)?;
    text(m, "postal_code", at, false)?;
    text(m, "city", at, true)?;
    country(m, at)
}

fn date(m: &Map<String, Value>, at: &str, required: bool) -> Result<(), ApiError> {
    text(m, "date", at, required)?;
    match m.get("date").and_then(Value::as_str) {
        Some(d) if DateTime::parse_from_rfc3339(d).is_err() => {
            Err(ApiError::invalid(format!("{at}.date"), "must be an RFC 3339 date-time"))
        }
        _ => Ok(()),
    }
}

/// The place and date of taking over, and the place of delivery, are what a CMR note
/// must state (CMR convention art. 6(1)(c), (d)); goods lines need packages and a description.
fn validate_store_body(body: Option<&Value>) -> Result<&Map<String, Value>, ApiError> {
    let root = match body {
        Some(Value::Object(m)) => m,
        _ => return Err(ApiError::invalid("shipment", "the body must be a JSON object {\"shipment\": {...}}")),
    };
    let s = object(root.get("shipment"), "shipment")?;
    known_fields(s, &SHIPMENT_FIELDS, "shipment")?;
    text(s, "reference", "shipment", false)?;
    party(s.get("consignor"), "shipment.consignor")?;
    party(s.get("consignee"), "shipment.consignee")?;
    let taking_over = object(s.get("taking_over"), "shipment.taking_over")?;
    known_fields(taking_over, &["place", "date"], "shipment.taking_over")?;
    place(taking_over.get("place"), "shipment.taking_over.place")?;
    date(taking_over, "shipment.taking_over", true)?;
    let delivery = object(s.get("delivery"), "shipment.delivery")?;
    known_fields(delivery, &["place", "date"], "shipment.delivery")?;
    place(delivery.get("place"), "shipment.delivery.place")?;
    date(delivery, "shipment.delivery", false)?;
    let goods = match s.get("goods") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => return Err(ApiError::invalid("shipment.goods", "must have at least one line")),
        None | Some(Value::Null) => return Err(ApiError::invalid("shipment.goods", "is required")),
        Some(_) => return Err(ApiError::invalid("shipment.goods", "must be an array")),
    };
    for (i, line) in goods.iter().enumerate() {
        let at = format!("shipment.goods[{i}]");
        let g = object(Some(line), &at)?;
        known_fields(g, &GOODS_FIELDS, &at)?;
        match g.get("packages") {
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => {}
            None | Some(Value::Null) => return Err(ApiError::invalid(format!("{at}.packages"), "is required")),
            Some(_) => return Err(ApiError::invalid(format!("{at}.packages"), "must be an integer of at least 1")),
        }
        text(g, "description", &at, true)?;
        text(g, "marks", &at, false)?;
        text(g, "packing", &at, false)?;
        for key in ["gross_weight_kg", "volume_m3"] {
            match g.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f >= 0.0) => {}
                Some(_) => return Err(ApiError::invalid(format!("{at}.{key}"), "must be a number of at least 0")),
            }
        }
    }
    text(s, "instructions", "shipment", false)?;
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsRequest {
    latency_ms: Option<u64>,
    fail_next: Option<FailNextRequest>,
    expire_tokens: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailNextRequest {
    op: Option<String>,
    count: u32,
    http_status: Option<u16>,
    body: Option<Value>,
    garbage: Option<bool>,
}

fn bad_request(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "shipment not found").into_response()
}

async fn ctl_advance(State(sim): State<EcmrSim>, Path(tracking_number): Path<String>) -> Response {
    match sim.advance(&tracking_number) {
        Some(status) => Json(json!({"tracking_number": tracking_number, "status": status})).into_response(),
        None => not_found(),
    }
}

async fn ctl_cancel(State(sim): State<EcmrSim>, Path(tracking_number): Path<String>) -> Response {
    match sim.cancel(&tracking_number) {
        Some(status) => Json(json!({"tracking_number": tracking_number, "status": status})).into_response(),
        None => not_found(),
    }
}

async fn ctl_shipment(State(sim): State<EcmrSim>, Path(tracking_number): Path<String>) -> Response {
    match sim.shipment(&tracking_number) {
        Some(v) => Json(v).into_response(),
        None => not_found(),
    }
}

async fn ctl_stats(State(sim): State<EcmrSim>) -> Json<EcmrSimStats> {
    Json(sim.stats())
}

async fn ctl_faults(State(sim): State<EcmrSim>, body: Bytes) -> Response {
    let req: FaultsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e.to_string()),
    };
    let fail_next = match req.fail_next {
        None => None,
        Some(f) => {
            if let Some(op) = &f.op
                && Op::parse(op).is_none()
            {
                return bad_request(format!("unknown op {op}; expected token, store, details, overview"));
            }
            let fault = match (f.http_status, f.garbage == Some(true)) {
                (Some(_), true) => return bad_request("give http_status or garbage, not both"),
                (None, true) if f.body.is_some() => return bad_request("body only goes with http_status"),
                (None, true) => SimFault::Garbage,
                (Some(code), false) => {
                    if StatusCode::from_u16(code).is_err() || code < 200 {
                        return bad_request(format!("invalid http_status {code}"));
                    }
                    SimFault::Http(code, f.body.unwrap_or_else(|| json!({"error": "simulated fault"})))
                }
                (None, false) => SimFault::Http(500, f.body.unwrap_or_else(|| json!({"error": "simulated fault"}))),
            };
            Some((f.op, f.count, fault))
        }
    };
    if let Some(ms) = req.latency_ms {
        sim.set_latency(Duration::from_millis(ms));
    }
    if let Some((op, count, fault)) = fail_next {
        sim.fail_next(op.as_deref(), count, fault);
    }
    if req.expire_tokens == Some(true) {
        sim.expire_tokens();
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

    fn sim() -> EcmrSim {
        EcmrSim::new(EcmrSimConfig::default())
    }

    async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let resp = app.clone().oneshot(req).await.expect("router answers");
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, value)
    }

    async fn post(app: &Router, path: &str, bearer: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut req = Request::post(path).header("content-type", "application/json");
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let (s, _, v) = send(app, req.body(Body::from(body.to_string())).expect("request")).await;
        (s, v)
    }

    async fn get_(app: &Router, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
        let mut req = Request::get(path);
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let (s, _, v) = send(app, req.body(Body::empty()).expect("request")).await;
        (s, v)
    }

    async fn token(app: &Router) -> String {
        let (s, v) = post(app, "/api/token", None, &json!({"client_id": "org-demo", "code": "token-demo"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!((v["token_type"].as_str(), v["expires_in"].as_u64()), (Some("Bearer"), Some(3600)));
        v["access_token"].as_str().expect("token").to_owned()
    }

    fn shipment(reference: &str) -> Value {
        let place = json!({"address": "Main 1", "postal_code": "1011 AB", "city": "Amsterdam", "country": "NL"});
        json!({"shipment": {
            "reference": reference,
            "consignor": {"name": "Sender BV", "address": "Main 1", "city": "Amsterdam", "country": "NL"},
            "consignee": {"name": "Receiver NV", "address": "Quai 2", "city": "Antwerp", "country": "BE"},
            "taking_over": {"place": place, "date": "2026-11-23T08:00:00+01:00"},
            "delivery": {"place": {"address": "Quai 2", "city": "Antwerp", "country": "BE"}},
            "goods": [{"marks": "PAL-1", "packages": 2, "description": "Tiles", "gross_weight_kg": 500.0}],
            "instructions": "Keep dry"
        }})
    }

    #[tokio::test]
    async fn token_exchange_checks_the_organisation_and_its_api_token() {
        let sim = sim();
        let app = sim.router();
        let a = token(&app).await;
        assert_ne!(a, token(&app).await, "a new token each time");
        let (s, v) = post(&app, "/api/token", None, &json!({"client_id": "org-demo", "code": "wrong"})).await;
        assert_eq!(
            (s, v["error"].as_str().map(|e| e.starts_with("invalid_client"))),
            (StatusCode::UNAUTHORIZED, Some(true))
        );
        let (s, _) = post(&app, "/api/token", None, &json!({"client_id": "org-other", "code": "token-demo"})).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = post(&app, "/api/token", None, &json!({"client_id": "org-demo"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let stats = sim.stats();
        assert_eq!((stats.token_exchanges, stats.calls.get("token").copied()), (2, Some(5)));
    }

    #[tokio::test]
    async fn calls_need_a_known_unexpired_bearer() {
        let sim = EcmrSim::new(EcmrSimConfig {
            organizations: vec![SimOrganization {
                organization_id: "o".into(),
                api_token: "t".into(),
                token_ttl: Duration::ZERO,
            }],
            rate_limit_per_second: None,
        });
        let app = sim.router();
        let (s, _) = get_(&app, "/api/shipments", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = get_(&app, "/api/shipments", Some("made-up")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (_, v) = post(&app, "/api/token", None, &json!({"client_id": "o", "code": "t"})).await;
        let expired = v["access_token"].as_str().expect("token").to_owned();
        let (s, v) = get_(&app, "/api/shipments", Some(&expired)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("access token expired")));

        let sim = self::sim();
        let app = sim.router();
        let t = token(&app).await;
        assert_eq!(get_(&app, "/api/shipments", Some(&t)).await.0, StatusCode::OK);
        sim.expire_tokens();
        let req = Request::get("/api/shipments").header("authorization", format!("Bearer {t}"));
        let (s, h, _) = send(&app, req.body(Body::empty()).expect("request")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(h.contains_key(header::WWW_AUTHENTICATE));
    }

    #[tokio::test]
    async fn store_refuses_what_a_cmr_note_cannot_do_without() {
        let app = sim().router();
        let t = token(&app).await;
        let field = |f: &str| Some(f.to_owned());
        let mut cases: Vec<(Value, Option<String>)> = Vec::new();
        cases.push((shipment("A")["shipment"].clone(), field("shipment")));
        cases.push((json!([1]), field("shipment")));
        for (key, f) in [
            ("consignor", "shipment.consignor"),
            ("consignee", "shipment.consignee"),
            ("goods", "shipment.goods"),
            ("taking_over", "shipment.taking_over"),
            ("delivery", "shipment.delivery"),
        ] {
            let mut b = shipment("A");
            b["shipment"].as_object_mut().expect("obj").remove(key);
            cases.push((b, field(f)));
        }
        let mut b = shipment("A");
        b["shipment"]["goods"] = json!([]);
        cases.push((b, field("shipment.goods")));
        let mut b = shipment("A");
        b["shipment"]["goods"][0]["packages"] = json!(0);
        cases.push((b, field("shipment.goods[0].packages")));
        let mut b = shipment("A");
        b["shipment"]["goods"][0].as_object_mut().expect("obj").remove("packages");
        cases.push((b, field("shipment.goods[0].packages")));
        let mut b = shipment("A");
        b["shipment"]["goods"][0].as_object_mut().expect("obj").remove("description");
        cases.push((b, field("shipment.goods[0].description")));
        let mut b = shipment("A");
        b["shipment"]["taking_over"].as_object_mut().expect("obj").remove("date");
        cases.push((b, field("shipment.taking_over.date")));
        let mut b = shipment("A");
        b["shipment"]["consignee"].as_object_mut().expect("obj").remove("name");
        cases.push((b, field("shipment.consignee.name")));
        let mut b = shipment("A");
        b["shipment"]["colour"] = json!("red");
        cases.push((b, field("shipment.colour")));
        for (body, expected) in cases {
            let (s, v) = post(&app, "/api/shipments", Some(&t), &body).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {v}");
            assert_eq!(v["field"].as_str().map(str::to_owned), expected, "{v}");
            assert!(v["error"].is_string(), "{v}");
        }
    }

    #[tokio::test]
    async fn store_then_details_then_the_lifecycle_with_actors() {
        let sim = sim();
        let app = sim.router();
        let t = token(&app).await;
        let (s, v) = post(&app, "/api/shipments", Some(&t), &shipment("SO-1")).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!((v["reference"].as_str(), v["status"].as_str()), (Some("SO-1"), Some("created")));
        let number = v["tracking_number"].as_str().expect("number").to_owned();

        // Same reference: an update of the same shipment.
        let mut changed = shipment("SO-1");
        changed["shipment"]["instructions"] = json!("Fragile");
        let (s, v) = post(&app, "/api/shipments", Some(&t), &changed).await;
        assert_eq!((s, v["tracking_number"].as_str()), (StatusCode::OK, Some(number.as_str())));
        assert_eq!(sim.shipment_count(), 1);

        let path = format!("/api/shipments/{number}");
        let (s, d) = get_(&app, &path, Some(&t)).await;
        assert_eq!(s, StatusCode::OK, "{d}");
        assert_eq!(d["history"][0]["by"], "org-demo (API)");
        assert_eq!(d["documents"][0]["type"], "cmr");
        let url = d["documents"][0]["url"].as_str().expect("url");
        assert!(url.ends_with(&format!("/documents/{number}/cmr.pdf")), "{url}");

        let mut seen = Vec::new();
        for _ in 0..12 {
            seen.push(sim.advance(&number).expect("known"));
        }
        assert_eq!(seen[..9], LIFECYCLE[1..]);
        assert_eq!(seen[11], "delivered", "stays delivered");
        let (_, d) = get_(&app, &path, Some(&t)).await;
        let history = d["history"].as_array().expect("history");
        assert_eq!(history.len(), LIFECYCLE.len());
        assert_eq!(history[4]["by"], DRIVER);
        assert_eq!(history[4]["note"], "Loading at Amsterdam");
        assert_eq!(history[9]["by"], "Receiver NV (consignee)");
        let (s, _) = post(&app, "/api/shipments", Some(&t), &shipment("SO-1")).await;
        assert_eq!(s, StatusCode::CONFLICT, "a delivered note cannot change");
        assert_eq!(sim.cancel(&number).as_deref(), Some("delivered"));

        let (s, v) = post(&app, "/api/shipments", Some(&t), &shipment("SO-2")).await;
        assert_eq!(s, StatusCode::CREATED);
        let other = v["tracking_number"].as_str().expect("number").to_owned();
        assert_ne!(other, number);
        assert_eq!(sim.cancel(&other).as_deref(), Some("cancelled"));
        assert_eq!(sim.advance(&other).as_deref(), Some("cancelled"));

        let (s, v) = get_(&app, "/api/shipments/ECMR99999999", Some(&t)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("shipment not found")));
        let req = Request::get(format!("/documents/{number}/cmr.pdf")).body(Body::empty()).expect("request");
        let resp = app.clone().oneshot(req).await.expect("answer");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/pdf");
    }

    #[tokio::test]
    async fn organisations_see_only_their_own_shipments_and_pages() {
        let mut config = EcmrSimConfig::default();
        config.organizations.push(SimOrganization {
            organization_id: "org-b".into(),
            api_token: "token-b".into(),
            token_ttl: Duration::from_secs(60),
        });
        let sim = EcmrSim::new(config);
        let app = sim.router();
        let a = token(&app).await;
        let (_, v) = post(&app, "/api/token", None, &json!({"client_id": "org-b", "code": "token-b"})).await;
        let b = v["access_token"].as_str().expect("token").to_owned();
        let mut numbers = Vec::new();
        for i in 0..3 {
            let (_, v) = post(&app, "/api/shipments", Some(&a), &shipment(&format!("R{i}"))).await;
            numbers.push(v["tracking_number"].as_str().expect("number").to_owned());
        }
        // The same reference in another organisation is another shipment.
        let (s, v) = post(&app, "/api/shipments", Some(&b), &shipment("R0")).await;
        assert_eq!(s, StatusCode::CREATED);
        assert!(!numbers.contains(&v["tracking_number"].as_str().unwrap_or("").to_owned()));
        assert_eq!(get_(&app, &format!("/api/shipments/{}", numbers[0]), Some(&b)).await.0, StatusCode::NOT_FOUND);

        let (s, page) = get_(&app, "/api/shipments?page=2&per_page=2", Some(&a)).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (page["page"].as_u64(), page["per_page"].as_u64(), page["total"].as_u64()),
            (Some(2), Some(2), Some(3))
        );
        assert_eq!(page["shipments"].as_array().map(Vec::len), Some(1));
        assert_eq!(page["shipments"][0]["tracking_number"].as_str(), Some(numbers[2].as_str()));
        let (s, v) = get_(&app, "/api/shipments?page=0&per_page=1", Some(&a)).await;
        assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("page")));
        let (s, v) = get_(&app, "/api/shipments?per_page=1000", Some(&a)).await;
        assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("per_page")));
    }

    #[tokio::test]
    async fn rate_limit_faults_and_control_api() {
        let sim = EcmrSim::new(EcmrSimConfig { rate_limit_per_second: Some(2), ..EcmrSimConfig::default() });
        let app = sim.router();
        let t = token(&app).await;
        assert_eq!(get_(&app, "/api/shipments", Some(&t)).await.0, StatusCode::OK);
        let req = Request::get("/api/shipments").header("authorization", format!("Bearer {t}"));
        let (s, h, _) = send(&app, req.body(Body::empty()).expect("request")).await;
        assert_eq!(
            (s, h.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok())),
            (StatusCode::TOO_MANY_REQUESTS, Some("1"))
        );
        assert_eq!(sim.stats().rate_limited, 1);

        let sim = self::sim();
        let app = sim.router();
        let t = token(&app).await;
        sim.fail_next(Some("details"), 1, SimFault::Http(503, json!({"error": "maintenance"})));
        sim.fail_next(Some("overview"), 1, SimFault::Garbage);
        let (s, v) = get_(&app, "/api/shipments/X", Some(&t)).await;
        assert_eq!((s, v["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("maintenance")));
        let (s, v) = get_(&app, "/api/shipments", Some(&t)).await;
        assert_eq!(s, StatusCode::OK);
        assert!(v.as_str().is_some_and(|b| b.starts_with("<html>")), "{v}");
        assert_eq!(get_(&app, "/api/shipments/X", Some(&t)).await.0, StatusCode::NOT_FOUND, "faults are used up");

        let (s, _) =
            post(&app, "/_sim/faults", None, &json!({"fail_next": {"op": "store", "count": 1, "http_status": 500}}))
                .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(post(&app, "/api/shipments", Some(&t), &shipment("Z")).await.0, StatusCode::INTERNAL_SERVER_ERROR);
        let (s, _) = post(&app, "/_sim/faults", None, &json!({"fail_next": {"op": "nope", "count": 1}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (_, v) = post(&app, "/api/shipments", Some(&t), &shipment("Z")).await;
        let number = v["tracking_number"].as_str().expect("number").to_owned();
        let (s, v) = post(&app, &format!("/_sim/shipments/{number}/advance"), None, &json!({})).await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("sent")));
        let (s, v) = get_(&app, &format!("/_sim/shipments/{number}"), None).await;
        assert_eq!((s, v["history"].as_array().map(Vec::len)), (StatusCode::OK, Some(2)));
        assert_eq!(post(&app, "/_sim/shipments/nope/advance", None, &json!({})).await.0, StatusCode::NOT_FOUND);
        let (s, _) = post(&app, "/_sim/faults", None, &json!({"expire_tokens": true})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(get_(&app, "/api/shipments", Some(&t)).await.0, StatusCode::UNAUTHORIZED);
        let (_, stats) = get_(&app, "/_sim/stats", None).await;
        assert_eq!(stats["token_exchanges"], 1);
        assert_eq!(stats["calls"]["store"], 2);
        assert_eq!(sim.requests().iter().filter(|r| r.op == "details").count(), 2);
    }
}
