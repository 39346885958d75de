//! Webhooks: endpoints with their recent success rate; an endpoint's deliveries with
//! attempts, answer codes and excerpts; retry one, replay the failed ones since a time
//! (docs/console.md "Webhooks"). Endpoint secrets are never read here.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use maud::{Markup, html};

use super::action::{self, Verified};
use super::layout;
use super::session::Signed;
use crate::app::AppState;
use crate::service::sessions::Session;
use crate::service::views::WebhookDelivery;
use crate::service::{self, PageRequest, overview};

const DELIVERY_STATES: [&str; 4] = ["pending", "succeeded", "failed", "cancelled"];

pub fn deliveries_table(deliveries: &[WebhookDelivery], session: &Session) -> Markup {
    html! {
        div.scroll { table.stack {
            thead { tr { th { "Delivery" } th { "Event" } th { "Status" } th { "Attempts" } th { "Last answer" } th { "Created" } th { "" } } }
            tbody { @for d in deliveries { tr {
                td.mono data-label="Delivery" { (d.id) br; span.muted { "endpoint " a href={ "/console/webhooks/" (d.endpoint_id) } { (d.endpoint_id) } } }
                td data-label="Event" { (d.event_type) br; span.mono.muted { (d.event_id) } }
                td data-label="Status" { (layout::status(&d.status)) }
                td data-label="Attempts" {
                    @if d.attempts.is_empty() { "none yet" }
                    @for a in &d.attempts {
                        div { "#" (a.attempt) " " (layout::time(&a.started_at)) " · "
                            @if let Some(s) = a.response_status { "HTTP " (s) } @else { "no answer" }
                            " · " (a.error_code.as_deref().unwrap_or("ok")) " · " (a.duration_ms) " ms"
                            @if let Some(x) = a.response_excerpt.as_deref().filter(|x| !x.is_empty()) {
                                details { summary { "Answer excerpt" } pre { (x) } }
                            }
                        }
                    }
                }
                td data-label="Last answer" {
                    @if let Some(s) = d.last_status { (s) } @else { "—" }
                    @if let Some(e) = &d.last_error { br; span.muted { (e) } }
                }
                td data-label="Created" { (layout::time(&d.created_at)) }
                td { (layout::action(session, &format!("/console/webhooks/deliveries/{}/retry", d.id), "Retry now", "primary", &[])) }
            } } }
        } }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
    n: Option<u64>,
    status: Option<String>,
    after: Option<String>,
}

pub async fn list(State(state): State<AppState>, Signed(session): Signed, q: Query<DoneQuery>) -> Response {
    let endpoints = match service::webhooks::list_endpoints(
        &state,
        &session.caller,
        &PageRequest { limit: 100, after: None },
    )
    .await
    {
        Ok(p) => p.items,
        Err(e) => return layout::service_error(e, &session),
    };
    let stats = match overview::endpoint_stats(&state, &session.caller).await {
        Ok(s) => s,
        Err(e) => return layout::service_error(e, &session),
    };
    let body = html! {
        h1 { "Webhooks" }
        (layout::notice(q.done.as_deref(), q.n))
        @if endpoints.is_empty() { p.muted { "No webhook endpoints. Create one with POST /v1/webhook-endpoints." } }
        div.scroll { table.stack {
            thead { tr { th { "Endpoint" } th { "URL" } th { "State" } th { "Events" } th { "Last 24 h" } } }
            tbody { @for e in &endpoints {
                @let (ok, failed, pending) = stats.get(&e.id).copied().unwrap_or((0, 0, 0));
                tr {
                    td data-label="Endpoint" { a.mono href={ "/console/webhooks/" (e.id) } { (e.id) }
                        @if let Some(d) = &e.description { br; (d) } }
                    td.mono data-label="URL" { (e.url) }
                    td data-label="State" { @if e.enabled { (layout::status("active")) } @else { (layout::status("disabled"))
                        @if let Some(r) = &e.disabled_reason { br; span.muted { (r) } } } }
                    td data-label="Events" { @if e.event_types.is_empty() { "all" } @else { (e.event_types.join(", ")) } }
                    td data-label="Last 24 h" {
                        @if ok + failed > 0 { (format!("{:.0} % succeeded", ok as f64 * 100.0 / (ok + failed) as f64)) br; }
                        span.muted { (ok) " succeeded · " (failed) " failed · " (pending) " pending" }
                    }
                }
            } }
        } }
    };
    layout::page("Webhooks", "/console/webhooks", &session, body)
}

pub async fn endpoint(
    State(state): State<AppState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    q: Query<DoneQuery>,
) -> Response {
    let endpoint = match service::webhooks::get_endpoint(&state, &session.caller, &id).await {
        Ok(e) => e,
        Err(e) => return layout::service_error(e, &session),
    };
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    if let Some(s) = status
        && !DELIVERY_STATES.contains(&s)
    {
        return layout::invalid("status", "is not a delivery status (pending, succeeded, failed, cancelled)", &session)
            .into_response();
    }
    let after = match q.after.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => match a.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return layout::invalid("after", "is not a page position", &session).into_response(),
        },
    };
    let page = match service::webhooks::list_deliveries(
        &state,
        &session.caller,
        &id,
        status,
        &PageRequest { limit: 50, after },
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return layout::service_error(e, &session),
    };
    let day_ago = (Utc::now() - chrono::Duration::hours(24)).format("%Y-%m-%dT%H:%M").to_string();
    let body = html! {
        p { a href="/console/webhooks" { "← Webhooks" } }
        h1 { "Endpoint " span.mono { (endpoint.id) } }
        (layout::notice(q.done.as_deref(), q.n))
        dl.facts {
            dt { "URL" } dd.mono { (endpoint.url) }
            dt { "State" } dd { @if endpoint.enabled { (layout::status("active")) } @else { (layout::status("disabled")) } }
            dt { "Events" } dd { @if endpoint.event_types.is_empty() { "all" } @else { (endpoint.event_types.join(", ")) } }
        }
        h2 { "Replay failed deliveries" }
        form.filters method="post" action={ "/console/webhooks/" (endpoint.id) "/replay" } {
            input type="hidden" name="csrf" value=(session.csrf_token());
            input type="hidden" name="idem" value=(uuid::Uuid::new_v4().simple().to_string());
            label { "Created since (UTC)" input type="datetime-local" name="since" value=(day_ago) required; }
            button.primary type="submit" { "Replay failed since then" }
        }
        h2 { "Deliveries" }
        form.filters method="get" action={ "/console/webhooks/" (endpoint.id) } {
            label { "Status" select name="status" {
                option value="" { "any" }
                @for s in DELIVERY_STATES { option value=(s) selected[status == Some(s)] { (s) } }
            } }
            button type="submit" { "Show" }
        }
        @if page.items.is_empty() { p.muted { "No deliveries." } } @else { (deliveries_table(&page.items, &session)) }
        @if let Some(n) = page.next {
            p { a rel="next" href={ "/console/webhooks/" (endpoint.id) "?status=" (status.unwrap_or("")) "&after=" (n) } { "Next page" } }
        }
    };
    layout::page(&format!("Endpoint {}", endpoint.id), "/console/webhooks", &session, body)
}

pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Verified { session, form }: Verified,
) -> Response {
    let caller = session.caller.clone();
    let path = format!("/console/webhooks/deliveries/{id}/retry");
    action::run(&state, &session, &path, &form, || async {
        service::webhooks::retry_delivery(&state, &caller, &id)
            .await
            .map(|d| format!("/console/webhooks/{}?done=delivery_retried", d.endpoint_id))
    })
    .await
}

/// `2026-11-30T10:00` (a datetime-local field, read as UTC), a date, or RFC 3339.
fn since(v: &str) -> Option<DateTime<Utc>> {
    let v = v.trim();
    NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"))
        .map(|t| t.and_utc())
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
        })
        .or_else(|| DateTime::parse_from_rfc3339(v).ok().map(|t| t.with_timezone(&Utc)))
}

pub async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Verified { session, form }: Verified,
) -> Response {
    let Some(since) = form.get("since").and_then(since) else {
        return layout::invalid("since", "must be a date and time (YYYY-MM-DDTHH:MM, UTC)", &session).into_response();
    };
    let caller = session.caller.clone();
    let path = format!("/console/webhooks/{id}/replay");
    action::run(&state, &session, &path, &form, || async {
        service::webhooks::replay(&state, &caller, &id, since)
            .await
            .map(|n| format!("/console/webhooks/{id}?done=replayed&n={n}"))
    })
    .await
}
