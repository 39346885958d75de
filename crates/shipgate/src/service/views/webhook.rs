//! Webhook endpoints and their deliveries as the API shows them (schemas
//! `WebhookEndpointOut`, `WebhookDeliveryOut`, `WebhookAttemptOut`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::webhooks::{AttemptRow, DeliveryRow, EndpointRow};

// No doc comment: it would become the schema's description.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookEndpointOut)]
pub struct WebhookEndpoint {
    #[schema(example = "whe_01936f0c7a2b7c3d9e8f001122334455")]
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why it is disabled (e.g. it answered 410 Gone).
    pub disabled_reason: Option<String>,
    /// The signing secret: only in the create response and after `rotate_secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=")]
    pub secret: Option<String>,
    /// After a rotation: until when the previous secret also signs deliveries. Absent
    /// when only the current secret signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    /// The view of a row; `secret` only right after it was generated.
    pub(crate) fn new(r: EndpointRow, secret: Option<String>) -> Self {
        WebhookEndpoint {
            id: r.id,
            url: r.url,
            description: r.description,
            event_types: r.event_types,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            secret,
            previous_secret_expires_at: r.previous_secret_expires_at.filter(|t| *t > Utc::now()),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

// No doc comment: it would become the schema's description.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookAttemptOut)]
pub struct WebhookAttempt {
    /// 1, 2, 3 ...
    pub attempt: i32,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    /// The subscriber's HTTP status, when it answered.
    pub response_status: Option<i32>,
    /// Null on success; `timeout`, `connect`, `ssrf_blocked`, `http_<status>`, `request`.
    pub error_code: Option<String>,
    /// At most 1 KiB of the response body.
    pub response_excerpt: Option<String>,
}

impl From<AttemptRow> for WebhookAttempt {
    fn from(a: AttemptRow) -> Self {
        WebhookAttempt {
            attempt: a.attempt,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            response_status: a.response_status,
            error_code: a.error_code,
            response_excerpt: a.response_excerpt,
        }
    }
}

// No doc comment: it would become the schema's description.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookDeliveryOut)]
pub struct WebhookDelivery {
    #[schema(example = "whd_0193a1b2c3d4e5f6a7b8c9d0e1f2a3b4")]
    pub id: String,
    pub endpoint_id: String,
    /// The event (and `webhook-id` header) this delivery carries.
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `succeeded`, `failed` (after the last attempt, or 410) or `cancelled`
    /// (the endpoint was disabled).
    pub status: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<WebhookAttempt>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub updated_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub delivered_at: Option<DateTime<Utc>>,
}

impl WebhookDelivery {
    pub(crate) fn new(d: DeliveryRow, attempts: Vec<AttemptRow>) -> Self {
        WebhookDelivery {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.state,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            attempts: attempts.into_iter().map(Into::into).collect(),
            created_at: d.created_at,
            updated_at: d.updated_at,
            delivered_at: d.delivered_at,
        }
    }
}
