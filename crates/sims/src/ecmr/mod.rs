//! eCMR.services simulator, written from the carrier's API explanation (seed 000, "Explanation
//! of API options of eCMR.services") and the `ecmr` section of docs/carriers/ecmr.md; the contract as
//! implemented is `docs/carriers/ecmr-simulator.md`.
//!
//! The seed describes the flow (organisation API tokens with an expiry, exchanged for a bearer
//! access token with `client_id` = organisation id and `code` = API token; then "get shipment
//! details", "get shipment overview", "store shipment"; a shipment history of who did what and
//! when; links to the CMR). It publishes no paths: the paths and bodies are docs/carriers/ecmr.md's
//! (*ours*), and this simulator serves those defaults.
//!
//! Choices where the documents are silent (each also in the contract doc):
//! - Every error answer is `{"error": <sentence>, "field": <path or null>}`, the shape
//!   docs/carriers/ecmr.md gives for 422, so a client needs one error reader.
//! - Token exchange: an unknown organisation, a code that is not that organisation's API token,
//!   or an expired API token → 401 (`field: "code"`); a body without `client_id`/`code` → 422.
//! - Bearer calls without a valid access token → 401 with `WWW-Authenticate: Bearer` (RFC 6750).
//! - Shipments belong to the organisation whose token stored them; another organisation's
//!   tracking number answers 404, as an unknown one does.
//! - `reference` is required (it is the key that makes a retried store an update); a store
//!   with an existing reference answers 200 with the current status (201 only creates), and is
//!   refused with 409 once loading started (a signed CMR is a legal document) or after cancel.
//! - Fields outside docs/carriers/ecmr.md's body are refused (422 naming the field): the body is ours, so
//!   an unknown field is a typo on one side or the other, never something to drop silently.
//! - Countries are ISO 3166-1 alpha-2 codes; dates are RFC 3339 with an offset.
//! - The overview lists the organisation's shipments oldest first (creation order never
//!   changes, so paging is exact and stable while new shipments arrive at the end).
//! - History holds status changes only (the seed: "all statuses that the order has gone
//!   through"); an update by reference adds none.

mod api;
mod control;
mod pdf;
mod state;
mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;

pub use state::Status;

/// The carrier operations, as named in `stats()`, `requests()` and `fail_next`.
pub const OPS: &[&str] = &["token", "store_shipment", "get_shipment", "list_shipments", "get_document"];

/// An organisation of the simulated eCMR.services account, with its one API token.
#[derive(Clone, Debug)]
pub struct SimOrganization {
    pub organization_id: String,
    pub api_token: String,
    /// The seed's API token table has "Expires at": a token past it is refused.
    pub api_token_expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct EcmrSimConfig {
    pub organizations: Vec<SimOrganization>,
    /// Lifetime of an access token (`expires_in` of the token exchange).
    pub access_token_ttl: Duration,
    /// How many received requests `requests()` keeps (oldest dropped first).
    pub request_log_cap: usize,
}

impl Default for EcmrSimConfig {
    fn default() -> Self {
        Self {
            organizations: vec![SimOrganization {
                organization_id: "org-demo".into(),
                api_token: "token-demo".into(),
                api_token_expires_at: Utc.with_ymd_and_hms(2099, 12, 31, 23, 59, 59).unwrap(),
            }],
            access_token_ttl: Duration::from_secs(3600),
            request_log_cap: 10_000,
        }
    }
}

/// What the next matching call does instead of (or besides) its normal work.
#[derive(Clone, Debug, PartialEq)]
pub enum SimFault {
    /// Answer this status and JSON body; nothing is done.
    Http(u16, Value),
    /// Wait this long, then do the work and answer normally (client timeouts).
    Delay(Duration),
    /// Close the connection without an answer; nothing is done.
    Disconnect,
    /// Do the work, then close the connection without an answer (the answer is lost).
    DisconnectAfterCommit,
}

impl SimFault {
    /// Parses the control API's fault object: `{"type":"http","status":500,"body":{...}}`,
    /// `{"type":"delay","ms":1500}`, `{"type":"disconnect"}`, `{"type":"disconnect_after_commit"}`.
    pub fn from_json(v: &Value) -> Result<SimFault, String> {
        let kind = v.get("type").and_then(Value::as_str).ok_or("fault.type is required")?;
        match kind {
            "http" => {
                let status = v
                    .get("status")
                    .and_then(Value::as_u64)
                    .filter(|s| (100..=599).contains(s))
                    .ok_or("fault.status must be an HTTP status code")?;
                Ok(SimFault::Http(status as u16, v.get("body").cloned().unwrap_or(Value::Null)))
            }
            "delay" => {
                let ms = v.get("ms").and_then(Value::as_u64).ok_or("fault.ms must be a whole number")?;
                Ok(SimFault::Delay(Duration::from_millis(ms)))
            }
            "disconnect" => Ok(SimFault::Disconnect),
            "disconnect_after_commit" => Ok(SimFault::DisconnectAfterCommit),
            other => Err(format!("unknown fault.type {other:?}")),
        }
    }
}

/// One carrier call as received. Header values are never kept (only the names of the auth
/// headers present), and the token exchange's `code` (the API token) is redacted.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    pub at: DateTime<Utc>,
    pub method: String,
    pub op: String,
    pub path: String,
    pub auth_headers: Vec<String>,
    pub body: Value,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct EcmrStats {
    /// Calls received per operation (every call, whatever its answer).
    pub calls: BTreeMap<String, u64>,
    /// Token exchanges that issued an access token.
    pub token_exchanges: u64,
    /// Token exchanges refused (unknown organisation or token, expired API token).
    pub token_refusals: u64,
    /// Bearer calls answered 401.
    pub unauthorized: u64,
    /// Faults served from the `fail_next` queue.
    pub faults_injected: u64,
    /// Shipments stored (all organisations).
    pub shipments: usize,
}

/// The eCMR.services simulator: cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct EcmrSim {
    inner: Arc<Inner>,
}

struct Inner {
    config: EcmrSimConfig,
    state: Mutex<state::State>,
    latency: crate::common::Latency,
}

impl Default for EcmrSim {
    fn default() -> Self {
        Self::new(EcmrSimConfig::default())
    }
}

impl EcmrSim {
    pub fn new(config: EcmrSimConfig) -> Self {
        let state = state::State::new();
        Self { inner: Arc::new(Inner { config, state: Mutex::new(state), latency: crate::common::Latency::default() }) }
    }

    /// The carrier API (`/api/...`) and the control API (`/_sim/...`), relative to the mount.
    pub fn router(&self) -> Router {
        api::routes(self.clone())
            .merge(control::routes(self.clone()))
            .fallback(api::not_found)
            .method_not_allowed_fallback(api::method_not_allowed)
    }

    pub fn config(&self) -> &EcmrSimConfig {
        &self.inner.config
    }

    /// Added to every carrier call before it is answered (not to `/_sim`).
    pub fn set_latency(&self, latency: Duration) {
        self.inner.latency.set(latency);
    }

    pub(crate) fn latency(&self) -> Duration {
        self.inner.latency.get()
    }

    /// The next `count` calls of `op` (one of [`OPS`]; `None` = any operation) get `fault`.
    /// Queued faults are served in order.
    pub fn fail_next(&self, op: Option<&str>, count: u32, fault: SimFault) {
        self.lock().faults.fail_next(op, count, fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Every access token issued so far becomes invalid (the next bearer call answers 401).
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    pub fn stats(&self) -> EcmrStats {
        let st = self.lock();
        let mut stats = st.stats.clone();
        stats.shipments = st.shipment_count();
        stats
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.iter().cloned().collect()
    }

    /// The stored shipment as the simulator holds it: `{organization_id, tracking_number,
    /// reference, status, created_at, updated_at, shipment:{...as stored}, history:[...]}`.
    pub fn shipment(&self, tracking_number: &str) -> Option<Value> {
        let st = self.lock();
        st.get(tracking_number).map(|(org, s)| s.inspect(org))
    }

    /// Looks a shipment up by the reference its organisation gave it.
    pub fn shipment_by_reference(&self, organization_id: &str, reference: &str) -> Option<Value> {
        let st = self.lock();
        st.by_reference(organization_id, reference).map(|s| s.inspect(organization_id))
    }

    pub fn shipment_count(&self) -> usize {
        self.lock().shipment_count()
    }

    /// Moves the shipment one status forward (created → sent → … → delivered), adding a
    /// history entry (who, what, when). Returns the new status.
    pub fn advance(&self, tracking_number: &str) -> Result<Status, String> {
        self.lock().advance(tracking_number)
    }

    /// Stores `count` shipments for `organization_id` at once (references `prefix-1` …);
    /// returns their tracking numbers, oldest first.
    pub fn seed(&self, organization_id: &str, prefix: &str, count: usize) -> Vec<String> {
        self.lock().seed(organization_id, prefix, count)
    }

    /// Deletes a shipment as the organisation's administrator could in the web
    /// application: gone from the overview, details 404.
    pub fn delete(&self, tracking_number: &str) -> Result<(), String> {
        self.lock().delete(tracking_number)
    }

    /// Cancels a shipment that is not delivered or cancelled yet.
    pub fn cancel(&self, tracking_number: &str) -> Result<(), String> {
        self.lock().cancel(tracking_number)
    }

    /// Forgets shipments, tokens, queued faults, the request log and the counters.
    pub fn reset(&self) {
        *self.lock() = state::State::new();
        self.set_latency(Duration::ZERO);
    }

    /// The shipments (not tokens, faults or counters), for `shipgate sandbox` restarts.
    pub fn export_state(&self) -> Value {
        self.lock().export()
    }

    /// Replaces the shipments with an `export_state()` value; access tokens are forgotten.
    pub fn import_state(&self, value: Value) -> Result<(), String> {
        let imported = state::State::import(&value)?;
        let mut st = self.lock();
        st.replace_shipments(imported);
        Ok(())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, state::State> {
        // A panic while holding the lock leaves plain data behind: keep serving it.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record(&self, req: RecordedRequest) {
        let cap = self.inner.config.request_log_cap;
        let mut st = self.lock();
        *st.stats.calls.entry(req.op.clone()).or_default() += 1;
        crate::common::push_capped(&mut st.requests, req, cap);
    }
}

/// A default-config simulator's router, mounted by the standalone binary at `/ecmr`.
pub fn standalone_router() -> Router {
    EcmrSim::default().router()
}
