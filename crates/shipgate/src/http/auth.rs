//! Bearer API keys `sg_<env>_<id>_<secret>` (PRODUCT.md "API key"). The id part is
//! the primary key we look up by; the secret is checked as SHA-256 in constant time
//! (`subtle`). Verified keys are cached for a few seconds per instance so a hot GET
//! costs one query, not two; revocation on this instance evicts at once, on other
//! instances within `CACHE_TTL`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::error::ApiError;
use crate::store;

const CACHE_TTL: Duration = Duration::from_secs(5);
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Who is calling: set by [`require_api_key`] on every `/v1` request.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub tenant_id: String,
    pub key_id: String,
}

/// key id → (verified at, secret hash, tenant id).
type CachedKey = (Instant, [u8; 32], String);

#[derive(Default)]
pub struct KeyCache(Mutex<HashMap<String, CachedKey>>);

impl KeyCache {
    pub fn evict(&self, key_id: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(key_id);
        }
    }
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

async fn authenticate(state: &AppState, header: Option<&str>) -> Result<AuthContext, ApiError> {
    let token = header
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    let token = SecretString::from(token.to_owned());
    let (env, id, secret) = parse(token.expose_secret()).ok_or(ApiError::Unauthorized)?;
    let presented = hash(secret);
    let cached = state.key_cache.0.lock().ok().and_then(|m| m.get(id).cloned());
    let (stored_hash, tenant_id) = match cached {
        Some((at, h, t)) if at.elapsed() < CACHE_TTL => (h, t),
        _ => {
            let mut conn = state.db.acquire().await?;
            let row = store::tenants::find_api_key(&mut conn, id).await?.ok_or(ApiError::Unauthorized)?;
            if row.revoked_at.is_some() || row.env != env {
                return Err(ApiError::Unauthorized);
            }
            let h: [u8; 32] = row.secret_hash.as_slice().try_into().map_err(|_| ApiError::Unauthorized)?;
            if let Ok(mut m) = state.key_cache.0.lock() {
                if m.len() > 10_000 {
                    m.clear();
                }
                m.insert(id.to_owned(), (Instant::now(), h, row.tenant_id.clone()));
            }
            (h, row.tenant_id)
        }
    };
    if bool::from(stored_hash.ct_eq(&presented)) {
        Ok(AuthContext { tenant_id, key_id: id.to_owned() })
    } else {
        Err(ApiError::Unauthorized)
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
        Err(e) => e.into_response(),
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
}
