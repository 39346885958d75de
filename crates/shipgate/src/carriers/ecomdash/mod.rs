//! ecomdash channel sink (seed `004_ad6b9d4634b2b6ed.txt`, docs/carriers/ecomdash.md "ecomdash").
//!
//! One call: `POST {base}/api/Shipments/submitTrackingInfo` with a JSON array of up
//! to 50 tracking items, the developer key in `Ocp-Apim-Subscription-Key` and the
//! merchant's integration key in `ecd-subscription-key`. Every item of a 200 answer
//! is checked; a failed item is retried by the caller only when its message says the
//! condition is temporary ([`mapping::TRANSIENT_MARKERS`]). Batches of one
//! `submit_tracking` run concurrently; the connection's [`Limits`] keep at most
//! `max_concurrency` (default 3) calls in flight.

mod channel;
mod descriptor;
pub mod mapping;
pub mod schema;
pub mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::exchange::Wire;
use super::limits::Limits;
use super::{CallCx, CarrierClient, CarrierError, ConnectionConfig, FieldSpec, Shared, SinkItem, SinkResult};
use crate::domain::FieldError;
pub use channel::{ECOMDASH_ID_MAX, EcomdashChannel, EcomdashId};
pub use descriptor::DESCRIPTOR;

const CARRIER: &str = "ecomdash";
pub const DEFAULT_BASE_URL: &str = "https://ecomdash.azure-api.net";
const PATH: &str = "/api/Shipments/submitTrackingInfo";
const SUBSCRIPTION_HEADER: &str = "Ocp-Apim-Subscription-Key";
const INTEGRATION_HEADER: &str = "ecd-subscription-key";
/// Names whose values are secrets wherever they appear in a recorded body. The keys
/// travel only in headers, which exchanges never record; this is the second fence.
const SECRET_KEYS: &[&str] = &[SUBSCRIPTION_HEADER, INTEGRATION_HEADER, "subscription_key", "integration_key"];
/// Upper bound for the `max_concurrency` setting (ours: above ecomdash's documented 3,
/// for merchants whose plan allows more, but bounded).
const MAX_CONCURRENCY: u64 = 10;

pub const SETTINGS: [FieldSpec; 1] = [FieldSpec {
    name: "max_concurrency",
    required: false,
    description: "calls in flight for this connection, 1-10 (default 3)",
}];

pub fn validate_settings(settings: &serde_json::Map<String, Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(v) = settings.get("max_concurrency")
        && !v.as_u64().is_some_and(|n| (1..=MAX_CONCURRENCY).contains(&n))
    {
        errors.push(FieldError::new(
            "settings.max_concurrency",
            format!("must be a positive integer no greater than {MAX_CONCURRENCY}"),
        ));
    }
    errors
}

pub struct EcomdashClient {
    http: reqwest::Client,
    connection_id: String,
    url: String,
    subscription_key: SecretString,
    integration_key: SecretString,
    limits: Arc<Limits>,
    body_limit: usize,
}

impl EcomdashClient {
    pub fn new(cfg: ConnectionConfig, shared: &Shared) -> Result<EcomdashClient, CarrierError> {
        let misconfigured = |m: &str| CarrierError::Misconfigured { message: m.to_owned() };
        let key = |name: &str| {
            cfg.credentials
                .get(name)
                .filter(|k| !k.expose_secret().is_empty())
                .cloned()
                .ok_or_else(|| misconfigured(&format!("credentials.{name} is required for ecomdash")))
        };
        let subscription_key = key("subscription_key")?;
        let integration_key = key("integration_key")?;
        let base = cfg.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL).trim_end_matches('/');
        Ok(EcomdashClient {
            http: shared.http.clone(),
            url: format!("{base}{PATH}"),
            connection_id: cfg.connection_id,
            subscription_key,
            integration_key,
            limits: cfg.limits,
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

    /// One submitTrackingInfo call; the 200 body, or the answer classified.
    async fn post(&self, cx: &CallCx, operation: &'static str, body: &Value) -> Result<bytes::Bytes, CarrierError> {
        let answer = self.send(cx, operation, body).await?;
        self.classify(answer)
    }

    /// One submitTrackingInfo call, its answer not yet judged.
    async fn send(
        &self,
        cx: &CallCx,
        operation: &'static str,
        body: &Value,
    ) -> Result<super::exchange::Answer, CarrierError> {
        let headers = [
            (SUBSCRIPTION_HEADER, self.subscription_key.expose_secret()),
            (INTEGRATION_HEADER, self.integration_key.expose_secret()),
        ];
        self.wire().send(cx, operation, Method::POST, &self.url, &headers, Some(body)).await
    }

    /// The 200 body, or the answer classified.
    fn classify(&self, answer: super::exchange::Answer) -> Result<bytes::Bytes, CarrierError> {
        if answer.status == 200 {
            return Ok(answer.body);
        }
        let error = mapping::classify_failure(answer.status, &answer.body, answer.retry_after);
        // The 429 text may ask for longer than Retry-After (or come without it): hold
        // the whole connection for what the message says.
        if answer.status == 429
            && let CarrierError::Transient { retry_after: Some(d), .. } = &error
        {
            self.limits.throttled(*d);
        }
        Err(error)
    }

    /// One call for `batch`, whose items all passed [`mapping::tracking_info`].
    async fn submit_batch(
        &self,
        cx: &CallCx,
        batch: &[SinkItem],
        infos: &[wire::TrackingInfo],
    ) -> Result<Vec<SinkResult>, CarrierError> {
        let body = serde_json::to_value(infos).map_err(|e| CarrierError::Protocol { message: e.to_string() })?;
        let answer = self.post(cx, "submitTrackingInfo", &body).await?;
        mapping::results_for(batch, &answer)
    }

    /// The batches of `items` (all sendable), concurrently; see `submit_tracking`.
    async fn submit_sendable(
        &self,
        cx: &CallCx,
        items: &[SinkItem],
        infos: &[wire::TrackingInfo],
    ) -> Result<Vec<SinkResult>, CarrierError> {
        let batches: Vec<&[SinkItem]> = items.chunks(mapping::MAX_BATCH).collect();
        let outcomes = futures::future::join_all(
            batches.iter().zip(infos.chunks(mapping::MAX_BATCH)).map(|(b, i)| self.submit_batch(cx, b, i)),
        )
        .await;
        if let Some(worst) =
            outcomes.iter().filter_map(|o| o.as_ref().err()).filter(|e| !e.is_transient()).max_by_key(|e| severity(e))
        {
            return Err(worst.clone());
        }
        if outcomes.iter().all(Result::is_err) {
            return outcomes.into_iter().find_map(Result::err).map_or_else(|| Ok(Vec::new()), Err);
        }
        let mut results = Vec::with_capacity(items.len());
        for (batch, outcome) in batches.iter().zip(outcomes) {
            match outcome {
                Ok(r) => results.extend(r),
                Err(e) => results.extend(batch.iter().map(|i| SinkResult {
                    key: i.key.clone(),
                    ok: false,
                    transient: true,
                    message: Some(e.message()),
                })),
            }
        }
        Ok(results)
    }
}

/// Which batch error decides the whole call: a broken connection or a protocol bug
/// over a passing condition.
fn severity(e: &CarrierError) -> u8 {
    match e {
        CarrierError::Misconfigured { .. } => 3,
        CarrierError::Protocol { .. } => 2,
        CarrierError::Transient { .. } => 0,
        _ => 1,
    }
}

#[async_trait]
impl CarrierClient for EcomdashClient {
    /// There is no read-only call in the seed, so (ours) we submit an empty array: it
    /// submits nothing, and both keys are judged before the body is (API Management's 401
    /// for `Ocp-Apim-Subscription-Key`, then ecomdash's 403 for `ecd-subscription-key`).
    /// The seed's table reads "Array of Items — Required", so ecomdash may refuse an
    /// empty array (our simulator answers 400 in the answer envelope,
    /// docs/carriers/ecomdash-simulator.md): that refusal proves the keys as well as a 200.
    async fn verify(&self, cx: &CallCx) -> Result<(), CarrierError> {
        let answer = self.send(cx, "verify", &Value::Array(Vec::new())).await?;
        let envelope = |body: &[u8]| serde_json::from_slice::<wire::SubmitAnswer>(body);
        if answer.status == 400
            && envelope(&answer.body)
                .is_ok_and(|a| a.status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("failure")))
        {
            return Ok(());
        }
        let body = self.classify(answer)?;
        envelope(&body)
            .map(|_| ())
            .map_err(|e| CarrierError::Protocol { message: format!("submitTrackingInfo answer: {e}") })
    }

    /// One result per item, in input order. Batches run concurrently (the connection's
    /// limits cap calls in flight). When some batches fail transiently and others
    /// succeed, the failed batches' items come back as transient results; a
    /// non-transient batch failure (keys, protocol) fails the whole call, as does a
    /// transient one when no batch got through.
    async fn submit_tracking(&self, cx: &CallCx, items: &[SinkItem]) -> Result<Vec<SinkResult>, CarrierError> {
        // An item whose ids are not ecomdash integers is never sent (the seed's schema
        // allows numbers only): it fails on its own, permanently.
        let mut refused: Vec<Option<SinkResult>> = Vec::with_capacity(items.len());
        let (mut sendable, mut infos) = (Vec::new(), Vec::new());
        for item in items {
            match mapping::tracking_info(item) {
                Ok(info) => {
                    refused.push(None);
                    sendable.push(item.clone());
                    infos.push(info);
                }
                Err(message) => refused.push(Some(SinkResult {
                    key: item.key.clone(),
                    ok: false,
                    transient: false,
                    message: Some(message),
                })),
            }
        }
        if sendable.is_empty() {
            return Ok(refused.into_iter().flatten().collect());
        }
        let sent = self.submit_sendable(cx, &sendable, &infos).await?;
        let mut sent = sent.into_iter();
        refused
            .into_iter()
            .map(|r| r.or_else(|| sent.next()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| CarrierError::Protocol { message: "submitTrackingInfo: fewer results than items".into() })
    }
}

#[cfg(test)]
mod tests;
