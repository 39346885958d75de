//! AfterShip Tracking API 2024-04 adapter (seed `002_5011739573563659.txt`,
//! docs/carriers/aftership.md "aftership").
//!
//! Header `as-api-key`; base `https://api.aftership.com/tracking/2024-04` unless the
//! connection overrides it. Create is made idempotent by adopting the existing tracking
//! on meta 4003. AfterShip limits each *account* (10 req/s by default, docs/carriers/aftership.md), so
//! the rate is kept by limits shared by every client of the same account (same API
//! base and key; `carriers::limits`: at most N calls arriving in any second, however
//! busy the machine, and after a 429 every call held until `X-RateLimit-Reset`). A 429
//! is retried (it was not processed) at most [`MAX_429_RETRIES`] times when the wait is
//! short, else it fails `Transient` with the carrier's `retry_after`.

mod descriptor;
pub mod inbound;
pub mod mapping;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::exchange::Wire;
use super::limits::Limits;
use super::{
    Booked, CallCx, CarrierClient, CarrierError, CompleteReason, ConnectionConfig, FieldSpec, ListPage, OrderRequest,
    Shared, TrackRequest, TrackingSnapshot,
};
use crate::domain::FieldError;
pub use descriptor::DESCRIPTOR;
pub use mapping::validate_estimate_items;

const CARRIER: &str = "aftership";
pub const DEFAULT_BASE_URL: &str = "https://api.aftership.com/tracking/2024-04";
const API_KEY_HEADER: &str = "as-api-key";
/// JSON keys whose values are secrets in requests or answers.
const SECRET_KEYS: &[&str] = &["as-api-key", "api_key", "webhook_secret"];
/// 429s retried per call (a 429 was not processed, so any call may be repeated).
pub const MAX_429_RETRIES: u32 = 2;
/// Only waits up to this long are retried in place; longer ones fail `Transient`.
const RETRY_WAIT_MAX: Duration = Duration::from_secs(5);
/// Most list pages read when looking a tracking up by number.
const MAX_LIST_PAGES: u32 = 5;

pub const SETTINGS: [FieldSpec; 1] = [FieldSpec {
    name: "rate_limit_per_second",
    required: false,
    description: "requests per second allowed to this account (default 10, AfterShip 2024-04)",
}];

pub fn validate_settings(settings: &serde_json::Map<String, Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(v) = settings.get("rate_limit_per_second")
        && !v.as_u64().is_some_and(|n| (1..=1000).contains(&n))
    {
        errors.push(FieldError::new("settings.rate_limit_per_second", "must be an integer from 1 to 1000"));
    }
    errors
}

pub struct AftershipClient {
    http: reqwest::Client,
    connection_id: String,
    base: String,
    api_key: SecretString,
    limits: Arc<Limits>,
    body_limit: usize,
}

/// An answer that got through the 429 handling: HTTP status and parsed envelope.
struct Reply {
    status: u16,
    env: Option<wire::Envelope>,
    retry_after: Option<Duration>,
}

fn protocol(operation: &str, e: impl std::fmt::Display) -> CarrierError {
    CarrierError::Protocol { message: format!("{operation}: unexpected AfterShip answer: {e}") }
}

fn data_of<T: DeserializeOwned>(operation: &str, reply: Reply) -> Result<T, CarrierError> {
    let data = reply.env.and_then(|e| e.data).ok_or_else(|| protocol(operation, "no data"))?;
    serde_json::from_value(data).map_err(|e| protocol(operation, e))
}

fn segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl AftershipClient {
    pub fn new(cfg: ConnectionConfig, shared: &Shared) -> Result<AftershipClient, CarrierError> {
        let api_key = cfg
            .credentials
            .get("api_key")
            .filter(|k| !k.expose_secret().trim().is_empty())
            .cloned()
            .ok_or_else(|| CarrierError::Misconfigured { message: "credentials.api_key is required".into() })?;
        let base = cfg.base_url.clone().unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let base = base.trim_end_matches('/').to_owned();
        // The account's limits, by a hash of where and as whom we call (never the key).
        let account = Sha256::new().chain_update(&base).chain_update([0]).chain_update(api_key.expose_secret());
        let limits =
            Limits::shared(&format!("aftership:{}", hex::encode(account.finalize())), cfg.limits.config().clone());
        Ok(AftershipClient {
            http: shared.http.clone(),
            connection_id: cfg.connection_id,
            base,
            api_key,
            limits,
            body_limit: shared.exchange_body_limit,
        })
    }

    fn wire(&self) -> Wire<'_> {
        Wire {
            http: &self.http,
            limits: &self.limits,
            carrier: CARRIER,
            connection_id: &self.connection_id,
            body_limit: self.body_limit,
            secret_keys: SECRET_KEYS,
        }
    }

    /// One call, paced, with 429s waited out (or failed `Transient`); the answer is
    /// not yet classified.
    async fn raw(
        &self,
        cx: &CallCx,
        operation: &'static str,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Reply, CarrierError> {
        let url = format!("{}{path_and_query}", self.base);
        let headers = [(API_KEY_HEADER, self.api_key.expose_secret()), ("Accept", "application/json")];
        let mut attempt = 0;
        loop {
            let answer = self.wire().send(cx, operation, method.clone(), &url, &headers, body).await?;
            let env: Option<wire::Envelope> = serde_json::from_slice(&answer.body).ok();
            if answer.status == 429 {
                let wait = answer.retry_after.unwrap_or(Duration::from_secs(1));
                if attempt < MAX_429_RETRIES && wait <= RETRY_WAIT_MAX {
                    attempt += 1;
                    tracing::info!(carrier = CARRIER, operation, wait_ms = wait.as_millis() as u64, "429: waiting");
                    continue;
                }
            }
            return Ok(Reply { status: answer.status, env, retry_after: answer.retry_after });
        }
    }

    /// One call that must succeed.
    async fn call(
        &self,
        cx: &CallCx,
        operation: &'static str,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Reply, CarrierError> {
        let reply = self.raw(cx, operation, method, path_and_query, body).await?;
        mapping::classify(operation, reply.status, reply.env.as_ref(), reply.retry_after)?;
        Ok(reply)
    }

    async fn get_tracking(&self, cx: &CallCx, id: &str) -> Result<wire::Tracking, CarrierError> {
        let reply = self.call(cx, "get_tracking", Method::GET, &format!("/trackings/{}", segment(id)), None).await?;
        data_of::<wire::TrackingData>("get_tracking", reply).map(|d| d.tracking)
    }

    /// `GET /trackings?tracking_numbers=<n>[&slug=<s>]&page=<p>` (2024-04 list filters).
    /// 2024-04 pages by number (`data.page`, `data.limit`, `data.count`); the same
    /// number at several couriers can span pages, so later pages are read while
    /// `count` says there are more, up to [`MAX_LIST_PAGES`].
    async fn find(
        &self,
        cx: &CallCx,
        number: &str,
        slug: Option<&str>,
    ) -> Result<Option<wire::Tracking>, CarrierError> {
        let mut seen = 0u64;
        for page in 1..=MAX_LIST_PAGES {
            let query = {
                let mut q = form_urlencoded::Serializer::new(String::new());
                q.append_pair("tracking_numbers", number);
                if let Some(s) = slug {
                    q.append_pair("slug", s);
                }
                if page > 1 {
                    q.append_pair("page", &page.to_string());
                }
                q.finish()
            };
            let reply = self.call(cx, "list_trackings", Method::GET, &format!("/trackings?{query}"), None).await?;
            let list: wire::TrackingList = data_of("list_trackings", reply)?;
            seen += list.trackings.len() as u64;
            let more = !list.trackings.is_empty() && list.count.is_some_and(|c| c > seen);
            if let Some(t) = list.trackings.into_iter().find(|t| {
                t.tracking_number.as_deref() == Some(number) && slug.is_none_or(|s| t.slug.as_deref() == Some(s))
            }) {
                return Ok(Some(t));
            }
            if !more {
                break;
            }
        }
        Ok(None)
    }

    /// The AfterShip id: the stored one, else looked up by number (and slug).
    async fn resolve(
        &self,
        cx: &CallCx,
        reference: Option<&str>,
        number: Option<&str>,
        slug: Option<&str>,
    ) -> Result<String, CarrierError> {
        if let Some(id) = reference.filter(|r| !r.trim().is_empty()) {
            return Ok(id.to_owned());
        }
        let number = number.ok_or_else(|| CarrierError::NotFound {
            message: "the shipment has neither an AfterShip tracking id nor a tracking number".into(),
        })?;
        self.find(cx, number, slug)
            .await?
            .and_then(|t| t.id)
            .ok_or_else(|| CarrierError::NotFound { message: format!("AfterShip has no tracking for number {number}") })
    }

    fn booked(t: wire::Tracking, number: &str) -> Result<Booked, CarrierError> {
        let snapshot = mapping::snapshot_from(&t, None);
        Ok(Booked {
            carrier_reference: t.id.ok_or_else(|| protocol("create_tracking", "tracking without id"))?,
            tracking_number: Some(t.tracking_number.unwrap_or_else(|| number.to_owned())),
            snapshot: Some(snapshot),
        })
    }

    /// Mark-as-completed answers the full tracking (SDK `api/tracking.py`
    /// `mark_tracking_completed_by_id` → `Tracking`).
    async fn tracking_op(
        &self,
        cx: &CallCx,
        operation: &'static str,
        path: String,
        body: Option<&Value>,
    ) -> Result<TrackingSnapshot, CarrierError> {
        let reply = self.call(cx, operation, Method::POST, &path, body).await?;
        let t = data_of::<wire::TrackingData>(operation, reply)?.tracking;
        Ok(mapping::snapshot_from(&t, None))
    }
}

fn to_value(v: impl serde::Serialize) -> Result<Value, CarrierError> {
    serde_json::to_value(v).map_err(|e| CarrierError::Protocol { message: e.to_string() })
}

/// Trackings per list page in reconciliation: 2024-04's largest `limit` (200).
const LIST_PAGE_SIZE: u64 = 200;

#[async_trait]
impl CarrierClient for AftershipClient {
    /// The cheapest authenticated call: one tracking of the list.
    async fn verify(&self, cx: &CallCx) -> Result<(), CarrierError> {
        self.call(cx, "verify", Method::GET, "/trackings?limit=1", None).await.map(|_| ())
    }

    /// The account's tracking list, page by page (`GET /trackings?page=N&limit=200`,
    /// 2024-04 paging `data.page/limit/count`; docs/carriers/aftership.md
    /// "Reconciliation"); the cursor is the page number.
    async fn list_page(&self, cx: &CallCx, cursor: Option<&str>) -> Result<ListPage, CarrierError> {
        let page = match cursor {
            None => 1,
            Some(c) => c
                .parse::<u64>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| protocol("list_trackings", format!("not a page number: {c:?}")))?,
        };
        let path = format!("/trackings?page={page}&limit={LIST_PAGE_SIZE}");
        let reply = self.call(cx, "list_trackings", Method::GET, &path, None).await?;
        let list: wire::TrackingList = data_of("list_trackings", reply)?;
        Ok(mapping::list_page(&list, page, LIST_PAGE_SIZE))
    }

    async fn register(&self, cx: &CallCx, req: &OrderRequest<'_>) -> Result<Booked, CarrierError> {
        let create = mapping::create_body(req)?;
        let number = create.tracking_number.clone();
        let slug = create.slug.clone();
        let body = to_value(wire::TrackingEnvelope { tracking: create })?;
        let reply = self.raw(cx, "create_tracking", Method::POST, "/trackings", Some(&body)).await?;
        let exists = reply.env.as_ref().and_then(|e| e.meta.code) == Some(mapping::meta::ALREADY_EXISTS);
        if !exists {
            mapping::classify("create_tracking", reply.status, reply.env.as_ref(), reply.retry_after)?;
            let t = data_of::<wire::TrackingData>("create_tracking", reply)?.tracking;
            return Self::booked(t, &number);
        }
        // 4003: the number is already tracked (an earlier attempt, or another system):
        // adopt it. Prefer the list lookup; AfterShip's 4003 answer names it as well.
        let named = reply
            .env
            .and_then(|e| e.data)
            .and_then(|d| serde_json::from_value::<wire::TrackingData>(d).ok())
            .map(|d| d.tracking)
            .filter(|t| t.id.is_some());
        let found = match self.find(cx, &number, slug.as_deref()).await? {
            Some(t) => Some(t),
            None => match named.as_ref().and_then(|t| t.id.clone()) {
                Some(id) => Some(self.get_tracking(cx, &id).await?),
                None => None,
            },
        };
        match found {
            Some(t) => Self::booked(t, &number),
            None => Err(CarrierError::Protocol {
                message: format!("AfterShip says {number} is already tracked (4003) but lists no such tracking"),
            }),
        }
    }

    async fn update(&self, cx: &CallCx, req: &OrderRequest<'_>) -> Result<(), CarrierError> {
        let body = to_value(wire::TrackingEnvelope { tracking: mapping::update_body(req)? })?;
        let id = self.resolve(cx, req.carrier_reference, req.tracking_number, req.plan.service.as_deref()).await?;
        self.call(cx, "update_tracking", Method::PUT, &format!("/trackings/{}", segment(&id)), Some(&body))
            .await
            .map(|_| ())
    }

    /// Delete answers a partial tracking (SDK `PartialDeleteTracking`); only its
    /// success matters.
    async fn cancel(&self, cx: &CallCx, req: &OrderRequest<'_>) -> Result<(), CarrierError> {
        let id = self.resolve(cx, req.carrier_reference, req.tracking_number, req.plan.service.as_deref()).await?;
        self.call(cx, "delete_tracking", Method::DELETE, &format!("/trackings/{}", segment(&id)), None)
            .await
            .map(|_| ())
    }

    async fn track(&self, cx: &CallCx, req: &TrackRequest<'_>) -> Result<TrackingSnapshot, CarrierError> {
        let id = self.resolve(cx, req.carrier_reference, req.tracking_number, req.slug).await?;
        let tracking = self.get_tracking(cx, &id).await?;
        let reply =
            self.call(cx, "last_checkpoint", Method::GET, &format!("/last_checkpoint/{}", segment(&id)), None).await?;
        let last: wire::LastCheckpoint = data_of("last_checkpoint", reply)?;
        Ok(mapping::snapshot_from(&tracking, Some(&last)))
    }

    /// Retrack answers a *partial* tracking in 2024-04 (SDK `retrack_tracking_by_id` →
    /// `PartialUpdateTracking`: ids, number, slug, `active`; no tag, no checkpoints), so
    /// the snapshot comes from the full tracking read right after it.
    async fn retrack(&self, cx: &CallCx, req: &TrackRequest<'_>) -> Result<TrackingSnapshot, CarrierError> {
        let id = self.resolve(cx, req.carrier_reference, req.tracking_number, req.slug).await?;
        let reply =
            self.call(cx, "retrack", Method::POST, &format!("/trackings/{}/retrack", segment(&id)), None).await?;
        let partial = data_of::<wire::PartialTrackingData>("retrack", reply)?.tracking;
        let id = partial.id.filter(|p| !p.trim().is_empty()).unwrap_or(id);
        let tracking = self.get_tracking(cx, &id).await?;
        Ok(mapping::snapshot_from(&tracking, None))
    }

    async fn complete(
        &self,
        cx: &CallCx,
        req: &TrackRequest<'_>,
        reason: CompleteReason,
    ) -> Result<TrackingSnapshot, CarrierError> {
        let id = self.resolve(cx, req.carrier_reference, req.tracking_number, req.slug).await?;
        let body = to_value(wire::MarkCompleted { reason: mapping::complete_reason(reason) })?;
        let mut snap = self
            .tracking_op(cx, "mark_completed", format!("/trackings/{}/mark-as-completed", segment(&id)), Some(&body))
            .await?;
        // The seed fixes the outcome; an answer that omits the tag still yields it.
        if snap.status.is_none() {
            let (tag, subtag) = mapping::completed_tag(reason);
            snap.status = mapping::tag_status(tag).map(|s| (s, Some(subtag.to_owned())));
            snap.carrier_status = Some(tag.to_owned());
        }
        Ok(snap)
    }

    async fn estimate_delivery(&self, cx: &CallCx, items: &[Value]) -> Result<Vec<Value>, CarrierError> {
        let errors = validate_estimate_items(items);
        if !errors.is_empty() {
            let list: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            return Err(CarrierError::Rejected { message: list.join("; ") });
        }
        let body = to_value(wire::PredictBatch { estimated_delivery_dates: items })?;
        let reply =
            self.call(cx, "predict_batch", Method::POST, "/estimated-delivery-date/predict-batch", Some(&body)).await?;
        data_of::<wire::PredictAnswer>("predict_batch", reply).map(|a| a.estimated_delivery_dates)
    }
}

#[cfg(test)]
mod tests;
