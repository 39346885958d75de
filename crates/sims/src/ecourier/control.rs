//! The `/_sim/` HTTP control API: the knobs of `EcourierSim` for a simulator running
//! in another process. Answers are JSON; a bad request is a 400 and an unknown order
//! a 404, both `{"error": "..."}`.

use super::{EcourierSim, SaveOrderAnswer, SimFault};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Duration;

pub(crate) fn routes() -> Router<EcourierSim> {
    Router::new()
        .route("/requests", get(requests).delete(clear_requests))
        .route("/stats", get(stats))
        .route("/faults", post(add_fault).delete(clear_faults))
        .route("/latency", put(set_latency))
        .route("/save-answer", put(set_save_answer))
        .route("/tokens/expire", post(expire_tokens))
        .route("/direct-guids/expire", post(expire_direct_guids))
        .route("/orders", get(orders))
        .route("/orders/{number}", get(order))
        .route("/orders/{number}/advance", post(advance))
        .route("/orders/{number}/rewind", post(rewind))
        .route("/orders/{number}/status", put(set_status))
        .route("/orders/{number}/pod-sign", put(set_pod_sign))
        .route("/clock", post(start_clock).delete(stop_clock))
        .route("/state", get(export_state).put(import_state))
        .route("/reset", post(reset))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("invalid body: {e}"))))
}

fn done() -> Response {
    axum::Json(json!({ "ok": true })).into_response()
}

async fn requests(State(sim): State<EcourierSim>) -> Response {
    axum::Json(sim.requests()).into_response()
}

async fn clear_requests(State(sim): State<EcourierSim>) -> Response {
    sim.clear_requests();
    done()
}

async fn stats(State(sim): State<EcourierSim>) -> Response {
    axum::Json(sim.stats()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    /// A method name (`SaveOrder`), or absent for any method.
    method: Option<String>,
    #[serde(default = "one")]
    count: u32,
    /// `{"status": -3}`, `{"http": [409, "Order Unable to Cancel"]}`, `"garbage"`,
    /// `"process_then_fail"`.
    fault: SimFault,
}

fn one() -> u32 {
    1
}

async fn add_fault(State(sim): State<EcourierSim>, body: Bytes) -> Response {
    match parse::<FaultBody>(&body) {
        Ok(f) => {
            sim.fail_next(f.method.as_deref(), f.count, f.fault);
            done()
        }
        Err(response) => *response,
    }
}

async fn clear_faults(State(sim): State<EcourierSim>) -> Response {
    sim.control().faults.clear();
    done()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyBody {
    ms: u64,
}

async fn set_latency(State(sim): State<EcourierSim>, body: Bytes) -> Response {
    match parse::<LatencyBody>(&body) {
        Ok(b) => {
            sim.set_latency(Duration::from_millis(b.ms));
            done()
        }
        Err(response) => *response,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveAnswerBody {
    /// `"reference_example"` or `"status_description"`.
    answer: SaveOrderAnswer,
}

async fn set_save_answer(State(sim): State<EcourierSim>, body: Bytes) -> Response {
    match parse::<SaveAnswerBody>(&body) {
        Ok(b) => {
            sim.set_save_order_answer(b.answer);
            done()
        }
        Err(response) => *response,
    }
}

async fn expire_tokens(State(sim): State<EcourierSim>) -> Response {
    sim.expire_tokens();
    done()
}

async fn expire_direct_guids(State(sim): State<EcourierSim>) -> Response {
    sim.expire_direct_guids();
    done()
}

async fn orders(State(sim): State<EcourierSim>) -> Response {
    let numbers = sim.order_numbers();
    axum::Json(json!({ "count": numbers.len(), "order_numbers": numbers })).into_response()
}

async fn order(State(sim): State<EcourierSim>, Path(number): Path<String>) -> Response {
    match sim.order(&number) {
        Some(order) => axum::Json(order).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no order {number}")),
    }
}

fn stage_answer(sim: &EcourierSim, number: &str, result: Result<super::OrderStage, String>) -> Response {
    match result {
        Ok(stage) => axum::Json(json!({ "order_number": number, "stage": stage })).into_response(),
        Err(e) if sim.order(number).is_none() => error(StatusCode::NOT_FOUND, e),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

async fn advance(State(sim): State<EcourierSim>, Path(number): Path<String>) -> Response {
    let result = sim.advance(&number);
    stage_answer(&sim, &number, result)
}

async fn rewind(State(sim): State<EcourierSim>, Path(number): Path<String>) -> Response {
    let result = sim.rewind(&number);
    stage_answer(&sim, &number, result)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
}

async fn set_status(State(sim): State<EcourierSim>, Path(number): Path<String>, body: Bytes) -> Response {
    let b = match parse::<StatusBody>(&body) {
        Ok(b) => b,
        Err(response) => return *response,
    };
    match sim.set_order_status(&number, &b.status) {
        Ok(()) => done(),
        Err(e) if sim.order(&number).is_none() => error(StatusCode::NOT_FOUND, e),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PodSignBody {
    /// The `PodSign` text to show once delivered; null: the rendered PNG signature.
    pod_sign: Option<String>,
}

async fn set_pod_sign(State(sim): State<EcourierSim>, Path(number): Path<String>, body: Bytes) -> Response {
    let b = match parse::<PodSignBody>(&body) {
        Ok(b) => b,
        Err(response) => return *response,
    };
    match sim.set_pod_sign(&number, b.pod_sign) {
        Ok(()) => done(),
        Err(e) => error(StatusCode::NOT_FOUND, e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    every_ms: u64,
}

async fn start_clock(State(sim): State<EcourierSim>, body: Bytes) -> Response {
    match parse::<ClockBody>(&body) {
        Ok(b) if b.every_ms > 0 => {
            sim.start_clock(Duration::from_millis(b.every_ms));
            done()
        }
        Ok(_) => error(StatusCode::BAD_REQUEST, "every_ms must be at least 1"),
        Err(response) => *response,
    }
}

async fn stop_clock(State(sim): State<EcourierSim>) -> Response {
    sim.stop_clock();
    done()
}

async fn export_state(State(sim): State<EcourierSim>) -> Response {
    axum::Json(sim.export_state()).into_response()
}

async fn import_state(State(sim): State<EcourierSim>, body: Bytes) -> Response {
    let value = match parse::<Value>(&body) {
        Ok(value) => value,
        Err(response) => return *response,
    };
    match sim.import_state(value) {
        Ok(()) => done(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

async fn reset(State(sim): State<EcourierSim>) -> Response {
    sim.reset();
    done()
}
