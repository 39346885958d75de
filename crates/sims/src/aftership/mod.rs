//! AfterShip Tracking API, version 2024-04, played from AfterShip's side.
//!
//! Written from seed 002 (AfterShip's Trackings, Last Checkpoints and Estimated delivery
//! date API pages), docs/carriers/aftership.md's `aftership` section, and the official Python SDK pinned
//! to 2024-04 (`aftership-tracking-sdk` 2.0.2, the last release on `/tracking/2024-04`):
//! its models give every path, field, envelope and enum; later releases (2024-07 and on)
//! must not leak in. `docs/carriers/aftership-simulator.md` is the contract as
//! implemented; the contract checks in `contract/aftership/` hold it against the SDK.
//!
//! Routes are relative to the mount point: the API under `/tracking/2024-04/...` (so a
//! base URL `http://host/aftership/tracking/2024-04` works; any other version answers
//! 404 in AfterShip's meta envelope) and the control API under `/_sim/...`.
//!
//! Choices where the documents are silent (each also in the contract notes):
//! - Unknown fields and wrong JSON types answer HTTP 400 meta 400 "Schema validation
//!   error" (AfterShip/aftership-sdk-php issue #51), with the field named after a colon.
//! - A create without `slug` gets the account's first courier (AfterShip "detects" among
//!   the account's couriers); a slug outside [`AftershipSimConfig::couriers`] is 4010.
//! - 4003 answers carry an empty `data`, like every other error: the client finds the
//!   existing tracking itself (docs/carriers/aftership.md: "find it by number and adopt it").
//! - The rate limit counts every authenticated call as received, refused ones included,
//!   in a sliding 1-second window (see `limiter.rs`); `X-RateLimit-*` come with every
//!   API answer; a 429 carries no `Retry-After` (2024-04 documents only the three).
//! - Tracking ids are deterministic (a counter mixed into 24 base-36 characters).

mod api;
mod control;
mod limiter;
mod predict;
mod render;
mod state;
mod validate;
mod webhook;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::common::{Faults, push_capped};
use limiter::Limiter;
use state::{Store, StoredTracking};

pub use render::{PARTIAL_DELETE_FIELDS, PARTIAL_UPDATE_FIELDS, TRACKING_FIELDS};
pub use webhook::{WebhookDelivery, sign_webhook};

/// The version this simulator speaks; its routes live under `/tracking/{API_VERSION}`.
pub const API_VERSION: &str = "2024-04";

/// The simulated AfterShip account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AftershipSimConfig {
    /// Accepted `as-api-key` values (all keys of one organization). Default `["as-demo-key"]`.
    pub api_keys: Vec<String>,
    /// Calls per second the account may make. Default 10 ("10 requests/sec per
    /// organization" until 2024-07, AfterShip quickstart "Rate limit").
    pub rate_limit_per_second: u32,
    /// The account's couriers (slugs); the first one is what a create without `slug` is
    /// detected as. Default: `ecms` (seed 002's carrier) and a few common ones.
    pub couriers: Vec<String>,
}

impl Default for AftershipSimConfig {
    fn default() -> Self {
        AftershipSimConfig {
            api_keys: vec!["as-demo-key".to_owned()],
            rate_limit_per_second: 10,
            couriers: [
                "ecms",
                "dhl",
                "dhl-global-mail",
                "fedex",
                "ups",
                "usps",
                "china-post",
                "china-ems",
                "royal-mail",
                "dpd",
                "gls",
                "postnl",
                "canada-post",
                "australia-post",
                "india-post",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

/// A fault answered instead of the real work, for the next N calls of an operation.
/// Operations: `create`, `list`, `get`, `update`, `delete`, `retrack`, `mark_completed`,
/// `last_checkpoint`, `predict_batch` (the by-slug routes share their by-id op's name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimFault {
    /// This HTTP status with this body (a JSON string is sent as raw text, e.g. a proxy's
    /// HTML error page).
    Http(u16, Value),
    /// An AfterShip error envelope with this meta.
    Meta { http: u16, code: u32, r#type: String, message: String },
    /// 429 TooManyRequests whose `X-RateLimit-Reset` is this many seconds ahead.
    RateLimited(u64),
    /// 500 meta InternalError.
    ServerError,
}

/// What the simulator saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AftershipStats {
    /// Calls received per operation (`unknown` for routes AfterShip does not have).
    pub calls: BTreeMap<String, u64>,
    pub total_calls: u64,
    /// Most authenticated calls received in any 1-second window (refused ones included).
    pub max_calls_per_second: u32,
    /// 429 answers sent, whatever their cause.
    pub rate_limited: u64,
    /// Of those, the ones the rate limit itself refused.
    pub over_limit: u64,
    pub unauthorized: u64,
}

/// One API call as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AftershipRequest {
    pub method: String,
    pub op: String,
    /// Path relative to the mount point, e.g. `/tracking/2024-04/trackings`.
    pub path: String,
    pub query: Option<String>,
    /// Names (never values) of the headers present, lower case.
    pub headers: Vec<String>,
    /// The JSON body; `null` without one; the raw text when it is not JSON.
    pub body: Value,
}

pub(crate) struct Inner {
    pub store: Store,
    pub requests: std::collections::VecDeque<AftershipRequest>,
    pub faults: Faults<SimFault>,
    pub limiter: Limiter,
    pub stats: AftershipStats,
    pub latency: Duration,
}

pub(crate) struct Shared {
    pub config: AftershipSimConfig,
    pub inner: Mutex<Inner>,
}

/// The AfterShip 2024-04 simulator; cheap to clone (one shared state).
#[derive(Clone)]
pub struct AftershipSim {
    pub(crate) shared: Arc<Shared>,
}

impl Default for AftershipSim {
    fn default() -> Self {
        Self::new(AftershipSimConfig::default())
    }
}

/// The simulator's routes for a standalone process (carrier API and `/_sim` control API).
pub fn standalone_router() -> Router {
    AftershipSim::default().router()
}

/// Persisted form of the simulator's trackings (`export_state` / `import_state`).
#[derive(Serialize, Deserialize)]
struct PersistedState {
    version: u32,
    next_seq: u64,
    trackings: Vec<StoredTracking>,
}

impl AftershipSim {
    pub fn new(config: AftershipSimConfig) -> Self {
        let limiter = Limiter::new(config.rate_limit_per_second);
        AftershipSim {
            shared: Arc::new(Shared {
                config,
                inner: Mutex::new(Inner {
                    store: Store::default(),
                    requests: std::collections::VecDeque::new(),
                    faults: Faults::default(),
                    limiter,
                    stats: AftershipStats::default(),
                    latency: Duration::ZERO,
                }),
            }),
        }
    }

    pub fn config(&self) -> &AftershipSimConfig {
        &self.shared.config
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.shared.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The carrier API (`/tracking/2024-04/...`) and the control API (`/_sim/...`),
    /// relative to wherever it is mounted.
    pub fn router(&self) -> Router {
        control::routes().fallback(api::serve).with_state(self.clone())
    }

    /// Delay every API answer by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// The next `count` calls of `op` (any op with `None`) answer `fault`; `count == 0`
    /// clears that selector's pending faults.
    pub fn fail_next(&self, op: Option<&str>, count: u32, fault: SimFault) {
        self.lock().faults.fail_next(op, count, fault);
    }

    /// The next `count` calls answer 429 TooManyRequests (reset one second ahead).
    pub fn burst_429(&self, count: u32) {
        self.fail_next(None, count, SimFault::RateLimited(1));
    }

    pub fn stats(&self) -> AftershipStats {
        let inner = self.lock();
        AftershipStats { max_calls_per_second: inner.limiter.max_in_window, ..inner.stats.clone() }
    }

    /// Every API call as received (the most recent [`crate::common::REQUEST_LOG_CAP`]).
    pub fn requests(&self) -> Vec<AftershipRequest> {
        self.lock().requests.iter().cloned().collect()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// A tracking as `GET /trackings/{id}` would answer it.
    pub fn tracking(&self, id: &str) -> Option<Value> {
        let inner = self.lock();
        let seq = inner.store.seq_of_id(id)?;
        inner.store.get(seq).map(|t| Value::Object(render::tracking(t, Utc::now())))
    }

    /// The id of the tracking of this slug and number.
    pub fn tracking_id(&self, slug: &str, tracking_number: &str) -> Option<String> {
        let inner = self.lock();
        let seq = inner.store.seq_of_number(slug, tracking_number)?;
        inner.store.get(seq).map(|t| t.id.clone())
    }

    pub fn tracking_count(&self) -> usize {
        self.lock().store.len()
    }

    fn with_tracking(
        &self,
        id: &str,
        f: impl FnOnce(&mut StoredTracking) -> Result<(), String>,
    ) -> Result<Value, String> {
        let mut inner = self.lock();
        let seq = inner.store.seq_of_id(id).ok_or_else(|| format!("no tracking {id}"))?;
        let t = inner.store.get_mut(seq).ok_or_else(|| format!("no tracking {id}"))?;
        f(t)?;
        Ok(Value::Object(render::tracking(t, Utc::now())))
    }

    /// One step Pending → InfoReceived → InTransit → OutForDelivery → Delivered, with
    /// its checkpoint (subtags `InfoReceived_001`, `InTransit_001`, `OutForDelivery_001`,
    /// `Delivered_001`). Refused for an inactive or delivered tracking.
    pub fn advance(&self, id: &str) -> Result<Value, String> {
        self.with_tracking(id, |t| t.advance(Utc::now()))
    }

    /// Expired (`Expired_001`) and inactive, hence retrackable.
    pub fn expire(&self, id: &str) -> Result<Value, String> {
        self.with_tracking(id, |t| {
            t.expire(Utc::now());
            Ok(())
        })
    }

    /// Forget everything: trackings, requests, faults, stats, latency.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.store.clear();
        inner.requests.clear();
        inner.faults.clear();
        inner.limiter.reset();
        inner.stats = AftershipStats::default();
        inner.latency = Duration::ZERO;
    }

    pub fn export_state(&self) -> Value {
        let inner = self.lock();
        let state = PersistedState {
            version: 1,
            next_seq: inner.store.next_seq,
            trackings: inner.store.iter().cloned().collect(),
        };
        serde_json::to_value(state).unwrap_or_else(|_| json!({}))
    }

    /// Replace the trackings with an exported state.
    pub fn import_state(&self, state: Value) -> Result<(), String> {
        let state: PersistedState =
            serde_json::from_value(state).map_err(|e| format!("not an aftership state: {e}"))?;
        if state.version != 1 {
            return Err(format!("unsupported aftership state version {}", state.version));
        }
        let mut store = Store::default();
        for t in state.trackings {
            if store.seq_of_id(&t.id).is_some() || store.seq_of_number(&t.slug, &t.tracking_number).is_some() {
                return Err(format!("duplicate tracking {} ({}/{})", t.id, t.slug, t.tracking_number));
            }
            store.insert(t);
        }
        store.next_seq = store.next_seq.max(state.next_seq);
        self.lock().store = store;
        Ok(())
    }

    pub(crate) fn record(&self, inner: &mut Inner, req: AftershipRequest) {
        *inner.stats.calls.entry(req.op.clone()).or_default() += 1;
        inner.stats.total_calls += 1;
        push_capped(&mut inner.requests, req, crate::common::REQUEST_LOG_CAP);
    }
}
