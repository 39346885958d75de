//! Sign-in, sign-out and the session every other page requires (docs/console.md
//! "Sign-in and sessions"). The cookie is `HttpOnly; SameSite=Strict; Path=/console`,
//! and `Secure` when the console is reached over HTTPS (`public_base_url` is https, or
//! a trusted proxy says `X-Forwarded-Proto: https`).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use secrecy::{ExposeSecret, SecretString};

use super::action::{Form, same_origin};
use super::layout::{self, Refusal};
use crate::app::AppState;
use crate::service;
use crate::service::sessions::{self, Session, SignIn};

pub const COOKIE: &str = "sg_console";

/// The signed-in session of a console request; without one, a GET is sent to the
/// sign-in page (and comes back after it), anything else is refused.
pub struct Signed(pub Session);

impl FromRequestParts<AppState> for Signed {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let value = cookie(&parts.headers, COOKIE);
        let session = match value {
            Some(v) => sessions::resume(state, &v).await.map_err(|e| {
                tracing::error!(error = %e, "console session lookup failed");
                Refusal::from(layout::message_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Something went wrong",
                    "Sessions cannot be checked right now; try again shortly.",
                ))
            })?,
            None => None,
        };
        match session {
            Some(s) => {
                tracing::Span::current().record("tenant_id", s.caller.tenant_id.as_str());
                Ok(Signed(s))
            }
            None if parts.method == axum::http::Method::GET => {
                let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/console/");
                let to = format!(
                    "/console/sign-in?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                Err(Refusal::from(Redirect::to(&to).into_response()))
            }
            None => Err(Refusal::from(layout::message_page(
                StatusCode::FORBIDDEN,
                "Signed out",
                "Your session has ended (signed out, expired, or its API key was revoked). Sign in again.",
            ))),
        }
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Where to go after signing in: a console path only (no other site, no `//host`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console/") && !n.contains("//") && !n.contains('\\') => n.to_owned(),
        _ => "/console/".to_owned(),
    }
}

#[derive(serde::Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
}

fn sign_in_form(status: StatusCode, next: &str, problem: Option<&str>) -> Response {
    let body = html! {
        div.signin {
            h1 { "Sign in" }
            p { "Sign in with one of your tenant's API keys. The console acts with that key: "
                "everything you change is recorded with its id." }
            @if let Some(p) = problem { p.problem role="alert" { (p) } }
            form method="post" action="/console/sign-in" {
                input type="hidden" name="next" value=(next);
                label for="api_key" { "API key" }
                input #api_key type="password" name="api_key" autocomplete="off" required
                    placeholder="sg_live_…" autofocus;
                button.primary type="submit" { "Sign in" }
            }
        }
    };
    layout::html_response(
        status,
        html! {
            (maud::DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { "Sign in · shipgate console" }
                    link rel="stylesheet" href="/console/assets/console.css";
                }
                body { main { (body) } }
            }
        },
    )
}

pub async fn sign_in_page(Query(q): Query<SignInQuery>) -> Response {
    sign_in_form(StatusCode::OK, &safe_next(q.next.as_deref()), None)
}

/// Whether the console is reached over HTTPS.
fn over_https(state: &AppState, headers: &HeaderMap, peer: Option<std::net::IpAddr>) -> bool {
    if state.config.public_base_url.as_deref().is_some_and(|u| u.starts_with("https://")) {
        return true;
    }
    service::auth::is_trusted_proxy(peer, &state.config.trusted_proxies)
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next_back())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn session_cookie(value: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("sg_console=; Path=/console; Max-Age=0"))
}

/// The connection's peer address, when the server recorded it.
pub struct Peer(Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

pub async fn sign_in(State(state): State<AppState>, Peer(peer): Peer, headers: HeaderMap, body: Bytes) -> Response {
    if !same_origin(&headers, &state) {
        return layout::message_page(StatusCode::FORBIDDEN, "Refused", "This form was sent from another site.");
    }
    let form = Form::parse(&body);
    let next = safe_next(form.get("next"));
    let Some(key) = form.get("api_key").map(str::trim).filter(|k| !k.is_empty()) else {
        return sign_in_form(StatusCode::UNPROCESSABLE_ENTITY, &next, Some("api_key: enter an API key"));
    };
    let key = SecretString::from(key.to_owned());
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let client = service::auth::client_address(peer, &forwarded, &state.config.trusted_proxies);
    match sessions::sign_in(&state, &key, client).await {
        Ok(SignIn::Opened(value, _)) => {
            let mut resp = Redirect::to(&next).into_response();
            let cookie = session_cookie(
                value.expose_secret(),
                state.config.console_session_max.as_secs(),
                over_https(&state, &headers, peer),
            );
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
            resp
        }
        Ok(SignIn::Refused) => sign_in_form(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That API key is not valid (unknown, revoked or mistyped)."),
        ),
        Ok(SignIn::Throttled(secs)) => {
            let mut resp = sign_in_form(
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                Some("Too many failed sign-ins from this address; wait a while and try again."),
            );
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "console sign-in failed");
            layout::message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong",
                "Sign-in is unavailable; try again shortly.",
            )
        }
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    Signed(session): Signed,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = Form::verified(&state, &session, &headers, &body) {
        return r.into_response();
    }
    if let Err(e) = sessions::sign_out(&state, &session).await {
        return layout::service_error(e, &session);
    }
    let mut resp = Redirect::to("/console/sign-in").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("sg_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}
