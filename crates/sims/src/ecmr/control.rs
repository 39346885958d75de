//! The `/_sim` control API: the knobs of [`EcmrSim`] for out-of-process use (`shipgate
//! sandbox`, benchmarks). Never part of the carrier's contract.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{EcmrSim, OPS, SimFault};

pub(super) fn routes(sim: EcmrSim) -> Router {
    Router::new()
        .route("/_sim/requests", get(requests))
        .route("/_sim/stats", get(stats))
        .route("/_sim/faults", post(add_fault).delete(clear_faults))
        .route("/_sim/latency", put(latency))
        .route("/_sim/expire-tokens", post(expire_tokens))
        .route("/_sim/shipments/{tracking_number}", get(shipment).delete(delete))
        .route("/_sim/seed", post(seed))
        .route("/_sim/shipments/{tracking_number}/advance", post(advance))
        .route("/_sim/shipments/{tracking_number}/cancel", post(cancel))
        .route("/_sim/state", get(export).put(import))
        .route("/_sim/reset", post(reset))
        .with_state(sim)
}

fn bad(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message.into()}))).into_response()
}

async fn requests(State(sim): State<EcmrSim>) -> Json<Value> {
    Json(json!(sim.requests()))
}

async fn stats(State(sim): State<EcmrSim>) -> Json<Value> {
    Json(json!(sim.stats()))
}

/// `{"op": "store_shipment" | null, "count": 2, "fault": {"type": "http", "status": 500, "body": {...}}}`
async fn add_fault(State(sim): State<EcmrSim>, Json(body): Json<Value>) -> Response {
    let op = match body.get("op") {
        None | Some(Value::Null) => None,
        Some(Value::String(op)) if OPS.contains(&op.as_str()) => Some(op.clone()),
        Some(other) => return bad(format!("op must be one of {OPS:?} or null, not {other}")),
    };
    let Some(count) = body.get("count").and_then(Value::as_u64).and_then(|c| u32::try_from(c).ok()) else {
        return bad("count must be a whole number");
    };
    let fault = match body.get("fault").map(SimFault::from_json) {
        Some(Ok(f)) => f,
        Some(Err(e)) => return bad(e),
        None => return bad("fault is required"),
    };
    sim.fail_next(op.as_deref(), count, fault);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(sim): State<EcmrSim>) -> StatusCode {
    sim.clear_faults();
    StatusCode::NO_CONTENT
}

/// `{"ms": 250}`
async fn latency(State(sim): State<EcmrSim>, Json(body): Json<Value>) -> Response {
    let Some(ms) = body.get("ms").and_then(Value::as_u64) else { return bad("ms must be a whole number") };
    sim.set_latency(Duration::from_millis(ms));
    StatusCode::NO_CONTENT.into_response()
}

/// `{"organization_id": "org-demo", "count": 10000, "prefix": "BULK"}`
async fn seed(State(sim): State<EcmrSim>, Json(body): Json<Value>) -> Response {
    let Some(org) = body.get("organization_id").and_then(Value::as_str) else {
        return bad("organization_id is required");
    };
    let Some(count) = body.get("count").and_then(Value::as_u64).filter(|c| *c <= 1_000_000) else {
        return bad("count must be a whole number up to 1000000");
    };
    let prefix = body.get("prefix").and_then(Value::as_str).unwrap_or("SEED");
    let numbers = sim.seed(org, prefix, count as usize);
    Json(json!({"created": numbers.len(), "first": numbers.first(), "last": numbers.last()})).into_response()
}

async fn delete(State(sim): State<EcmrSim>, Path(tn): Path<String>) -> Response {
    match sim.delete(&tn) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({"error": e}))).into_response(),
    }
}

async fn expire_tokens(State(sim): State<EcmrSim>) -> StatusCode {
    sim.expire_tokens();
    StatusCode::NO_CONTENT
}

async fn shipment(State(sim): State<EcmrSim>, Path(tn): Path<String>) -> Response {
    match sim.shipment(&tn) {
        Some(v) => Json(v).into_response(),
        None => unknown(&tn),
    }
}

fn unknown(tn: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": format!("unknown tracking number {tn}")}))).into_response()
}

async fn advance(State(sim): State<EcmrSim>, Path(tn): Path<String>) -> Response {
    if sim.shipment(&tn).is_none() {
        return unknown(&tn);
    }
    match sim.advance(&tn) {
        Ok(status) => Json(json!({"tracking_number": tn, "status": status.as_str()})).into_response(),
        Err(e) => (StatusCode::CONFLICT, Json(json!({"error": e}))).into_response(),
    }
}

async fn cancel(State(sim): State<EcmrSim>, Path(tn): Path<String>) -> Response {
    if sim.shipment(&tn).is_none() {
        return unknown(&tn);
    }
    match sim.cancel(&tn) {
        Ok(()) => Json(json!({"tracking_number": tn, "status": "cancelled"})).into_response(),
        Err(e) => (StatusCode::CONFLICT, Json(json!({"error": e}))).into_response(),
    }
}

async fn export(State(sim): State<EcmrSim>) -> Json<Value> {
    Json(sim.export_state())
}

async fn import(State(sim): State<EcmrSim>, Json(body): Json<Value>) -> Response {
    match sim.import_state(body) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => bad(e),
    }
}

async fn reset(State(sim): State<EcmrSim>) -> StatusCode {
    sim.reset();
    StatusCode::NO_CONTENT
}
