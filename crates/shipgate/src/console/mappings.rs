//! Status mappings: the defaults and the tenant's overrides, the codes seen without a
//! mapping with their counts, and a form to map one in place (docs/console.md).

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;

use super::action::{self, Verified};
use super::layout;
use super::session::Signed;
use crate::app::AppState;
use crate::domain::Status;
use crate::service::status_mappings::{self, MappingOverride};

#[derive(Debug, Default, serde::Deserialize)]
pub struct MappingsQuery {
    done: Option<String>,
}

pub async fn page(State(state): State<AppState>, Signed(session): Signed, q: Query<MappingsQuery>) -> Response {
    let (mappings, unmapped) = match (
        status_mappings::list(&state, &session.caller, None).await,
        status_mappings::unmapped(&state, &session.caller, None).await,
    ) {
        (Ok(m), Ok(u)) => (m, u),
        (Err(e), _) | (_, Err(e)) => return layout::service_error(e, &session),
    };
    let body = html! {
        h1 { "Status mappings" }
        (layout::notice(q.done.as_deref(), None))
        h2 { "Unmapped codes" }
        p.muted { "Codes a carrier sent that map to no status: the shipment kept its status. Mapping one applies to scans received from now on." }
        @if unmapped.is_empty() { p.muted { "None." } }
        div.scroll { table.stack {
            thead { tr { th { "Carrier" } th { "Code" } th { "Last text" } th { "Seen" } th { "Last seen" } th { "Map to" } } }
            tbody { @for u in &unmapped { tr {
                td data-label="Carrier" { (u.carrier) }
                td.mono data-label="Code" { (u.code) }
                td data-label="Last text" { (u.last_text.as_deref().unwrap_or("")) }
                td data-label="Seen" { (u.count) " times" }
                td data-label="Last seen" { (layout::time(&u.last_seen)) }
                td data-label="Map to" {
                    form.inline method="post" action="/console/status-mappings" {
                        input type="hidden" name="csrf" value=(session.csrf_token());
                        input type="hidden" name="idem" value=(uuid::Uuid::new_v4().simple().to_string());
                        input type="hidden" name="carrier" value=(u.carrier);
                        input type="hidden" name="code" value=(u.code);
                        input type="hidden" name="description" value=(u.last_text.as_deref().unwrap_or(""));
                        label { span.muted { "status " }
                            select name="status" aria-label={ "Status for code " (u.code) } {
                                @for s in Status::ALL { option value=(s.as_str()) { (s.as_str()) } }
                            }
                        }
                        " "
                        button.primary type="submit" { "Map" }
                    }
                }
            } } }
        } }
        h2 { "Mappings" }
        div.scroll { table.stack {
            thead { tr { th { "Carrier" } th { "Code" } th { "After code" } th { "Status" } th { "Subtag" } th { "Description" } th { "Source" } } }
            tbody { @for m in &mappings { tr {
                td data-label="Carrier" { (m.carrier) }
                td.mono data-label="Code" { (m.code) }
                td.mono data-label="After code" { (m.after_code) }
                td data-label="Status" { (layout::status(m.status.as_str())) }
                td.mono data-label="Subtag" { (m.subtag.as_deref().unwrap_or("")) }
                td data-label="Description" { (m.description) }
                td data-label="Source" { (m.source) }
            } } }
        } }
    };
    layout::page("Status mappings", "/console/status-mappings", &session, body)
}

pub async fn map(State(state): State<AppState>, Verified { session, form }: Verified) -> Response {
    let field = |name: &str| form.get(name).map(str::trim).unwrap_or("").to_owned();
    let mapping = MappingOverride {
        carrier: field("carrier"),
        code: field("code"),
        after_code: field("after_code"),
        status: field("status"),
        subtag: Some(field("subtag")).filter(|s| !s.is_empty()),
        description: field("description"),
    };
    let caller = session.caller.clone();
    action::run(&state, &session, "/console/status-mappings", &form, || async {
        status_mappings::put(&state, &caller, std::slice::from_ref(&mapping))
            .await
            .map(|_| "/console/status-mappings?done=mapped".to_owned())
    })
    .await
}
