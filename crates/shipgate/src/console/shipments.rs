//! Shipments: search by reference, tracking number or id, filters as the API's list
//! (status, carrier, connection, created between), keyset pages; one shipment with its
//! timeline and the actions refresh, cancel and retry a pending or failed booking.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use maud::{Markup, html};

use super::action::{self, Verified};
use super::layout::{self, Refusal};
use super::session::Signed;
use crate::app::AppState;
use crate::domain::{BookingState, Status};
use crate::service::sessions::Session;
use crate::service::shipments::ListFilter;
use crate::service::timeline::{self, Entry};
use crate::service::views::Shipment;
use crate::service::{self, Error, PageRequest};

const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    carrier: Option<String>,
    connection_id: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

fn blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A date (`2026-11-30`, the start of that UTC day) or an RFC 3339 instant.
fn instant(
    field: &str,
    v: Option<&str>,
    end_of_day: bool,
    session: &Session,
) -> Result<Option<DateTime<Utc>>, Refusal> {
    let Some(v) = v else { return Ok(None) };
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let d = if end_of_day { d.succ_opt().unwrap_or(d) } else { d };
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    match DateTime::parse_from_rfc3339(v) {
        Ok(t) if crate::domain::time::in_range(&t) => Ok(Some(t.with_timezone(&Utc))),
        _ => Err(layout::invalid(field, "must be a date (YYYY-MM-DD) or an RFC 3339 time", session)),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Signed(session): Signed,
    q: Query<ListQuery>,
) -> Result<Response, Refusal> {
    let q = q.0;
    let status = match blank(&q.status) {
        None => None,
        Some(s) => {
            Some(Status::parse(s).ok_or_else(|| layout::invalid("status", "is not a shipment status", &session))?)
        }
    };
    let carrier = blank(&q.carrier);
    if let Some(c) = carrier
        && !service::carriers::is_known(c)
    {
        return Err(layout::invalid("carrier", "is not a carrier of this gateway", &session));
    }
    let created_after = instant("created_after", blank(&q.created_after), false, &session)?;
    let created_before = instant("created_before", blank(&q.created_before), true, &session)?;
    let search = blank(&q.q);
    let base = ListFilter {
        status,
        carrier,
        connection_id: blank(&q.connection_id),
        created_after,
        created_before,
        ..Default::default()
    };
    let page = PageRequest { limit: PAGE_SIZE, after: blank(&q.after).map(str::to_owned) };
    let (items, next) = match search {
        // An id finds that shipment alone.
        Some(id) if id.starts_with("shp_") => match service::shipments::get(&state, &session.caller, id).await {
            Ok(s) => (vec![s], None),
            Err(Error::NotFound(_)) => (Vec::new(), None),
            Err(e) => return Ok(layout::service_error(e, &session)),
        },
        // Otherwise the text is a reference or a tracking number: both are looked up.
        Some(text) => {
            let by_ref = ListFilter { reference: Some(text), ..base.clone() };
            let by_tracking = ListFilter { tracking_number: Some(text), ..base.clone() };
            let a = service::shipments::list(&state, &session.caller, &by_ref, &page).await;
            let b = service::shipments::list(&state, &session.caller, &by_tracking, &page).await;
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    let mut items = a.items;
                    for s in b.items {
                        if !items.iter().any(|x| x.id == s.id) {
                            items.push(s);
                        }
                    }
                    items.sort_by(|x, y| y.id.cmp(&x.id));
                    (items, a.next.or(b.next))
                }
                (Err(e), _) | (_, Err(e)) => return Ok(layout::service_error(e, &session)),
            }
        }
        None => match service::shipments::list(&state, &session.caller, &base, &page).await {
            Ok(p) => (p.items, p.next),
            Err(e) => return Ok(layout::service_error(e, &session)),
        },
    };
    let next_url = next.map(|after| {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", &q.q),
            ("status", &q.status),
            ("carrier", &q.carrier),
            ("connection_id", &q.connection_id),
            ("created_after", &q.created_after),
            ("created_before", &q.created_before),
        ] {
            if let Some(v) = blank(v) {
                pairs.append_pair(k, v);
            }
        }
        pairs.append_pair("after", &after);
        format!("/console/shipments?{}", pairs.finish())
    });
    let body = html! {
        h1 { "Shipments" }
        (layout::notice(q.done.as_deref(), None))
        form.filters method="get" action="/console/shipments" role="search" {
            label { "Reference, tracking number or id"
                input type="search" name="q" value=[blank(&q.q)] placeholder="ORDER-1001, 1Z…, shp_…"; }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for s in Status::ALL {
                        option value=(s.as_str()) selected[status == Some(s)] { (s.as_str()) }
                    }
                }
            }
            label { "Carrier"
                select name="carrier" {
                    option value="" { "any" }
                    @for c in service::carriers::slugs() {
                        option value=(c) selected[carrier == Some(c)] { (c) }
                    }
                }
            }
            label { "Connection" input name="connection_id" value=[blank(&q.connection_id)] placeholder="con_…"; }
            label { "Created from" input type="date" name="created_after" value=[blank(&q.created_after)]; }
            label { "Created to" input type="date" name="created_before" value=[blank(&q.created_before)]; }
            button.primary type="submit" { "Search" }
        }
        @if items.is_empty() {
            p.muted { "No shipment matches." }
        } @else {
            div.scroll { (table(&items)) }
        }
        div.pager {
            @if blank(&q.after).is_some() { a href="/console/shipments" { "First page" } }
            @if let Some(u) = next_url { a href=(u) rel="next" { "Next page" } }
        }
    };
    Ok(layout::page("Shipments", "/console/shipments", &session, body))
}

pub fn table(items: &[Shipment]) -> Markup {
    html! {
        table.stack {
            thead { tr { th { "Shipment" } th { "Reference" } th { "Carrier" } th { "Tracking number" } th { "Status" } th { "Booking" } th { "Created" } } }
            tbody {
                @for s in items {
                    tr {
                        td data-label="Shipment" { a.mono href={ "/console/shipments/" (s.id) } { (s.id) } }
                        td data-label="Reference" { (s.reference.as_deref().unwrap_or("—")) }
                        td data-label="Carrier" { (s.carrier) }
                        td.mono data-label="Tracking number" { (s.tracking_number.as_deref().unwrap_or("—")) }
                        td data-label="Status" { (layout::status(s.status.as_str())) }
                        td data-label="Booking" { @if let Some(b) = &s.booking { (layout::status(b.state.as_str())) } @else { span.muted { "—" } } }
                        td data-label="Created" { (layout::time(&s.created_at)) }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    done: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    q: Query<PageQuery>,
) -> Response {
    let (s, entries) = match timeline::timeline(&state, &session.caller, &id).await {
        Ok(t) => t,
        Err(e) => return layout::service_error(e, &session),
    };
    let jobs = match service::jobs::booking_jobs_of(&state, &session.caller, &s.id).await {
        Ok(j) => j,
        Err(e) => return layout::service_error(e, &session),
    };
    let booking = s.booking.as_ref().map(|b| b.state);
    let url = |a: &str| format!("/console/shipments/{}/{a}", s.id);
    let body = html! {
        p { a href="/console/shipments" { "← Shipments" } }
        h1 { "Shipment " span.mono { (s.id) } }
        (layout::notice(q.done.as_deref(), None))
        div.actions {
            (layout::action(&session, &url("refresh"), "Refresh from the carrier", "", &[]))
            @if booking == Some(BookingState::Pending) {
                (layout::action(&session, &url("retry-booking"), "Retry the booking now", "primary", &[]))
            }
            @for j in jobs.iter().filter(|j| j.state == "dead") {
                (layout::action(&session, &url("rerun-job"), &format!("Re-run booking job {}", j.id), "primary", &[("job_id", j.id.as_str())]))
            }
            @if booking != Some(BookingState::Cancelled) {
                (layout::action(&session, &url("cancel"), "Cancel the shipment", "danger", &[]))
            }
        }
        dl.facts {
            dt { "Status" } dd { (layout::status(s.status.as_str())) @if let Some(t) = &s.subtag { " " code { (t) } } }
            dt { "Booking" } dd {
                @if let Some(b) = &s.booking {
                    (layout::status(b.state.as_str())) " · " (b.attempts) " attempt(s)"
                    @if let Some(e) = &b.last_error { " · last error: " code { (e) } }
                } @else { "—" }
            }
            dt { "Reference" } dd { (s.reference.as_deref().unwrap_or("—")) }
            dt { "Carrier" } dd { (s.carrier) " · connection " code { (s.connection_id) } }
            dt { "Tracking number" } dd.mono { (s.tracking_number.as_deref().unwrap_or("—")) }
            dt { "Carrier status" } dd { (s.carrier_status.as_deref().unwrap_or("—")) }
            dt { "Estimated delivery" } dd { (layout::time_opt(s.estimated_delivery.as_ref())) }
            dt { "Created" } dd { (layout::time(&s.created_at)) }
            dt { "Updated" } dd { (layout::time(&s.updated_at)) }
        }
        @if !jobs.is_empty() {
            h2 { "Booking jobs" }
            table.stack {
                thead { tr { th { "Job" } th { "State" } th { "Attempts" } th { "Last error" } th { "Updated" } } }
                tbody { @for j in &jobs {
                    tr {
                        td.mono data-label="Job" { (j.id) }
                        td data-label="State" { (layout::status(&j.state)) }
                        td data-label="Attempts" { (j.attempts) " / " (j.max_attempts) }
                        td data-label="Last error" { (j.last_error.as_deref().unwrap_or("—")) }
                        td data-label="Updated" { (layout::time(&j.updated_at)) }
                    }
                } }
            }
        }
        h2 { "Timeline" }
        @if entries.is_empty() { p.muted { "Nothing yet." } }
        ol.timeline { @for e in &entries { li { (entry(e, &session)) } } }
    };
    layout::page(&format!("Shipment {}", s.id), "/console/shipments", &session, body)
}

fn json_text(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn entry(e: &Entry, session: &Session) -> Markup {
    html! {
        (layout::time(&e.at())) " "
        @match e {
            Entry::Event(ev) => {
                span.kind { "tracking" }
                @if let Some(st) = ev.status { (layout::status(st.as_str())) } @else { span.muted { "no status" } }
                " " (ev.message.as_deref().or(ev.raw_text.as_deref()).unwrap_or(""))
                @if let Some(code) = &ev.raw_code { " " code { (code) } }
                span.muted { " via " (ev.source) }
                @if let Some(loc) = &ev.location { details { summary { "Location" } pre { (json_text(loc)) } } }
            }
            Entry::History(h) => {
                span.kind { "history" }
                strong { (h.action) } " by " (h.actor_type)
                @if let Some(a) = &h.actor_id { " " code { (a) } }
                @if !h.detail.is_null() && h.detail != serde_json::json!({}) {
                    details { summary { "Detail" } pre { (json_text(&h.detail)) } }
                }
            }
            Entry::Exchange(x) => {
                span.kind { "carrier call" }
                code { (x.method) " " (x.url) } " → "
                @if let Some(st) = x.response_status { (st) } @else { "no answer" }
                span.muted { " · " (x.operation) " · " (x.duration_ms) " ms" }
                @if let Some(err) = &x.error { " · " span.st.st-bad { (err) } }
                details {
                    summary { "Request and answer (redacted as stored)" }
                    pre { (x.request_body.as_deref().unwrap_or("(no body)")) }
                    pre { (x.response_body.as_deref().unwrap_or("(no body)")) }
                }
            }
            Entry::Delivery(d) => {
                span.kind { "webhook" }
                (d.event_type) " to endpoint " code { (d.endpoint_id) } " "
                (layout::status(&d.status))
                span.muted { " · " (d.attempts.len()) " attempt(s)" }
                @if let Some(code) = d.last_status { " · last answer " (code) }
                " " (layout::action(session, &format!("/console/webhooks/deliveries/{}/retry", d.id), "Retry", "", &[]))
                @if !d.attempts.is_empty() {
                    details {
                        summary { "Attempts" }
                        table { tbody { @for a in &d.attempts {
                            tr {
                                td { "#" (a.attempt) } td { (layout::time(&a.started_at)) }
                                td { @if let Some(s) = a.response_status { (s) } @else { "—" } }
                                td { (a.error_code.as_deref().unwrap_or("ok")) } td { (a.duration_ms) " ms" }
                                td.mono { (a.response_excerpt.as_deref().unwrap_or("")) }
                            }
                        } } }
                    }
                }
            }
        }
    }
}

pub async fn act(
    State(state): State<AppState>,
    Path((id, what)): Path<(String, String)>,
    Verified { session, form }: Verified,
) -> Response {
    let path = format!("/console/shipments/{id}/{what}");
    let back = |done: &str| format!("/console/shipments/{id}?done={done}");
    let caller = session.caller.clone();
    let st = &state;
    match what.as_str() {
        "refresh" => {
            action::run(st, &session, &path, &form, || async {
                service::shipments::refresh(st, &caller, &id).await.map(|_| back("refreshed"))
            })
            .await
        }
        // A pending booking is looked up at the carrier and booked if it is not there
        // (the refresh workflow does exactly that for a pending shipment).
        "retry-booking" => {
            action::run(st, &session, &path, &form, || async {
                service::shipments::refresh(st, &caller, &id).await.map(|_| back("booking_retried"))
            })
            .await
        }
        "rerun-job" => {
            let Some(job) = form.get("job_id").map(str::to_owned) else {
                return layout::invalid("job_id", "is required", &session).into_response();
            };
            action::run(st, &session, &path, &form, || async {
                // Only this shipment's booking jobs are offered; any other id is not found.
                let jobs = service::jobs::booking_jobs_of(st, &caller, &id).await?;
                if !jobs.iter().any(|j| j.id == job) {
                    return Err(Error::NotFound("job"));
                }
                service::jobs::retry(st, &caller, &job).await.map(|_| back("job_rerun"))
            })
            .await
        }
        "cancel" => {
            action::run(st, &session, &path, &form, || async {
                service::shipments::cancel(st, &caller, &id).await.map(|_| back("cancelled"))
            })
            .await
        }
        _ => layout::message_in(axum::http::StatusCode::NOT_FOUND, "Not found", "No such action.", Some(&session)),
    }
}
