//! In-memory **e-Courier carrier simulator**, served as an axum router.
//!
//! It plays the carrier's side of the e-Courier JSON post API strictly, so that tests of
//! the e-Courier adapter mean something: every call is
//! `POST {mount}/software/xml/ecJsonPost.asmx/{Method}` with a JSON body, for the methods
//! `Login`, `RefreshGUID`, `SaveOrder`, `GetJsonOrder` and `QuoteOrder`. Success is HTTP 200
//! (`status:"0"` where the carrier sends a status); errors are HTTP 500 with
//! `{"status":"-N","statusdescription":"..."}` (-1 … -6) or HTTP 409 (`Order Unable to
//! Cancel` / `Order Unable to Modify`). Tokens (`UserGUID` header) expire after an idle TTL
//! (20 days by default) and are renewed by every successful use. Orders are kept in memory,
//! answered in e-Courier's XML-derived JSON (`@` attributes, every value a string, a single
//! child as an object and several as an array) and move through a simulated lifecycle
//! (new → assigned → picked up → delivered, or deleted `X`). As the reference has it,
//! `Stops.Stop` holds what was ordered and progress (arrive/depart times, POD) lives on
//! `Jobs.Job.JobStops.JobStop`. SaveOrder is create-or-update of the whole order, so an
//! update or a cancel without the complete order is refused with -4, like a create.
//!
//! Source: seed 001_ace717137be8dd3c.txt (e-Courier API reference) and shared/docs/CARRIERS.md
//! (section `ecourier`). Where those are silent (prices, driver codes, ids, event texts),
//! the behaviour is the simulator's own and deterministic.
//!
//! Besides the carrier API the router serves a control API for demos and manual testing:
//! `POST /_sim/orders/{order_number}/advance`, `GET /_sim/orders/{order_number}`,
//! `POST /_sim/faults` and `GET /_sim/stats`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

/// Name of the HTTP header carrying the access token.
const USER_GUID_HEADER: &str = "UserGUID";
/// Order-level fields the API refuses (seed: "May not be set via API").
const NOT_SETTABLE: [&str; 4] = ["OrderID", "SiteID", "SiteCode", "TransferID"];
/// Order-level elements only the e-Courier system writes (seed: OrderEvents; Jobs come from dispatch).
const SYSTEM_ONLY: [&str; 2] = ["OrderEvents", "Jobs"];
/// Order-level elements the simulator renders itself instead of echoing.
const RENDERED: [&str; 8] =
    ["CustomerCode", "OrderNumber", "OrderStatus", "Stops", "Pieces", "AmountCharged", "PodName", "PodDateTime"];
/// Progress fields: the simulator's own on `JobStops` (reference), never kept on an ordered stop.
const STOP_PROGRESS: [&str; 4] = ["ArriveDateTime", "DepartDateTime", "PodName", "PodDateTime"];
const POD_NAME: &str = "J. DOE";
const FIRST_ORDER_ID: u64 = 2073;
const FIRST_ORDER_NUMBER: u64 = 5_648_172;
const FIRST_EVENT_ID: u64 = 9001;
const ZERO_GUID: &str = "{00000000-0000-0000-0000-000000000000}";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Simulator configuration: the accounts that may log in and the idle token lifetime.
#[derive(Clone, Debug)]
pub struct EcourierSimConfig {
    pub accounts: Vec<SimAccount>,
    /// A token idle for longer than this is unknown (seed: 20 days).
    pub token_ttl: Duration,
}

impl Default for EcourierSimConfig {
    fn default() -> Self {
        Self {
            accounts: vec![SimAccount {
                website: "demo".to_owned(),
                username: "demo".to_owned(),
                password: "demo-pass".to_owned(),
                customer_code: "DEMO".to_owned(),
                direct_guid: None,
            }],
            token_ttl: Duration::from_secs(20 * 24 * 60 * 60),
        }
    }
}

/// One e-Courier login; orders must carry its `customer_code`.
#[derive(Clone, Debug)]
pub struct SimAccount {
    pub website: String,
    pub username: String,
    pub password: String,
    pub customer_code: String,
    /// A UserGUID issued directly by the courier (with or without braces), active from the start.
    pub direct_guid: Option<String>,
}

/// A fault injected by [`EcourierSim::fail_next`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimFault {
    /// HTTP 500 `{"status":"-N","statusdescription":<the seed's text for N>}`.
    Status(i32),
    /// That HTTP status with `{"status":"-4","statusdescription":<text>}`.
    Http(u16, String),
    /// HTTP 200 with a body that is not JSON.
    Garbage,
    /// The call is carried out (an order is stored), then the answer is lost on the
    /// way back: HTTP 504 from a proxy. The "ambiguous timeout" of QUALITY.md item 6.
    ProcessThenFail,
}

/// Call counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SimStats {
    /// Carrier calls per method name (as requested, faulted calls included).
    pub calls: BTreeMap<String, u64>,
    /// Successful Logins (tokens issued).
    pub logins: u64,
    /// Most Login calls in flight at the same time.
    pub max_concurrent_logins: u64,
}

/// One carrier call as received.
#[derive(Clone, Debug, Serialize)]
pub struct SimRequest {
    pub method: String,
    /// The `UserGUID` header as sent.
    pub user_guid: Option<String>,
    /// The parsed body, `Null` when it was not JSON.
    pub body: Value,
}

/// The simulator; cheap to clone (shared state).
#[derive(Clone)]
pub struct EcourierSim {
    inner: Arc<Mutex<Inner>>,
}

impl EcourierSim {
    pub fn new(config: EcourierSimConfig) -> Self {
        let now = Instant::now();
        let mut tokens = HashMap::new();
        for (account, acc) in config.accounts.iter().enumerate() {
            if let Some(guid) = &acc.direct_guid {
                tokens.insert(normalize_guid(guid), Token { account, last_used: now, direct: true });
            }
        }
        Self {
            inner: Arc::new(Mutex::new(Inner {
                accounts: config.accounts,
                ttl: config.token_ttl,
                tokens,
                orders: BTreeMap::new(),
                next_order_id: FIRST_ORDER_ID,
                next_order_number: FIRST_ORDER_NUMBER,
                next_event_id: FIRST_EVENT_ID,
                latency: Duration::ZERO,
                faults: Vec::new(),
                stats: SimStats::default(),
                requests: Vec::new(),
                logins_in_flight: 0,
            })),
        }
    }

    /// Routes relative to the mount point: the carrier API and the `/_sim` control API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/software/xml/ecJsonPost.asmx/{method}", post(carrier_call))
            .route("/_sim/orders/{order_number}/advance", post(ctl_advance))
            .route("/_sim/orders/{order_number}", get(ctl_order))
            .route("/_sim/faults", post(ctl_faults))
            .route("/_sim/stats", get(ctl_stats))
            .with_state(self.clone())
    }

    /// Moves an order one lifecycle step; returns its stage afterwards
    /// (`assigned`, `picked_up`, `delivered`, or unchanged `delivered`/`cancelled`).
    pub fn advance(&self, order_number: &str) -> Option<String> {
        self.lock().advance(order_number).map(str::to_owned)
    }

    /// Moves an order one step back (delivered → picked up → assigned → created), as a
    /// stale replica of the carrier's database would report it; events are kept.
    /// Returns the stage afterwards.
    pub fn rewind(&self, order_number: &str) -> Option<String> {
        let mut st = self.lock();
        let o = st.orders.get_mut(order_number)?;
        // A stale replica has not seen the undone step's event either.
        o.stage = match o.stage {
            Stage::Delivered => {
                o.delivered_at = None;
                o.events.retain(|e| e.kind != "Delivered");
                Stage::PickedUp
            }
            Stage::PickedUp => {
                o.picked_up_at = None;
                o.events.retain(|e| e.kind != "Picked Up");
                Stage::Assigned
            }
            Stage::Assigned | Stage::Created => Stage::Created,
            Stage::Cancelled => Stage::Cancelled,
        };
        Some(o.stage.name().to_owned())
    }

    /// Delay applied to every carrier call before it is answered.
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// The next `count` calls (of `method`, or of any method) answer with `fault`.
    /// `count == 0` clears pending faults for that selector.
    pub fn fail_next(&self, method: Option<&str>, count: u32, fault: SimFault) {
        let mut st = self.lock();
        let method = method.map(str::to_owned);
        if count == 0 {
            st.faults.retain(|f| f.method != method);
        } else {
            st.faults.push(FaultRule { method, remaining: count, fault });
        }
    }

    /// Every token issued by Login becomes unknown (directly issued GUIDs stay valid).
    pub fn expire_tokens(&self) {
        self.lock().tokens.retain(|_, t| t.direct);
    }

    /// Directly issued GUIDs become unknown too (they cannot come back).
    pub fn expire_direct_guids(&self) {
        self.lock().tokens.retain(|_, t| !t.direct);
    }

    pub fn stats(&self) -> SimStats {
        self.lock().stats.clone()
    }

    /// Every carrier call so far, in arrival order.
    pub fn requests(&self) -> Vec<SimRequest> {
        self.lock().requests.clone()
    }

    /// What GetJsonOrder would answer for this order (`{"Order":{...}}`).
    pub fn order(&self, order_number: &str) -> Option<Value> {
        let st = self.lock();
        st.orders.get(order_number).map(render_order)
    }

    pub fn order_count(&self) -> usize {
        self.lock().orders.len()
    }

    /// Advances every open order one step per tick (first tick after `every`).
    /// The task ends by itself once the simulator is dropped.
    pub fn start_clock(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Mutex<Inner>> = Arc::downgrade(&self.inner);
        let every = every.max(Duration::from_millis(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let mut st = lock_inner(&inner);
                let open: Vec<String> = st
                    .orders
                    .iter()
                    .filter(|(_, o)| !matches!(o.stage, Stage::Delivered | Stage::Cancelled))
                    .map(|(n, _)| n.clone())
                    .collect();
                for n in open {
                    st.advance(&n);
                }
            }
        })
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
    accounts: Vec<SimAccount>,
    ttl: Duration,
    /// Key: GUID without braces, uppercase.
    tokens: HashMap<String, Token>,
    orders: BTreeMap<String, SimOrder>,
    next_order_id: u64,
    next_order_number: u64,
    next_event_id: u64,
    latency: Duration,
    faults: Vec<FaultRule>,
    stats: SimStats,
    requests: Vec<SimRequest>,
    logins_in_flight: u64,
}

struct Token {
    account: usize,
    last_used: Instant,
    direct: bool,
}

struct FaultRule {
    method: Option<String>,
    remaining: u32,
    fault: SimFault,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Login,
    RefreshGuid,
    SaveOrder,
    GetJsonOrder,
    QuoteOrder,
}

impl Method {
    const ALL: [Method; 5] =
        [Method::Login, Method::RefreshGuid, Method::SaveOrder, Method::GetJsonOrder, Method::QuoteOrder];

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    fn name(self) -> &'static str {
        match self {
            Method::Login => "Login",
            Method::RefreshGuid => "RefreshGUID",
            Method::SaveOrder => "SaveOrder",
            Method::GetJsonOrder => "GetJsonOrder",
            Method::QuoteOrder => "QuoteOrder",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Created,
    Assigned,
    PickedUp,
    Delivered,
    Cancelled,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Created => "created",
            Stage::Assigned => "assigned",
            Stage::PickedUp => "picked_up",
            Stage::Delivered => "delivered",
            Stage::Cancelled => "cancelled",
        }
    }

    fn order_status(self) -> &'static str {
        match self {
            Stage::Created => "N",
            Stage::Assigned | Stage::PickedUp | Stage::Delivered => "A",
            Stage::Cancelled => "X",
        }
    }
}

struct SimOrder {
    order_id: u64,
    order_number: String,
    customer_code: String,
    customer_id: u64,
    /// Braced GUID of the token that created the order.
    user_guid: String,
    created: DateTime<Utc>,
    stage: Stage,
    data: OrderData,
    driver_code: Option<String>,
    picked_up_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    events: Vec<OrderEvent>,
}

struct OrderEvent {
    id: u64,
    kind: &'static str,
    at: DateTime<Utc>,
    user: String,
    source: &'static str,
    note: String,
}

/// A validated order body.
struct OrderData {
    /// Order-level elements echoed as submitted (everything not in [`RENDERED`]).
    fields: Map<String, Value>,
    stops: Vec<Map<String, Value>>,
    pieces: Vec<Map<String, Value>>,
    pickup: usize,
    delivery: usize,
    cents: u64,
    ready: Option<NaiveDateTime>,
    due: Option<NaiveDateTime>,
}

struct Auth {
    key: String,
    account: usize,
}

/// A non-200 carrier answer.
#[derive(Debug)]
struct ApiError {
    http: StatusCode,
    status: String,
    description: String,
}

impl ApiError {
    fn new(http: StatusCode, code: i32, description: impl Into<String>) -> Self {
        Self { http, status: code.to_string(), description: description.into() }
    }

    fn parse() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, -2, "Unable to parse JSON")
    }

    fn no_guid() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, -5, "No UserGUID Received")
    }

    fn not_performed(description: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, -4, description)
    }

    fn conflict(description: &str) -> Self {
        Self::new(StatusCode::CONFLICT, -4, description)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.http, Json(json!({"status": self.status, "statusdescription": self.description}))).into_response()
    }
}

/// Decrements the in-flight Login counter when the call ends (or is dropped).
struct LoginGuard(Arc<Mutex<Inner>>);

impl Drop for LoginGuard {
    fn drop(&mut self) {
        let mut st = lock_inner(&self.0);
        st.logins_in_flight = st.logins_in_flight.saturating_sub(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Carrier API
// ---------------------------------------------------------------------------------------------

async fn carrier_call(
    State(sim): State<EcourierSim>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let user_guid = headers.get(USER_GUID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    tracing::debug!(method = %method, has_guid = user_guid.is_some(), "e-Courier sim call");

    let (known, latency, fault, guard) = {
        let mut st = sim.lock();
        *st.stats.calls.entry(method.clone()).or_default() += 1;
        // Keep the last REQUEST_LOG_CAP calls: a long sandbox or load run must not grow without bound.
        if st.requests.len() >= crate::sandbox::REQUEST_LOG_CAP {
            st.requests.drain(..crate::sandbox::REQUEST_LOG_CAP / 2);
        }
        st.requests.push(SimRequest {
            method: method.clone(),
            user_guid: user_guid.clone(),
            body: parsed.clone().unwrap_or(Value::Null),
        });
        let Some(known) = Method::parse(&method) else {
            return (StatusCode::NOT_FOUND, format!("Unknown web method {method}.")).into_response();
        };
        let fault = st.take_fault(known);
        let guard = if known == Method::Login {
            st.logins_in_flight += 1;
            st.stats.max_concurrent_logins = st.stats.max_concurrent_logins.max(st.logins_in_flight);
            Some(LoginGuard(Arc::clone(&sim.inner)))
        } else {
            None
        };
        (known, st.latency, fault, guard)
    };

    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match fault {
        Some(SimFault::ProcessThenFail) => {
            let _lost = sim.lock().handle(known, parsed.as_ref(), user_guid.as_deref());
            (StatusCode::GATEWAY_TIMEOUT, "<html><body>504 Gateway Time-out</body></html>").into_response()
        }
        Some(fault) => fault_response(&fault, user_guid.as_deref()),
        None => sim.lock().handle(known, parsed.as_ref(), user_guid.as_deref()),
    };
    drop(guard);
    response
}

fn fault_response(fault: &SimFault, user_guid: Option<&str>) -> Response {
    match fault {
        SimFault::Status(n) => {
            let code = -(n.unsigned_abs().min(i32::MAX as u32) as i32);
            let description = match code {
                -2 => "Unable to parse JSON".to_owned(),
                -3 => "Unable to Connect to Database".to_owned(),
                -4 => "Action not performed (simulated fault)".to_owned(),
                -5 => "No UserGUID Received".to_owned(),
                -6 => {
                    let guid =
                        user_guid.map(|g| format!("{{{}}}", normalize_guid(g))).unwrap_or_else(|| ZERO_GUID.to_owned());
                    format!("No config file found: Configuration='{guid}'")
                }
                _ => "An undefined error has occurred".to_owned(),
            };
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, description).into_response()
        }
        SimFault::Http(status, text) => {
            let http = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            ApiError::new(http, -4, text.clone()).into_response()
        }
        SimFault::ProcessThenFail => (StatusCode::GATEWAY_TIMEOUT, "").into_response(),
        SimFault::Garbage => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><body><h1>Server Error in '/' Application.</h1></body></html>",
        )
            .into_response(),
    }
}

fn normalize_guid(raw: &str) -> String {
    let t = raw.trim();
    let t = t.strip_prefix('{').unwrap_or(t);
    let t = t.strip_suffix('}').unwrap_or(t);
    t.to_ascii_uppercase()
}

fn braced(key: &str) -> String {
    format!("{{{key}}}")
}

fn body_object(body: Option<&Value>) -> Result<&Map<String, Value>, ApiError> {
    match body {
        Some(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::parse()),
    }
}

impl Inner {
    fn take_fault(&mut self, method: Method) -> Option<SimFault> {
        let idx = self
            .faults
            .iter()
            .position(|f| f.remaining > 0 && f.method.as_deref().is_none_or(|m| m == method.name()))?;
        let rule = &mut self.faults[idx];
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        if rule.remaining == 0 {
            self.faults.remove(idx);
        }
        Some(fault)
    }

    fn handle(&mut self, method: Method, body: Option<&Value>, guid: Option<&str>) -> Response {
        let result = if method == Method::Login {
            body_object(body).and_then(|b| self.login(b))
        } else {
            self.authenticate(guid).and_then(|auth| {
                let result = match method {
                    Method::RefreshGuid => Ok(json!({"status": "0", "UserGUID": braced(&auth.key)})),
                    Method::SaveOrder => body_object(body).and_then(|b| self.save_order(&auth, b)),
                    Method::GetJsonOrder => body_object(body).and_then(|b| self.get_order(&auth, b)),
                    Method::QuoteOrder => body_object(body).and_then(|b| self.quote(&auth, b)),
                    Method::Login => {
                        Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, -1, "An undefined error has occurred"))
                    }
                };
                if result.is_ok()
                    && let Some(t) = self.tokens.get_mut(&auth.key)
                {
                    t.last_used = Instant::now();
                }
                result
            })
        };
        match result {
            Ok(v) => (StatusCode::OK, Json(v)).into_response(),
            Err(e) => e.into_response(),
        }
    }

    fn authenticate(&mut self, guid: Option<&str>) -> Result<Auth, ApiError> {
        let key = normalize_guid(guid.ok_or_else(ApiError::no_guid)?);
        let token = self.tokens.get(&key).ok_or_else(ApiError::no_guid)?;
        if Instant::now().saturating_duration_since(token.last_used) > self.ttl {
            self.tokens.remove(&key);
            return Err(ApiError::no_guid());
        }
        Ok(Auth { account: token.account, key })
    }

    fn login(&mut self, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let field = |k: &str| body.get(k).and_then(Value::as_str);
        let account = match (field("website"), field("username"), field("password")) {
            (Some(w), Some(u), Some(p)) => {
                self.accounts.iter().position(|a| a.website == w && a.username == u && a.password == p)
            }
            _ => None,
        }
        .ok_or_else(|| ApiError::not_performed("Login failed: invalid website, username or password"))?;
        let key = uuid::Uuid::new_v4().hyphenated().to_string().to_ascii_uppercase();
        self.tokens.insert(key.clone(), Token { account, last_used: Instant::now(), direct: false });
        self.stats.logins += 1;
        Ok(json!({"status": "0", "UserGUID": braced(&key)}))
    }

    fn customer_id(account: usize) -> u64 {
        1900 + account as u64
    }

    fn save_order(&mut self, auth: &Auth, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let account = &self.accounts[auth.account];
        let customer_code = account.customer_code.clone();
        let username = account.username.clone();
        let head = check_order_head(body, &customer_code).map_err(ApiError::not_performed)?;
        let cancel = head.status == Some("X");
        let received = json!({"status": "0", "statusdescription": "JSON Post Received"});

        if let Some(number) = head.number
            && let Some(existing) = self.orders.get(number)
        {
            if existing.customer_code != customer_code {
                return Err(ApiError::not_performed("Order Not Found"));
            }
            if matches!(existing.stage, Stage::PickedUp | Stage::Delivered | Stage::Cancelled) {
                return Err(ApiError::conflict(if cancel {
                    "Order Unable to Cancel"
                } else {
                    "Order Unable to Modify"
                }));
            }
            if cancel {
                // A cancel is a SaveOrder too: the whole order, validated like a create.
                validate_order_body(head.order).map_err(ApiError::not_performed)?;
                let id = self.next_event_id();
                if let Some(o) = self.orders.get_mut(number) {
                    o.stage = Stage::Cancelled;
                    o.events.push(OrderEvent {
                        id,
                        kind: "Cancelled",
                        at: Utc::now(),
                        user: username,
                        source: "API",
                        note: "Order deleted via API".to_owned(),
                    });
                }
            } else {
                let data = validate_order_body(head.order).map_err(ApiError::not_performed)?;
                if let Some(o) = self.orders.get_mut(number) {
                    o.data = data;
                }
            }
            return Ok(received);
        }
        let data = validate_order_body(head.order).map_err(ApiError::not_performed)?;
        if cancel {
            return Err(ApiError::not_performed("Order Not Found"));
        }
        let number = match head.number {
            Some(n) => n.to_owned(),
            None => loop {
                let candidate = self.next_order_number.to_string();
                self.next_order_number += 1;
                if !self.orders.contains_key(&candidate) {
                    break candidate;
                }
            },
        };
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        self.orders.insert(
            number.clone(),
            SimOrder {
                order_id,
                order_number: number,
                customer_code,
                customer_id: Self::customer_id(auth.account),
                user_guid: braced(&auth.key),
                created: Utc::now(),
                stage: Stage::Created,
                data,
                driver_code: None,
                picked_up_at: None,
                delivered_at: None,
                events: Vec::new(),
            },
        );
        Ok(received)
    }

    fn get_order(&self, auth: &Auth, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let number = match body.get("OrderNumber") {
            None => return Err(ApiError::not_performed("OrderNumber element missing")),
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(ApiError::not_performed(format!("OrderNumber must be a string, got {}", kind_of(other))));
            }
        };
        let customer_code = &self.accounts[auth.account].customer_code;
        match self.orders.get(number) {
            Some(o) if &o.customer_code == customer_code => Ok(render_order(o)),
            _ => Err(ApiError::not_performed("Order Not Found")),
        }
    }

    fn quote(&self, auth: &Auth, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let customer_code = &self.accounts[auth.account].customer_code;
        let head = check_order_head(body, customer_code).map_err(ApiError::not_performed)?;
        let data = validate_order_body(head.order).map_err(ApiError::not_performed)?;
        let now = Utc::now().naive_utc();
        let ready = data.ready.unwrap_or(now);
        let due = data.due.filter(|d| *d >= ready).unwrap_or(ready + chrono::Duration::hours(2));
        let mut m = Map::new();
        m.insert("CustomerID".into(), Self::customer_id(auth.account).to_string().into());
        m.insert("Service".into(), data.fields.get("Service").cloned().unwrap_or_else(|| "".into()));
        m.insert("Caller".into(), "ECAPI".into());
        for k in ["Notes", "Description"] {
            if let Some(v) = data.fields.get(k) {
                m.insert(k.into(), v.clone());
            }
        }
        m.insert("ReadyDateTime".into(), ready.format("%m/%d/%Y %H:%M").to_string().into());
        // The seed's quote answers a two-digit year here; kept on purpose.
        m.insert("DueDateTime".into(), due.format("%m/%d/%y %H:%M").to_string().into());
        m.insert("AmountCharged".into(), money(data.cents).into());
        m.insert("DriverCode".into(), "".into());
        if !data.pieces.is_empty() {
            m.insert("Pieces".into(), pieces_element(&data.pieces));
        }
        Ok(json!({ "Order": m }))
    }

    fn next_event_id(&mut self) -> u64 {
        let id = self.next_event_id;
        self.next_event_id += 1;
        id
    }

    fn advance(&mut self, order_number: &str) -> Option<&'static str> {
        let stage = self.orders.get(order_number)?.stage;
        if matches!(stage, Stage::Delivered | Stage::Cancelled) {
            return Some(stage.name());
        }
        let id = self.next_event_id();
        let now = Utc::now();
        let o = self.orders.get_mut(order_number)?;
        let driver = format!("D{:03}", o.order_id % 900 + 100);
        let event = match stage {
            Stage::Created => {
                o.stage = Stage::Assigned;
                o.driver_code = Some(driver.clone());
                OrderEvent {
                    id,
                    kind: "Assigned",
                    at: now,
                    user: "dispatch".to_owned(),
                    source: "Dispatch",
                    note: format!("Assigned to driver {driver}"),
                }
            }
            Stage::Assigned => {
                o.stage = Stage::PickedUp;
                o.picked_up_at = Some(now);
                OrderEvent {
                    id,
                    kind: "Picked Up",
                    at: now,
                    user: driver,
                    source: "Driver",
                    note: "Picked up".to_owned(),
                }
            }
            Stage::PickedUp | Stage::Delivered | Stage::Cancelled => {
                o.stage = Stage::Delivered;
                o.delivered_at = Some(now);
                OrderEvent {
                    id,
                    kind: "Delivered",
                    at: now,
                    user: driver,
                    source: "Driver",
                    note: format!("POD: {POD_NAME}"),
                }
            }
        };
        o.events.push(event);
        Some(o.stage.name())
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

struct OrderHead<'a> {
    order: &'a Map<String, Value>,
    number: Option<&'a str>,
    status: Option<&'a str>,
}

/// Checks shared by every SaveOrder/QuoteOrder body (cancels included).
fn check_order_head<'a>(body: &'a Map<String, Value>, customer_code: &str) -> Result<OrderHead<'a>, String> {
    let Some(Value::Object(order)) = body.get("Order") else {
        return Err("Order element missing".to_owned());
    };
    for key in order.keys() {
        if key.starts_with('@') {
            return Err(format!("Attribute {key} may not be set via the API"));
        }
    }
    for f in NOT_SETTABLE {
        if order.contains_key(f) {
            return Err(format!("{f} may not be set via the API"));
        }
    }
    for f in SYSTEM_ONLY {
        if order.contains_key(f) {
            return Err(format!("{f} may only be set in the e-Courier system"));
        }
    }
    for (k, v) in order {
        check_strings(v, &format!("Order/{k}"))?;
    }
    match single_str(order, "CustomerCode", "Order")? {
        None => return Err("Customer not found: CustomerCode is required".to_owned()),
        Some(code) if code != customer_code => {
            return Err(format!("Customer not found: '{code}'"));
        }
        Some(_) => {}
    }
    let status = single_str(order, "OrderStatus", "Order")?;
    if let Some(s) = status
        && s != "N"
        && s != "X"
    {
        return Err(format!("Invalid OrderStatus '{s}': only N (new) or X (deleted) may be set via the API"));
    }
    let number = single_str(order, "OrderNumber", "Order")?;
    if number.is_some_and(|n| n.trim().is_empty()) {
        return Err("OrderNumber must not be empty".to_owned());
    }
    Ok(OrderHead { order, number, status })
}

/// Every scalar in the order must be a JSON string (the API is XML-derived).
fn check_strings(v: &Value, path: &str) -> Result<(), String> {
    match v {
        Value::String(_) => Ok(()),
        Value::Object(m) => m.iter().try_for_each(|(k, v)| check_strings(v, &format!("{path}/{k}"))),
        Value::Array(a) => a.iter().enumerate().try_for_each(|(i, v)| check_strings(v, &format!("{path}[{}]", i + 1))),
        other => Err(format!("Invalid value for {path}: values must be strings, got {} {other}", kind_of(other))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A field that, when present, must be one string (not a repeated element or an object).
fn single_str<'a>(m: &'a Map<String, Value>, key: &str, at: &str) -> Result<Option<&'a str>, String> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{at}: {key} must be a single string value, got {}", kind_of(other))),
    }
}

fn parse_uint(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn int_field(m: &Map<String, Value>, key: &str, at: &str) -> Result<Option<u64>, String> {
    match single_str(m, key, at)? {
        None => Ok(None),
        Some(s) => parse_uint(s).map(Some).ok_or_else(|| format!("{at}: {key} '{s}' is not an integer")),
    }
}

fn parse_decimal(s: &str) -> Option<f64> {
    let mut parts = s.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) || s.ends_with('.') {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// `M/D/YYYY h:mm:ss AM|PM`, e.g. `11/13/2019 6:00:00 AM`.
fn parse_ec_datetime(s: &str) -> Option<NaiveDateTime> {
    fn num(s: &str, min: usize, max: usize) -> Option<u32> {
        if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
    let (date, rest) = s.split_once(' ')?;
    let (time, ampm) = rest.split_once(' ')?;
    let mut d = date.split('/');
    let month = num(d.next()?, 1, 2)?;
    let day = num(d.next()?, 1, 2)?;
    let year = num(d.next()?, 4, 4)?;
    let mut t = time.split(':');
    let hour = num(t.next()?, 1, 2)?;
    let minute = num(t.next()?, 2, 2)?;
    let second = num(t.next()?, 2, 2)?;
    if d.next().is_some() || t.next().is_some() || !(1..=12).contains(&hour) {
        return None;
    }
    let hour24 = match ampm {
        "AM" => hour % 12,
        "PM" => hour % 12 + 12,
        _ => return None,
    };
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?.and_hms_opt(hour24, minute, second)
}

/// A "one or many" container such as `Stops.Stop`: a single object or an array of objects.
fn one_or_many<'a>(container: &'a Value, name: &str, child: &str) -> Result<Vec<&'a Map<String, Value>>, String> {
    let Value::Object(c) = container else {
        return Err(format!("{name} must be an object containing {child} elements"));
    };
    if let Some(k) = c.keys().find(|k| k.as_str() != child) {
        return Err(format!("{name}: unexpected element {k} (expected {child})"));
    }
    match c.get(child) {
        None => Ok(Vec::new()),
        Some(Value::Object(m)) => Ok(vec![m]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Object(m) => Ok(m),
                _ => Err(format!("{name}/{child}[{}] must be an object", i + 1)),
            })
            .collect(),
        Some(_) => Err(format!("{name}/{child} must be an object or an array of objects")),
    }
}

/// Full validation of an order body (create, update, quote).
fn validate_order_body(order: &Map<String, Value>) -> Result<OrderData, String> {
    // Pieces first: stops reference them.
    let pieces = match order.get("Pieces") {
        None => Vec::new(),
        Some(c) => one_or_many(c, "Pieces", "Piece")?,
    };
    let mut piece_seqs = BTreeSet::new();
    let mut count: u64 = 0;
    let mut weight: f64 = 0.0;
    for (i, p) in pieces.iter().enumerate() {
        let at = format!("Pieces/Piece[{}]", i + 1);
        let seq = int_field(p, "Sequence", &at)?.ok_or_else(|| format!("{at}: Sequence is required"))?;
        if !piece_seqs.insert(seq) {
            return Err(format!("{at}: duplicate Piece Sequence {seq}"));
        }
        match int_field(p, "Pieces", &at)? {
            Some(0) => return Err(format!("{at}: Pieces must be at least 1")),
            Some(n) => count = count.saturating_add(n),
            None => count = count.saturating_add(1),
        }
        if let Some(w) = single_str(p, "Weight", &at)? {
            weight += parse_decimal(w).ok_or_else(|| format!("{at}: Weight '{w}' is not a decimal number"))?;
        }
    }

    let stops = match order.get("Stops") {
        None => {
            return Err("Stops element missing: an order needs a pickup stop and a destination stop".to_owned());
        }
        Some(c) => one_or_many(c, "Stops", "Stop")?,
    };
    if stops.is_empty() {
        return Err("Stops has no Stop: an order needs a pickup stop and a destination stop".to_owned());
    }
    let mut stop_seqs: Vec<(u64, usize, &str)> = Vec::new();
    for (i, s) in stops.iter().enumerate() {
        let at = format!("Stops/Stop[{}]", i + 1);
        let seq = int_field(s, "Sequence", &at)?.ok_or_else(|| format!("{at}: Sequence is required"))?;
        if stop_seqs.iter().any(|(q, _, _)| *q == seq) {
            return Err(format!("{at}: duplicate Stop Sequence {seq}"));
        }
        let stop_type = match single_str(s, "StopType", &at)? {
            None => return Err(format!("{at}: StopType is required (P, D or B)")),
            Some(t @ ("P" | "D" | "B")) => t,
            Some(t) => {
                return Err(format!("{at}: invalid StopType '{t}' (expected P, D or B)"));
            }
        };
        for key in ["Address", "City"] {
            if single_str(s, key, &at)?.is_none_or(|v| v.trim().is_empty()) {
                return Err(format!("{at}: {key} is required"));
            }
        }
        for key in ["ScheduledDateTime", "EarlyDateTime", "LateDateTime"] {
            if let Some(v) = single_str(s, key, &at)?
                && parse_ec_datetime(v).is_none()
            {
                return Err(format!("{at}: {key} '{v}' is not a valid date (expected like 11/13/2019 6:00:00 AM)"));
            }
        }
        if let Some(c) = s.get("OrderStopPieces") {
            let osp_at = format!("{at}/OrderStopPieces");
            for (j, osp) in one_or_many(c, &osp_at, "OrderStopPiece")?.iter().enumerate() {
                let pat = format!("{osp_at}/OrderStopPiece[{}]", j + 1);
                match single_str(osp, "PieceAction", &pat)? {
                    Some("P" | "D") => {}
                    None => return Err(format!("{pat}: PieceAction is required (P or D)")),
                    Some(a) => {
                        return Err(format!("{pat}: invalid PieceAction '{a}' (expected P or D)"));
                    }
                }
                let seq = int_field(osp, "Sequence", &pat)?.ok_or_else(|| format!("{pat}: Sequence is required"))?;
                if !piece_seqs.contains(&seq) {
                    return Err(format!("{pat}: Sequence {seq} references a Piece that does not exist"));
                }
            }
        }
        stop_seqs.push((seq, i, stop_type));
    }
    stop_seqs.sort_by_key(|(q, _, _)| *q);
    let pickup = stop_seqs
        .iter()
        .find(|(_, _, t)| matches!(*t, "P" | "B"))
        .map(|(_, i, _)| *i)
        .ok_or("An order needs a pickup stop (StopType P or B)")?;
    let delivery = stop_seqs
        .iter()
        .rev()
        .find(|(_, i, t)| *i != pickup && matches!(*t, "D" | "B"))
        .map(|(_, i, _)| *i)
        .ok_or("An order needs a destination stop (StopType D or B) besides the pickup stop")?;

    let when = |stop: usize, keys: [&str; 2]| {
        keys.iter().find_map(|k| stops[stop].get(*k).and_then(Value::as_str).and_then(parse_ec_datetime))
    };
    let ready = when(pickup, ["ScheduledDateTime", "EarlyDateTime"]);
    let due = when(delivery, ["ScheduledDateTime", "LateDateTime"]);
    let weight_cents = (weight * 50.0).round();
    let cents = 2500u64.saturating_add(count.saturating_mul(500)).saturating_add(if weight_cents >= u64::MAX as f64 {
        u64::MAX
    } else {
        weight_cents as u64
    });

    let fields =
        order.iter().filter(|(k, _)| !RENDERED.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(OrderData {
        fields,
        stops: stops.into_iter().cloned().collect(),
        pieces: pieces.into_iter().cloned().collect(),
        pickup,
        delivery,
        cents,
        ready,
        due,
    })
}

// ---------------------------------------------------------------------------------------------
// Rendering (XML-derived JSON)
// ---------------------------------------------------------------------------------------------

/// A single child is an object, several are an array.
fn collapse(items: Vec<Value>) -> Value {
    match <[Value; 1]>::try_from(items) {
        Ok([one]) => one,
        Err(items) => Value::Array(items),
    }
}

fn money(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// `9/3/2020 2:43:00 AM` (UTC).
fn ec_datetime(t: DateTime<Utc>) -> String {
    t.format("%-m/%-d/%Y %-I:%M:%S %p").to_string()
}

fn pieces_element(pieces: &[Map<String, Value>]) -> Value {
    let items = pieces.iter().cloned().map(Value::Object).collect();
    json!({ "Piece": collapse(items) })
}

/// An ordered stop as submitted (reference: `Stops.Stop` holds what was ordered).
fn render_stop(stop: &Map<String, Value>) -> Value {
    let mut s = stop.clone();
    for k in STOP_PROGRESS {
        s.remove(k);
    }
    if let Some(Value::Object(c)) = s.get_mut("OrderStopPieces") {
        let items = match c.remove("OrderStopPiece") {
            Some(Value::Array(items)) => items,
            Some(one) => vec![one],
            None => Vec::new(),
        };
        if !items.is_empty() {
            c.insert("OrderStopPiece".into(), collapse(items));
        }
    }
    Value::Object(s)
}

/// The driver's work on an ordered stop (reference: `Jobs.Job.JobStops.JobStop`, with
/// `ArriveDateTime`, `DepartDateTime`, `PodName`, `PodDateTime` and `JobStopPieces`).
fn render_job_stop(o: &SimOrder, idx: usize, stop: &Map<String, Value>) -> Value {
    let mut js = Map::new();
    for k in ["StopType", "Name", "Address", "City", "State", "Zip", "Country"] {
        if let Some(v) = stop.get(k) {
            js.insert(format!("@{k}"), v.clone());
        }
    }
    let mut put = |k: &str, t: DateTime<Utc>| {
        js.insert(format!("@{k}"), ec_datetime(t).into());
    };
    if idx == o.data.pickup
        && let Some(t) = o.picked_up_at
    {
        put("ArriveDateTime", t);
        put("DepartDateTime", t);
    }
    if idx == o.data.delivery
        && let Some(t) = o.delivered_at
    {
        put("ArriveDateTime", t);
        put("PodDateTime", t);
        js.insert("@PodName".into(), POD_NAME.into());
    }
    let pieces: Vec<Value> = match stop.get("OrderStopPieces").and_then(|c| c.get("OrderStopPiece")) {
        Some(Value::Array(items)) => items.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    }
    .into_iter()
    .map(|p| json!({"@Sequence": p.get("Sequence").cloned().unwrap_or_default(), "@PieceAction": p.get("PieceAction").cloned().unwrap_or_default()}))
    .collect();
    if !pieces.is_empty() {
        js.insert("JobStopPieces".into(), json!({ "JobStopPiece": collapse(pieces) }));
    }
    Value::Object(js)
}

fn render_order(o: &SimOrder) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_owned(), Value::String(v));
    };
    put("@UserGUID", o.user_guid.clone());
    put("@OrderID", o.order_id.to_string());
    put("@SiteID", "1".to_owned());
    put("@SiteCode", "Corporate".to_owned());
    put("@SiteOrderID", (o.order_id - FIRST_ORDER_ID + 1).to_string());
    put("@OrderNumber", o.order_number.clone());
    put("@OrderStatus", o.stage.order_status().to_owned());
    put("@CustomerID", o.customer_id.to_string());
    put("@CreateDate", ec_datetime(o.created));
    put("CustomerCode", o.customer_code.clone());
    for k in ["Service", "Notes", "Description"] {
        if let Some(v) = o.data.fields.get(k) {
            m.insert(k.to_owned(), v.clone());
        }
    }
    for (k, v) in &o.data.fields {
        if !m.contains_key(k) {
            m.insert(k.clone(), v.clone());
        }
    }
    m.insert("AmountCharged".into(), money(o.data.cents).into());
    if let Some(t) = o.delivered_at {
        m.insert("PodName".into(), POD_NAME.into());
        m.insert("PodDateTime".into(), ec_datetime(t).into());
    }
    let stops = o.data.stops.iter().map(render_stop).collect();
    m.insert("Stops".into(), json!({ "Stop": collapse(stops) }));
    if !o.data.pieces.is_empty() {
        m.insert("Pieces".into(), pieces_element(&o.data.pieces));
    }
    if let Some(driver) = &o.driver_code {
        let service = o.data.fields.get("Service").cloned().unwrap_or_else(|| "".into());
        m.insert(
            "Jobs".into(),
            json!({"Job": {
                "Sequence": "1",
                "JobID": o.order_id.to_string(),
                "Service": service,
                "RouteNumber": "",
                "Drivers": {"Driver": {
                    "Sequence": "1",
                    "DriverID": (o.order_id % 900 + 100).to_string(),
                    "DriverCode": driver,
                }},
                "JobStops": {"JobStop": collapse(
                    o.data.stops.iter().enumerate().map(|(i, s)| render_job_stop(o, i, s)).collect()
                )},
            }}),
        );
    }
    if !o.events.is_empty() {
        let events = o
            .events
            .iter()
            .map(|e| {
                json!({
                    "@OrderEventID": e.id.to_string(),
                    "@EventType": e.kind,
                    "@EventDateTime": ec_datetime(e.at),
                    "@UserName": e.user,
                    "@EventSource": e.source,
                    "@Note": e.note,
                })
            })
            .collect();
        m.insert("OrderEvents".into(), json!({ "OrderEvent": collapse(events) }));
    }
    json!({ "Order": m })
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
    expire_direct_guids: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailNextRequest {
    method: Option<String>,
    count: u32,
    status: Option<i32>,
    http_status: Option<u16>,
    description: Option<String>,
    garbage: Option<bool>,
}

fn bad_request(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

fn not_found(msg: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": msg}))).into_response()
}

async fn ctl_advance(State(sim): State<EcourierSim>, Path(order_number): Path<String>) -> Response {
    match sim.advance(&order_number) {
        Some(stage) => Json(json!({"order_number": order_number, "stage": stage})).into_response(),
        None => not_found("order not found"),
    }
}

async fn ctl_order(State(sim): State<EcourierSim>, Path(order_number): Path<String>) -> Response {
    match sim.order(&order_number) {
        Some(order) => Json(order).into_response(),
        None => not_found("order not found"),
    }
}

async fn ctl_stats(State(sim): State<EcourierSim>) -> Json<SimStats> {
    Json(sim.stats())
}

async fn ctl_faults(State(sim): State<EcourierSim>, body: Bytes) -> Response {
    let req: FaultsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e.to_string()),
    };
    let fail_next = match req.fail_next {
        None => None,
        Some(f) => {
            if let Some(m) = &f.method
                && Method::parse(m).is_none()
            {
                return bad_request(format!("unknown method {m}"));
            }
            let chosen = [f.status.is_some(), f.http_status.is_some(), f.garbage == Some(true)];
            if chosen.iter().filter(|c| **c).count() > 1 {
                return bad_request("give only one of status, http_status, garbage");
            }
            if f.description.is_some() && f.http_status.is_none() {
                return bad_request("description only goes with http_status");
            }
            let fault = if let Some(code) = f.http_status {
                if StatusCode::from_u16(code).is_err() || code < 200 {
                    return bad_request(format!("invalid http_status {code}"));
                }
                let text = f.description.unwrap_or_else(|| match code {
                    409 => "Order Unable to Modify".to_owned(),
                    _ => "Simulated fault".to_owned(),
                });
                SimFault::Http(code, text)
            } else if f.garbage == Some(true) {
                SimFault::Garbage
            } else {
                SimFault::Status(f.status.unwrap_or(-1))
            };
            Some((f.method, f.count, fault))
        }
    };
    if let Some(ms) = req.latency_ms {
        sim.set_latency(Duration::from_millis(ms));
    }
    if let Some((method, count, fault)) = fail_next {
        sim.fail_next(method.as_deref(), count, fault);
    }
    if req.expire_tokens == Some(true) {
        sim.expire_tokens();
    }
    if req.expire_direct_guids == Some(true) {
        sim.expire_direct_guids();
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

    const BASE: &str = "/software/xml/ecJsonPost.asmx";

    fn sim() -> EcourierSim {
        EcourierSim::new(EcourierSimConfig::default())
    }

    async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
        let resp = app.clone().oneshot(req).await.expect("router answers");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    async fn call_raw(app: &Router, method: &str, guid: Option<&str>, body: &str) -> (StatusCode, Value) {
        let mut req = Request::post(format!("{BASE}/{method}")).header("content-type", "application/json");
        if let Some(g) = guid {
            req = req.header("UserGUID", g);
        }
        send(app, req.body(Body::from(body.to_owned())).expect("request")).await
    }

    async fn call(app: &Router, method: &str, guid: Option<&str>, body: Value) -> (StatusCode, Value) {
        call_raw(app, method, guid, &body.to_string()).await
    }

    async fn login(app: &Router) -> String {
        let (status, body) =
            call(app, "Login", None, json!({"website": "demo", "username": "demo", "password": "demo-pass"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["UserGUID"].as_str().expect("guid").to_owned()
    }

    fn order_body(number: Option<&str>) -> Value {
        let mut order = json!({
            "CustomerCode": "DEMO",
            "Service": "Route",
            "Auth": "1234779",
            "Pieces": {"Piece": {"Sequence": "1", "Reference": "test1234barcode", "Pieces": "2", "Weight": "3.5"}},
            "Stops": {"Stop": [
                {"Sequence": "1", "StopType": "P", "ScheduledDateTime": "11/13/2019 6:00:00 AM",
                 "Name": "James Madison", "Address": "2251 Orange Blossom Trail", "City": "Orlando",
                 "State": "FL", "Zip": "32804",
                 "OrderStopPieces": {"OrderStopPiece": {"PieceAction": "P", "Sequence": "1"}}},
                {"Sequence": "2", "StopType": "D", "ScheduledDateTime": "11/13/2019 5:00:00 PM",
                 "Name": "Bryan Moore", "Address": "2253 Orange Blossom Trail", "City": "Orlando",
                 "State": "FL", "Zip": "32804",
                 "OrderStopPieces": {"OrderStopPiece": [{"PieceAction": "D", "Sequence": "1"}]}}
            ]}
        });
        if let Some(n) = number {
            order["OrderNumber"] = n.into();
        }
        json!({ "Order": order })
    }

    fn assert_error(status: StatusCode, body: &Value, http: StatusCode, code: &str, needle: &str) {
        assert_eq!(status, http, "{body}");
        assert_eq!(body["status"], code, "{body}");
        let desc = body["statusdescription"].as_str().unwrap_or_default();
        assert!(desc.contains(needle), "{desc:?} should contain {needle:?}");
    }

    #[tokio::test]
    async fn login_issues_a_new_braced_uppercase_guid_each_time() {
        let sim = sim();
        let app = sim.router();
        let a = login(&app).await;
        let b = login(&app).await;
        assert_ne!(a, b);
        assert!(a.starts_with('{') && a.ends_with('}') && a.len() == 38, "{a}");
        assert_eq!(a, a.to_ascii_uppercase());
        assert_eq!(sim.stats().logins, 2);
    }

    #[tokio::test]
    async fn login_with_bad_credentials_is_refused() {
        let app = sim().router();
        let (s, b) =
            call(&app, "Login", None, json!({"website": "demo", "username": "demo", "password": "nope"})).await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-4", "Login failed");
        let (s, b) = call(&app, "Login", None, json!({"username": "demo"})).await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-4", "Login failed");
    }

    #[tokio::test]
    async fn calls_without_a_known_guid_get_minus_5() {
        let app = sim().router();
        let (s, b) = call(&app, "SaveOrder", None, order_body(Some("A1"))).await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-5", "No UserGUID Received");
        let (s, b) =
            call(&app, "GetJsonOrder", Some("{011114A4-5391-46E0-B576-9835485F5731}"), json!({"OrderNumber": "A1"}))
                .await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-5", "No UserGUID Received");
    }

    #[tokio::test]
    async fn malformed_orders_are_refused_naming_the_problem() {
        let app = sim().router();
        let guid = login(&app).await;
        let g = Some(guid.as_str());
        let cases: Vec<(Value, &str)> = vec![
            (json!({"Foo": {}}), "Order element missing"),
            (json!({"Order": {"CustomerCode": "DEMO", "OrderNumber": "X1"}}), "Stops element missing"),
            (
                {
                    let mut b = order_body(Some("X1"));
                    b["Order"]["Pieces"]["Piece"]["Weight"] = json!(3.5);
                    b
                },
                "Order/Pieces/Piece/Weight",
            ),
            (
                {
                    let mut b = order_body(Some("X1"));
                    b["Order"]["OrderID"] = "99".into();
                    b
                },
                "OrderID may not be set",
            ),
            (
                {
                    let mut b = order_body(Some("X1"));
                    b["Order"]["Stops"]["Stop"][1]["StopType"] = "Q".into();
                    b
                },
                "StopType 'Q'",
            ),
            (
                {
                    let mut b = order_body(Some("X1"));
                    b["Order"]["Stops"]["Stop"][1]["OrderStopPieces"]["OrderStopPiece"][0]["Sequence"] = "7".into();
                    b
                },
                "Sequence 7 references a Piece that does not exist",
            ),
            (
                {
                    let mut b = order_body(Some("X1"));
                    b["Order"]["Stops"]["Stop"][0]["ScheduledDateTime"] = "2019-11-13T06:00:00".into();
                    b
                },
                "ScheduledDateTime",
            ),
            (
                {
                    let mut b = order_body(Some("X1"));
                    b["Order"]["CustomerCode"] = "OTHER".into();
                    b
                },
                "Customer not found",
            ),
            (
                {
                    let mut b = order_body(Some("X1"));
                    b["Order"]["Stops"]["Stop"][1]["StopType"] = "P".into();
                    b
                },
                "destination stop",
            ),
            (
                {
                    let mut b = order_body(Some("X1"));
                    b["Order"]["OrderStatus"] = "A".into();
                    b
                },
                "OrderStatus 'A'",
            ),
        ];
        for (body, needle) in cases {
            let (s, b) = call(&app, "SaveOrder", g, body).await;
            assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-4", needle);
        }
        let (s, b) = call(&app, "GetJsonOrder", g, json!({"OrderNumber": "X1"})).await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-4", "Order Not Found");
    }

    #[tokio::test]
    async fn unparsable_bodies_get_minus_2_but_refresh_ignores_its_body() {
        let sim = sim();
        let app = sim.router();
        let (s, b) = call_raw(&app, "Login", None, "{\"website\": ").await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-2", "Unable to parse JSON");
        let guid = login(&app).await;
        let (s, b) = call_raw(&app, "SaveOrder", Some(&guid), "not json").await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-2", "Unable to parse JSON");
        let (s, b) = call_raw(&app, "SaveOrder", Some(&guid), "[1,2]").await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-2", "Unable to parse JSON");
        let (s, b) = call_raw(&app, "RefreshGUID", Some(&guid), "garbage").await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["UserGUID"], guid.as_str());
        let recorded = sim.requests();
        assert_eq!(recorded[0].body, Value::Null);
        assert_eq!(recorded.last().map(|r| r.user_guid.clone()), Some(Some(guid)));
    }

    #[tokio::test]
    async fn created_order_reads_back_in_xml_derived_shape() {
        let sim = sim();
        let app = sim.router();
        let guid = login(&app).await;
        let (s, b) = call(&app, "SaveOrder", Some(&guid), order_body(Some("SG-1"))).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b, json!({"status": "0", "statusdescription": "JSON Post Received"}));
        assert_eq!(sim.order_count(), 1);

        let (s, b) = call(&app, "GetJsonOrder", Some(&guid), json!({"OrderNumber": "SG-1"})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let o = &b["Order"];
        assert_eq!(o["@OrderNumber"], "SG-1");
        assert_eq!(o["@OrderStatus"], "N");
        assert_eq!(o["@UserGUID"], guid.as_str());
        assert_eq!(o["CustomerCode"], "DEMO");
        assert_eq!(o["Auth"], "1234779");
        // $25 + 2 pieces x $5 + 3.5 x $0.50
        assert_eq!(o["AmountCharged"], "$36.75");
        assert!(o["@OrderID"].is_string() && o["@CustomerID"].is_string());
        let created = o["@CreateDate"].as_str().expect("date");
        assert!(created.ends_with("AM") || created.ends_with("PM"), "{created}");
        // one piece → object, two stops → array, one OrderStopPiece → object
        assert!(o["Pieces"]["Piece"].is_object(), "{o}");
        assert_eq!(o["Stops"]["Stop"].as_array().map(Vec::len), Some(2));
        assert!(o["Stops"]["Stop"][1]["OrderStopPieces"]["OrderStopPiece"].is_object());
        assert!(o.get("Jobs").is_none() && o.get("OrderEvents").is_none());
        assert_eq!(sim.order("SG-1"), Some(b.clone()));

        let (s, b) = call(&app, "GetJsonOrder", Some(&guid), json!({"OrderNumber": "nope"})).await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-4", "Order Not Found");
    }

    #[tokio::test]
    async fn order_without_number_gets_a_numeric_one() {
        let sim = sim();
        let app = sim.router();
        let guid = login(&app).await;
        let (s, _) = call(&app, "SaveOrder", Some(&guid), order_body(None)).await;
        assert_eq!(s, StatusCode::OK);
        let (s, b) =
            call(&app, "GetJsonOrder", Some(&guid), json!({"OrderNumber": FIRST_ORDER_NUMBER.to_string()})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(sim.order_count(), 1);
    }

    #[tokio::test]
    async fn lifecycle_advances_to_delivered_with_events() {
        let sim = sim();
        let app = sim.router();
        let guid = login(&app).await;
        call(&app, "SaveOrder", Some(&guid), order_body(Some("L1"))).await;

        assert_eq!(sim.advance("L1").as_deref(), Some("assigned"));
        let o = sim.order("L1").expect("order")["Order"].clone();
        assert_eq!(o["@OrderStatus"], "A");
        assert_eq!(
            o["Jobs"]["Job"]["Drivers"]["Driver"]["DriverCode"].as_str().map(|d| d.starts_with('D')),
            Some(true)
        );
        assert_eq!(o["OrderEvents"]["OrderEvent"]["@EventType"], "Assigned");

        assert_eq!(sim.advance("L1").as_deref(), Some("picked_up"));
        let o = sim.order("L1").expect("order")["Order"].clone();
        assert_eq!(o["@OrderStatus"], "A");
        let pickup = &o["Jobs"]["Job"]["JobStops"]["JobStop"][0];
        assert!(pickup["@ArriveDateTime"].is_string() && pickup["@DepartDateTime"].is_string(), "{o}");
        assert_eq!(pickup["JobStopPieces"]["JobStopPiece"]["@PieceAction"], "P");
        assert!(o["Stops"]["Stop"][0].get("ArriveDateTime").is_none(), "ordered stops hold no progress");
        assert!(o.get("PodName").is_none());

        // control API does the last step
        let req = Request::post("/_sim/orders/L1/advance").body(Body::empty()).expect("req");
        let (s, b) = send(&app, req).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b, json!({"order_number": "L1", "stage": "delivered"}));
        assert_eq!(sim.advance("L1").as_deref(), Some("delivered"));

        let (_, b) = call(&app, "GetJsonOrder", Some(&guid), json!({"OrderNumber": "L1"})).await;
        let o = &b["Order"];
        assert_eq!(o["PodName"], "J. DOE");
        assert_eq!(o["Jobs"]["Job"]["JobStops"]["JobStop"][1]["@PodName"], "J. DOE");
        assert!(o["Jobs"]["Job"]["JobStops"]["JobStop"][1]["@PodDateTime"].is_string());
        assert!(o["Stops"]["Stop"][1].get("PodName").is_none());
        let events = o["OrderEvents"]["OrderEvent"].as_array().expect("3 events");
        let kinds: Vec<&str> = events.iter().filter_map(|e| e["@EventType"].as_str()).collect();
        assert_eq!(kinds, ["Assigned", "Picked Up", "Delivered"]);
        let ids: Vec<u64> =
            events.iter().filter_map(|e| e["@OrderEventID"].as_str().and_then(|i| i.parse().ok())).collect();
        assert!(ids.len() == 3 && ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

        let (s, _) = send(&app, Request::post("/_sim/orders/none/advance").body(Body::empty()).expect("req")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(sim.advance("none"), None);
    }

    #[tokio::test]
    async fn updates_before_pickup_replace_data_and_after_pickup_conflict() {
        let sim = sim();
        let app = sim.router();
        let guid = login(&app).await;
        call(&app, "SaveOrder", Some(&guid), order_body(Some("U1"))).await;
        let mut update = order_body(Some("U1"));
        update["Order"]["Notes"] = "Leave at door".into();
        let (s, _) = call(&app, "SaveOrder", Some(&guid), update.clone()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(sim.order("U1").expect("order")["Order"]["Notes"], "Leave at door");
        assert_eq!(sim.order_count(), 1);

        sim.advance("U1");
        sim.advance("U1");
        let (s, b) = call(&app, "SaveOrder", Some(&guid), update).await;
        assert_error(s, &b, StatusCode::CONFLICT, "-4", "Order Unable to Modify");
        let mut cancel = order_body(Some("U1"));
        cancel["Order"]["OrderStatus"] = "X".into();
        let (s, b) = call(&app, "SaveOrder", Some(&guid), cancel).await;
        assert_error(s, &b, StatusCode::CONFLICT, "-4", "Order Unable to Cancel");
    }

    #[tokio::test]
    async fn cancel_marks_the_order_deleted() {
        let sim = sim();
        let app = sim.router();
        let guid = login(&app).await;
        call(&app, "SaveOrder", Some(&guid), order_body(Some("C1"))).await;
        // SaveOrder is validated like a create: a partial body is refused and changes nothing.
        let partial = json!({"Order": {"CustomerCode": "DEMO", "OrderNumber": "C1", "OrderStatus": "X"}});
        let (s, b) = call(&app, "SaveOrder", Some(&guid), partial).await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-4", "Stops element missing");
        assert_eq!(sim.order("C1").expect("order")["Order"]["@OrderStatus"], "N");
        let mut cancel = order_body(Some("C1"));
        cancel["Order"]["OrderStatus"] = "X".into();
        let (s, b) = call(&app, "SaveOrder", Some(&guid), cancel.clone()).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let o = sim.order("C1").expect("order")["Order"].clone();
        assert_eq!(o["@OrderStatus"], "X");
        assert_eq!(o["OrderEvents"]["OrderEvent"]["@EventType"], "Cancelled");
        assert_eq!(sim.advance("C1").as_deref(), Some("cancelled"));
        let (s, b) = call(&app, "SaveOrder", Some(&guid), cancel).await;
        assert_error(s, &b, StatusCode::CONFLICT, "-4", "Order Unable to Cancel");
        let mut unknown = order_body(Some("C2"));
        unknown["Order"]["OrderStatus"] = "X".into();
        let (s, b) = call(&app, "SaveOrder", Some(&guid), unknown).await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-4", "Order Not Found");
    }

    #[tokio::test]
    async fn quote_prices_deterministically_and_stores_nothing() {
        let sim = sim();
        let app = sim.router();
        let guid = login(&app).await;
        let mut body = order_body(Some("Q1"));
        body["Order"]["Pieces"]["Piece"] = json!([
            {"Sequence": "1", "Pieces": "1", "Weight": "10"},
            {"Sequence": "2", "Weight": "2.5"}
        ]);
        let (s, b) = call(&app, "QuoteOrder", Some(&guid), body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        // $25 + 2 x $5 + 12.5 x $0.50
        assert_eq!(b["Order"]["AmountCharged"], "$41.25");
        assert_eq!(b["Order"]["ReadyDateTime"], "11/13/2019 06:00");
        assert_eq!(b["Order"]["DueDateTime"], "11/13/19 17:00");
        assert_eq!(b["Order"]["Service"], "Route");
        assert_eq!(b["Order"]["Pieces"]["Piece"].as_array().map(Vec::len), Some(2));
        assert_eq!(sim.order_count(), 0);
        let (s, b) = call(&app, "QuoteOrder", Some(&guid), json!({"Order": {"CustomerCode": "DEMO"}})).await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-4", "Stops");
    }

    #[tokio::test]
    async fn injected_faults_then_recovery() {
        let sim = sim();
        let app = sim.router();
        let guid = login(&app).await;
        sim.fail_next(Some("SaveOrder"), 2, SimFault::Status(-3));
        let (s, b) = call(&app, "GetJsonOrder", Some(&guid), json!({"OrderNumber": "F1"})).await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-4", "Order Not Found");
        for _ in 0..2 {
            let (s, b) = call(&app, "SaveOrder", Some(&guid), order_body(Some("F1"))).await;
            assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-3", "Unable to Connect to Database");
        }
        assert_eq!(sim.order_count(), 0);
        let (s, _) = call(&app, "SaveOrder", Some(&guid), order_body(Some("F1"))).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(sim.stats().calls.get("SaveOrder"), Some(&3));

        sim.fail_next(None, 1, SimFault::Garbage);
        let (s, b) = call(&app, "GetJsonOrder", Some(&guid), json!({"OrderNumber": "F1"})).await;
        assert_eq!(s, StatusCode::OK);
        assert!(b.is_string(), "not JSON: {b}");
        sim.fail_next(None, 1, SimFault::Http(409, "Order Unable to Modify".into()));
        let (s, b) = call(&app, "SaveOrder", Some(&guid), order_body(Some("F1"))).await;
        assert_error(s, &b, StatusCode::CONFLICT, "-4", "Order Unable to Modify");
        let (s, _) = call(&app, "GetJsonOrder", Some(&guid), json!({"OrderNumber": "F1"})).await;
        assert_eq!(s, StatusCode::OK);
    }

    #[tokio::test]
    async fn expired_tokens_get_minus_5_and_a_fresh_login_works() {
        let sim = sim();
        let app = sim.router();
        let old = login(&app).await;
        sim.expire_tokens();
        let (s, b) = call(&app, "RefreshGUID", Some(&old), json!({})).await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-5", "No UserGUID Received");
        let new = login(&app).await;
        let (s, _) = call(&app, "SaveOrder", Some(&new), order_body(Some("E1"))).await;
        assert_eq!(s, StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_tokens_expire_after_the_ttl_and_use_renews_them() {
        let sim =
            EcourierSim::new(EcourierSimConfig { token_ttl: Duration::from_secs(60), ..EcourierSimConfig::default() });
        let app = sim.router();
        let guid = login(&app).await;
        tokio::time::advance(Duration::from_secs(50)).await;
        let (s, _) = call(&app, "RefreshGUID", Some(&guid), json!({})).await;
        assert_eq!(s, StatusCode::OK);
        tokio::time::advance(Duration::from_secs(50)).await;
        let (s, _) = call(&app, "RefreshGUID", Some(&guid), json!({})).await;
        assert_eq!(s, StatusCode::OK, "renewed 50s ago, still alive");
        tokio::time::advance(Duration::from_secs(61)).await;
        let (s, b) = call(&app, "RefreshGUID", Some(&guid), json!({})).await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-5", "No UserGUID Received");
    }

    #[tokio::test]
    async fn direct_guid_is_accepted_and_refresh_returns_it() {
        let sim = EcourierSim::new(EcourierSimConfig {
            accounts: vec![SimAccount {
                website: "acme".into(),
                username: "acme".into(),
                password: "secret".into(),
                customer_code: "ACME".into(),
                direct_guid: Some("{011114A4-5391-46E0-B576-9835485F5731}".into()),
            }],
            ..EcourierSimConfig::default()
        });
        let app = sim.router();
        let (s, b) = call_raw(&app, "RefreshGUID", Some("011114a4-5391-46e0-b576-9835485f5731"), "").await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b, json!({"status": "0", "UserGUID": "{011114A4-5391-46E0-B576-9835485F5731}"}));
        sim.expire_tokens();
        let mut body = order_body(Some("D1"));
        body["Order"]["CustomerCode"] = "ACME".into();
        let (s, b) = call(&app, "SaveOrder", Some("{011114A4-5391-46E0-B576-9835485F5731}"), body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(sim.stats().logins, 0);
    }

    #[tokio::test]
    async fn unknown_method_is_404() {
        let app = sim().router();
        let (s, _) = call(&app, "GetOrder", None, json!({})).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn concurrent_logins_are_measured() {
        let sim = sim();
        sim.set_latency(Duration::from_millis(30));
        let app = sim.router();
        tokio::join!(login(&app), login(&app));
        assert_eq!(sim.stats().max_concurrent_logins, 2);
        login(&app).await;
        assert_eq!(sim.stats().max_concurrent_logins, 2);
        assert_eq!(sim.stats().logins, 3);
    }

    #[tokio::test]
    async fn control_api_sets_faults_and_reports_stats() {
        let sim = sim();
        let app = sim.router();
        let post = |uri: &str, body: Value| {
            Request::post(uri)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .expect("req")
        };
        let (s, _) =
            send(&app, post("/_sim/faults", json!({"fail_next": {"method": "Login", "count": 1, "status": -1}}))).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, b) =
            call(&app, "Login", None, json!({"website": "demo", "username": "demo", "password": "demo-pass"})).await;
        assert_error(s, &b, StatusCode::INTERNAL_SERVER_ERROR, "-1", "undefined");
        let guid = login(&app).await;

        let (s, _) = send(&app, post("/_sim/faults", json!({"expire_tokens": true, "bogus": 1}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = send(&app, post("/_sim/faults", json!({"expire_tokens": true}))).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = call(&app, "RefreshGUID", Some(&guid), json!({})).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);

        let (s, b) = send(&app, Request::get("/_sim/stats").body(Body::empty()).expect("req")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b["calls"]["Login"], 2);
        assert_eq!(b["logins"], 1);
        let (s, _) = send(&app, Request::get("/_sim/orders/none").body(Body::empty()).expect("req")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[tokio::test(start_paused = true)]
    async fn clock_advances_open_orders() {
        let sim = sim();
        let app = sim.router();
        let guid = login(&app).await;
        call(&app, "SaveOrder", Some(&guid), order_body(Some("K1"))).await;
        let clock = sim.start_clock(Duration::from_secs(10));
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        clock.abort();
        let o = sim.order("K1").expect("order");
        assert_eq!(o["Order"]["PodName"], "J. DOE");
        assert_eq!(o["Order"]["OrderEvents"]["OrderEvent"].as_array().map(Vec::len), Some(3));
    }
}
