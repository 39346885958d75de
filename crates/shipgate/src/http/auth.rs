//! Bearer API keys `sg_<env>_<id>_<secret>` (PRODUCT.md "API key"). The id part is
//! the primary key we look up by; the secret is checked as SHA-256 in constant time
//! (`subtle`). Keys verified by a *successful* request are cached for a few seconds per
//! instance so a hot GET costs one query, not two; revocation on this instance evicts
//! at once, on other instances within `cache::KEY_TTL` (the cache and the throttle
//! live in [`crate::cache`], held by the state).
//!
//! Failed authentications (QUALITY.md security: "failures rate-limited", "without ever
//! refusing valid credentials"):
//! - every failure costs the same whether the key id exists or not: a presented key
//!   that does not match the cache goes to the database, and an unknown id is compared
//!   against a dummy hash, so timing does not tell which ids exist;
//! - failures are counted per client address ([`client_ip`]) in a
//!   [`FailureThrottle`](crate::cache::FailureThrottle);
//!   past its limit the *failing* requests are answered 429 with `Retry-After`. The key
//!   is always checked first, so a valid key is never refused by the throttle (a
//!   client sharing an address with an attacker keeps working). Guessing is hopeless
//!   anyway (190-bit secrets); the throttle bounds the work a guesser causes and tells
//!   careless clients to stop.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use rand::Rng as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::cache::{VerifiedKey, throttle_bucket};
use crate::error::ApiError;
use crate::store;

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Who is calling: set by [`require_api_key`] on every `/v1` request.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub tenant_id: String,
    pub key_id: String,
}

/// The client's address: the connection's peer, or, when that peer is a configured
/// trusted proxy, the right-most `X-Forwarded-For` entry that is not itself a trusted
/// proxy (entries left of it were written by the client and prove nothing). An
/// unparsable entry stops the walk at the last address known good. Unknown (no
/// connection info, as in a router served without it) reads as 0.0.0.0.
pub fn client_ip(extensions: &axum::http::Extensions, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let Some(peer) = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if trusted.is_empty() || !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let entries = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for entry in entries.into_iter().rev() {
        if !is_trusted(&client) {
            break;
        }
        let parsed = entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()));
        match parsed {
            Some(ip) => client = ip,
            None => break,
        }
    }
    client
}

/// Attach `Retry-After: secs`.
pub fn with_retry_after(mut resp: Response, secs: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn random_token(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A new key: (key id, full key to show once, hash to store).
pub fn generate_key(env: &str) -> (String, SecretString, [u8; 32]) {
    let id = format!("key{}", random_token(13).to_ascii_lowercase());
    // 32 characters from 62 symbols ≈ 190 bits.
    let secret = random_token(32);
    let full = SecretString::from(format!("sg_{env}_{id}_{secret}"));
    (id, full, hash(&secret))
}

/// Create and store a key for a tenant; the full key is returned once.
pub async fn create_key(
    db: &sqlx::PgPool,
    tenant_id: &str,
    env: &str,
    name: Option<&str>,
) -> anyhow::Result<(String, SecretString)> {
    let mut conn = db.acquire().await?;
    if !store::tenants::tenant_exists(&mut conn, tenant_id).await? {
        anyhow::bail!("tenant {tenant_id} does not exist");
    }
    let (id, full, h) = generate_key(env);
    store::tenants::insert_api_key(&mut conn, &id, tenant_id, env, name, &h).await?;
    Ok((id, full))
}

/// `sg_<env>_<id>_<secret>` → (env, id, secret).
fn parse(key: &str) -> Option<(&str, &str, &str)> {
    let rest = key.strip_prefix("sg_")?;
    let mut parts = rest.splitn(3, '_');
    let (env, id, secret) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric());
    (ok(env, 16) && ok(id, 32) && ok(secret, 64)).then_some((env, id, secret))
}

/// Stands in for the stored hash when the key id is unknown, so that path does the
/// same work as a wrong secret for a known id (no early answer that times the lookup).
fn dummy_hash() -> &'static [u8; 32] {
    static DUMMY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash(&random_token(32)))
}

/// Why authentication failed: `Missing` costs us nothing (no lookup), so it is not
/// counted against the client.
enum Failure {
    Missing,
    Refused,
    Server(ApiError),
}

async fn authenticate(state: &AppState, header: Option<&str>) -> Result<AuthContext, Failure> {
    let token = header
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or(Failure::Missing)?;
    let token = SecretString::from(token.to_owned());
    let (env, id, secret) = parse(token.expose_secret()).ok_or(Failure::Refused)?;
    let presented = hash(secret);
    // Fast path: only a key that matches a cached, just-verified one in full (env, id
    // and secret) skips the database. Anything else takes the same path below.
    if let Some(k) = state.key_cache.fresh(id)
        && k.env == env
        && bool::from(k.secret_hash.ct_eq(&presented))
    {
        return Ok(AuthContext { tenant_id: k.tenant_id, key_id: id.to_owned() });
    }
    let row = async {
        let mut conn = state.db.acquire().await?;
        store::tenants::find_api_key(&mut conn, id).await
    }
    .await
    .map_err(|e| Failure::Server(e.into()))?;
    let usable = row.filter(|r| r.revoked_at.is_none() && r.env == env).and_then(|r| {
        let h: [u8; 32] = r.secret_hash.as_slice().try_into().ok()?;
        Some((h, r.tenant_id))
    });
    let stored = usable.as_ref().map_or(dummy_hash(), |(h, _)| h);
    let matches = bool::from(stored.ct_eq(&presented));
    match usable {
        Some((h, tenant_id)) if matches => {
            state
                .key_cache
                .remember(id, VerifiedKey { env: env.to_owned(), secret_hash: h, tenant_id: tenant_id.clone() });
            Ok(AuthContext { tenant_id, key_id: id.to_owned() })
        }
        _ => Err(Failure::Refused),
    }
}

/// Middleware for every `/v1` route.
pub async fn require_api_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let header = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    match authenticate(&state, header).await {
        Ok(ctx) => {
            tracing::Span::current().record("tenant_id", ctx.tenant_id.as_str());
            req.extensions_mut().insert(ctx);
            next.run(req).await
        }
        Err(Failure::Missing) => ApiError::Unauthorized.into_response(),
        Err(Failure::Server(e)) => e.into_response(),
        Err(Failure::Refused) => {
            let ip = client_ip(req.extensions(), req.headers(), &state.config.trusted_proxies);
            match state.key_cache.failures.fail(throttle_bucket(ip)) {
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

/// Extractor for handlers.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AuthContext {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<AuthContext>().cloned().ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_hash_matches() {
        let (id, full, h) = generate_key("live");
        let (env, pid, secret) = parse(full.expose_secret()).expect("parses");
        assert_eq!((env, pid), ("live", id.as_str()));
        assert_eq!(hash(secret), h);
        assert!(parse("sg_live_abc").is_none());
        assert!(parse("Bearer sg_live_a_b").is_none());
        assert!(parse("sg_live_a_b-c").is_none());
    }

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
