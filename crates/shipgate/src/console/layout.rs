//! The page shell (header, navigation, sign-out), shared fragments (times, statuses,
//! action buttons) and the message pages (refusals, not found, errors).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use crate::error::ApiError;
use crate::service;
use crate::service::sessions::Session;

/// The sections of the console, in navigation order: (path, label).
pub const SECTIONS: &[(&str, &str)] = &[
    ("/console/", "Overview"),
    ("/console/shipments", "Shipments"),
    ("/console/webhooks", "Webhooks"),
    ("/console/jobs", "Jobs"),
    ("/console/status-mappings", "Status mappings"),
    ("/console/inbound", "Inbound"),
    ("/console/connections", "Connections"),
];

/// A page answered instead of the one asked for (a refusal, an error, a redirect).
pub struct Refusal(Box<Response>);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for Refusal {
    fn from(r: Response) -> Self {
        Refusal(Box::new(r))
    }
}

fn shell(title: &str, active: Option<&str>, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · shipgate console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/console/" { "shipgate console" }
                    @if let Some(s) = session {
                        nav aria-label="Sections" {
                            @for (path, label) in SECTIONS {
                                @if Some(*path) == active {
                                    a href=(path) aria-current="page" { (label) }
                                } @else {
                                    a href=(path) { (label) }
                                }
                            }
                        }
                        span.who { "tenant " code { (s.caller.tenant_id) } " · key " code { (s.caller.key_id) } }
                        form.inline method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(s.csrf_token());
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A full page, 200.
pub fn page(title: &str, active: &str, session: &Session, body: Markup) -> Response {
    html_response(StatusCode::OK, shell(title, Some(active), Some(session), body))
}

pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut resp = (status, markup.into_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

/// A page that says one thing (refusals, not found, errors), outside a session.
pub fn message_page(status: StatusCode, title: &str, detail: &str) -> Response {
    message_in(status, title, detail, None)
}

pub fn message_in(status: StatusCode, title: &str, detail: &str, session: Option<&Session>) -> Response {
    let body = html! {
        h1 { (title) }
        p.problem role="alert" { (detail) }
        p { a href="/console/" { "Back to the console" } }
    };
    html_response(status, shell(title, None, session, body))
}

/// A service error as a page: its status, and its message (an internal error is logged
/// and not described).
pub fn service_error(e: service::Error, session: &Session) -> Response {
    let api = ApiError::from(e);
    let status = api.status();
    if status.is_server_error() {
        tracing::error!(error = %api, "console page failed");
        let detail = if status == StatusCode::SERVICE_UNAVAILABLE {
            "The service is temporarily unavailable; try again shortly."
        } else {
            "An unexpected error occurred; it was logged."
        };
        return message_in(status, "Something went wrong", detail, Some(session));
    }
    let title = status.canonical_reason().unwrap_or("Refused");
    message_in(status, title, &api.to_string(), Some(session))
}

/// A refused query or form value, naming the field (422).
pub fn invalid(field: &str, message: &str, session: &Session) -> Refusal {
    Refusal::from(message_in(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid input",
        &format!("{field}: {message}"),
        Some(session),
    ))
}

/// An instant, rendered in UTC with its offset; the page's script shows it in the
/// viewer's zone where scripts run.
pub fn time(t: &DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M:%S UTC+00:00")) } }
}

pub fn time_opt(t: Option<&DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => time(t),
        None => html! { span.muted { "—" } },
    }
}

/// A status as text with a colour class (never colour alone).
pub fn status(text: &str) -> Markup {
    let tone = match text {
        "delivered" | "booked" | "succeeded" | "ok" | "active" | "closed" | "verified" | "mapped" => "ok",
        "exception" | "failed" | "dead" | "attempt_fail" | "open" | "error" | "disabled" | "refused" => "bad",
        "pending" | "queued" | "running" | "half_open" | "unmapped" | "expired" => "warn",
        "cancelled" | "unknown" => "idle",
        _ => "info",
    };
    html! { span class={ "st st-" (tone) } { (text) } }
}

/// A form that posts one action: the session's CSRF token and a fresh idempotency key
/// (the same click sent twice acts once), plus `extra` hidden fields.
pub fn action(session: &Session, url: &str, label: &str, class: &str, extra: &[(&str, &str)]) -> Markup {
    html! {
        form.inline method="post" action=(url) {
            input type="hidden" name="csrf" value=(session.csrf_token());
            input type="hidden" name="idem" value=(uuid::Uuid::new_v4().simple().to_string());
            @for (name, value) in extra {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" class=(class) { (label) }
        }
    }
}

/// The notice after an action (`?done=`), from a fixed list: nothing a link can set
/// is shown as text.
pub fn notice(done: Option<&str>, n: Option<u64>) -> Markup {
    let text = match done {
        Some("refreshed") => "Refreshed from the carrier.".to_owned(),
        Some("cancelled") => "Cancelled.".to_owned(),
        Some("booking_retried") => "Booking retried.".to_owned(),
        Some("job_rerun") => "The job was queued again.".to_owned(),
        Some("delivery_retried") => "The delivery was queued for another attempt now.".to_owned(),
        Some("replayed") => format!("{} failed deliveries queued again.", n.unwrap_or(0)),
        Some("mapped") => "The mapping was saved.".to_owned(),
        Some("verified") => "The connection was verified.".to_owned(),
        _ => return html! {},
    };
    html! { p.notice role="status" { (text) } }
}
