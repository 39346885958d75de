//! `POST /api/Shipments/submitTrackingInfo` (seed 004). A call is recorded, then checked as
//! it travels: API Management first (subscription key → 401; concurrency → 429), then the
//! ecomdash service (latency and queued faults, integration key → 403, Content-Type → 415,
//! body → 400), then each item is processed and answered in the seed's envelope.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use serde::Serialize;
use serde_json::{Number, Value, json};

use super::state::InFlight;
use super::validate::{self, Id, Item};
use super::{EcomdashSim, FORBIDDEN_MESSAGE, RecordedRequest, SimFault, SubmittedItem, SubmittedLineItem};

const SUBSCRIPTION_KEY: &str = "ocp-apim-subscription-key";
const INTEGRATION_KEY: &str = "ecd-subscription-key";

pub(super) fn routes(sim: EcomdashSim) -> Router {
    Router::new().route("/api/Shipments/submitTrackingInfo", post(submit)).with_state(sim)
}

/// API Management's answer for an operation it does not know (method + path).
pub(super) async fn not_found() -> Response {
    apim(StatusCode::NOT_FOUND, "Resource not found")
}

/// API Management's own error body (KB 4464930; the rate-limit policy docs).
fn apim(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"statusCode": status.as_u16(), "message": message}))).into_response()
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "Message": text }))).into_response()
}

fn throttled(seconds: u32) -> Response {
    let mut r =
        apim(StatusCode::TOO_MANY_REQUESTS, &format!("Rate limit is exceeded. Try again in {seconds} seconds."));
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    r
}

/// A response whose body fails at once: the server closes the connection without an answer.
fn disconnect() -> Response {
    let stream =
        futures::stream::once(async { Err::<Bytes, std::io::Error>(std::io::Error::other("simulated disconnect")) });
    Response::new(Body::from_stream(stream))
}

/// The seed's answer envelope (`ResponseListUpdateShipmentResponse`), fields in its order.
#[derive(Serialize)]
struct Envelope {
    status: &'static str,
    messages: Vec<String>,
    pagination: Option<Value>,
    data: Option<Vec<ItemResult>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ItemResult {
    request: RequestEcho,
    was_successful: bool,
    messages: Option<Vec<String>>,
}

/// The `Request` echo, with the keys of the seed's example.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RequestEcho {
    shipment_id: Number,
    carrier_id: Option<Number>,
    tracking_number: Option<String>,
    shipped_date: Option<String>,
    estimated_delivery_date: Option<String>,
    line_items: Vec<LineEcho>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LineEcho {
    line_item_id: Number,
    carrier_id: Option<Number>,
    tracking_number: Option<String>,
    #[serde(rename = "TrackingURL")]
    tracking_url: Option<String>,
    estimated_delivery_date: Option<String>,
}

fn raw(id: &Option<Id>) -> Option<Number> {
    id.as_ref().map(|i| i.raw.clone())
}

fn echo(item: &Item) -> RequestEcho {
    RequestEcho {
        shipment_id: item.shipment_id.raw.clone(),
        carrier_id: raw(&item.carrier_id),
        tracking_number: item.tracking_number.clone(),
        shipped_date: item.shipped_date.as_deref().map(validate::echo_date),
        estimated_delivery_date: item.estimated_delivery_date.as_deref().map(validate::echo_date),
        line_items: item
            .line_items
            .iter()
            .map(|l| LineEcho {
                line_item_id: l.line_item_id.raw.clone(),
                carrier_id: raw(&l.carrier_id),
                tracking_number: l.tracking_number.clone(),
                tracking_url: l.tracking_url.clone(),
                estimated_delivery_date: l.estimated_delivery_date.as_deref().map(validate::echo_date),
            })
            .collect(),
    }
}

/// What ecomdash keeps of an accepted item: line items inherit the base CarrierId and
/// TrackingNumber when they have none (seed 004, LineItems[i].CarrierId / TrackingNumber).
fn submitted(item: &Item, integration_key: &str) -> SubmittedItem {
    let carrier_id = item.carrier_id.as_ref().map(|c| c.value);
    SubmittedItem {
        integration_key: integration_key.to_owned(),
        shipment_id: item.shipment_id.value,
        carrier_id,
        tracking_number: item.tracking_number.clone(),
        tracking_url: item.tracking_url.clone(),
        shipped_date: item.shipped_date.clone(),
        estimated_delivery_date: item.estimated_delivery_date.clone(),
        line_items: item
            .line_items
            .iter()
            .map(|l| SubmittedLineItem {
                line_item_id: l.line_item_id.value,
                carrier_id: l.carrier_id.as_ref().map(|c| c.value).or(carrier_id),
                tracking_number: l.tracking_number.clone().or_else(|| item.tracking_number.clone()),
                tracking_url: l.tracking_url.clone(),
                estimated_delivery_date: l.estimated_delivery_date.clone(),
            })
            .collect(),
        at: Utc::now(),
    }
}

fn bad_request(sim: &EcomdashSim, messages: Vec<String>) -> Response {
    sim.lock().stats.bad_requests += 1;
    let env = Envelope { status: "Failure", messages, pagination: None, data: None };
    (StatusCode::BAD_REQUEST, Json(env)).into_response()
}

/// ASP.NET Web API's JSON formatter reads `application/json` and `text/json`; anything else
/// is refused with its 415 texts.
fn content_type_refusal(headers: &HeaderMap) -> Option<Response> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Some(message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The request contains an entity body but no Content-Type header. The inferred media type 'application/octet-stream' is not supported for this resource.",
        ));
    };
    let media = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media == "application/json" || media == "text/json" {
        return None;
    }
    Some(message(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        &format!("The request entity's media type '{media}' is not supported for this resource."),
    ))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn submit(
    State(sim): State<EcomdashSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let parsed = serde_json::from_slice::<Value>(&bytes);
    sim.record(RecordedRequest {
        at: Utc::now(),
        method: method.to_string(),
        op: "submit_tracking_info".into(),
        path: uri.path().to_owned(),
        auth_headers: [INTEGRATION_KEY, SUBSCRIPTION_KEY]
            .into_iter()
            .filter(|h| headers.contains_key(*h))
            .map(str::to_owned)
            .collect(),
        content_type: header_str(&headers, "content-type").map(str::to_owned),
        body: parsed.as_ref().cloned().unwrap_or(Value::Null),
    });
    let config = sim.config();

    // API Management: the developer's subscription key, then its concurrency window.
    let subscription = header_str(&headers, SUBSCRIPTION_KEY).unwrap_or("").trim();
    if subscription.is_empty() {
        sim.lock().stats.unauthorized += 1;
        return apim(
            StatusCode::UNAUTHORIZED,
            "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.",
        );
    }
    if !config.subscription_keys.iter().any(|k| k == subscription) {
        sim.lock().stats.unauthorized += 1;
        return apim(
            StatusCode::UNAUTHORIZED,
            "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.",
        );
    }
    let integration = header_str(&headers, INTEGRATION_KEY).unwrap_or("").trim().to_owned();
    let key = (subscription.to_owned(), integration.clone());
    let Some(_in_flight) = InFlight::enter(&sim, key, config.max_concurrency) else {
        return throttled(config.retry_after_secs);
    };

    // The ecomdash service.
    let latency = sim.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut lose_answer = false;
    let fault = sim.lock().take_fault();
    match fault {
        None => {}
        Some(SimFault::Http(status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, Json(body)).into_response();
        }
        Some(SimFault::RateLimited(seconds)) => return throttled(seconds),
        Some(SimFault::Delay(d)) => tokio::time::sleep(d).await,
        Some(SimFault::Disconnect) => return disconnect(),
        Some(SimFault::DisconnectAfterCommit) => lose_answer = true,
    }
    if integration.is_empty() || !config.integration_keys.contains(&integration) {
        sim.lock().stats.forbidden += 1;
        return message(StatusCode::FORBIDDEN, FORBIDDEN_MESSAGE);
    }
    if let Some(r) = content_type_refusal(&headers) {
        return r;
    }
    let body = match parsed {
        Ok(b) => b,
        Err(e) => return bad_request(&sim, vec![format!("The request body is not valid JSON: {e}.")]),
    };
    let items = match validate::items(&body, config.max_items_per_call) {
        Ok(items) => items,
        Err(messages) => return bad_request(&sim, messages),
    };

    let mut data = Vec::with_capacity(items.len());
    {
        let mut st = sim.lock();
        for item in &items {
            let failure = st.take_item_fault(item.shipment_id.value);
            let was_successful = failure.is_none();
            if was_successful {
                st.submitted.push(submitted(item, &integration));
                st.stats.accepted_items += 1;
            } else {
                st.stats.failed_items += 1;
            }
            data.push(ItemResult { request: echo(item), was_successful, messages: failure.map(|m| vec![m]) });
        }
    }
    if lose_answer {
        return disconnect();
    }
    Json(Envelope { status: "Success", messages: Vec::new(), pagination: None, data: Some(data) }).into_response()
}
