//! Connections: list, verify, and their settings (never their secrets: only the names
//! of the credential fields that are set).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::html;

use super::action::{self, Verified};
use super::layout;
use super::session::Signed;
use crate::app::AppState;
use crate::service::{self, PageRequest};

#[derive(Debug, Default, serde::Deserialize)]
pub struct ConnectionsQuery {
    done: Option<String>,
}

pub async fn list(State(state): State<AppState>, Signed(session): Signed, q: Query<ConnectionsQuery>) -> Response {
    let list = match service::connections::list(&state, &session.caller, &PageRequest { limit: 100, after: None }).await
    {
        Ok(p) => p.items,
        Err(e) => return layout::service_error(e, &session),
    };
    let body = html! {
        h1 { "Connections" }
        (layout::notice(q.done.as_deref(), None))
        @if list.is_empty() { p.muted { "No connections. Create one with POST /v1/connections." } }
        div.scroll { table.stack {
            thead { tr { th { "Connection" } th { "Carrier" } th { "State" } th { "Settings" } th { "Credentials set" } th { "Verified" } th { "" } } }
            tbody { @for c in &list { tr {
                td data-label="Connection" { strong { (c.name) } br; span.mono.muted { (c.id) }
                    @if let Some(u) = &c.base_url { br; span.mono.muted { (u) } }
                    @if let Some(u) = &c.inbound_url { br; span.muted { "pushes to " } span.mono { (u) } } }
                td data-label="Carrier" { (c.carrier) }
                td data-label="State" { (layout::status(&c.status)) @if let Some(d) = &c.status_detail { br; span.muted { (d) } } }
                td data-label="Settings" {
                    @if c.settings.is_empty() { span.muted { "none" } }
                    @for (k, v) in &c.settings { div { code { (k) } " = " code { (v) } } }
                }
                td data-label="Credentials set" { (c.credentials_set.join(", ")) }
                td data-label="Verified" { (layout::time_opt(c.verified_at.as_ref())) }
                td { (layout::action(&session, &format!("/console/connections/{}/verify", c.id), "Verify", "primary", &[])) }
            } } }
        } }
    };
    layout::page("Connections", "/console/connections", &session, body)
}

pub async fn verify(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Verified { session, form }: Verified,
) -> Response {
    let caller = session.caller.clone();
    let path = format!("/console/connections/{id}/verify");
    action::run(&state, &session, &path, &form, || async {
        service::connections::verify(&state, &caller, &id)
            .await
            .map(|_| "/console/connections?done=verified".to_owned())
    })
    .await
}
