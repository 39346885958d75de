//! Bearer API keys on every `/v1` route: the middleware reads `Authorization: Bearer`,
//! asks the service layer who the key stands for (`service::auth`, which holds the
//! keys' rules and their cache), and puts the [`Caller`] in the request for the
//! handlers' extractor.
//!
//! Failed authentications (docs/quality.md security: "failures rate-limited", "without ever
//! refusing valid credentials") are counted per client address ([`client_ip`]); past
//! the limit the *failing* requests are answered 429 with `Retry-After`. The key is
//! always checked first, so a valid key is never refused by the throttle (a client
//! sharing an address with an attacker keeps working). Guessing is hopeless anyway
//! (190-bit secrets); the throttle bounds the work a guesser causes and tells careless
//! clients to stop.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use secrecy::SecretString;

use crate::app::AppState;
use crate::error::ApiError;
use crate::service::{self, Caller};

/// The client's address: the connection's peer, or, when that peer is a configured
/// trusted proxy, the right-most `X-Forwarded-For` entry that is not itself a trusted
/// proxy (entries left of it were written by the client and prove nothing). An
/// unparsable entry stops the walk at the last address known good. Unknown (no
/// connection info, as in a router served without it) reads as 0.0.0.0.
pub fn client_ip(extensions: &axum::http::Extensions, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let entries = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    service::auth::client_address(peer, &entries, trusted)
}

/// Attach `Retry-After: secs`.
pub fn with_retry_after(mut resp: Response, secs: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Middleware for every `/v1` route.
pub async fn require_api_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(|t| SecretString::from(t.trim().to_owned()));
    // No key at all costs us nothing (no lookup), so it is not counted against the client.
    let Some(token) = token else { return ApiError::Unauthorized.into_response() };
    match service::auth::authenticate(&state, &token).await {
        Ok(Some(caller)) => {
            tracing::Span::current().record("tenant_id", caller.tenant_id.as_str());
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => ApiError::from(e).into_response(),
        Ok(None) => {
            let ip = client_ip(req.extensions(), req.headers(), &state.config.trusted_proxies);
            match service::auth::note_failure(&state, ip) {
                None => ApiError::Unauthorized.into_response(),
                Some(secs) => {
                    metrics::counter!("shipgate_auth_throttled_total", "kind" => "api_key").increment(1);
                    let e = ApiError::client(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        "Too many failed authentications",
                        "too many invalid API keys from this address; retry later with a valid key",
                    );
                    with_retry_after(e.into_response(), secs)
                }
            }
        }
    }
}

/// The caller, for handlers: set by [`require_api_key`] on every `/v1` request.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(peer: &str, xff: &[&str], trusted: &[&str]) -> String {
        let mut ext = axum::http::Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::new(peer.parse().expect("peer"), 4000)));
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).expect("header"));
        }
        let trusted: Vec<IpNet> = trusted.iter().map(|n| n.parse().expect("net")).collect();
        client_ip(&ext, &h, &trusted).to_string()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        // No trusted proxy: the header is the client's own claim.
        assert_eq!(client("203.0.113.9", &["1.1.1.1"], &[]), "203.0.113.9");
        // From an untrusted peer: ignored even when some proxy is configured.
        assert_eq!(client("203.0.113.9", &["1.1.1.1"], &["10.0.0.0/8"]), "203.0.113.9");
        // Behind one trusted proxy: the right-most entry.
        assert_eq!(client("10.0.0.2", &["6.6.6.6, 198.51.100.7"], &["10.0.0.0/8"]), "198.51.100.7");
        // Two trusted hops (also across header lines): skip the trusted ones.
        assert_eq!(client("10.0.0.2", &["6.6.6.6, 198.51.100.7", "10.0.0.3"], &["10.0.0.0/8"]), "198.51.100.7");
        // A trusted proxy with no header, or garbage where the client should be.
        assert_eq!(client("10.0.0.2", &[], &["10.0.0.0/8"]), "10.0.0.2");
        assert_eq!(client("10.0.0.2", &["198.51.100.7, not-an-ip"], &["10.0.0.0/8"]), "10.0.0.2");
        assert_eq!(client("10.0.0.2", &["[2001:db8::1]:443"], &["10.0.0.0/8"]), "2001:db8::1");
    }
}
