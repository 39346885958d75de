//! The `/_sim` control API: the knobs of [`EcomdashSim`] for out-of-process use (`shipgate
//! sandbox`, benchmarks). Never part of the carrier's contract.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{EcomdashSim, SimFault};

pub(super) fn routes(sim: EcomdashSim) -> Router {
    Router::new()
        .route("/_sim/requests", get(requests))
        .route("/_sim/stats", get(stats))
        .route("/_sim/submitted", get(submitted))
        .route("/_sim/faults", post(add_fault).delete(clear_faults))
        .route("/_sim/item-faults", post(add_item_fault))
        .route("/_sim/latency", put(latency))
        .route("/_sim/state", get(export).put(import))
        .route("/_sim/reset", post(reset))
        .with_state(sim)
}

fn bad(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message.into()}))).into_response()
}

fn whole(body: &Value, key: &str) -> Result<u64, String> {
    body.get(key).and_then(Value::as_u64).ok_or_else(|| format!("{key} must be a whole number"))
}

async fn requests(State(sim): State<EcomdashSim>) -> Json<Value> {
    Json(json!(sim.requests()))
}

async fn stats(State(sim): State<EcomdashSim>) -> Json<Value> {
    Json(json!(sim.stats()))
}

async fn submitted(State(sim): State<EcomdashSim>) -> Json<Value> {
    Json(json!(sim.submitted()))
}

/// `{"count": 2, "fault": {"type": "server_error"}}`
async fn add_fault(State(sim): State<EcomdashSim>, Json(body): Json<Value>) -> Response {
    let count = match whole(&body, "count").map(u32::try_from) {
        Ok(Ok(c)) => c,
        Ok(Err(_)) => return bad("count is too large"),
        Err(e) => return bad(e),
    };
    let fault = match body.get("fault").map(SimFault::from_json) {
        Some(Ok(f)) => f,
        Some(Err(e)) => return bad(e),
        None => return bad("fault is required"),
    };
    sim.fail_next(count, fault);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(sim): State<EcomdashSim>) -> StatusCode {
    sim.clear_faults();
    StatusCode::NO_CONTENT
}

/// `{"shipment_id": 20405, "message": "Shipment not found", "times": 1}`
async fn add_item_fault(State(sim): State<EcomdashSim>, Json(body): Json<Value>) -> Response {
    let Some(id) = body.get("shipment_id").and_then(Value::as_i64) else {
        return bad("shipment_id must be a whole number");
    };
    let Some(message) = body.get("message").and_then(Value::as_str) else { return bad("message must be a string") };
    let times = match whole(&body, "times").map(u32::try_from) {
        Ok(Ok(t)) => t,
        Ok(Err(_)) => return bad("times is too large"),
        Err(e) => return bad(e),
    };
    sim.fail_item(id, message, times);
    StatusCode::NO_CONTENT.into_response()
}

/// `{"ms": 250}`
async fn latency(State(sim): State<EcomdashSim>, Json(body): Json<Value>) -> Response {
    match whole(&body, "ms") {
        Ok(ms) => {
            sim.set_latency(Duration::from_millis(ms));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad(e),
    }
}

async fn export(State(sim): State<EcomdashSim>) -> Json<Value> {
    Json(sim.export_state())
}

async fn import(State(sim): State<EcomdashSim>, Json(body): Json<Value>) -> Response {
    match sim.import_state(body) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => bad(e),
    }
}

async fn reset(State(sim): State<EcomdashSim>) -> StatusCode {
    sim.reset();
    StatusCode::NO_CONTENT
}
