//! Inbound: per connection of a carrier that pushes, the latest pushes received and the
//! latest refused (docs/console.md "Inbound").

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::layout;
use super::session::Signed;
use crate::app::AppState;
use crate::service::overview;

const LATEST: i64 = 20;

pub async fn page(State(state): State<AppState>, Signed(session): Signed) -> Response {
    let logs = match overview::inbound(&state, &session.caller, LATEST).await {
        Ok(l) => l,
        Err(e) => return layout::service_error(e, &session),
    };
    let body = html! {
        h1 { "Inbound" }
        p.muted { "Pushes carriers sent to this gateway, per connection: the latest " (LATEST) " received and the latest refused (wrong credentials, or a body the carrier's format refuses; kept 7 days)." }
        @if logs.is_empty() { p.muted { "No connection of a carrier that pushes." } }
        @for l in &logs {
            h2 { (l.connection.name) " " span.muted { (l.connection.carrier) " · " span.mono { (l.connection.id) } } }
            @if let Some(u) = &l.connection.inbound_url { p { "Pushes to " code { (u) } } }
            h3 { "Received" }
            @if l.pushes.is_empty() { p.muted { "None yet." } } @else {
                table.stack { thead { tr { th { "Received" } th { "Push" } th { "Shipment" } } }
                    tbody { @for p in &l.pushes { tr {
                        td data-label="Received" { (layout::time(&p.received_at)) }
                        td.mono data-label="Push" { (p.key) @if let Some(w) = p.what.as_deref().map(str::trim).filter(|w| !w.is_empty()) { " · " (w) } }
                        td data-label="Shipment" { @if let Some(s) = &p.shipment_id { a.mono href={ "/console/shipments/" (s) } { (s) } } @else { span.muted { "no shipment" } } }
                    } } } }
            }
            h3 { "Refused" }
            @if l.refusals.is_empty() { p.muted { "None." } } @else {
                table.stack { thead { tr { th { "At" } th { "Why" } th { "Detail" } } }
                    tbody { @for r in &l.refusals { tr {
                        td data-label="At" { (layout::time(&r.at)) }
                        td data-label="Why" { (layout::status("refused")) " " (r.kind) }
                        td data-label="Detail" { (r.detail) }
                    } } } }
            }
        }
    };
    layout::page("Inbound", "/console/inbound", &session, body)
}
