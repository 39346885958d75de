//! eCMR.services adapter (seed `000_e40b7ecac6f8ee32.txt`, docs/carriers/ecmr.md "ecmr"; field by
//! field in `docs/carriers/ecmr.md`).
//!
//! The seed describes the flow but publishes no path list, so the paths are *ours* and
//! overridable per connection (`paths` setting). The organisation id and its API token are
//! exchanged for a bearer access token (`POST {paths.token}`), cached through
//! [`TokenCell`] until shortly before its stated expiry; a 401 on any other call triggers
//! one fresh exchange (shared by every concurrent caller) and one retry. Booking is
//! "store shipment" keyed by a stable `reference`, which makes a repeated store an update
//! (ours) and therefore safe to repeat after an ambiguous timeout.

mod descriptor;
pub mod mapping;
pub mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::exchange::{Answer, Wire};
use super::limits::Limits;
use super::token::Token;
use super::{
    Booked, CallCx, CarrierClient, CarrierError, ConnectionConfig, FieldSpec, ListPage, OrderRequest, Shared,
    TokenCell, TrackRequest, TrackingSnapshot,
};
use crate::domain::FieldError;
pub use descriptor::DESCRIPTOR;
use mapping::{Op, Outcome, Paths};

const CARRIER: &str = "ecmr";
/// JSON keys whose values are secrets in requests or answers (the API token travels as
/// `code`, the bearer comes back as `access_token`).
const SECRET_KEYS: &[&str] = &["code", "access_token", "api_token", "client_secret"];
const PATH_KEYS: [&str; 3] = ["token", "shipments", "shipment"];

pub const SETTINGS: [FieldSpec; 1] = [FieldSpec {
    name: "paths",
    required: false,
    description: "path overrides: {\"token\": \"/api/token\", \"shipments\": \"/api/shipments\", \
                  \"shipment\": \"/api/shipments/{tracking_number}\"}",
}];

pub fn validate_settings(settings: &serde_json::Map<String, Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(paths) = settings.get("paths") else { return errors };
    let Some(paths) = paths.as_object() else {
        errors.push(FieldError::new("settings.paths", "must be an object"));
        return errors;
    };
    for (key, value) in paths {
        let field = format!("settings.paths.{key}");
        if !PATH_KEYS.contains(&key.as_str()) {
            errors.push(FieldError::new(field, "unknown path; expected token, shipments or shipment"));
            continue;
        }
        let Some(path) = value.as_str() else {
            errors.push(FieldError::new(field, "must be a string"));
            continue;
        };
        if !path.starts_with('/') {
            errors.push(FieldError::new(field.clone(), "must start with \"/\" (it is appended to base_url)"));
        }
        if key == "shipment" && !path.contains(mapping::TRACKING_NUMBER_PLACEHOLDER) {
            errors.push(FieldError::new(field, "must contain {tracking_number}"));
        }
    }
    errors
}

pub struct EcmrClient {
    http: reqwest::Client,
    connection_id: String,
    base: String,
    paths: Paths,
    organization_id: SecretString,
    api_token: SecretString,
    tokens: TokenCell,
    limits: Arc<Limits>,
    body_limit: usize,
}

enum Sent {
    Ok(Answer),
    TokenRefused(String),
}

impl EcmrClient {
    pub fn new(cfg: ConnectionConfig, shared: &Shared) -> Result<EcmrClient, CarrierError> {
        let misconfigured = |m: String| CarrierError::Misconfigured { message: m };
        let base =
            cfg.base_url.clone().ok_or_else(|| misconfigured("base_url is required for eCMR.services".into()))?;
        let errors = validate_settings(&cfg.settings);
        if !errors.is_empty() {
            let text: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            return Err(misconfigured(text.join("; ")));
        }
        let cred = |name: &str| {
            cfg.credentials
                .get(name)
                .cloned()
                .ok_or_else(|| misconfigured(format!("credentials.{name} is required for eCMR.services")))
        };
        Ok(EcmrClient {
            http: shared.http.clone(),
            organization_id: cred("organization_id")?,
            api_token: cred("api_token")?,
            connection_id: cfg.connection_id,
            base: base.trim_end_matches('/').to_owned(),
            paths: Paths::from_setting(cfg.settings.get("paths")),
            tokens: TokenCell::new(cfg.token_store),
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

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Exchange the organisation id and API token for an access token (seed step 3).
    async fn exchange(&self, cx: &CallCx) -> Result<Token, CarrierError> {
        let body = serde_json::to_value(wire::TokenRequest {
            client_id: self.organization_id.expose_secret(),
            code: self.api_token.expose_secret(),
        })
        .map_err(|e| CarrierError::Protocol { message: e.to_string() })?;
        let url = self.url(&self.paths.token);
        let answer = self.wire().send(cx, "token", Method::POST, &url, &[], Some(&body)).await?;
        if let Outcome::Failed(e) = mapping::classify_token(answer.status, &answer.body, answer.retry_after) {
            return Err(e);
        }
        let parsed: wire::TokenAnswer = serde_json::from_slice(&answer.body)
            .map_err(|e| CarrierError::Protocol { message: format!("token answer: {e}") })?;
        if let Some(t) = parsed.token_type.as_deref()
            && !t.eq_ignore_ascii_case("bearer")
        {
            return Err(CarrierError::Protocol { message: format!("token answer: token_type {t:?} is not Bearer") });
        }
        let value = parsed
            .access_token
            .filter(|t| !t.is_empty())
            .map(SecretString::from)
            .ok_or_else(|| CarrierError::Protocol { message: "token answer has no access_token".into() })?;
        // Without a stated lifetime the token is used until it is refused (then renewed once).
        Ok(match parsed.expires_in {
            Some(secs) => Token::expiring_in(value, secs),
            None => Token::lasting(value),
        })
    }

    async fn send(
        &self,
        cx: &CallCx,
        op: Op,
        method: Method,
        path: &str,
        token: &SecretString,
        body: Option<&Value>,
    ) -> Result<Sent, CarrierError> {
        let auth = format!("Bearer {}", token.expose_secret());
        let headers = [("Authorization", auth.as_str()), ("Accept", "application/json")];
        let answer = self.wire().send(cx, op.name(), method, &self.url(path), &headers, body).await?;
        match mapping::classify(answer.status, &answer.body, answer.retry_after, op) {
            Outcome::Ok => Ok(Sent::Ok(answer)),
            Outcome::TokenRefused(m) => Ok(Sent::TokenRefused(m)),
            Outcome::Failed(e) => Err(e),
        }
    }

    /// An authenticated call: on 401 one fresh exchange (shared by concurrent callers
    /// through [`TokenCell::replace`]) and one retry; a second 401 means the connection
    /// is wrong, not the token.
    async fn call(
        &self,
        cx: &CallCx,
        op: Op,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, CarrierError> {
        let token = self.tokens.get(|| self.exchange(cx)).await?.value;
        match self.send(cx, op, method.clone(), path, &token, body).await? {
            Sent::Ok(a) => Ok(a),
            Sent::TokenRefused(_) => {
                let fresh = self.tokens.replace(&token, || self.exchange(cx)).await?.value;
                match self.send(cx, op, method, path, &fresh, body).await? {
                    Sent::Ok(a) => Ok(a),
                    Sent::TokenRefused(m) => Err(CarrierError::Misconfigured {
                        message: format!("eCMR.services refused a freshly issued access token: {m}"),
                    }),
                }
            }
        }
    }

    /// One page of the shipment overview (reconciliation; `verify` uses page 1 of 1).
    pub async fn overview(&self, cx: &CallCx, page: u32, per_page: u32) -> Result<wire::Overview, CarrierError> {
        let path = format!("{}?page={page}&per_page={per_page}", self.paths.shipments);
        let answer = self.call(cx, Op::Overview, Method::GET, &path, None).await?;
        serde_json::from_slice(&answer.body)
            .map_err(|e| CarrierError::Protocol { message: format!("shipment overview answer: {e}") })
    }
}

#[async_trait]
impl CarrierClient for EcmrClient {
    /// A fresh exchange proves the organisation id and API token; the overview proves the
    /// token opens the API at the configured paths.
    async fn verify(&self, cx: &CallCx) -> Result<(), CarrierError> {
        let t = self.exchange(cx).await?;
        self.tokens.put(t).await;
        self.overview(cx, 1, 1).await.map(|_| ())
    }

    async fn book(&self, cx: &CallCx, req: &OrderRequest<'_>) -> Result<Booked, CarrierError> {
        if let Some(message) = mapping::missing_for_store(req.plan) {
            return Err(CarrierError::Rejected { message });
        }
        let shipment = mapping::shipment_from_plan(req.plan, req.order_number);
        let body = serde_json::to_value(wire::StoreRequest { shipment })
            .map_err(|e| CarrierError::Protocol { message: e.to_string() })?;
        let shipments = self.paths.shipments.clone();
        let answer = self.call(cx, Op::Store, Method::POST, &shipments, Some(&body)).await?;
        let parsed: wire::StoreAnswer = serde_json::from_slice(&answer.body)
            .map_err(|e| CarrierError::Protocol { message: format!("store shipment answer: {e}") })?;
        let tracking_number = parsed
            .tracking_number
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CarrierError::Protocol { message: "store shipment answer has no tracking_number".into() })?;
        Ok(Booked {
            carrier_reference: tracking_number.clone(),
            tracking_number: Some(tracking_number),
            snapshot: None,
        })
    }

    async fn track(&self, cx: &CallCx, req: &TrackRequest<'_>) -> Result<TrackingSnapshot, CarrierError> {
        let number = req
            .tracking_number
            .or(req.carrier_reference)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| CarrierError::NotFound { message: "the shipment has no eCMR tracking number".into() })?;
        let path = self.paths.shipment_of(number);
        let answer = self.call(cx, Op::Details, Method::GET, &path, None).await?;
        let details: wire::Details = serde_json::from_slice(&answer.body)
            .map_err(|e| CarrierError::Protocol { message: format!("shipment details answer: {e}") })?;
        Ok(mapping::snapshot_from(&details))
    }

    /// The shipment overview, page by page (docs/carriers/ecmr.md "Reconciliation":
    /// `?page=N&per_page=M`, answer `{shipments, page, per_page, total}`); the cursor is
    /// the page number.
    async fn list_page(&self, cx: &CallCx, cursor: Option<&str>) -> Result<ListPage, CarrierError> {
        let page = match cursor {
            None => 1,
            Some(c) => c
                .parse::<u32>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| CarrierError::Protocol { message: format!("not an overview page: {c:?}") })?,
        };
        let answer = self.overview(cx, page, OVERVIEW_PAGE_SIZE).await?;
        Ok(mapping::list_page(&answer, page, OVERVIEW_PAGE_SIZE))
    }
}

/// Shipments per overview page: the most the contract allows (ours; the simulator's
/// bound, docs/carriers/ecmr-simulator.md), so 10,000 shipments are 100 calls.
const OVERVIEW_PAGE_SIZE: u32 = 100;

#[cfg(test)]
mod tests;
