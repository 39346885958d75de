//! The ops console (issue 14, docs/console.md): server-rendered HTML under `/console`,
//! a second front end beside `http` on the same service layer. A page parses its query,
//! calls service reads with the signed-in [`Caller`](crate::service::Caller) and renders
//! them with maud (escaped by default); an action is a POST form carrying the session's
//! CSRF token and an idempotency key, and calls the same service workflow as the API.
//! This module names no module below the service layer and nothing of `http`
//! (`tests/layers.rs`).
//!
//! Every answer carries `Server-Timing: app;dur=<ms>` (the bench reads it), no-store
//! caching and a Content-Security-Policy that allows only this binary's own stylesheet
//! and script.

mod action;
mod assets;
mod charts;
mod connections;
mod inbound;
mod jobs;
mod layout;
mod mappings;
mod overview;
mod session;
mod shipments;
mod webhooks;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::{any, get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument as _;

use crate::app::AppState;

/// Largest form a console page posts.
const FORM_LIMIT: usize = 16 * 1024;

/// The console's routes, with their state; merged beside the API's router by the
/// command that serves (`runtime::router`).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(overview::page))
        .route("/console/sign-in", get(session::sign_in_page).post(session::sign_in))
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/assets/console.css", get(assets::css))
        .route("/console/assets/console.js", get(assets::js))
        .route("/console/shipments", get(shipments::list))
        .route("/console/shipments/{id}", get(shipments::page))
        .route("/console/shipments/{id}/{action}", post(shipments::act))
        .route("/console/webhooks", get(webhooks::list))
        .route("/console/webhooks/{id}", get(webhooks::endpoint))
        .route("/console/webhooks/{id}/replay", post(webhooks::replay))
        .route("/console/webhooks/deliveries/{id}/retry", post(webhooks::retry))
        .route("/console/jobs", get(jobs::list))
        .route("/console/jobs/{id}/rerun", post(jobs::rerun))
        .route("/console/status-mappings", get(mappings::page).post(mappings::map))
        .route("/console/connections", get(connections::list))
        .route("/console/connections/{id}/verify", post(connections::verify))
        .route("/console/inbound", get(inbound::page))
        .route("/console/{*rest}", any(not_found))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(middleware::from_fn(observe))
        .layer(CatchPanicLayer::custom(|_| {
            layout::message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The page failed; it was logged.",
            )
        }))
        .with_state(state)
}

async fn not_found() -> Response {
    layout::message_page(StatusCode::NOT_FOUND, "Not found", "There is no such page in the console.")
}

/// Span and access log, `Server-Timing`, and the headers every console answer carries.
async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let span = tracing::info_span!("console", method = %req.method(), path = %req.uri().path());
    let mut resp = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let ms = elapsed.as_secs_f64() * 1e3;
    span.in_scope(|| tracing::info!(status = resp.status().as_u16(), ms, "console request"));
    metrics::histogram!("shipgate_console_request_duration_seconds").record(elapsed.as_secs_f64());
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        h.insert("server-timing", v);
    }
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    resp
}
