//! AfterShip webhooks (docs/carriers/aftership.md "Inbound webhooks"): `aftership-hmac-sha256` is the
//! base64 HMAC-SHA256 of the raw body under the connection's `webhook_secret`; `msg` is
//! the tracking, mapped exactly as a refresh maps it (`mapping::snapshot_from`). A
//! webhook is deduplicated on `event_id` and answered 200 once stored; refusals are the
//! gateway's problems (AfterShip only looks at the status).

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::{OpenApi, ToSchema};

use super::{mapping, wire};
use crate::carriers::inbound::{Inbound, InboundAuth, Ingested, Push, Refusal, Replies, TrackingUpdate, json_body};

/// Largest webhook body: a tracking with all its checkpoints.
pub const BODY_LIMIT: usize = 256 * 1024;

pub static INBOUND: Inbound = Inbound {
    auth: InboundAuth::HmacSha256 { header: "aftership-hmac-sha256", secret: "webhook_secret" },
    body_limit: BODY_LIMIT,
    parse,
    replies: Replies::Problem(accepted),
    openapi: Doc::openapi,
};

/// An AfterShip webhook body (docs/carriers/aftership.md "Inbound webhooks").
#[derive(Debug, serde::Deserialize)]
pub struct Webhook {
    #[serde(default)]
    pub ts: Option<i64>,
    #[serde(default)]
    pub event: Option<String>,
    pub event_id: String,
    #[serde(default)]
    pub is_tracking_first_tag: Option<bool>,
    pub msg: wire::Tracking,
}

fn parse(body: &Value) -> Result<Push, Refusal> {
    let hook: Webhook = Refusal::parse_json(body)?;
    let number = hook.msg.tracking_number.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
    Ok(Push::Tracking(TrackingUpdate {
        snapshot: mapping::snapshot_from(&hook.msg, None),
        tracking_number: number,
        event_id: hook.event_id,
        event: hook.event,
    }))
}

/// What an AfterShip webhook did.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    /// `applied`, `unknown_tracking` (payload kept; no shipment has this number on the
    /// connection) or `duplicate` (event_id seen before).
    #[schema(example = "applied")]
    pub outcome: &'static str,
    pub shipment_id: Option<String>,
}

fn accepted(outcome: &Ingested) -> Box<RawValue> {
    json_body(&match outcome {
        Ingested::Applied { shipment_id } => WebhookAck { outcome: "applied", shipment_id: Some(shipment_id.clone()) },
        Ingested::Unapplied => WebhookAck { outcome: "unknown_tracking", shipment_id: None },
        Ingested::Duplicate => WebhookAck { outcome: "duplicate", shipment_id: None },
    })
}

#[derive(OpenApi)]
#[openapi(paths(webhook))]
struct Doc;

/// Receive an AfterShip webhook
///
/// `aftership-hmac-sha256` must be the base64 HMAC-SHA256 of the raw body under the connection's `webhook_secret`. Deduplicated on `event_id`;
/// `msg` (the tracking) is applied to the connection's shipment with that tracking
/// number (events deduplicated, status forward-only).
#[utoipa::path(post, path = "/{connection_id}", operation_id = "aftership_webhook",
    params(("connection_id" = String, Path, description = "The aftership connection (with a webhook_secret)")),
    request_body(content = Object, description = "`{ts, event, event_id, is_tracking_first_tag, msg: <tracking>}`"),
    responses(
        (status = 200, body = WebhookAck, description = "Applied, kept for an unknown tracking, or a duplicate"),
        (status = 400, description = "The body is not JSON"),
        (status = 401, description = "Missing or wrong signature"),
        (status = 413),
        (status = 422),
        (status = 429),
        (status = 503)))]
#[allow(dead_code)] // documentation only: `http::inbound` serves every carrier's pushes
fn webhook() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_is_a_tracking_update_and_a_missing_event_id_is_named() {
        let body = serde_json::json!({"event": "tracking_update", "event_id": "e1",
            "msg": {"tracking_number": " NUM1 ", "tag": "InTransit"}});
        let Ok(Push::Tracking(u)) = parse(&body) else { panic!("a tracking update") };
        assert_eq!((u.event_id.as_str(), u.tracking_number.as_deref()), ("e1", Some("NUM1")));
        let Err(Refusal::Json { path, error }) = parse(&serde_json::json!({"msg": {}})) else { panic!("refused") };
        assert_eq!((path.as_str(), error.as_str()), (".", "missing field `event_id`"));
    }
}
