//! Jobs: the dead letter with each job's last error, and re-run (docs/console.md "Jobs").

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::action::{self, Verified};
use super::layout;
use super::session::Signed;
use crate::app::AppState;
use crate::service::sessions::Session;
use crate::service::views::Job;
use crate::service::{self, PageRequest};

const STATES: [&str; 4] = ["dead", "queued", "running", "succeeded"];

#[derive(Debug, Default, serde::Deserialize)]
pub struct JobsQuery {
    state: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

pub fn table(jobs: &[Job], session: &Session) -> Markup {
    html! {
        div.scroll { table.stack {
            thead { tr { th { "Job" } th { "Kind" } th { "State" } th { "Attempts" } th { "Last error" } th { "Updated" } th { "" } } }
            tbody { @for j in jobs { tr {
                td.mono data-label="Job" { (j.id) }
                td data-label="Kind" { (j.kind)
                    @if let Some(s) = j.payload.get("shipment_id").and_then(|v| v.as_str()) {
                        " · " a.mono href={ "/console/shipments/" (s) } { (s) }
                    }
                }
                td data-label="State" { (layout::status(&j.state)) }
                td data-label="Attempts" { (j.attempts) " / " (j.max_attempts) }
                td data-label="Last error" { (j.last_error.as_deref().unwrap_or("—")) }
                td data-label="Updated" { (layout::time(&j.updated_at)) }
                td { @if j.state == "dead" { (layout::action(session, &format!("/console/jobs/{}/rerun", j.id), "Re-run", "primary", &[])) } }
            } } }
        } }
    }
}

pub async fn list(State(state): State<AppState>, Signed(session): Signed, q: Query<JobsQuery>) -> Response {
    let q = q.0;
    let job_state = q.state.as_deref().filter(|s| !s.is_empty()).unwrap_or("dead");
    if !STATES.contains(&job_state) {
        return layout::invalid("state", "is not a job state (dead, queued, running, succeeded)", &session)
            .into_response();
    }
    let after = match q.after.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => match a.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return layout::invalid("after", "is not a page position", &session).into_response(),
        },
    };
    let page =
        match service::jobs::list(&state, &session.caller, Some(job_state), &PageRequest { limit: 50, after }).await {
            Ok(p) => p,
            Err(e) => return layout::service_error(e, &session),
        };
    let body = html! {
        h1 { "Jobs" }
        (layout::notice(q.done.as_deref(), None))
        form.filters method="get" action="/console/jobs" {
            label { "State" select name="state" { @for s in STATES { option value=(s) selected[s == job_state] { (s) } } } }
            button type="submit" { "Show" }
        }
        @if page.items.is_empty() { p.muted { "No " (job_state) " jobs." } } @else { (table(&page.items, &session)) }
        @if let Some(n) = page.next { p { a rel="next" href={ "/console/jobs?state=" (job_state) "&after=" (n) } { "Next page" } } }
    };
    layout::page("Jobs", "/console/jobs", &session, body)
}

pub async fn rerun(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Verified { session, form }: Verified,
) -> Response {
    let caller = session.caller.clone();
    let path = format!("/console/jobs/{id}/rerun");
    action::run(&state, &session, &path, &form, || async {
        service::jobs::retry(&state, &caller, &id).await.map(|_| "/console/jobs?done=job_rerun".to_owned())
    })
    .await
}
