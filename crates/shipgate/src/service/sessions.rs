//! Console sessions (docs/console.md "Sign-in and sessions"): an API key, verified
//! exactly like the API verifies it (`auth::authenticate`, the same failed-attempt
//! throttle per client address), is exchanged for a session. The session's value is
//! 256 random bits handed to the browser once (the cookie); only its SHA-256 is stored.
//! A session ends after `console_session_idle` without use, `console_session_max`
//! after sign-in, at sign-out, or when its API key is revoked.
//!
//! Every state-changing form carries a CSRF token bound to the session: HMAC-SHA256
//! keyed with the session value (which only the cookie holds, never the database), so
//! it cannot be computed without the cookie and is checked in constant time.

use std::net::IpAddr;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::service::{Caller, Result, auth};
use crate::store;

/// A signed-in session: who it acts as and until when.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The raw session value (from the cookie), to derive the CSRF token from.
    value: SecretString,
}

/// What a sign-in attempt came to.
pub enum SignIn {
    /// Signed in: the cookie value (shown to the browser once) and the session.
    Opened(SecretString, Session),
    /// The key is not a valid key (malformed, unknown, revoked, another environment).
    Refused,
    /// Too many failed attempts from this address: wait this many seconds.
    Throttled(u64),
}

fn hash(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// Exchange an API key for a session.
pub async fn sign_in(state: &AppState, key: &SecretString, client: IpAddr) -> Result<SignIn> {
    let Some(caller) = auth::authenticate(state, key).await? else {
        return Ok(match auth::note_failure(state, client) {
            Some(secs) => {
                metrics::counter!("shipgate_auth_throttled_total", "kind" => "console").increment(1);
                SignIn::Throttled(secs)
            }
            None => SignIn::Refused,
        });
    };
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let value = SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw));
    let now = Utc::now();
    let expires_at = now + chrono::Duration::from_std(state.config.console_session_max).unwrap_or_default();
    let mut conn = state.db.acquire().await?;
    store::console::insert_session(
        &mut conn,
        &hash(value.expose_secret()),
        &caller.tenant_id,
        &caller.key_id,
        expires_at,
    )
    .await?;
    tracing::info!(tenant_id = %caller.tenant_id, key_id = %caller.key_id, "console session opened");
    let session = Session { caller, created_at: now, expires_at, value: value.clone() };
    Ok(SignIn::Opened(value, session))
}

/// The live session a cookie value stands for (and mark it used), or None.
pub async fn resume(state: &AppState, value: &str) -> Result<Option<Session>> {
    if value.is_empty() || value.len() > 64 {
        return Ok(None);
    }
    let mut conn = state.db.acquire().await?;
    let idle = state.config.console_session_idle.as_secs_f64();
    let row = store::console::touch_session(&mut conn, &hash(value), idle).await?;
    Ok(row.map(|r| Session {
        caller: Caller { tenant_id: r.tenant_id, key_id: r.api_key_id },
        created_at: r.created_at,
        expires_at: r.expires_at,
        value: SecretString::from(value.to_owned()),
    }))
}

/// Sign out: the session is revoked and its cookie no longer works.
pub async fn sign_out(state: &AppState, session: &Session) -> Result<()> {
    let mut conn = state.db.acquire().await?;
    store::console::revoke_session(&mut conn, &hash(session.value.expose_secret())).await?;
    Ok(())
}

/// Forget sessions that ended more than a day ago.
pub async fn purge(state: &AppState) -> Result<u64> {
    let mut conn = state.db.acquire().await?;
    Ok(store::console::purge_ended(&mut conn).await?)
}

impl Session {
    /// The CSRF token of this session's forms.
    pub fn csrf_token(&self) -> String {
        hex::encode(self.csrf_mac().finalize().into_bytes())
    }

    /// Whether a form's token is this session's (constant-time comparison).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        let Ok(bytes) = hex::decode(presented) else { return false };
        self.csrf_mac().verify_slice(&bytes).is_ok()
    }

    fn csrf_mac(&self) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.value.expose_secret().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(b"shipgate console csrf v1");
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(value: &str) -> Session {
        Session {
            caller: Caller { tenant_id: "ten_a".into(), key_id: "keya".into() },
            created_at: Utc::now(),
            expires_at: Utc::now(),
            value: SecretString::from(value.to_owned()),
        }
    }

    #[test]
    fn a_csrf_token_is_bound_to_its_session() {
        let (a, b) = (session("value-a"), session("value-b"));
        assert!(a.csrf_ok(&a.csrf_token()));
        assert!(!a.csrf_ok(&b.csrf_token()));
        assert!(!a.csrf_ok(""));
        assert!(!a.csrf_ok("not hex"));
        let mut t = a.csrf_token();
        t.replace_range(0..2, if t.starts_with("00") { "01" } else { "00" });
        assert!(!a.csrf_ok(&t));
    }
}
