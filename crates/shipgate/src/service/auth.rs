//! API keys `sg_<env>_<id>_<secret>` (docs/product.md "API key"): created here, and a
//! presented key turned into the [`Caller`] it stands for. The id part is the primary
//! key we look up by; the secret is checked as SHA-256 in constant time (`subtle`).
//! Keys verified by a *successful* authentication are cached for a few seconds per
//! instance so a hot GET costs one query, not two; revocation on this instance evicts
//! at once, on other instances within `cache::KEY_TTL`.
//!
//! Every failure costs the same whether the key id exists or not: a presented key that
//! does not match the cache goes to the database, and an unknown id is compared against
//! a dummy hash, so timing does not tell which ids exist. Failures are counted per
//! client address ([`note_failure`]); the front end refuses a failing client past the
//! limit, never a valid key (the key is always checked first).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::IpNet;

use rand::Rng as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::cache::{VerifiedKey, throttle_bucket};
use crate::service::{Caller, Error, Result};
use crate::store;

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

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
pub async fn create_key(db: &PgPool, tenant_id: &str, env: &str, name: Option<&str>) -> Result<(String, SecretString)> {
    let mut conn = db.acquire().await?;
    if !store::tenants::tenant_exists(&mut conn, tenant_id).await? {
        return Err(Error::NotFound("tenant"));
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

/// The caller a presented key stands for; None when it is malformed, unknown, revoked,
/// of another environment or has the wrong secret (all answered alike).
pub async fn authenticate(state: &AppState, token: &SecretString) -> Result<Option<Caller>> {
    let Some((env, id, secret)) = parse(token.expose_secret()) else { return Ok(None) };
    let presented = hash(secret);
    // Fast path: only a key that matches a cached, just-verified one in full (env, id
    // and secret) skips the database. Anything else takes the same path below.
    if let Some(k) = state.key_cache.fresh(id)
        && k.env == env
        && bool::from(k.secret_hash.ct_eq(&presented))
    {
        return Ok(Some(Caller { tenant_id: k.tenant_id, key_id: id.to_owned() }));
    }
    // Boxed: the statement's future is kilobytes, and this function's future is built (and
    // moved) for every request, most of which the cache answers.
    let row = Box::pin(state.warm.with(async |c| store::tenants::find_api_key(c, id).await)).await?;
    let usable = row.filter(|r| r.revoked_at.is_none() && r.env == env).and_then(|r| {
        let h: [u8; 32] = r.secret_hash.as_slice().try_into().ok()?;
        Some((h, r.tenant_id))
    });
    let stored = usable.as_ref().map_or(dummy_hash(), |(h, _)| h);
    let matches = bool::from(stored.ct_eq(&presented));
    Ok(match usable {
        Some((h, tenant_id)) if matches => {
            state
                .key_cache
                .remember(id, VerifiedKey { env: env.to_owned(), secret_hash: h, tenant_id: tenant_id.clone() });
            Some(Caller { tenant_id, key_id: id.to_owned() })
        }
        _ => None,
    })
}

/// The client's address, whichever front end asks: the connection's `peer`, or, when
/// that peer is a configured trusted proxy, the right-most `X-Forwarded-For` entry
/// (`forwarded_for`, in header order) that is not itself a trusted proxy (entries left
/// of it were written by the client and prove nothing). An unparsable entry stops the
/// walk at the last address known good. Unknown (no peer) reads as 0.0.0.0.
pub fn client_address(peer: Option<IpAddr>, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let Some(peer) = peer else { return IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if trusted.is_empty() || !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for entry in forwarded_for.iter().rev() {
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

/// Whether `peer` is one of the trusted proxies (whose `X-Forwarded-*` headers are believed).
pub fn is_trusted_proxy(peer: Option<IpAddr>, trusted: &[IpNet]) -> bool {
    peer.is_some_and(|p| trusted.iter().any(|n| n.contains(&p)))
}

/// Count a failed authentication from `ip`: Some(seconds to wait) once the address is
/// past the limit, None while it may simply be refused.
pub fn note_failure(state: &AppState, ip: IpAddr) -> Option<u64> {
    state.key_cache.failures.fail(throttle_bucket(ip))
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
}
