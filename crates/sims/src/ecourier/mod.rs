//! The e-Courier simulator, written from the e-Courier API reference (seed 001), the
//! `ecourier` section of docs/carriers/ecourier.md and the reference's own examples in
//! `contract/fixtures/ecourier/` — never from the gateway's adapter. The contract as
//! implemented, with every choice made where the reference is silent, is in
//! `docs/carriers/ecourier-simulator.md`.
//!
//! - Transport: `POST {mount}/software/xml/ecJsonPost.asmx/{Method}` with a JSON body,
//!   for `Login`, `RefreshGUID`, `SaveOrder`, `GetJsonOrder`, `QuoteOrder`; the token
//!   in the `UserGUID` header. Success is HTTP 200; errors are HTTP 500
//!   `{"status":"-N","statusdescription":...}` with the reference's codes and texts,
//!   or HTTP 409 `Order Unable to Cancel` / `Order Unable to Modify`.
//! - Tokens: Login issues a UserGUID; every use renews it; one idle longer than the TTL
//!   (20 days unless configured) is unknown, answered like a missing one (-5).
//!   Directly issued GUIDs (config) work without Login and are kept by `RefreshGUID`.
//! - SaveOrder is create-or-update of the whole order by `OrderNumber`, validated like
//!   a create each time (`validate.rs`); GetJsonOrder renders the XML-derived order
//!   with progress on `Jobs.Job.JobStops.JobStop` (`render.rs`); QuoteOrder validates
//!   the same body and saves nothing.
//! - Knobs mirror the `/_sim/` HTTP control API (`control.rs`).

mod api;
mod control;
mod json;
mod render;
mod schema;
mod signature;
mod state;
mod validate;

pub use state::OrderStage;

use crate::common::Faults;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use state::{State, StoredOrder, Token, braced, guid_key};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One e-Courier user: Login credentials, the customer its orders are billed to, and
/// optionally a UserGUID issued directly to the trading partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimAccount {
    pub website: String,
    pub username: String,
    pub password: String,
    pub customer_code: String,
    pub direct_guid: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EcourierSimConfig {
    pub accounts: Vec<SimAccount>,
    /// How long an unused UserGUID lives: "if they are not used for over 20 days,
    /// then they may expire" (seed 001, Login).
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
            token_ttl: Duration::from_secs(20 * 24 * 3600),
        }
    }
}

/// A fault for the next calls (`fail_next`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimFault {
    /// HTTP 500 `{"status":"<code>","statusdescription":<the reference's text>}`.
    Status(i32),
    /// That HTTP status with `{"status":"-4","statusdescription":<text>}`.
    Http(u16, String),
    /// HTTP 200 with a body that is not JSON.
    Garbage,
    /// The call is carried out (an order is stored), then the answer is lost: HTTP 504
    /// from a proxy in front of e-Courier.
    ProcessThenFail,
}

/// Which of the reference's two success bodies SaveOrder answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaveOrderAnswer {
    /// The SaveOrder example: `{"status":"0","UserGUID":"JSON Post Recieved"}` (sic).
    #[default]
    ReferenceExample,
    /// The status-code section: `{"status":"0","statusdescription":"JSON Post Received"}`.
    StatusDescription,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcourierStats {
    /// Calls received per method name (unknown names too).
    pub calls: BTreeMap<String, u64>,
    /// UserGUIDs issued by Login.
    pub logins: u64,
    /// The most Login calls in progress at the same moment.
    pub max_concurrent_logins: u64,
}

/// A carrier call as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimRequest {
    /// The method name from the URL (`SaveOrder`).
    pub method: String,
    pub path: String,
    /// Names of the authentication headers present (`UserGUID`, `Authorization`).
    pub auth_headers: Vec<String>,
    /// The `UserGUID` header as sent (a token this simulator issued), if any.
    #[serde(default)]
    pub user_guid: Option<String>,
    /// The parsed body (a repeated key read as a list), `Null` when it was not JSON;
    /// Login's password is replaced by `"<redacted>"`.
    pub body: Value,
}

#[derive(Debug, Default)]
pub(crate) struct Control {
    latency: Duration,
    faults: Faults<SimFault>,
    requests: VecDeque<SimRequest>,
    calls: BTreeMap<String, u64>,
    logins: u64,
    save_answer: SaveOrderAnswer,
}

pub(crate) struct Inner {
    config: EcourierSimConfig,
    state: Mutex<State>,
    control: Mutex<Control>,
    logins_in_flight: AtomicU64,
    max_concurrent_logins: AtomicU64,
    clock_generation: AtomicU64,
}

/// The simulated e-Courier site. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct EcourierSim {
    inner: Arc<Inner>,
}

impl Default for EcourierSim {
    fn default() -> Self {
        Self::new(EcourierSimConfig::default())
    }
}

/// A default-config simulator's router (the carrier API and `/_sim/`), for the
/// stand-alone simulator binary.
pub fn standalone_router() -> Router {
    EcourierSim::default().router()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Now, to the second (e-Courier's dates carry no fraction).
pub(crate) fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    chrono::Timelike::with_nanosecond(&now, 0).unwrap_or(now)
}

impl EcourierSim {
    pub fn new(config: EcourierSimConfig) -> Self {
        let sim = Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State::new()),
                control: Mutex::new(Control::default()),
                logins_in_flight: AtomicU64::new(0),
                max_concurrent_logins: AtomicU64::new(0),
                clock_generation: AtomicU64::new(0),
            }),
        };
        sim.seed_direct_guids(&mut sim.state());
        sim
    }

    /// The carrier API and the `/_sim/` control API, relative to the mount point.
    pub fn router(&self) -> Router {
        api::routes().nest("/_sim", control::routes()).with_state(self.clone())
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    pub(crate) fn control(&self) -> MutexGuard<'_, Control> {
        lock(&self.inner.control)
    }

    pub(crate) fn config(&self) -> &EcourierSimConfig {
        &self.inner.config
    }

    /// The CustomerID of an account (65 for the first, as in the reference's
    /// GetJsonOrder example, then 66, ...).
    pub(crate) fn customer_id(account: usize) -> u64 {
        65 + account as u64
    }

    fn seed_direct_guids(&self, state: &mut State) {
        let now = Instant::now();
        for (account, acc) in self.inner.config.accounts.iter().enumerate() {
            if let Some(guid) = acc.direct_guid.as_deref() {
                state.tokens.insert(guid_key(guid), Token { account, direct: true, last_used: now });
            }
        }
    }

    /// Delay every carrier call by `latency` (not the `/_sim/` calls).
    pub fn set_latency(&self, latency: Duration) {
        self.control().latency = latency;
    }

    /// The next `count` calls of `method` (any method when `None`) suffer `fault`.
    pub fn fail_next(&self, method: Option<&str>, count: u32, fault: SimFault) {
        self.control().faults.fail_next(method, count, fault);
    }

    /// Which success body SaveOrder answers (the reference shows two).
    pub fn set_save_order_answer(&self, answer: SaveOrderAnswer) {
        self.control().save_answer = answer;
    }

    /// Every UserGUID issued by Login becomes unknown.
    pub fn expire_tokens(&self) {
        self.state().tokens.retain(|_, t| t.direct);
    }

    /// Every directly issued UserGUID becomes unknown.
    pub fn expire_direct_guids(&self) {
        self.state().tokens.retain(|_, t| !t.direct);
    }

    pub fn stats(&self) -> EcourierStats {
        let control = self.control();
        EcourierStats {
            calls: control.calls.clone(),
            logins: control.logins,
            max_concurrent_logins: self.inner.max_concurrent_logins.load(Ordering::SeqCst),
        }
    }

    /// Every carrier call received, oldest first (the newest 10,000).
    pub fn requests(&self) -> Vec<SimRequest> {
        self.control().requests.iter().cloned().collect()
    }

    pub fn clear_requests(&self) {
        self.control().requests.clear();
    }

    /// What GetJsonOrder would answer for this order (for its own customer).
    pub fn order(&self, order_number: &str) -> Option<Value> {
        self.state().orders.get(order_number).map(render::order_json)
    }

    pub fn order_count(&self) -> usize {
        self.state().orders.len()
    }

    pub fn order_numbers(&self) -> Vec<String> {
        self.state().orders.keys().cloned().collect()
    }

    /// Moves an order one step: new → assigned (a Job with a driver) → picked up
    /// (pickup JobStops done) → delivered (destination JobStops with POD, order POD).
    pub fn advance(&self, order_number: &str) -> Result<OrderStage, String> {
        self.state().advance(order_number, now())
    }

    /// Moves an order one step back, as a stale replica reports it (events kept).
    pub fn rewind(&self, order_number: &str) -> Result<OrderStage, String> {
        self.state().rewind(order_number)
    }

    /// Sets the raw OrderStatus, e.g. the undocumented `I` or `P`.
    pub fn set_order_status(&self, order_number: &str, status: &str) -> Result<(), String> {
        if !schema::ORDER_STATUSES.contains(&status) {
            return Err(format!("OrderStatus must be one of {}", schema::ORDER_STATUSES.join(", ")));
        }
        let mut state = self.state();
        let order = state.orders.get_mut(order_number).ok_or_else(|| format!("no order {order_number}"))?;
        order.status = status.to_owned();
        Ok(())
    }

    /// Replaces the signature a delivered order shows as `PodSign` with `text`, verbatim
    /// (a test's own base64, a data URI, or something that is not an image at all); None
    /// goes back to the rendered PNG.
    pub fn set_pod_sign(&self, order_number: &str, text: Option<String>) -> Result<(), String> {
        let mut state = self.state();
        let order = state.orders.get_mut(order_number).ok_or_else(|| format!("no order {order_number}"))?;
        order.pod_sign = text;
        Ok(())
    }

    /// Advances every open order one step each `every`, until `stop_clock`, another
    /// `start_clock`, or the simulator is dropped. Call within a Tokio runtime.
    pub fn start_clock(&self, every: Duration) {
        let generation = self.inner.clock_generation.fetch_add(1, Ordering::SeqCst) + 1;
        let weak = Arc::downgrade(&self.inner);
        let every = every.max(Duration::from_millis(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                if inner.clock_generation.load(Ordering::SeqCst) != generation {
                    break;
                }
                EcourierSim { inner }.state().advance_all(now());
            }
        });
    }

    pub fn stop_clock(&self) {
        self.inner.clock_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Back to a fresh simulator with the same config: no orders, no Login tokens,
    /// direct GUIDs alive again, no faults, no latency, zero stats, clock stopped.
    pub fn reset(&self) {
        self.stop_clock();
        {
            let mut state = self.state();
            *state = State::new();
            self.seed_direct_guids(&mut state);
        }
        *self.control() = Control::default();
        self.inner.max_concurrent_logins.store(0, Ordering::SeqCst);
    }

    /// Orders, sessions and counters as JSON, for `import_state` after a restart.
    pub fn export_state(&self) -> Value {
        let state = self.state();
        let now = Instant::now();
        let tokens: Vec<TokenSnapshot> = state
            .tokens
            .iter()
            .filter_map(|(key, token)| {
                let account = self.inner.config.accounts.get(token.account)?;
                Some(TokenSnapshot {
                    user_guid: braced(key),
                    website: account.website.clone(),
                    username: account.username.clone(),
                    direct: token.direct,
                    idle_ms: now.saturating_duration_since(token.last_used).as_millis() as u64,
                })
            })
            .collect();
        let snapshot = Snapshot {
            version: SNAPSHOT_VERSION,
            next_order_id: state.next_order_id,
            next_event_id: state.next_event_id,
            orders: state.orders.values().cloned().collect(),
            tokens,
        };
        serde_json::to_value(snapshot).unwrap_or(Value::Null)
    }

    /// Replaces orders, sessions and counters with an `export_state` snapshot.
    /// Sessions of accounts this simulator does not have are dropped.
    pub fn import_state(&self, snapshot: Value) -> Result<(), String> {
        let snapshot: Snapshot = serde_json::from_value(snapshot).map_err(|e| format!("not a simulator state: {e}"))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(format!("state version {} is not {SNAPSHOT_VERSION}", snapshot.version));
        }
        let mut fresh = State::new();
        for order in snapshot.orders {
            let number = order.order_number.clone();
            if fresh.orders.insert(number.clone(), order).is_some() {
                return Err(format!("order {number} appears twice"));
            }
        }
        let max_id = fresh.orders.values().map(|o| o.order_id + 1).max().unwrap_or(state::FIRST_ORDER_ID);
        fresh.next_order_id = snapshot.next_order_id.max(max_id);
        let max_event = fresh.orders.values().flat_map(|o| &o.events).map(|e| e.id + 1).max().unwrap_or(1);
        fresh.next_event_id = snapshot.next_event_id.max(max_event);
        let now = Instant::now();
        for token in snapshot.tokens {
            let Some(account) = self
                .inner
                .config
                .accounts
                .iter()
                .position(|a| a.website == token.website && a.username == token.username)
            else {
                continue;
            };
            let idle = Duration::from_millis(token.idle_ms);
            let last_used = now.checked_sub(idle).unwrap_or(now);
            fresh.tokens.insert(guid_key(&token.user_guid), Token { account, direct: token.direct, last_used });
        }
        *self.state() = fresh;
        Ok(())
    }
}

const SNAPSHOT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    next_order_id: u64,
    next_event_id: u64,
    orders: Vec<StoredOrder>,
    tokens: Vec<TokenSnapshot>,
}

#[derive(Serialize, Deserialize)]
struct TokenSnapshot {
    user_guid: String,
    website: String,
    username: String,
    direct: bool,
    idle_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn the_clock_task_ends_when_the_simulator_is_dropped() {
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        let sim = EcourierSim::default();
        sim.start_clock(Duration::from_millis(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(metrics.num_alive_tasks(), before + 1);
        drop(sim);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(metrics.num_alive_tasks(), before);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_new_clock_replaces_the_old_one() {
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        let sim = EcourierSim::default();
        sim.start_clock(Duration::from_millis(5));
        sim.start_clock(Duration::from_millis(5));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(metrics.num_alive_tasks(), before + 1);
        sim.stop_clock();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(metrics.num_alive_tasks(), before);
    }
}
