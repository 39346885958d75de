//! Overview: shipments by status over the last 14 days (SVG), what needs a look, and a
//! health line per connection.

use axum::extract::State;
use axum::response::Response;
use chrono::{Duration, NaiveDate, Utc};
use maud::html;

use super::charts;
use super::layout;
use super::session::Signed;
use crate::app::AppState;
use crate::domain::Status;
use crate::service::overview::{self, COUNT_CAP};

const DAYS: i64 = 14;

fn count(n: i64) -> String {
    if n >= COUNT_CAP { format!("{COUNT_CAP}+") } else { n.to_string() }
}

pub async fn page(State(state): State<AppState>, Signed(session): Signed) -> Response {
    let o = match overview::overview(&state, &session.caller, DAYS).await {
        Ok(o) => o,
        Err(e) => return layout::service_error(e, &session),
    };
    let today = Utc::now().date_naive();
    let days: Vec<NaiveDate> = (0..DAYS).rev().map(|i| today - Duration::days(i)).collect();
    let data: Vec<(NaiveDate, &str, i64)> = o.by_day.iter().map(|d| (d.day, d.status.as_str(), d.count)).collect();
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let totals: Vec<(&str, i64)> = statuses
        .iter()
        .map(|s| (*s, data.iter().filter(|(_, st, _)| st == s).map(|(_, _, n)| n).sum::<i64>()))
        .filter(|(_, n)| *n > 0)
        .collect();
    let body = html! {
        h1 { "Overview" }
        div.cards {
            div.card { div.n { (count(o.exceptions)) } a href="/console/shipments?status=exception" { "shipments in exception" } }
            div.card { div.n { (o.bookings.len()) } "newest bookings pending or failed" }
            div.card { div.n { (o.unmapped.len()) } a href="/console/status-mappings" { "unmapped carrier codes" } }
            div.card { div.n { (o.failing_deliveries.len()) } a href="/console/webhooks" { "failing webhook deliveries" } }
            div.card { div.n { (o.dead_jobs.len()) } a href="/console/jobs" { "dead jobs" } }
        }
        h2 { "Shipments created per day, by current status (last " (DAYS) " days, UTC)" }
        (charts::stacked_days(&days, &data, &statuses))
        p.legend {
            @if totals.is_empty() { span.muted { "No shipments in these days." } }
            @for (s, n) in &totals {
                span.key { svg width="10" height="10" aria-hidden="true" { rect width="10" height="10" fill=(charts::colour(s)) {} } " " (s) ": " (n) }
                " "
            }
        }
        h2 { "Connections (last hour)" }
        @if o.health.is_empty() { p.muted { "No connections yet." } }
        div.scroll { table.stack {
            thead { tr { th { "Connection" } th { "Breaker" } th { "Calls" } th { "Error rate" } th { "p50 / p99" } th { "Against the rate limit" } th { "Calls per 5 min" } } }
            tbody { @for h in &o.health {
                tr {
                    td data-label="Connection" { a href="/console/connections" { (h.connection.name) } " " span.muted { (h.connection.carrier) } }
                    td data-label="Breaker" { (layout::status(h.breaker)) }
                    td data-label="Calls" { (h.calls) }
                    td data-label="Error rate" {
                        @if h.calls > 0 { (format!("{:.1} %", h.errors as f64 * 100.0 / h.calls as f64)) " (" (h.errors) ")" } @else { "—" }
                    }
                    td data-label="p50 / p99" {
                        @match (h.p50_ms, h.p99_ms) {
                            (Some(a), Some(b)) => { (format!("{a:.0} ms / {b:.0} ms")) }
                            _ => { "—" }
                        }
                    }
                    td data-label="Against the rate limit" {
                        @if let Some(l) = h.limit_per_hour { (h.calls) " of " (l) " per hour" } @else { "no limit" }
                    }
                    td data-label="Calls per 5 min" { (charts::sparkline(&h.buckets, &format!("{} calls in the last hour", h.calls))) }
                }
            } }
        } }
        h2 { "Exceptions" }
        @if o.exception_list.is_empty() { p.muted { "None." } } @else { div.scroll { (super::shipments::table(&o.exception_list)) } }
        h2 { "Bookings pending or failed" }
        @if o.bookings.is_empty() { p.muted { "None." } } @else { div.scroll { (super::shipments::table(&o.bookings)) } }
        h2 { "Unmapped carrier codes" }
        @if o.unmapped.is_empty() { p.muted { "None." } } @else {
            table.stack { thead { tr { th { "Carrier" } th { "Code" } th { "Last text" } th { "Seen" } th { "Last seen" } } }
                tbody { @for u in &o.unmapped { tr {
                    td data-label="Carrier" { (u.carrier) } td.mono data-label="Code" { (u.code) }
                    td data-label="Last text" { (u.last_text.as_deref().unwrap_or("")) }
                    td data-label="Seen" { (u.count) " times" } td data-label="Last seen" { (layout::time(&u.last_seen)) }
                } } } }
        }
        h2 { "Failing webhook deliveries" }
        @if o.failing_deliveries.is_empty() { p.muted { "None." } } @else {
            (super::webhooks::deliveries_table(&o.failing_deliveries, &session))
        }
        h2 { "Dead jobs" }
        @if o.dead_jobs.is_empty() { p.muted { "None." } } @else { (super::jobs::table(&o.dead_jobs, &session)) }
        p.muted { "Counts since " (layout::time(&o.since)) "." }
    };
    layout::page("Overview", "/console/", &session, body)
}
