//! The carrier side: `POST /software/xml/ecJsonPost.asmx/{Method}`.
//!
//! Order of work for each call: record it, count it, refuse an unknown method or a
//! non-POST the way an ASP.NET `.asmx` endpoint does, wait the configured latency,
//! apply a queued fault, then check the `UserGUID` (except on Login), parse the body,
//! and do the method's work.

use super::json::parse_body;
use super::render::{order_json, quote_json};
use super::state::{Refused, Saver, Session, Token, braced};
use super::validate::validate_order;
use super::{EcourierSim, SaveOrderAnswer, SimFault, SimRequest, now};
use crate::common::{REQUEST_LOG_CAP, push_capped};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Map, Value, json};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The methods of the reference's "e-Courier JSON Endpoints".
pub(crate) const METHODS: &[&str] = &["Login", "RefreshGUID", "SaveOrder", "GetJsonOrder", "QuoteOrder"];

pub(crate) fn routes() -> Router<EcourierSim> {
    Router::new().route("/software/xml/ecJsonPost.asmx/{method}", any(asmx))
}

/// The reference's text for a status code ("Response Status Codes"). A code the
/// reference does not list gets -1's text.
pub(crate) fn reference_text(code: i32) -> &'static str {
    match code {
        0 => "JSON Post Received",
        -2 => "Unable to parse JSON",
        -3 => "Unable to Connect to Database",
        -4 => "Order Not Found",
        -5 => "No UserGUID Received",
        -6 => "No config file found: Configuration='{00000000-0000-0000-0000-00000000}",
        _ => "An undefined error has occurred",
    }
}

fn ec_error(http: StatusCode, status: &str, description: impl Into<String>) -> Response {
    (http, axum::Json(json!({ "status": status, "statusdescription": description.into() }))).into_response()
}

fn error500(code: i32, description: impl Into<String>) -> Response {
    ec_error(StatusCode::INTERNAL_SERVER_ERROR, &code.to_string(), description)
}

fn reference_error(code: i32) -> Response {
    error500(code, reference_text(code))
}

/// HTTP 409 with a -4 body (the reference gives the texts, not the body's status;
/// -4 is its "requested action was unable to be performed").
fn conflict(text: &str) -> Response {
    ec_error(StatusCode::CONFLICT, "-4", text)
}

fn guid_answer(guid: &str) -> Response {
    axum::Json(json!({ "status": "0", "UserGUID": guid })).into_response()
}

/// What ASP.NET answers when no `.asmx` protocol handles the request (an unknown
/// method name, or a verb other than POST): HTTP 500, plain text, no JSON status.
fn unrecognized(method: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("System.InvalidOperationException: Request format is unrecognized for URL unexpectedly ending in '/{method}'."),
    )
        .into_response()
}

fn fault_response(fault: SimFault) -> Response {
    match fault {
        SimFault::Status(code) => reference_error(code),
        SimFault::Http(status, text) => {
            ec_error(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "-4", text)
        }
        // An .asmx method's default XML serialisation: what a misrouted or
        // misconfigured endpoint returns with a 200.
        SimFault::Garbage => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<string xmlns=\"http://tempuri.org/\">JSON Post Received</string>",
        )
            .into_response(),
        SimFault::ProcessThenFail => gateway_timeout(),
    }
}

fn gateway_timeout() -> Response {
    (
        StatusCode::GATEWAY_TIMEOUT,
        [(header::CONTENT_TYPE, "text/html")],
        "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n",
    )
        .into_response()
}

/// Counts a Login in progress for `max_concurrent_logins`.
struct LoginInFlight<'a>(&'a EcourierSim);

impl<'a> LoginInFlight<'a> {
    fn start(sim: &'a EcourierSim) -> Self {
        let now = sim.inner.logins_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        sim.inner.max_concurrent_logins.fetch_max(now, Ordering::SeqCst);
        Self(sim)
    }
}

impl Drop for LoginInFlight<'_> {
    fn drop(&mut self) {
        self.0.inner.logins_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn asmx(
    State(sim): State<EcourierSim>,
    Path(method): Path<String>,
    OriginalUri(uri): OriginalUri,
    verb: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = parse_body(&body);
    sim.record(&method, uri.path(), &headers, parsed.as_ref().ok());
    if verb != Method::POST || !METHODS.contains(&method.as_str()) {
        return unrecognized(&method);
    }
    let _in_flight = (method == "Login").then(|| LoginInFlight::start(&sim));
    let (latency, fault) = {
        let mut control = sim.control();
        let fault = control.faults.take(&method);
        (control.latency, fault)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Some(SimFault::ProcessThenFail) => {
            let _lost = sim.handle(&method, &headers, parsed);
            gateway_timeout()
        }
        Some(fault) => fault_response(fault),
        None => sim.handle(&method, &headers, parsed),
    }
}

impl EcourierSim {
    fn record(&self, method: &str, path: &str, headers: &HeaderMap, body: Option<&Value>) {
        let auth_headers = [("userguid", "UserGUID"), ("authorization", "Authorization")]
            .iter()
            .filter(|(name, _)| headers.contains_key(*name))
            .map(|(_, shown)| (*shown).to_owned())
            .collect();
        let mut body = body.cloned().unwrap_or(Value::Null);
        if method == "Login"
            && let Some(password) = body.get_mut("password")
        {
            *password = Value::String("<redacted>".to_owned());
        }
        // The token is the simulator's own: tests check which session a call used.
        let user_guid = headers.get("userguid").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let request = SimRequest { method: method.to_owned(), path: path.to_owned(), auth_headers, user_guid, body };
        let mut control = self.control();
        *control.calls.entry(method.to_owned()).or_default() += 1;
        push_capped(&mut control.requests, request, REQUEST_LOG_CAP);
    }

    fn authenticate(&self, headers: &HeaderMap) -> Option<Session> {
        let header = headers.get("userguid").and_then(|v| v.to_str().ok());
        self.state().authenticate(header, self.config().token_ttl, Instant::now())
    }

    fn handle(&self, method: &str, headers: &HeaderMap, parsed: Result<Value, serde_json::Error>) -> Response {
        if method == "Login" {
            return match parsed {
                Ok(Value::Object(body)) => self.login(&body),
                _ => reference_error(-2),
            };
        }
        // "The UserGUID to refresh is read from the HTTP host header "UserGUID" and
        // the actual post body is ignored" (seed 001, RefreshGUID).
        let Some(session) = self.authenticate(headers) else { return reference_error(-5) };
        if method == "RefreshGUID" {
            return guid_answer(&session.guid);
        }
        let Ok(Value::Object(body)) = parsed else { return reference_error(-2) };
        match method {
            "SaveOrder" => self.save_order(&session, &body),
            "GetJsonOrder" => self.get_json_order(&session, &body),
            "QuoteOrder" => self.quote_order(&session, &body),
            _ => unrecognized(method),
        }
    }

    /// Login: `{website, username, password}` → a new UserGUID. An unknown website
    /// has no configuration on this site (-6, the reference's "No config file found");
    /// a wrong username or password is an action not performed (-4). Earlier tokens
    /// of the same user stay valid.
    fn login(&self, body: &Map<String, Value>) -> Response {
        let field = |name: &str| body.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        let missing: Vec<&str> =
            ["website", "username", "password"].into_iter().filter(|n| field(n).is_none()).collect();
        let (Some(website), Some(username), Some(password)) = (field("website"), field("username"), field("password"))
        else {
            return error500(-4, format!("Login Failed: {} required", missing.join(", ")));
        };
        let accounts = &self.config().accounts;
        if !accounts.iter().any(|a| a.website == website) {
            // The reference's -6 text, with the website in place of its GUID (and,
            // like the reference, no closing quote).
            return error500(-6, format!("No config file found: Configuration='{website}"));
        }
        let Some(account) =
            accounts.iter().position(|a| a.website == website && a.username == username && a.password == password)
        else {
            return error500(-4, "Login Failed: invalid username or password");
        };
        let key = uuid::Uuid::new_v4().to_string().to_ascii_uppercase();
        self.state().tokens.insert(key.clone(), Token { account, direct: false, last_used: Instant::now() });
        self.control().logins += 1;
        guid_answer(&braced(&key))
    }

    fn save_order(&self, session: &Session, body: &Map<String, Value>) -> Response {
        let Some(account) = self.config().accounts.get(session.account) else { return reference_error(-6) };
        let customer_id = Self::customer_id(session.account);
        let order = match validate_order(body, &account.customer_code, customer_id) {
            Ok(order) => order,
            Err(problems) => return error500(-4, problems),
        };
        let saver = Saver {
            customer_code: &account.customer_code,
            customer_id,
            user_name: &account.username,
            user_id: session.account as u64 + 1,
            guid: &session.guid,
        };
        let result = self.state().save(order, &saver, now());
        match result {
            Ok(_) => match self.control().save_answer {
                SaveOrderAnswer::ReferenceExample => {
                    axum::Json(json!({ "status": "0", "UserGUID": "JSON Post Recieved" })).into_response()
                }
                SaveOrderAnswer::StatusDescription => {
                    axum::Json(json!({ "status": "0", "statusdescription": reference_text(0) })).into_response()
                }
            },
            Err(Refused::NotFound) => reference_error(-4),
            Err(Refused::Invalid(text)) => error500(-4, text),
            Err(Refused::UnableToCancel) => conflict("Order Unable to Cancel"),
            Err(Refused::UnableToModify) => conflict("Order Unable to Modify"),
        }
    }

    fn get_json_order(&self, session: &Session, body: &Map<String, Value>) -> Response {
        let number = match body.get("OrderNumber") {
            Some(Value::String(number)) if !number.is_empty() => number,
            None | Some(Value::String(_)) => return error500(-4, "OrderNumber is required"),
            Some(_) => return error500(-4, "OrderNumber must be a JSON string"),
        };
        let Some(account) = self.config().accounts.get(session.account) else { return reference_error(-6) };
        let state = self.state();
        match state.orders.get(number.as_str()) {
            Some(order) if order.customer_code == account.customer_code => {
                axum::Json(order_json(order)).into_response()
            }
            _ => reference_error(-4),
        }
    }

    fn quote_order(&self, session: &Session, body: &Map<String, Value>) -> Response {
        let Some(account) = self.config().accounts.get(session.account) else { return reference_error(-6) };
        let customer_id = Self::customer_id(session.account);
        match validate_order(body, &account.customer_code, customer_id) {
            Ok(order) => axum::Json(quote_json(&order, customer_id, now())).into_response(),
            Err(problems) => error500(-4, problems),
        }
    }
}
