//! `ApiError`: the one error type of the HTTP layer, turned into an RFC 9457
//! problem+json response in exactly one place (`IntoResponse`), with a stable `code`
//! per kind (hook0 `problems.rs`, realworld-axum-sqlx `http/error.rs`). 5xx log their
//! cause chain and answer a generic body; database text never reaches a client.
//!
//! The service layer's [`service::Error`] becomes an `ApiError` here too (`From`), so
//! every status, code and title the API answers is decided in this file: the
//! refusals' ([`refusal_problem`]) and the carriers' ([`carrier_problem`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::carriers::CarrierError;
use crate::domain::FieldError;
use crate::service::views::Shipment;
use crate::service::{self, Refusal};

tokio::task_local! {
    /// The current request's id, set by the request-id middleware so every problem
    /// body can carry it.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// RFC 9457 problem details: every error answer of the API (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI naming the problem kind: `https://shipgate.dev/problems/<code>`.
    #[serde(rename = "type")]
    #[schema(example = "https://shipgate.dev/problems/validation_failed")]
    pub problem_type: String,
    /// Short, human-readable summary of the problem kind.
    #[schema(example = "Request body is invalid")]
    pub title: String,
    /// The HTTP status code of this answer.
    #[schema(example = 422, minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong in this request.
    #[schema(example = "stops[0].address.country: \"USA\" is not an ISO 3166-1 alpha-2 country code")]
    pub detail: String,
    /// Stable machine-readable code (`validation_failed`, `not_found`, `carrier_rejected`, ...).
    #[schema(example = "validation_failed")]
    pub code: String,
    /// One entry per refused field (`validation_failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// The request's id (also the `x-request-id` header): quote it when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The shipment a refused or postponed booking left behind, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Shipment>)]
    pub shipment: Option<Box<Shipment>>,
}

/// Where in the request a refused value was: the problem's title says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Body,
    Query,
    Path,
    Header,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    Validation { detail: String, errors: Vec<FieldError>, location: Location },
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("the request body is larger than the {0} bytes this route accepts")]
    PayloadTooLarge(usize),
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("no route {0}")]
    NoRoute(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// An error with its own code (409, 422, a carrier's 502/503, ...), with when to
    /// retry and the shipment it left behind where the answer shows them.
    #[error("{detail}")]
    Client {
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: String,
        retry_after: Option<u64>,
        shipment: Option<Box<Shipment>>,
    },
    #[error("database unavailable")]
    DatabaseUnavailable,
    #[error("request timed out")]
    Timeout,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// Values of the JSON body refused, each naming its field.
    pub fn validation(errors: Vec<FieldError>) -> ApiError {
        ApiError::invalid(Location::Body, errors)
    }

    /// One refused value of the JSON body.
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::validation(vec![FieldError::new(field, message)])
    }

    /// Refused values found in `location` (query string, path, header).
    pub fn invalid(location: Location, errors: Vec<FieldError>) -> ApiError {
        let detail = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
        ApiError::Validation { detail, errors, location }
    }

    /// One refused query-string parameter.
    pub fn query_field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::invalid(Location::Query, vec![FieldError::new(field, message)])
    }

    pub fn client(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::Client { status, code, title, detail: detail.into(), retry_after: None, shipment: None }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Client { status, .. } => *status,
            ApiError::DatabaseUnavailable | ApiError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn parts(&self) -> (&'static str, &'static str) {
        match self {
            // One code for every refused value; the title says where it was.
            ApiError::Validation { location, .. } => (
                "validation_failed",
                match location {
                    Location::Body => "Request body is invalid",
                    Location::Query => "Query string is invalid",
                    Location::Path => "Path parameter is invalid",
                    Location::Header => "Request header is invalid",
                },
            ),
            ApiError::MalformedJson(_) => ("malformed_json", "Request body is not valid JSON"),
            ApiError::UnsupportedMediaType => ("unsupported_media_type", "Content-Type must be application/json"),
            ApiError::PayloadTooLarge(_) => ("payload_too_large", "Request body too large"),
            ApiError::Unauthorized => ("unauthorized", "Authentication required"),
            ApiError::NotFound(_) => ("not_found", "Not found"),
            ApiError::NoRoute(_) => ("route_not_found", "No such route"),
            ApiError::MethodNotAllowed => ("method_not_allowed", "Method not allowed"),
            ApiError::Client { code, title, .. } => (code, title),
            ApiError::DatabaseUnavailable => ("database_unavailable", "Service temporarily unavailable"),
            ApiError::Timeout => ("timeout", "Request timed out"),
            ApiError::Internal(_) => ("internal_error", "Internal server error"),
        }
    }
}

impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> ApiError {
        match e {
            service::Error::NotFound(what) => ApiError::NotFound(what),
            service::Error::Invalid(errors) => ApiError::validation(errors),
            service::Error::Refused { refusal, detail, shipment } => {
                let (status, title) = refusal_problem(refusal);
                ApiError::Client { status, code: refusal.code(), title, detail, retry_after: None, shipment }
            }
            service::Error::Carrier { error, shipment } => {
                let (status, code, title) = carrier_problem(&error);
                let retry_after = match &error {
                    CarrierError::Transient { retry_after, .. } => {
                        Some(retry_after.map(|d| d.as_secs().max(1)).unwrap_or(30))
                    }
                    _ => None,
                };
                ApiError::Client { status, code, title, detail: error.message(), retry_after, shipment }
            }
            service::Error::DatabaseUnavailable => ApiError::DatabaseUnavailable,
            service::Error::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// A refusal's status and title (its code is the service's, [`Refusal::code`]).
pub fn refusal_problem(refusal: Refusal) -> (StatusCode, &'static str) {
    match refusal {
        Refusal::ReferenceTaken => (StatusCode::CONFLICT, "Reference already used"),
        Refusal::ShipmentCancelled => (StatusCode::CONFLICT, "Shipment cancelled"),
        Refusal::BookingFailed => (StatusCode::CONFLICT, "Booking failed"),
        Refusal::JobNotDead => (StatusCode::CONFLICT, "Job not in the dead letter"),
        Refusal::EndpointDisabled => (StatusCode::CONFLICT, "Webhook endpoint disabled"),
        Refusal::IdempotencyKeyInUse => (StatusCode::CONFLICT, "Idempotency-Key in use"),
        Refusal::IdempotencyKeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "Idempotency-Key reused"),
        Refusal::CapabilityNotSupported => (StatusCode::UNPROCESSABLE_ENTITY, "Capability not supported"),
        Refusal::CarrierNotAvailable => (StatusCode::UNPROCESSABLE_ENTITY, "Carrier not available yet"),
        Refusal::ConnectionDeleted => (StatusCode::UNPROCESSABLE_ENTITY, "Connection deleted"),
    }
}

/// A carrier failure's status, code and title (shared by every resource).
pub fn carrier_problem(e: &CarrierError) -> (StatusCode, &'static str, &'static str) {
    match e {
        CarrierError::Transient { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "carrier_unavailable", "Carrier temporarily unavailable")
        }
        CarrierError::Rejected { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "carrier_rejected", "Carrier rejected the request")
        }
        CarrierError::Conflict { .. } => (StatusCode::CONFLICT, "carrier_conflict", "Carrier refused the change"),
        CarrierError::NotFound { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "carrier_not_found", "Carrier does not know this shipment")
        }
        CarrierError::Misconfigured { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "connection_misconfigured", "Connection misconfigured")
        }
        CarrierError::Protocol { .. } => {
            (StatusCode::BAD_GATEWAY, "carrier_protocol_error", "Unexpected answer from the carrier")
        }
        CarrierError::Unsupported(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "capability_not_supported", "Capability not supported")
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (code, title) = self.parts();
        let (detail, errors, shipment, retry_after) = match self {
            ApiError::Validation { detail, errors, .. } => (detail, Some(errors), None, None),
            // The whole body is at fault; name it like any other field.
            ApiError::MalformedJson(ref m) => {
                (self.to_string(), Some(vec![FieldError::new("body", m.clone())]), None, None)
            }
            ApiError::Client { detail, retry_after, shipment, .. } => (detail, None, shipment, retry_after),
            ApiError::Internal(ref e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                ("an unexpected error occurred; quote the request_id when reporting it".to_owned(), None, None, None)
            }
            ApiError::DatabaseUnavailable | ApiError::Timeout => (self.to_string(), None, None, Some(5)),
            other => (other.to_string(), None, None, None),
        };
        let problem = Problem {
            problem_type: format!("https://shipgate.dev/problems/{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            errors,
            request_id: current_request_id(),
            shipment,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = (status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"shipgate\""));
        }
        if let Some(secs) = retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
