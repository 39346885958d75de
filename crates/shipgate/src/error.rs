//! `ApiError`: the one error type of the HTTP layer, turned into an RFC 9457
//! problem+json response in exactly one place (`IntoResponse`), with a stable `code`
//! per kind (hook0 `problems.rs`, realworld-axum-sqlx `http/error.rs`). 5xx log their
//! cause chain and answer a generic body; database text never reaches a client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::FieldError;

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
    #[schema(value_type = Option<crate::http::shipments::ShipmentOut>)]
    pub shipment: Option<serde_json::Value>,
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
    /// A client error with its own code (409, 422, ...).
    #[error("{detail}")]
    Client { status: StatusCode, code: &'static str, title: &'static str, detail: String },
    /// A carrier answered (or failed to) and the shipment records the outcome.
    #[error("{detail}")]
    Carrier {
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: String,
        retry_after: Option<u64>,
        shipment: Option<serde_json::Value>,
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
        ApiError::Client { status, code, title, detail: detail.into() }
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
            ApiError::Client { status, .. } | ApiError::Carrier { status, .. } => *status,
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
            ApiError::Client { code, title, .. } | ApiError::Carrier { code, title, .. } => (code, title),
            ApiError::DatabaseUnavailable => ("database_unavailable", "Service temporarily unavailable"),
            ApiError::Timeout => ("timeout", "Request timed out"),
            ApiError::Internal(_) => ("internal_error", "Internal server error"),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::DatabaseUnavailable
            }
            sqlx::Error::Database(db) => match (db.code().as_deref(), db.constraint()) {
                (Some("23505"), Some("shipments_reference_uq")) => ApiError::client(
                    StatusCode::CONFLICT,
                    "reference_taken",
                    "Reference already used",
                    "another shipment of this tenant already has this reference",
                ),
                // 57P01 admin shutdown, 08xxx connection exceptions: the server went away.
                (Some(code), _) if code == "57P01" || code.starts_with("08") => ApiError::DatabaseUnavailable,
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
                    ApiError::field("request", message)
                }
                _ => ApiError::Internal(e.into()),
            },
            _ => ApiError::Internal(e.into()),
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
            ApiError::Carrier { detail, retry_after, shipment, .. } => (detail, None, shipment, retry_after),
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
