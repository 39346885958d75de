//! The `/_sim/...` control API: the Rust knobs over HTTP, for a simulator running in
//! another process (`shipgate-sims`, the contract checks, the benchmarks).
//!
//! | route | does |
//! |---|---|
//! | `GET /_sim/requests`, `DELETE /_sim/requests` | the request log / clear it |
//! | `GET /_sim/stats` | [`AftershipStats`](super::AftershipStats) |
//! | `POST /_sim/faults` `{op?, count, fault}` | `fail_next` (`fault` as [`SimFault`] serializes) |
//! | `POST /_sim/burst_429` `{count}` | `burst_429` |
//! | `PUT /_sim/latency` `{ms}` | `set_latency` |
//! | `GET /_sim/trackings` | `{count}` |
//! | `GET /_sim/trackings/{id}` | the tracking as the API renders it |
//! | `POST /_sim/trackings/{id}/advance`, `.../expire` | lifecycle steps |
//! | `POST /_sim/trackings/{id}/webhook` `{url, secret, event?}` | `push_webhook` |
//! | `GET /_sim/state`, `PUT /_sim/state` | `export_state` / `import_state` |
//! | `POST /_sim/reset` | `reset` |

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{AftershipSim, SimFault};

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("bad control body: {e}"))
}

fn bad_body(e: String) -> Response {
    problem(StatusCode::UNPROCESSABLE_ENTITY, e)
}

#[derive(Deserialize)]
struct FaultBody {
    #[serde(default)]
    op: Option<String>,
    count: u32,
    fault: SimFault,
}

#[derive(Deserialize)]
struct CountBody {
    count: u32,
}

#[derive(Deserialize)]
struct LatencyBody {
    ms: u64,
}

#[derive(Deserialize)]
struct WebhookBody {
    url: String,
    secret: String,
    #[serde(default = "tracking_update")]
    event: String,
}

fn tracking_update() -> String {
    "tracking_update".to_owned()
}

pub(crate) fn routes() -> Router<AftershipSim> {
    Router::new()
        .route(
            "/_sim/requests",
            get(|State(sim): State<AftershipSim>| async move { axum::Json(sim.requests()) }).delete(
                |State(sim): State<AftershipSim>| async move {
                    sim.clear_requests();
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route("/_sim/stats", get(|State(sim): State<AftershipSim>| async move { axum::Json(sim.stats()) }))
        .route(
            "/_sim/faults",
            post(|State(sim): State<AftershipSim>, body: Bytes| async move {
                match parse::<FaultBody>(&body) {
                    Ok(f) => {
                        sim.fail_next(f.op.as_deref(), f.count, f.fault);
                        StatusCode::NO_CONTENT.into_response()
                    }
                    Err(e) => bad_body(e),
                }
            }),
        )
        .route(
            "/_sim/burst_429",
            post(|State(sim): State<AftershipSim>, body: Bytes| async move {
                match parse::<CountBody>(&body) {
                    Ok(c) => {
                        sim.burst_429(c.count);
                        StatusCode::NO_CONTENT.into_response()
                    }
                    Err(e) => bad_body(e),
                }
            }),
        )
        .route(
            "/_sim/latency",
            put(|State(sim): State<AftershipSim>, body: Bytes| async move {
                match parse::<LatencyBody>(&body) {
                    Ok(l) => {
                        sim.set_latency(Duration::from_millis(l.ms));
                        StatusCode::NO_CONTENT.into_response()
                    }
                    Err(e) => bad_body(e),
                }
            }),
        )
        .route(
            "/_sim/trackings",
            get(|State(sim): State<AftershipSim>| async move { axum::Json(json!({"count": sim.tracking_count()})) }),
        )
        .route(
            "/_sim/trackings/{id}",
            get(|State(sim): State<AftershipSim>, Path(id): Path<String>| async move {
                match sim.tracking(&id) {
                    Some(t) => axum::Json(t).into_response(),
                    None => problem(StatusCode::NOT_FOUND, format!("no tracking {id}")),
                }
            }),
        )
        .route(
            "/_sim/trackings/{id}/advance",
            post(|State(sim): State<AftershipSim>, Path(id): Path<String>| async move { step(&sim, &id, sim.advance(&id)) }),
        )
        .route(
            "/_sim/trackings/{id}/expire",
            post(|State(sim): State<AftershipSim>, Path(id): Path<String>| async move { step(&sim, &id, sim.expire(&id)) }),
        )
        .route(
            "/_sim/trackings/{id}/webhook",
            post(|State(sim): State<AftershipSim>, Path(id): Path<String>, body: Bytes| async move {
                let w = match parse::<WebhookBody>(&body) {
                    Ok(w) => w,
                    Err(e) => return bad_body(e),
                };
                if sim.tracking(&id).is_none() {
                    return problem(StatusCode::NOT_FOUND, format!("no tracking {id}"));
                }
                match sim.push_webhook(&w.url, &w.secret, &id, &w.event).await {
                    Ok(d) => axum::Json(d).into_response(),
                    Err(e) => problem(StatusCode::BAD_GATEWAY, e),
                }
            }),
        )
        .route(
            "/_sim/state",
            get(|State(sim): State<AftershipSim>| async move { axum::Json(sim.export_state()) }).put(
                |State(sim): State<AftershipSim>, body: Bytes| async move {
                    match parse::<Value>(&body).map(|v| sim.import_state(v)) {
                        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
                        Ok(Err(e)) => problem(StatusCode::UNPROCESSABLE_ENTITY, e),
                        Err(e) => bad_body(e),
                    }
                },
            ),
        )
        .route(
            "/_sim/reset",
            post(|State(sim): State<AftershipSim>| async move {
                sim.reset();
                StatusCode::NO_CONTENT
            }),
        )
}

fn step(sim: &AftershipSim, id: &str, result: Result<Value, String>) -> Response {
    match result {
        Ok(t) => axum::Json(t).into_response(),
        Err(_) if sim.tracking(id).is_none() => problem(StatusCode::NOT_FOUND, format!("no tracking {id}")),
        Err(e) => problem(StatusCode::CONFLICT, e),
    }
}
