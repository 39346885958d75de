//! `service::Error`: the one error type of the service layer. Every workflow answers
//! with it, whichever front end called (the HTTP API, the workers, the console of issue
//! 14); `crate::error` turns it into problem+json in one place. Database errors are
//! classified here, once, by SQLSTATE and constraint name, never by message text
//! (docs/architecture.md rule 1; realworld-axum-sqlx `on_constraint`).

use crate::carriers::CarrierError;
use crate::domain::FieldError;
use crate::service::views::Shipment;
use crate::store::shipments::ShipmentRow;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such object for this tenant (another tenant's objects are not found either).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Values of the input refused, each naming its field.
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// The input is understood, but the object's state or a rule of the gateway refuses
    /// it: a stable [`Refusal`], with the shipment where the answer shows it.
    #[error("{detail}")]
    Refused { refusal: Refusal, detail: String, shipment: Option<Box<Shipment>> },
    /// A carrier refused or failed, with the shipment as it was recorded where the
    /// answer shows it (a booking kept failed).
    #[error("{error}")]
    Carrier { error: CarrierError, shipment: Option<Box<Shipment>> },
    /// The database is away (pool timeout, connection lost): retry later.
    #[error("database unavailable")]
    DatabaseUnavailable,
    /// Anything else: a bug or an outage nobody can fix by changing the request.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// The state and capability refusals, each with a stable code (`crate::error` gives
/// them their HTTP status and title).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another shipment of the tenant has this reference.
    ReferenceTaken,
    /// A cancelled shipment cannot be changed.
    ShipmentCancelled,
    /// The carrier never accepted the shipment: there is nothing to track.
    BookingFailed,
    /// Only a job in the dead letter can be re-run.
    JobNotDead,
    /// The webhook endpoint is disabled.
    EndpointDisabled,
    /// An earlier request with this Idempotency-Key is still running.
    IdempotencyKeyInUse,
    /// The Idempotency-Key was first used with a different request.
    IdempotencyKeyReused,
    /// The carrier cannot do this (the carriers table of docs/product.md).
    CapabilityNotSupported,
    /// The carrier's adapter is not available in this version.
    CarrierNotAvailable,
    /// The shipment's connection was deleted.
    ConnectionDeleted,
}

impl Refusal {
    /// The problem's stable `code`.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::ReferenceTaken => "reference_taken",
            Refusal::ShipmentCancelled => "shipment_cancelled",
            Refusal::BookingFailed => "booking_failed",
            Refusal::JobNotDead => "job_not_dead",
            Refusal::EndpointDisabled => "endpoint_disabled",
            Refusal::IdempotencyKeyInUse => "idempotency_key_in_use",
            Refusal::IdempotencyKeyReused => "idempotency_key_reused",
            Refusal::CapabilityNotSupported => "capability_not_supported",
            Refusal::CarrierNotAvailable => "carrier_not_available",
            Refusal::ConnectionDeleted => "connection_deleted",
        }
    }
}

fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

impl Error {
    /// One refused field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Error {
        Error::Invalid(vec![FieldError::new(field, message)])
    }

    /// Refused fields, or Ok when there are none.
    pub fn check(errors: Vec<FieldError>) -> Result<()> {
        if errors.is_empty() { Ok(()) } else { Err(Error::Invalid(errors)) }
    }

    pub fn refused(refusal: Refusal, detail: impl Into<String>) -> Error {
        Error::Refused { refusal, detail: detail.into(), shipment: None }
    }

    /// A carrier's failure with the shipment it left behind (as the API shows it).
    pub fn carrier(error: CarrierError, row: ShipmentRow) -> Error {
        match Shipment::try_from(row) {
            Ok(s) => Error::Carrier { error, shipment: Some(Box::new(s)) },
            Err(e) => e,
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Error {
        Error::Internal(e.into())
    }

    /// Whether the database is away (the carrier is told to push again later).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::DatabaseUnavailable)
    }
}

impl From<CarrierError> for Error {
    fn from(error: CarrierError) -> Error {
        Error::Carrier { error, shipment: None }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %e, "database unavailable");
                Error::DatabaseUnavailable
            }
            sqlx::Error::Database(db) => match (db.code().as_deref(), db.constraint()) {
                (Some("23505"), Some("shipments_reference_uq")) => Error::refused(
                    Refusal::ReferenceTaken,
                    "another shipment of this tenant already has this reference",
                ),
                // 57P01 admin shutdown, 08xxx connection exceptions: the server went away.
                (Some(code), _) if code == "57P01" || code.starts_with("08") => Error::DatabaseUnavailable,
                // A value Postgres cannot store got past the edge checks (src/http/extract.rs):
                // 22P05/22021 a NUL in text or jsonb, 22008 a time out of its range (PostgreSQL
                // errcodes appendix). The client sent it, so it is a 422, not a 500; the log
                // says which check is missing.
                (Some(code @ ("22P05" | "22021" | "22008")), _) => {
                    tracing::error!(error = %e, "a value the database refuses passed input validation");
                    let message = if code == "22008" {
                        format!("a time in this request {}", crate::domain::time::RANGE_MESSAGE)
                    } else {
                        "text must not contain the NUL character (U+0000)".to_owned()
                    };
                    Error::invalid("request", message)
                }
                _ => Error::Internal(e.into()),
            },
            _ => Error::Internal(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_database_is_unavailable_and_other_failures_are_internal() {
        assert!(Error::from(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(matches!(Error::from(sqlx::Error::RowNotFound), Error::Internal(_)));
    }

    #[test]
    fn every_refusal_has_its_own_code() {
        let all = [
            Refusal::ReferenceTaken,
            Refusal::ShipmentCancelled,
            Refusal::BookingFailed,
            Refusal::JobNotDead,
            Refusal::EndpointDisabled,
            Refusal::IdempotencyKeyInUse,
            Refusal::IdempotencyKeyReused,
            Refusal::CapabilityNotSupported,
            Refusal::CarrierNotAvailable,
            Refusal::ConnectionDeleted,
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), all.len());
    }
}
