//! ecomdash simulator: `Shipments - Submit Tracking Info`, written from the ecomdash API page
//! (seed 004, with its `ListOfFulfillmentRequest` and `ResponseListUpdateShipmentResponse`
//! JSON Schemas, copied in `contract/ecomdash/`) and the `ecomdash` section of docs/carriers/ecomdash.md;
//! the contract as implemented is `docs/carriers/ecomdash-simulator.md`.
//!
//! The API sits behind Azure API Management (`ecomdash.azure-api.net`, header
//! `Ocp-Apim-Subscription-Key`), in front of an ASP.NET service (`ecd-subscription-key`, the
//! `{"Message"}` error bodies). Choices where the seed is silent (each in the contract doc):
//! - A missing or unknown `Ocp-Apim-Subscription-Key` is refused by API Management itself:
//!   401 `{"statusCode": 401, "message": "Access denied due to missing|invalid subscription
//!   key. ..."}`, the gateway's documented default answer (Microsoft's troubleshooting
//!   article "Unauthorized errors (401) while invoking APIs", KB 4464930). A missing or
//!   unknown `ecd-subscription-key` is the seed's 403 `{"Message"}`, text verbatim.
//! - More than `max_concurrency` calls in flight for one key pair (one merchant connection)
//!   → 429 `{"statusCode": 429, "message": "Rate limit is exceeded. Try again in N seconds."}`
//!   with `Retry-After: N`, API Management's throttling answer (its `limit-concurrency` policy
//!   fails excess calls at once with 429).
//! - A body that is not a JSON array valid against `ListOfFulfillmentRequest`, or breaks the
//!   seed's field table (ShipmentId required and whole, TrackingNumber required unless
//!   LineItems, LineItemId required, dates as date-time strings) → 400 in the answer envelope:
//!   `{"status": "Failure", "messages": [every problem], "pagination": null, "data": null}`.
//!   A Content-Type other than JSON → 415 with ASP.NET Web API's `{"Message"}` text.
//! - The `Request` echo has exactly the keys of the seed's example (ShipmentId, CarrierId,
//!   TrackingNumber, ShippedDate, EstimatedDeliveryDate, LineItems), `null` for what was not
//!   sent; numbers are echoed as sent (`28.0` stays `28.0`, as a .NET decimal does); a
//!   date-only value is echoed at midnight (`2016-07-21T00:00:00`), other dates as sent. The
//!   base `TrackingURL` is accepted (the schema lists it) but not echoed: neither the seed's
//!   example echo nor its field table has it.
//! - Any other path or method → API Management's 404 `{"statusCode": 404, "message":
//!   "Resource not found"}` (operations are matched by method and path).

mod api;
mod control;
mod state;
mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The seed's 500 text ("Response 500").
pub const SERVER_ERROR_MESSAGE: &str = "Oops, something went wrong while processing your request";
/// The seed's 403 text ("Response 403"), verbatim.
pub const FORBIDDEN_MESSAGE: &str = "The provided 'ecd-subscription-key' / 'application-id' combination is not valid or does not belong to a company with a current ecomdash subscription.";

#[derive(Clone, Debug)]
pub struct EcomdashSimConfig {
    /// API Management subscription keys (`Ocp-Apim-Subscription-Key`, the developer's).
    pub subscription_keys: Vec<String>,
    /// Merchant integration keys (`ecd-subscription-key`) of companies with a current subscription.
    pub integration_keys: Vec<String>,
    /// Calls allowed in flight at once per key pair; more are answered 429.
    pub max_concurrency: usize,
    /// The N of "Try again in N seconds" and `Retry-After`.
    pub retry_after_secs: u32,
    /// Items allowed in one call (`None`: no limit; the seed states none).
    pub max_items_per_call: Option<usize>,
    /// How many received requests `requests()` keeps (oldest dropped first).
    pub request_log_cap: usize,
}

impl Default for EcomdashSimConfig {
    fn default() -> Self {
        Self {
            subscription_keys: vec!["sub-demo".into()],
            integration_keys: vec!["ecd-demo".into()],
            max_concurrency: 3,
            retry_after_secs: 1,
            max_items_per_call: None,
            request_log_cap: 10_000,
        }
    }
}

/// What the next call that passes API Management does instead of (or besides) its work.
#[derive(Clone, Debug, PartialEq)]
pub enum SimFault {
    /// Answer this status and JSON body; nothing is stored.
    Http(u16, Value),
    /// 429 with "Try again in N seconds" and `Retry-After: N`; nothing is stored.
    RateLimited(u32),
    /// Wait this long (while counting as in flight), then work and answer normally.
    Delay(Duration),
    /// Close the connection without an answer; nothing is stored.
    Disconnect,
    /// Store the items, then close the connection without an answer.
    DisconnectAfterCommit,
}

impl SimFault {
    /// The seed's retryable failure: 500 `{"Message": "Oops, ..."}`.
    pub fn server_error() -> SimFault {
        SimFault::Http(500, json!({ "Message": SERVER_ERROR_MESSAGE }))
    }

    /// Parses the control API's fault object: `{"type":"http","status":500,"body":{...}}`,
    /// `{"type":"server_error"}`, `{"type":"rate_limited","seconds":5}`, `{"type":"delay","ms":100}`,
    /// `{"type":"disconnect"}`, `{"type":"disconnect_after_commit"}`.
    pub fn from_json(v: &Value) -> Result<SimFault, String> {
        let kind = v.get("type").and_then(Value::as_str).ok_or("fault.type is required")?;
        let num = |k: &str| v.get(k).and_then(Value::as_u64).ok_or(format!("fault.{k} must be a whole number"));
        match kind {
            "http" => {
                let status = num("status")?;
                if !(100..=599).contains(&status) {
                    return Err("fault.status must be an HTTP status code".into());
                }
                Ok(SimFault::Http(status as u16, v.get("body").cloned().unwrap_or(Value::Null)))
            }
            "server_error" => Ok(SimFault::server_error()),
            "rate_limited" => Ok(SimFault::RateLimited(u32::try_from(num("seconds")?).map_err(|e| e.to_string())?)),
            "delay" => Ok(SimFault::Delay(Duration::from_millis(num("ms")?))),
            "disconnect" => Ok(SimFault::Disconnect),
            "disconnect_after_commit" => Ok(SimFault::DisconnectAfterCommit),
            other => Err(format!("unknown fault.type {other:?}")),
        }
    }
}

/// One call as received: method, op, path, the names (never values) of the key headers
/// present, the Content-Type, and the parsed body (`null` when it is not JSON).
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    pub at: DateTime<Utc>,
    pub method: String,
    pub op: String,
    pub path: String,
    pub auth_headers: Vec<String>,
    pub content_type: Option<String>,
    pub body: Value,
}

/// An item ecomdash accepted (`WasSuccessful: true`), with what it will tell the marketplace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmittedItem {
    /// The merchant's `ecd-subscription-key` the item was submitted with.
    pub integration_key: String,
    pub shipment_id: i64,
    pub carrier_id: Option<i64>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub shipped_date: Option<String>,
    pub estimated_delivery_date: Option<String>,
    pub line_items: Vec<SubmittedLineItem>,
    pub at: DateTime<Utc>,
}

/// A line item with the base values it inherits resolved, as the seed describes: "If this is
/// missing, but the base request has a CarrierId / TrackingNumber, the base request's will be used".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmittedLineItem {
    pub line_item_id: i64,
    pub carrier_id: Option<i64>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub estimated_delivery_date: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct EcomdashStats {
    /// Calls received per operation (`submit_tracking_info`, `unknown`).
    pub calls: BTreeMap<String, u64>,
    pub accepted_items: u64,
    pub failed_items: u64,
    /// 401 from API Management (subscription key missing or invalid).
    pub unauthorized: u64,
    /// 403 (integration key missing or unknown).
    pub forbidden: u64,
    /// 400 (body refused).
    pub bad_requests: u64,
    /// 429 because `max_concurrency` calls were already in flight for the key pair.
    pub throttled: u64,
    pub faults_injected: u64,
    /// Calls in flight now, all keys together.
    pub in_flight: usize,
    /// The most calls ever in flight at once for one key pair.
    pub max_in_flight: usize,
}

/// The ecomdash simulator: cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct EcomdashSim {
    inner: Arc<Inner>,
}

struct Inner {
    config: EcomdashSimConfig,
    state: Mutex<state::State>,
    latency: crate::common::Latency,
}

impl Default for EcomdashSim {
    fn default() -> Self {
        Self::new(EcomdashSimConfig::default())
    }
}

impl EcomdashSim {
    pub fn new(config: EcomdashSimConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(state::State::default()),
                latency: crate::common::Latency::default(),
            }),
        }
    }

    /// `POST /api/Shipments/submitTrackingInfo` and the control API (`/_sim/...`), relative
    /// to the mount (mount at the root of a base URL such as `https://ecomdash.azure-api.net`).
    pub fn router(&self) -> Router {
        api::routes(self.clone())
            .merge(control::routes(self.clone()))
            .fallback(api::not_found)
            .method_not_allowed_fallback(api::not_found)
    }

    pub fn config(&self) -> &EcomdashSimConfig {
        &self.inner.config
    }

    /// Processing time of every call (spent while counting as in flight).
    pub fn set_latency(&self, latency: Duration) {
        self.inner.latency.set(latency);
    }

    pub(crate) fn latency(&self) -> Duration {
        self.inner.latency.get()
    }

    /// The next `count` calls that pass API Management's checks get `fault`, in queue order.
    pub fn fail_next(&self, count: u32, fault: SimFault) {
        if count > 0 {
            self.lock().faults.push_back((count, fault));
        }
    }

    pub fn clear_faults(&self) {
        let mut st = self.lock();
        st.faults.clear();
        st.item_faults.clear();
    }

    /// The next `times` submissions of `shipment_id` answer `WasSuccessful: false` with
    /// `Messages: [message]` (the rest of their batch is processed normally).
    pub fn fail_item(&self, shipment_id: i64, message: &str, times: u32) {
        if times > 0 {
            self.lock().item_faults.insert(shipment_id, (message.to_owned(), times));
        }
    }

    /// Every item accepted so far, oldest first.
    pub fn submitted(&self) -> Vec<SubmittedItem> {
        self.lock().submitted.clone()
    }

    pub fn stats(&self) -> EcomdashStats {
        let st = self.lock();
        let mut stats = st.stats.clone();
        stats.in_flight = st.in_flight.values().sum();
        stats
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.iter().cloned().collect()
    }

    /// Forgets submissions, faults, the request log and counters (calls in flight finish).
    pub fn reset(&self) {
        let mut st = self.lock();
        let in_flight = std::mem::take(&mut st.in_flight);
        *st = state::State { in_flight, ..state::State::default() };
        drop(st);
        self.set_latency(Duration::ZERO);
    }

    /// The accepted items, for `shipgate sandbox` restarts: `{"version": 1, "submitted": [...]}`.
    pub fn export_state(&self) -> Value {
        json!({"version": 1, "submitted": self.lock().submitted})
    }

    pub fn import_state(&self, value: Value) -> Result<(), String> {
        if value.get("version").and_then(Value::as_u64) != Some(1) {
            return Err("state.version must be 1".into());
        }
        let items = value.get("submitted").cloned().ok_or("state.submitted is required")?;
        let items: Vec<SubmittedItem> = serde_json::from_value(items).map_err(|e| format!("state.submitted: {e}"))?;
        self.lock().submitted = items;
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
        if cap == 0 {
            return;
        }
        while st.requests.len() >= cap {
            st.requests.pop_front();
        }
        st.requests.push_back(req);
    }
}

/// A default-config simulator's router, mounted by the standalone binary at `/ecomdash`.
pub fn standalone_router() -> Router {
    EcomdashSim::default().router()
}
