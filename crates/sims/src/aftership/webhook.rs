//! AfterShip's outbound webhooks, pushed at a customer endpoint.
//!
//! Body (AfterShip "Webhook Specifications"): `{ts, event, event_id, is_tracking_first_tag,
//! msg}` where `ts` is the UTC Unix time of the event, `event` its code (`tracking_update`
//! for a status change, `edd_revise` ...), `event_id` a UUID v4, `is_tracking_first_tag`
//! whether this is the first update sent under the tracking's current tag, and `msg` the
//! tracking in the webhook version's model (2024-04 here). Headers: `aftership-hmac-sha256`
//! = base64(HMAC-SHA256(raw body, webhook secret)) ("Webhook Signature"), and
//! `as-webhook-version: 2024-04` (2024-04 migration guide).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{API_VERSION, AftershipSim, render};

/// What a pushed webhook was and what the endpoint answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// The exact bytes sent, as text.
    pub body: String,
    pub signature: String,
    pub status: u16,
    pub response: String,
}

/// `base64(HMAC-SHA256(body, secret))`, the `aftership-hmac-sha256` header value.
pub fn sign_webhook(body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

impl AftershipSim {
    /// The webhook body AfterShip would send now for tracking `id` (and note its tag as
    /// notified, for `is_tracking_first_tag`).
    pub fn webhook_body(&self, id: &str, event: &str) -> Option<Value> {
        let mut inner = self.lock();
        let seq = inner.store.seq_of_id(id)?;
        let t = inner.store.get_mut(seq)?;
        let first = !t.webhook_tags.contains(&t.tag);
        if first {
            t.webhook_tags.push(t.tag.clone());
        }
        let now = Utc::now();
        Some(json!({
            "ts": now.timestamp(),
            "event": event,
            "event_id": uuid::Uuid::new_v4().to_string(),
            "is_tracking_first_tag": first,
            "msg": Value::Object(render::tracking(t, now)),
        }))
    }

    /// POST tracking `id`'s webhook (`event`, e.g. `tracking_update`) to `url`, signed
    /// with `secret`.
    pub async fn push_webhook(
        &self,
        url: &str,
        secret: &str,
        id: &str,
        event: &str,
    ) -> Result<WebhookDelivery, String> {
        let body = self.webhook_body(id, event).ok_or_else(|| format!("no tracking {id}"))?;
        let body = body.to_string();
        let signature = sign_webhook(body.as_bytes(), secret);
        // reqwest is built without a TLS provider in this workspace; make sure one is there
        // (a no-op when the process installed it already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header("aftership-hmac-sha256", &signature)
            .header("as-webhook-version", API_VERSION)
            .body(body.clone())
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = response.status().as_u16();
        let response = response.text().await.unwrap_or_default();
        Ok(WebhookDelivery { body, signature, status, response })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_base64_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign_webhook(b"what do ya want for nothing?", "Jefe"),
            STANDARD.encode([
                0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a,
                0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43
            ])
        );
    }
}
