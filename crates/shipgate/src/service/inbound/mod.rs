//! Carrier pushes: who may push (every carrier whose descriptor has an `Inbound`,
//! as a [`Receiver`]), how a push proves it is the connection's own
//! ([`Receiver::authenticate`]), and reading and storing it whatever the carrier
//! ([`ingest`]). The front end (`http::inbound`) reads the request, hands it over and
//! answers the way the carrier wants to be answered.
//!
//! Credential checks run in constant time against a per-connection verifier kept in
//! memory for a few seconds (SHA-256 of the Basic-Auth user and password, or the HMAC
//! secret), so a push costs no decrypt and no connection read while it is warm.
//!
//! Failed checks (docs/quality.md security: "failures rate-limited", "without ever refusing
//! valid credentials"):
//! - nothing is kept for a connection id that is not ours: the id's shape is checked
//!   first and the connection must exist, so request data never keys our memory;
//! - failures are counted per (connection, client address) in a bounded
//!   [`FailureThrottle`](crate::cache::FailureThrottle) whose entries end with their
//!   window;
//! - the credentials are always checked first, and only a *failing* push is throttled
//!   once its (connection, address) is past the limit: the carrier's valid pushes go
//!   through whatever anyone else sends from its address (issue: the inbound lock-out).
//!   What makes guessing hopeless is the secret's strength: generated credentials are
//!   190-bit random, customer-chosen ones must pass `carriers::inbound::secret_weakness`.
//!
//! Both caches are safe to lose (docs/architecture.md rule 12): a restart only forgets them.

mod batch;
mod group;
mod ingest;

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::cache::Verifier;
use crate::carriers::inbound::{Inbound, random_token};
pub use crate::carriers::inbound::{InboundAuth, Ingested, Push, Refusal, Replies, Reply};
use crate::carriers::{self, Carrier};
use crate::ids;
use crate::service::Result;
use crate::store;

/// One pushing carrier.
#[derive(Clone, Copy)]
pub struct Receiver {
    carrier: &'static Carrier,
    inbound: &'static Inbound,
}

/// Every carrier that pushes, in the registry's order.
pub fn receivers() -> Vec<Receiver> {
    carriers::all().iter().filter_map(|c| c.inbound.map(|inbound| Receiver { carrier: c, inbound })).collect()
}

/// Where a carrier pushes to.
pub fn inbound_path(slug: &str) -> String {
    format!("/v1/inbound/{slug}/{{connection_id}}")
}

/// The inbound URL of a connection: `public_base_url` + path when configured, else the
/// path alone. None for a carrier that does not push.
pub fn inbound_url(state: &AppState, carrier: &str, connection_id: &str) -> Option<String> {
    let carrier = carriers::get(carrier).filter(|c| c.inbound.is_some())?;
    let path = format!("/v1/inbound/{}/{connection_id}", carrier.slug);
    Some(match &state.config.public_base_url {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => path,
    })
}

/// What a push presented to prove it is the carrier's.
#[derive(Debug, Default)]
pub struct Presented<'a> {
    /// `Authorization: Basic` user and password.
    pub basic: Option<(String, String)>,
    /// The signature header's value ([`Receiver::signature_header`]).
    pub signature: Option<&'a str>,
}

/// The connection a push proved it came from.
pub struct Sender(Arc<Verifier>);

/// How a push's credentials were judged.
pub enum Authenticated {
    Sender(Sender),
    /// Missing or wrong credentials, or no such connection of this carrier.
    Refused,
    /// Refused, and its (connection, address) is past the failure limit: wait this long.
    Throttled(u64),
}

impl Receiver {
    pub fn slug(self) -> &'static str {
        self.carrier.slug
    }

    pub fn auth(self) -> InboundAuth {
        self.inbound.auth
    }

    /// Largest body read; a larger one is refused unread.
    pub fn body_limit(self) -> usize {
        self.inbound.body_limit
    }

    pub fn replies(self) -> Replies {
        self.inbound.replies
    }

    /// Whether the carrier reads every answer as an acknowledgement of its own shape.
    pub fn acknowledges(self) -> bool {
        matches!(self.inbound.replies, Replies::Acknowledgement(_))
    }

    /// Whether a connection created without credentials gets generated ones.
    pub fn generates_credentials(self) -> bool {
        self.carrier.generate_credentials.is_some()
    }

    /// The header that carries the push's signature, for carriers that sign.
    pub fn signature_header(self) -> Option<&'static str> {
        match self.inbound.auth {
            InboundAuth::HmacSha256 { header, .. } => Some(header),
            InboundAuth::Basic { .. } => None,
        }
    }

    /// The push operation as the carrier documents it (`carriers::inbound::Inbound`).
    pub fn document(self) -> utoipa::openapi::OpenApi {
        (self.inbound.openapi)()
    }

    /// Judge a push for `connection_id`: its credentials against the connection's own,
    /// in constant time, whether the connection exists or not (see the module doc).
    pub async fn authenticate(
        self,
        state: &AppState,
        connection_id: &str,
        presented: &Presented<'_>,
        body: &[u8],
        ip: IpAddr,
    ) -> Result<Authenticated> {
        let verifier = verifier(state, connection_id).await?;
        let known = verifier.is_some();
        let tenant = verifier.as_ref().map(|v| v.row.tenant_id.clone());
        let verifier = verifier.filter(|v| v.row.carrier == self.carrier.slug);
        let authentic = match self.inbound.auth {
            InboundAuth::Basic { .. } => {
                // Compared in full and in constant time (no early exit on the user),
                // against a dummy pair when the connection is unknown so that path
                // costs the same.
                let expected = verifier.as_ref().and_then(|v| v.basic).unwrap_or_else(|| *dummy_pair());
                let (gu, gp) = presented.basic.clone().unwrap_or_default();
                let matches = bool::from(sha(gu.as_bytes()).ct_eq(&expected.0) & sha(gp.as_bytes()).ct_eq(&expected.1));
                matches && verifier.as_ref().is_some_and(|v| v.basic.is_some())
            }
            InboundAuth::HmacSha256 { .. } => {
                verifier.as_ref().is_some_and(|v| hmac_matches(v.hmac_secret.as_ref(), presented.signature, body))
            }
        };
        Ok(match verifier.filter(|_| authentic) {
            Some(v) => Authenticated::Sender(Sender(v)),
            // Counted only against a connection that exists; an unknown id keeps nothing.
            None => match known.then(|| state.inbound.note_failure(connection_id, ip)).flatten() {
                Some(secs) => Authenticated::Throttled(secs),
                None => {
                    if let Some(tenant) = &tenant {
                        record_refusal(state, tenant, connection_id, "authentication", "credentials did not match")
                            .await;
                    }
                    Authenticated::Refused
                }
            },
        })
    }
}

/// What came of an authenticated push.
#[derive(Debug)]
pub enum Received {
    /// Stored (or a duplicate): the carrier may forget it.
    Stored(Ingested),
    /// The carrier's parser refused the body; nothing is stored.
    Refused(Refusal),
}

/// Read an authenticated push from `sender` with its carrier's parser (`raw`: the body
/// as received, a JSON object free of NUL characters) and store it. Returns after
/// COMMIT: the carrier may be told it was accepted.
pub async fn ingest(state: &AppState, rx: Receiver, sender: &Sender, raw: &Value) -> Result<Received> {
    let push = match (rx.inbound.parse)(raw) {
        Ok(push) => push,
        Err(refusal) => {
            let row = &sender.0.row;
            let detail = match &refusal {
                Refusal::Reason(r) => r.clone(),
                Refusal::Json { path, error } => format!("{path}: {error}"),
            };
            record_refusal(state, &row.tenant_id, &row.id, "body", &detail).await;
            return Ok(Received::Refused(refusal));
        }
    };
    Ok(Received::Stored(match push {
        Push::Scan(scan) => batch::submit(state, sender.0.clone(), scan, raw).await?,
        Push::Tracking(update) => ingest::ingest_tracking(state, &sender.0.row, &update, raw).await?,
    }))
}

/// Keep a refused push for the console's Inbound page; losing it only costs a line there.
async fn record_refusal(state: &AppState, tenant: &str, connection_id: &str, kind: &str, detail: &str) {
    let result = async {
        let mut conn = state.db.acquire().await?;
        store::inbound_log::record_refusal(&mut conn, tenant, connection_id, kind, detail).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(connection_id, error = %e, "inbound refusal not recorded");
    }
}

fn sha(s: &[u8]) -> [u8; 32] {
    Sha256::digest(s).into()
}

/// The verifier for a connection id, from the cache or the database. None when there
/// is no such (live) connection.
async fn verifier(state: &AppState, id: &str) -> Result<Option<Arc<Verifier>>> {
    if !ids::is_id("con", id) {
        return Ok(None);
    }
    if let Some(v) = state.inbound.fresh(id) {
        return Ok(Some(v));
    }
    let mut conn = state.db.acquire().await?;
    let Some(row) = store::inbound::connection_by_id(&mut conn, id).await? else { return Ok(None) };
    drop(conn);
    let creds = match state.credentials(&row) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(connection_id = %id, error = %e, "inbound connection credentials cannot be read");
            return Ok(None);
        }
    };
    let (basic, hmac_secret) = match carriers::get(&row.carrier).and_then(|c| c.inbound).map(|i| i.auth) {
        Some(InboundAuth::Basic { user, password }) => match (creds.get(user), creds.get(password)) {
            (Some(u), Some(p)) => (Some((sha(u.expose_secret().as_bytes()), sha(p.expose_secret().as_bytes()))), None),
            _ => (None, None),
        },
        Some(InboundAuth::HmacSha256 { secret, .. }) => (None, creds.get(secret).cloned()),
        None => (None, None),
    };
    let v = Arc::new(Verifier { basic, hmac_secret, row });
    state.inbound.remember(id, v.clone());
    Ok(Some(v))
}

/// Whether `signature` is base64(HMAC-SHA256(body, secret)), compared in constant time.
fn hmac_matches(secret: Option<&SecretString>, signature: Option<&str>, body: &[u8]) -> bool {
    let (Some(secret), Some(sig)) = (secret, signature) else { return false };
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig.trim()) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else { return false };
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&sig).is_ok()
}

/// Stands in for a connection's credentials when the id is unknown.
fn dummy_pair() -> &'static ([u8; 32], [u8; 32]) {
    static DUMMY: std::sync::OnceLock<([u8; 32], [u8; 32])> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| (sha(random_token(16).as_bytes()), sha(random_token(32).as_bytes())))
}
