//! How a carrier call failed, by what the caller should do about it.

use std::time::Duration;

use super::Capability;

/// How a carrier call failed, by what the caller should do about it (docs/carriers/
/// "gateway behaviour" columns).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CarrierError {
    /// Down, slow or busy: try again later. Safe to retry only for idempotent calls.
    #[error("carrier temporarily unavailable: {message}")]
    Transient { message: String, retry_after: Option<Duration> },
    /// The carrier refused the request's content (validation, business rule).
    #[error("carrier rejected the request: {message}")]
    Rejected { message: String },
    /// The carrier refused to change an existing order (HTTP 409).
    #[error("carrier refused the change: {message}")]
    Conflict { message: String },
    /// The carrier does not know the object (lookup before retry relies on this).
    #[error("carrier does not know it: {message}")]
    NotFound { message: String },
    /// Credentials, account or endpoint are wrong: nothing works until a human fixes the connection.
    #[error("connection misconfigured: {message}")]
    Misconfigured { message: String },
    /// The carrier and we disagree on the wire format: a gateway bug, alert.
    #[error("carrier protocol error: {message}")]
    Protocol { message: String },
    #[error("capability not supported by this carrier: {0:?}")]
    Unsupported(Capability),
}

impl CarrierError {
    pub fn is_transient(&self) -> bool {
        matches!(self, CarrierError::Transient { .. })
    }
    /// When the carrier said to come back (Retry-After, rate-limit reset).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CarrierError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            CarrierError::Transient { .. } => "transient",
            CarrierError::Rejected { .. } => "rejected",
            CarrierError::Conflict { .. } => "conflict",
            CarrierError::NotFound { .. } => "not_found",
            CarrierError::Misconfigured { .. } => "misconfigured",
            CarrierError::Protocol { .. } => "protocol",
            CarrierError::Unsupported(_) => "unsupported",
        }
    }
    pub fn message(&self) -> String {
        match self {
            CarrierError::Transient { message, .. }
            | CarrierError::Rejected { message }
            | CarrierError::Conflict { message }
            | CarrierError::NotFound { message }
            | CarrierError::Misconfigured { message }
            | CarrierError::Protocol { message } => message.clone(),
            CarrierError::Unsupported(c) => format!("{} is not supported", c.as_str()),
        }
    }
}
