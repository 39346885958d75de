//! Console actions: a POST form is accepted only from this site (`Origin`,
//! `Sec-Fetch-Site`) with the session's CSRF token; it carries an idempotency key, so
//! the same form sent twice (a double click, a resent POST) runs the workflow once,
//! through the same idempotency store as the API's `Idempotency-Key`. Refusals are a
//! 403 page that says why.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use super::layout::{self, Refusal};
use super::session::Signed;
use crate::app::AppState;
use crate::service;
use crate::service::idempotency::{self, Claim};
use crate::service::sessions::Session;

/// A signed-in action's request: the session, and its form once the origin and the CSRF
/// token are checked. Every action handler takes this as its last argument, so none can
/// forget a check.
pub struct Verified {
    pub session: Session,
    pub form: Form,
}

impl FromRequest<AppState> for Verified {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Signed(session) =
            Signed::from_request_parts(&mut parts, state).await.map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let body =
            Bytes::from_request(Request::from_parts(parts, body), state).await.map_err(IntoResponse::into_response)?;
        let form = Form::verified(state, &session, &headers, &body).map_err(IntoResponse::into_response)?;
        Ok(Verified { session, form })
    }
}

/// A parsed form body.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The form of a signed-in action, once its origin and CSRF token are checked.
    pub fn verified(state: &AppState, session: &Session, headers: &HeaderMap, body: &[u8]) -> Result<Form, Refusal> {
        if !same_origin(headers, state) {
            return Err(forbidden(session, "This form was sent from another site; nothing was done."));
        }
        let form = Form::parse(body);
        match form.get("csrf") {
            Some(t) if session.csrf_ok(t) => Ok(form),
            Some(_) => Err(forbidden(
                session,
                "The form's security token does not match this session; reload the page and try again.",
            )),
            None => Err(forbidden(session, "The form carries no security token; nothing was done.")),
        }
    }

    /// What identifies the request for its idempotency key: the path and every field
    /// but the token (which is the session's, not the request's).
    fn fingerprint(&self, path: &str) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(path.as_bytes());
        let mut fields: Vec<&(String, String)> = self.0.iter().filter(|(k, _)| k != "csrf").collect();
        fields.sort();
        for (k, v) in fields {
            h.update([0]);
            h.update(k.as_bytes());
            h.update([1]);
            h.update(v.as_bytes());
        }
        h.finalize().to_vec()
    }
}

fn forbidden(session: &Session, detail: &str) -> Refusal {
    Refusal::from(layout::message_in(StatusCode::FORBIDDEN, "Refused", detail, Some(session)))
}

/// Whether a form comes from this site: a browser says where a POST comes from
/// (`Sec-Fetch-Site`, `Origin`); an Origin must be this host or `public_base_url`.
/// A request that names neither (not a browser) still needs the CSRF token.
pub fn same_origin(headers: &HeaderMap, state: &AppState) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = text(header::ORIGIN.as_str()) else { return true };
    let host = text(header::HOST.as_str()).unwrap_or("");
    let ours = [format!("http://{host}"), format!("https://{host}")];
    ours.iter().any(|o| o == origin) || state.config.public_base_url.as_deref().is_some_and(|p| p == origin)
}

/// Run an action once per idempotency key: `work` returns where to go after it (a
/// page with its notice); a replay of a finished key goes there again without
/// running anything.
pub async fn run<F, Fut>(state: &AppState, session: &Session, path: &str, form: &Form, work: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = service::Result<String>>,
{
    let tenant = session.caller.tenant_id.as_str();
    let Some(idem) =
        form.get("idem").filter(|k| !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric()))
    else {
        return layout::invalid("idem", "the form carries no idempotency key; reload the page", session)
            .into_response();
    };
    let key = format!("console:{idem}");
    match idempotency::claim(state, tenant, &key, &form.fingerprint(path)).await {
        Ok(Claim::Replay(kept)) => {
            let to = kept.headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.clone());
            return Redirect::to(to.as_deref().unwrap_or("/console/")).into_response();
        }
        Ok(Claim::Run) => {}
        Err(e) => return layout::service_error(e, session),
    }
    match work().await {
        Ok(to) => {
            let headers = [("location".to_owned(), to.clone())];
            if let Err(e) = idempotency::complete(state, tenant, &key, 303, &headers, b"").await {
                tracing::warn!(error = %e, "console action done but its idempotency key was not kept");
            }
            Redirect::to(&to).into_response()
        }
        Err(e) => {
            if let Err(e) = idempotency::release(state, tenant, &key).await {
                tracing::warn!(error = %e, "console action idempotency key not released");
            }
            layout::service_error(e, session)
        }
    }
}
