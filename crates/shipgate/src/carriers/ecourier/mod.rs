//! e-Courier adapter (the e-Courier API reference, seed `001_ace717137be8dd3c.txt`;
//! docs/carriers/ecourier.md "ecourier"). Every request and answer field, where it comes from and
//! which test covers it: `docs/carriers/ecourier.md`.
//!
//! Every call is `POST {base}/software/xml/ecJsonPost.asmx/{Method}` with a JSON body
//! and the token in a `UserGUID` header. We set `OrderNumber` ourselves (stable per
//! shipment), which makes SaveOrder create-or-update and therefore safe to repeat
//! after an ambiguous timeout, and lets GetJsonOrder always find the order. SaveOrder
//! is create-or-update of the *whole* order, so update and cancel send it complete.
//! A refused token (-5) triggers one fresh Login and one retry; concurrent callers
//! share that Login through [`TokenCell`].

#[cfg(test)]
mod contract_tests;
mod descriptor;
pub mod mapping;
pub mod pod;
pub mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::FixedOffset;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::exchange::{Answer, Wire};
use super::limits::Limits;
use super::token::Token;
use super::{
    Booked, CallCx, CarrierClient, CarrierError, ConnectionConfig, FieldSpec, OrderRequest, Quote, Shared, TokenCell,
    TrackRequest, TrackingSnapshot,
};
use crate::domain::{FieldError, ShipmentPlan};
pub use descriptor::DESCRIPTOR;
use mapping::{Outcome, Settings};

const CARRIER: &str = "ecourier";
/// JSON keys whose values are secrets in requests or answers.
/// `PodSign` is not a secret but a person's signature (personal data, and large): the
/// exchange log keeps that there was one, never the image.
const SECRET_KEYS: &[&str] = &["password", "UserGUID", "user_guid", "PodSign"];

pub const SETTINGS: [FieldSpec; 9] = [
    FieldSpec {
        name: "customer_code",
        required: true,
        description: "CustomerCode of the account at the e-Courier site",
    },
    FieldSpec {
        name: "utc_offset",
        required: false,
        description: "offset of the site's local time, e.g. \"-05:00\" (default \"+00:00\")",
    },
    FieldSpec {
        name: "weight_unit",
        required: false,
        description: "\"lb\" (default) or \"kg\": unit of piece weights",
    },
    FieldSpec { name: "default_service", required: false, description: "Service used when a shipment names none" },
    FieldSpec {
        name: "auth",
        required: false,
        description: "Auth code sent on every order, when the site requires one",
    },
    FieldSpec {
        name: "country_format",
        required: false,
        description: "\"alpha3\" (default, \"USA\" as in e-Courier's examples) or \"alpha2\" (\"US\")",
    },
    FieldSpec {
        name: "completed_statuses",
        required: false,
        description: "JobStopStatus / PieceActionStatus values that mean done at this site, \
                      besides complete, completed, done, finished, clear, cleared, picked up, delivered, departed",
    },
    FieldSpec {
        name: "rate_limit_per_second",
        required: false,
        description: "most calls per second this connection makes (default: unlimited)",
    },
    FieldSpec { name: "max_concurrency", required: false, description: "most calls in flight (default: unlimited)" },
];

fn parse_offset(s: &str) -> Option<FixedOffset> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = s[1..].split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

pub fn validate_settings(settings: &serde_json::Map<String, Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match settings.get("customer_code") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(_) => errors.push(FieldError::new("settings.customer_code", "must be a non-empty string")),
        None => {}
    }
    if let Some(v) = settings.get("utc_offset")
        && v.as_str().and_then(parse_offset).is_none()
    {
        errors.push(FieldError::new("settings.utc_offset", "must look like \"+05:30\" or \"-05:00\""));
    }
    if let Some(v) = settings.get("weight_unit")
        && !matches!(v.as_str(), Some("lb" | "kg"))
    {
        errors.push(FieldError::new("settings.weight_unit", "must be \"lb\" or \"kg\""));
    }
    for name in ["rate_limit_per_second", "max_concurrency"] {
        if let Some(v) = settings.get(name)
            && !v.as_u64().is_some_and(|n| (1..=10_000).contains(&n))
        {
            errors.push(FieldError::new(format!("settings.{name}"), "must be an integer from 1 to 10000"));
        }
    }
    for name in ["default_service", "auth"] {
        if let Some(v) = settings.get(name)
            && v.as_str().is_none_or(|s| s.trim().is_empty())
        {
            errors.push(FieldError::new(format!("settings.{name}"), "must be a non-empty string"));
        }
    }
    if let Some(v) = settings.get("country_format")
        && !matches!(v.as_str(), Some("alpha2" | "alpha3"))
    {
        errors.push(FieldError::new("settings.country_format", "must be \"alpha2\" or \"alpha3\""));
    }
    if let Some(v) = settings.get("completed_statuses") {
        let ok = v.as_array().is_some_and(|a| {
            a.len() <= 50 && a.iter().all(|x| x.as_str().is_some_and(|s| !s.trim().is_empty() && s.len() <= 64))
        });
        if !ok {
            errors.push(FieldError::new(
                "settings.completed_statuses",
                "must be an array of at most 50 non-empty strings (64 characters at most)",
            ));
        }
    }
    errors
}

enum Login {
    Password { website: SecretString, username: SecretString, password: SecretString },
    DirectGuid(SecretString),
}

pub struct EcourierClient {
    http: reqwest::Client,
    connection_id: String,
    base: String,
    login: Login,
    settings: Settings,
    tokens: TokenCell,
    limits: Arc<Limits>,
    body_limit: usize,
    /// Each method's URL as text and parsed, made on its first call ([`Wire::send_to`]).
    urls: std::sync::Mutex<Vec<(&'static str, String, reqwest::Url)>>,
}

enum Sent {
    Ok(Answer),
    TokenRefused(String),
}

impl EcourierClient {
    pub fn new(cfg: ConnectionConfig, shared: &Shared) -> Result<EcourierClient, CarrierError> {
        let misconfigured = |m: &str| CarrierError::Misconfigured { message: m.to_owned() };
        let base = cfg.base_url.clone().ok_or_else(|| misconfigured("base_url is required for e-Courier"))?;
        let creds = &cfg.credentials;
        let login = match (creds.get("website"), creds.get("username"), creds.get("password"), creds.get("user_guid")) {
            (Some(w), Some(u), Some(p), None) => {
                Login::Password { website: w.clone(), username: u.clone(), password: p.clone() }
            }
            (None, None, None, Some(g)) => Login::DirectGuid(g.clone()),
            _ => return Err(misconfigured("credentials must be website/username/password or user_guid")),
        };
        let s = &cfg.settings;
        let settings = Settings {
            customer_code: s
                .get("customer_code")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| misconfigured("settings.customer_code is required"))?,
            utc_offset: s
                .get("utc_offset")
                .and_then(Value::as_str)
                .and_then(parse_offset)
                .unwrap_or(FixedOffset::east_opt(0).ok_or_else(|| misconfigured("offset"))?),
            weight_in_kg: s.get("weight_unit").and_then(Value::as_str) == Some("kg"),
            default_service: s.get("default_service").and_then(Value::as_str).map(str::to_owned),
            auth: s.get("auth").and_then(Value::as_str).map(str::to_owned),
            country_alpha3: s.get("country_format").and_then(Value::as_str) != Some("alpha2"),
            completed_statuses: s
                .get("completed_statuses")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(mapping::norm).collect())
                .unwrap_or_default(),
        };
        Ok(EcourierClient {
            http: shared.http.clone(),
            connection_id: cfg.connection_id,
            base: base.trim_end_matches('/').to_owned(),
            login,
            settings,
            tokens: TokenCell::new(cfg.token_store),
            limits: cfg.limits,
            body_limit: shared.exchange_body_limit,
            urls: Default::default(),
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

    fn url(&self, method: &str) -> String {
        format!("{}/software/xml/ecJsonPost.asmx/{method}", self.base)
    }

    /// `method`'s URL as text and, when it parses, parsed (kept for the next call).
    fn parsed_url(&self, method: &'static str) -> (String, Option<reqwest::Url>) {
        if let Ok(urls) = self.urls.lock()
            && let Some((_, text, url)) = urls.iter().find(|(m, _, _)| *m == method)
        {
            return (text.clone(), Some(url.clone()));
        }
        let text = self.url(method);
        let url = reqwest::Url::parse(&text).ok();
        if let (Some(url), Ok(mut urls)) = (&url, self.urls.lock()) {
            urls.push((method, text.clone(), url.clone()));
        }
        (text, url)
    }

    /// One request; classifies the answer. `not_found_means_absent`: a -4 "Not Found"
    /// is the order's absence (lookups), not a refusal.
    async fn send(
        &self,
        cx: &CallCx,
        method: &'static str,
        token: Option<&SecretString>,
        body: &[u8],
        nf: bool,
    ) -> Result<Sent, CarrierError> {
        let headers: Vec<(&str, &str)> = token.map(|t| vec![("UserGUID", t.expose_secret())]).unwrap_or_default();
        let (url, parsed) = self.parsed_url(method);
        let answer = self.wire().send_to(cx, method, Method::POST, &url, parsed, &headers, Some(body.to_vec())).await?;
        let parsed: Option<Value> = serde_json::from_slice(&answer.body).ok();
        let status_answer = parsed
            .as_ref()
            .filter(|v| v.get("status").is_some() || answer.status != 200)
            .and_then(|v| serde_json::from_value::<wire::StatusAnswer>(v.clone()).ok());
        if answer.status == 200 && status_answer.is_none() {
            // GetJsonOrder/QuoteOrder answer the order itself, with no status field.
            return match parsed {
                Some(Value::Object(_)) => Ok(Sent::Ok(answer)),
                _ => Err(CarrierError::Protocol { message: format!("{method}: answer is not a JSON object") }),
            };
        }
        match mapping::classify(answer.status, status_answer.as_ref(), nf) {
            Outcome::Ok => Ok(Sent::Ok(answer)),
            Outcome::TokenRefused(m) => Ok(Sent::TokenRefused(m)),
            Outcome::Failed(e) => Err(e),
        }
    }

    /// Obtain a token: Login with the password, or the directly issued GUID.
    async fn obtain(&self, cx: &CallCx, after_refusal: bool) -> Result<Token, CarrierError> {
        match &self.login {
            Login::DirectGuid(_) if after_refusal => Err(CarrierError::Misconfigured {
                message: "e-Courier refused the directly issued UserGUID; ask the courier for a new one".into(),
            }),
            Login::DirectGuid(g) => Ok(Token::lasting(g.clone())),
            Login::Password { website, username, password } => {
                let body = serde_json::to_vec(&wire::LoginRequest {
                    website: website.expose_secret(),
                    username: username.expose_secret(),
                    password: password.expose_secret(),
                })
                .map_err(|e| CarrierError::Protocol { message: e.to_string() })?;
                let answer = match self.send(cx, "Login", None, &body, false).await {
                    Ok(Sent::Ok(a)) => a,
                    Ok(Sent::TokenRefused(m)) => {
                        return Err(CarrierError::Misconfigured { message: format!("Login refused: {m}") });
                    }
                    Err(CarrierError::Rejected { message }) => {
                        return Err(CarrierError::Misconfigured { message: format!("Login refused: {message}") });
                    }
                    Err(e) => return Err(e),
                };
                let parsed: wire::StatusAnswer = serde_json::from_slice(&answer.body)
                    .map_err(|_| CarrierError::Protocol { message: "Login answer is not JSON".into() })?;
                // A UserGUID has no stated expiry: it lives while it is used (seed).
                parsed
                    .user_guid
                    .map(|g| Token::lasting(SecretString::from(g)))
                    .ok_or_else(|| CarrierError::Protocol { message: "Login answer has no UserGUID".into() })
            }
        }
    }

    /// An authenticated call: one fresh token and one retry when the token is refused.
    async fn call(&self, cx: &CallCx, method: &'static str, body: &[u8], nf: bool) -> Result<Answer, CarrierError> {
        let token = self.tokens.get(|| self.obtain(cx, false)).await?.value;
        match self.send(cx, method, Some(&token), body, nf).await? {
            Sent::Ok(a) => Ok(a),
            Sent::TokenRefused(_) => {
                let fresh = self.tokens.replace(&token, || self.obtain(cx, true)).await?.value;
                match self.send(cx, method, Some(&fresh), body, nf).await? {
                    Sent::Ok(a) => Ok(a),
                    Sent::TokenRefused(m) => Err(CarrierError::Misconfigured {
                        message: format!("e-Courier refused a freshly issued UserGUID: {m}"),
                    }),
                }
            }
        }
    }

    /// `{"Order": ...}` as JSON text, written straight from the wire types, in their
    /// order: no `Value` tree to build, write and drop ([`Wire::send_to`]).
    fn order_body(&self, plan: &ShipmentPlan, order_number: Option<&str>) -> Result<Vec<u8>, CarrierError> {
        serde_json::to_vec(&wire::OrderEnvelope { order: mapping::order_from_plan(plan, order_number, &self.settings) })
            .map_err(|e| CarrierError::Protocol { message: e.to_string() })
    }

    /// Keep a directly issued GUID alive (reference: RefreshGUID; expiry after 20 idle
    /// days). The token travels in the header; the body repeats it as the reference's
    /// example does (without braces), though the carrier ignores it.
    pub async fn refresh_guid(&self, cx: &CallCx) -> Result<(), CarrierError> {
        let token = self.tokens.get(|| self.obtain(cx, false)).await?.value;
        let bare = token.expose_secret().trim_matches(|c| c == '{' || c == '}').to_owned();
        let body = serde_json::to_vec(&wire::RefreshGuidRequest { user_guid: &bare })
            .map_err(|e| CarrierError::Protocol { message: e.to_string() })?;
        let answer = self.call(cx, "RefreshGUID", &body, false).await?;
        if let Ok(wire::StatusAnswer { user_guid: Some(g), .. }) = serde_json::from_slice(&answer.body) {
            self.tokens.put(Token::lasting(SecretString::from(g))).await;
        }
        Ok(())
    }

    /// GetJsonOrder: the whole order as e-Courier holds it.
    async fn get_order(&self, cx: &CallCx, number: &str) -> Result<wire::OrderOut, CarrierError> {
        let body = serde_json::to_vec(&serde_json::json!({ "OrderNumber": number }))
            .map_err(|e| CarrierError::Protocol { message: e.to_string() })?;
        let answer = self.call(cx, "GetJsonOrder", &body, true).await?;
        wire::OrderOut::parse(&answer.body)
            .map_err(|e| CarrierError::Protocol { message: format!("GetJsonOrder answer: {e}") })
    }
}

#[async_trait]
impl CarrierClient for EcourierClient {
    async fn verify(&self, cx: &CallCx) -> Result<(), CarrierError> {
        match &self.login {
            // A fresh Login proves the password; keep its token.
            Login::Password { .. } => {
                let t = self.obtain(cx, false).await?;
                self.tokens.put(t).await;
                Ok(())
            }
            Login::DirectGuid(_) => self.refresh_guid(cx).await,
        }
    }

    async fn book(&self, cx: &CallCx, req: &OrderRequest<'_>) -> Result<Booked, CarrierError> {
        let body = self.order_body(req.plan, Some(req.order_number))?;
        self.call(cx, "SaveOrder", &body, false).await?;
        Ok(Booked {
            carrier_reference: req.order_number.to_owned(),
            tracking_number: Some(req.order_number.to_owned()),
            snapshot: None,
        })
    }

    /// Update = SaveOrder with the whole order as it will be (the stored plan with the
    /// change applied): never a partial body (docs/carriers/ecourier.md).
    async fn update(&self, cx: &CallCx, req: &OrderRequest<'_>) -> Result<(), CarrierError> {
        let body = self.order_body(req.plan, Some(req.order_number))?;
        self.call(cx, "SaveOrder", &body, false).await.map(|_| ())
    }

    /// Cancel = SaveOrder with `OrderStatus:"X"` (docs/carriers/ecourier.md). SaveOrder is
    /// create-or-update of the whole order and validated like a create (the reference
    /// answers -4 for missing elements), so the cancel carries the complete order as
    /// booked with only the status changed: the carrier can neither refuse it as
    /// incomplete nor blank what it stored. Because that body could also *create* the
    /// order, the order is looked up first: one the carrier never got (a pending
    /// booking whose request was lost) is `NotFound`, one already deleted is done.
    async fn cancel(&self, cx: &CallCx, req: &OrderRequest<'_>) -> Result<(), CarrierError> {
        let current = self.get_order(cx, req.order_number).await?;
        if current.order_status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("X")) {
            return Ok(());
        }
        let mut order = mapping::order_from_plan(req.plan, Some(req.order_number), &self.settings);
        order.order_status = Some("X".into());
        let body = serde_json::to_vec(&wire::OrderEnvelope { order })
            .map_err(|e| CarrierError::Protocol { message: e.to_string() })?;
        self.call(cx, "SaveOrder", &body, true).await.map(|_| ())
    }

    async fn quote(&self, cx: &CallCx, plan: &ShipmentPlan) -> Result<Quote, CarrierError> {
        let body = self.order_body(plan, None)?;
        let answer = self.call(cx, "QuoteOrder", &body, false).await?;
        let order = wire::OrderOut::parse(&answer.body)
            .map_err(|e| CarrierError::Protocol { message: format!("QuoteOrder answer: {e}") })?;
        Ok(mapping::quote_from(&order, &self.settings.utc_offset))
    }

    async fn track(&self, cx: &CallCx, req: &TrackRequest<'_>) -> Result<TrackingSnapshot, CarrierError> {
        let number = req
            .carrier_reference
            .ok_or_else(|| CarrierError::NotFound { message: "the shipment has no e-Courier order number".into() })?;
        let order = self.get_order(cx, number).await?;
        Ok(mapping::snapshot_from(&order, &self.settings))
    }
}
