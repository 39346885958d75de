//! Outbound webhooks (docs/product.md "Webhook endpoint"): signing secrets, Standard
//! Webhooks signatures, the retry schedule, the SSRF-safe delivery client, and the two
//! background workers (dispatcher and delivery worker, in [`worker`]).
//!
//! Flow: `events` (the outbox, written with the change) → the dispatcher fans each
//! event out into one `webhook_deliveries` row per matching enabled endpoint → the
//! delivery worker claims due rows, signs and POSTs them, and records every attempt.

pub mod ssrf;
pub mod worker;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::{Rng as _, RngCore as _};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

pub use worker::{Round, Workers, dispatch_once, spawn};

/// Secret prefix and size: `whsec_` + base64 of 32 random bytes (Standard Webhooks
/// spec "Signature scheme": secrets are base64, prefixed `whsec_`, 24-64 bytes).
pub const SECRET_PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 32;

/// A new random signing secret: (raw bytes to seal, `whsec_…` text shown once).
pub fn new_secret() -> (Vec<u8>, String) {
    let mut bytes = vec![0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let text = format!("{SECRET_PREFIX}{}", STANDARD.encode(&bytes));
    (bytes, text)
}

/// Standard Webhooks v1 signature: base64 HMAC-SHA256 over `id.timestamp.body`, keyed
/// with the secret's decoded bytes.
pub fn sign(secret: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this never fails.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else { return String::new() };
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header value: one `v1,<sig>` per secret, space-separated,
/// newest secret first. Standard Webhooks receivers accept a delivery when any of them
/// verifies (spec "Signature scheme": "multiple signatures ... space delimited"), which
/// is what lets a rotated-out secret keep working during the overlap.
pub fn signatures(secrets: &[&[u8]], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| sign(s, msg_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// The body every subscriber receives.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    /// The event id (`evt_…`), also the `webhook-id` header: the same on every attempt,
    /// so subscribers can deduplicate.
    pub id: &'a str,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    /// When the event happened: RFC 3339 UTC with microseconds, as `/v1/events` shows
    /// it (src/domain/time.rs).
    pub timestamp: String,
    /// The event's number within its shipment (1, 2, 3 ...), to order them.
    pub sequence: i32,
    pub data: &'a Value,
}

pub fn payload_bytes(id: &str, event_type: &str, at: DateTime<Utc>, sequence: i32, data: &Value) -> Vec<u8> {
    let p = Payload { id, event_type, timestamp: crate::domain::time::format(&at), sequence, data };
    serde_json::to_vec(&p).unwrap_or_default()
}

/// Delay before the retry that follows failed attempt number `attempt` (1-based), or
/// None when the schedule is exhausted. Jitter spreads it by ± `jitter`.
pub fn retry_delay(schedule: &[Duration], jitter: f64, attempt: i32) -> Option<Duration> {
    let idx = usize::try_from(attempt.checked_sub(1)?).ok()?;
    let base = *schedule.get(idx)?;
    if jitter <= 0.0 {
        return Some(base);
    }
    let factor = 1.0 + rand::rng().random_range(-jitter..=jitter);
    Some(base.mul_f64(factor.max(0.0)))
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3), capped at a day.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(d.min(Duration::from_secs(86_400)))
}

/// The delivery client: no redirects (a 3xx is a failed attempt), no proxies, the
/// SSRF-guarded resolver, bounded timeouts.
pub fn client(settings: &crate::config::WebhookSettings) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(ssrf::GuardedResolver { guard: ssrf::Guard::new(settings.allow_networks.clone()) })
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .pool_max_idle_per_host(settings.concurrency)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("shipgate-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example from the Standard Webhooks spec ("Signature scheme"), also used by
        // the reference libraries' tests.
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("b64");
        let sig = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn either_secret_verifies_a_delivery_signed_with_both() {
        let (old, old_text) = new_secret();
        let (new, new_text) = new_secret();
        let (_, other_text) = new_secret();
        let ts = Utc::now().timestamp();
        let body = br#"{"id":"evt_1"}"#;
        let header = signatures(&[&new, &old], "evt_1", ts, body);
        assert_eq!(header.split(' ').count(), 2);
        let mut h = axum::http::HeaderMap::new();
        h.insert("webhook-id", "evt_1".parse().expect("id"));
        h.insert("webhook-timestamp", ts.to_string().parse().expect("ts"));
        h.insert("webhook-signature", header.parse().expect("sig"));
        // The Standard Webhooks reference library, not our code, decides.
        for secret in [&old_text, &new_text] {
            standardwebhooks::Webhook::new(secret).expect("secret").verify(body, &h).expect("verifies");
        }
        assert!(standardwebhooks::Webhook::new(&other_text).expect("secret").verify(body, &h).is_err());
    }

    #[test]
    fn the_schedule_ends_and_jitter_stays_in_bounds() {
        let s = [Duration::from_secs(5), Duration::from_secs(300)];
        assert_eq!(retry_delay(&s, 0.0, 1), Some(Duration::from_secs(5)));
        assert_eq!(retry_delay(&s, 0.0, 2), Some(Duration::from_secs(300)));
        assert_eq!(retry_delay(&s, 0.0, 3), None);
        for _ in 0..100 {
            let d = retry_delay(&s, 0.1, 2).expect("delay");
            assert!(d >= Duration::from_secs(270) && d <= Duration::from_secs(330), "{d:?}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z").expect("t").with_timezone(&Utc);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Sun, 22 Nov 2026 10:01:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn secrets_are_prefixed_base64_of_32_bytes() {
        let (raw, text) = new_secret();
        assert_eq!(raw.len(), 32);
        let decoded = STANDARD.decode(text.strip_prefix(SECRET_PREFIX).expect("prefix")).expect("b64");
        assert_eq!(decoded, raw);
    }
}
