//! Carrier pushes, in the gateway's vocabulary: how a carrier proves a push is its own
//! ([`InboundAuth`]), what a push says once parsed ([`Push`]: a scan mapped through the
//! status-mapping table, or the carrier's whole view of a tracking), and how the
//! carrier is answered ([`Replies`]). A carrier that pushes describes this in its
//! descriptor's [`Inbound`]; `http::inbound` serves every such carrier at
//! `POST /v1/inbound/<slug>/{connection_id}` with one handler, and `service::inbound`
//! stores any push the same way.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;

use super::client::{Location, TrackingSnapshot};
use crate::domain::{FieldError, Metadata};

/// How a carrier pushes, as its descriptor says.
pub struct Inbound {
    pub auth: InboundAuth,
    /// Largest body read; a larger one is refused 413 unread.
    pub body_limit: usize,
    /// An authenticated body (a JSON object, free of NUL characters) in the gateway's
    /// vocabulary, or why it is refused (nothing is stored then).
    pub parse: fn(&Value) -> Result<Push, Refusal>,
    pub replies: Replies,
    /// The operation's OpenAPI documentation: one `post` operation (summary,
    /// description, `connection_id` parameter, request body, responses) and the schemas
    /// it references. The gateway serves and documents it at
    /// `/v1/inbound/<slug>/{connection_id}` and adds the tag and the security scheme
    /// that [`InboundAuth`] implies, so the carrier need not repeat them.
    pub openapi: fn() -> utoipa::openapi::OpenApi,
}

/// How a push is authenticated, against the connection's own credentials (never an
/// API key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundAuth {
    /// `Authorization: Basic`, compared with two credential fields.
    Basic { user: &'static str, password: &'static str },
    /// `header` holds base64(HMAC-SHA256(raw body, the `secret` credential)).
    HmacSha256 { header: &'static str, secret: &'static str },
}

impl InboundAuth {
    /// The credential that is a customer-chosen secret.
    pub fn secret_field(self) -> &'static str {
        match self {
            InboundAuth::Basic { password, .. } => password,
            InboundAuth::HmacSha256 { secret, .. } => secret,
        }
    }

    /// The secret, when it is too weak to stand against online guessing: the failure
    /// throttle never refuses valid credentials, so the secret's strength is the
    /// defence (see [`secret_weakness`]).
    pub fn weak_secret(self, credentials: &BTreeMap<String, String>) -> Vec<FieldError> {
        let field = self.secret_field();
        let Some(secret) = credentials.get(field) else { return Vec::new() };
        match secret_weakness(secret) {
            Some(why) => vec![FieldError::new(format!("credentials.{field}"), why)],
            None => Vec::new(),
        }
    }
}

/// What a push says.
#[derive(Debug, Clone)]
pub enum Push {
    /// One scan: a raw status code on one tracking number. Stored once per (connection,
    /// tracking number, scan id), mapped through the status-mapping table, and applied
    /// to the connection's shipment with that number, which is created when there is
    /// none ("the shipment may be registered later").
    Scan(Scan),
    /// The carrier's whole current view of a tracking, as a refresh would read it.
    /// Applied to the connection's shipment with that number (events deduplicated,
    /// status forward-only); kept, unapplied, when there is none.
    Tracking(TrackingUpdate),
}

#[derive(Debug, Clone)]
pub struct Scan {
    pub tracking_number: String,
    /// The carrier's unique id of this scan: a repeated one is a duplicate.
    pub scan_id: String,
    /// What the carrier calls the tracking number and the scan id: the history entry
    /// of a shipment a scan creates names them so.
    pub names: ScanNames,
    pub occurred_at: DateTime<Utc>,
    /// The carrier's status code, looked up in the status-mapping table.
    pub code: String,
    /// The code's text, as the carrier wrote it.
    pub code_text: Option<String>,
    /// The event's message.
    pub message: Option<String>,
    pub location: Option<Location>,
    /// Who scanned it at the carrier.
    pub actor: Option<String>,
    /// Kept on a shipment the scan creates.
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanNames {
    pub tracking_number: &'static str,
    pub scan_id: &'static str,
}

#[derive(Debug, Clone)]
pub struct TrackingUpdate {
    /// The carrier's id of this push: a repeated one is a duplicate.
    pub event_id: String,
    /// The carrier's name for what happened, kept with the push.
    pub event: Option<String>,
    pub tracking_number: Option<String>,
    pub snapshot: TrackingSnapshot,
}

/// Why a body is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// In words, naming the field (`datetime "x" is not "YYYY-mm-dd H:M:S"`).
    Reason(String),
    /// serde's error at `path` of the body, worded by the gateway the way it words
    /// every JSON body's errors.
    Json { path: String, error: String },
}

impl Refusal {
    /// The typed form of a body, or the serde error at its path.
    pub fn parse_json<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, Refusal> {
        serde_path_to_error::deserialize(body)
            .map_err(|e| Refusal::Json { path: e.path().to_string(), error: e.into_inner().to_string() })
    }
}

/// What came of a stored push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Stored and applied to this shipment (created for an unknown scan).
    Applied { shipment_id: String },
    /// Seen before: nothing changed.
    Duplicate,
    /// Kept, but no shipment of the connection has its tracking number.
    Unapplied,
}

/// Every way a push is answered, in the gateway's terms.
#[derive(Debug, Clone, Copy)]
pub enum Reply<'a> {
    /// Committed (or a duplicate): the carrier may forget it.
    Accepted(&'a Ingested),
    /// Malformed, with the reason; nothing stored.
    Refused(&'a str),
    Unauthorized,
    /// Too many failed authentications from this address.
    Throttled,
    /// Not stored (the database is unavailable): push it again later.
    Unavailable,
    /// Not stored (an unexpected error): push it again later.
    Failed,
}

impl Reply<'_> {
    /// Why it was not accepted, in words (None when accepted).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Reply::Accepted(_) => None,
            Reply::Refused(r) => Some(r),
            Reply::Unauthorized => Some("unauthorized"),
            Reply::Throttled => Some("too many failed authentications"),
            Reply::Unavailable => Some("temporarily unable to store; retry"),
            Reply::Failed => Some("internal error; retry"),
        }
    }
}

/// How the carrier is answered.
#[derive(Clone, Copy)]
pub enum Replies {
    /// The carrier reads every answer: each one, refusals included, is its own
    /// acknowledgement body, built from the reply and the body as pushed (`Null` when
    /// it is not JSON or was not read).
    Acknowledgement(fn(&Reply<'_>, &Value) -> Box<RawValue>),
    /// Refusals are the gateway's `application/problem+json`; an accepted push is
    /// answered 200 with this body.
    Problem(fn(&Ingested) -> Box<RawValue>),
}

/// A reply body as JSON, its fields in the order the type declares them.
pub fn json_body<T: serde::Serialize>(body: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(body).unwrap_or_else(|_| {
        tracing::error!("an inbound reply body could not be serialized");
        RawValue::from_string("null".to_owned()).unwrap_or_default()
    })
}

/// Shortest customer-chosen inbound secret, and the least estimated strength.
pub const MIN_SECRET_LEN: usize = 16;
const MIN_SECRET_BITS: f64 = 80.0;
const MIN_DISTINCT_CHARS: usize = 8;

/// Why a customer-chosen inbound secret is too weak, if it is. At least 16 characters,
/// 8 of them distinct, and ≥ 80 bits estimated as length × log2(size of the character
/// classes used), the usual charset estimate (NIST SP 800-63B asks for length over
/// composition; this adds a floor on repetition). A 16-letter lowercase word is refused
/// (75 bits); generated credentials (32 characters of 62 symbols, ≈ 190 bits) pass.
pub fn secret_weakness(secret: &str) -> Option<String> {
    let len = secret.chars().count();
    if len < MIN_SECRET_LEN {
        return Some(format!("must be at least {MIN_SECRET_LEN} characters (a long random secret)"));
    }
    let distinct = secret.chars().collect::<std::collections::HashSet<_>>().len();
    if distinct < MIN_DISTINCT_CHARS {
        return Some(format!("must use at least {MIN_DISTINCT_CHARS} different characters"));
    }
    // Character classes used and their sizes (33 printable ASCII symbols, space included).
    let has = |f: fn(&char) -> bool| secret.chars().any(|c| f(&c));
    let pool: f64 = [
        (has(char::is_ascii_lowercase), 26.0),
        (has(char::is_ascii_uppercase), 26.0),
        (has(char::is_ascii_digit), 10.0),
        (has(|c| !c.is_ascii_alphanumeric()), 33.0),
    ]
    .iter()
    .filter(|(used, _)| *used)
    .map(|(_, n)| n)
    .sum();
    let bits = len as f64 * pool.log2();
    (bits < MIN_SECRET_BITS).then(|| {
        format!("is too guessable (about {bits:.0} bits; at least {MIN_SECRET_BITS:.0}): make it longer or mix letter cases, digits and symbols")
    })
}

/// `n` random letters and digits (62 symbols, ≈ 5.95 bits each): generated inbound
/// credentials.
pub fn random_token(n: usize) -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..n).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_secrets_are_named_and_strong_ones_pass() {
        let basic = InboundAuth::Basic { user: "username", password: "password" };
        let weak = |auth: InboundAuth, field: &str, v: &str| {
            auth.weak_secret(&BTreeMap::from([(field.to_owned(), v.to_owned())]))
        };
        for bad in ["short", "passwordpassword", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "1234567812345678"] {
            let e = weak(basic, "password", bad);
            assert_eq!(e.len(), 1, "{bad} must be refused");
            assert_eq!(e[0].field, "credentials.password");
        }
        let hmac = InboundAuth::HmacSha256 { header: "x-signature", secret: "webhook_secret" };
        assert_eq!(weak(hmac, "webhook_secret", "secret")[0].field, "credentials.webhook_secret");
        for good in ["a-long-secret-123", "Tr0ub4dor&3-horse-battery", &random_token(32)] {
            assert!(weak(basic, "password", good).is_empty(), "{good} must pass");
        }
        assert!(weak(basic, "username", "x").is_empty(), "only the secret is judged");
    }

    #[test]
    fn random_tokens_differ_and_have_their_length() {
        let (a, b) = (random_token(32), random_token(32));
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
