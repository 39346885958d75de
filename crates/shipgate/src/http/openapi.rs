//! The finishing pass over the OpenAPI document: the error model stated once.
//!
//! Every error answer is RFC 9457 `application/problem+json` (`Problem`), described once
//! in `components/responses` and referenced from each operation. Which of them an
//! operation declares is derived here from what the operation *is*, so a new handler
//! cannot forget one:
//!
//! | the operation ...                          | can answer                                   |
//! |--------------------------------------------|----------------------------------------------|
//! | is authenticated with an API key           | 401, 429, 503 (database unavailable)         |
//! | takes a JSON body                          | 400, 413, 415, 422                           |
//! | is a POST or PATCH under the API key       | 409, 413, 422 (`Idempotency-Key`, see below) |
//! | has a path parameter                       | 404                                          |
//! | has query parameters                       | 422                                          |
//! | calls a carrier (`x-carrier-call` marker)  | 409, 422, 502, 503                           |
//!
//! Each rule mirrors the code that answers: `auth::require_api_key` (401; 429 when
//! failed keys are throttled), `error::ApiError::DatabaseUnavailable`/`Timeout` (503),
//! `extract::Json` (400 malformed, 413, 415, 422 naming the field), the idempotency
//! middleware on every POST/PATCH (409 in flight, 422 reused or malformed key, 413 while
//! it buffers the body), `extract::PathId` and the tenant-scoped loads (404),
//! `extract::Query` (422 naming the parameter) and `error::carrier_problem` (the
//! carrier's refusals and outages). A handler still declares the statuses only it can
//! answer (e.g. 409 `job_not_dead`) with its own description; they are turned into
//! references to the same shared responses, keeping that description.
//!
//! No 504 is declared: a carrier timeout is a transient failure, answered 503 (or 202
//! for a booking kept pending), never 504.

use std::collections::BTreeMap;

use serde_json::json;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder};

/// Operation extension marking a handler that calls a carrier. Kept in the document:
/// it tells integrators (and the contract check's fuzzer) which 502/503 come from a
/// carrier.
pub const CARRIER_CALL: &str = "x-carrier-call";

const PROBLEM_JSON: &str = "application/problem+json";

/// One shared error response: `components/responses/<name>`.
struct Shared {
    status: u16,
    name: &'static str,
    description: &'static str,
    /// `code`, `title` and `detail` of the example body, as the server answers them.
    code: &'static str,
    title: &'static str,
    detail: &'static str,
    retry_after: bool,
}

const SHARED: &[Shared] = &[
    Shared {
        status: 400,
        name: "BadRequest",
        description: "The body is not valid JSON.",
        code: "malformed_json",
        title: "Request body is not valid JSON",
        detail: "the body is not valid JSON: EOF while parsing an object at line 1 column 1",
        retry_after: false,
    },
    Shared {
        status: 401,
        name: "Unauthorized",
        description: "The API key is missing, malformed, unknown or revoked (`WWW-Authenticate: Bearer`).",
        code: "unauthorized",
        title: "Authentication required",
        detail: "missing or invalid API key",
        retry_after: false,
    },
    Shared {
        status: 404,
        name: "NotFound",
        description: "No such object for this tenant (another tenant's ids are not found either).",
        code: "not_found",
        title: "Not found",
        detail: "shipment not found",
        retry_after: false,
    },
    Shared {
        status: 409,
        name: "Conflict",
        description: "The request conflicts with the object's state: the carrier refused the change \
            (`carrier_conflict`), the reference is taken (`reference_taken`), or a request with the same \
            `Idempotency-Key` is still in flight (`idempotency_key_in_use`). See `code`.",
        code: "idempotency_key_in_use",
        title: "Idempotency-Key in use",
        detail: "a request with Idempotency-Key \"k-1\" is still being processed; retry later",
        retry_after: false,
    },
    Shared {
        status: 413,
        name: "PayloadTooLarge",
        description: "The body is larger than this route accepts (`body_limit_bytes`, 256 KiB by default).",
        code: "payload_too_large",
        title: "Request body too large",
        detail: "request body larger than 262144 bytes",
        retry_after: false,
    },
    Shared {
        status: 415,
        name: "UnsupportedMediaType",
        description: "The body is not sent as `application/json`.",
        code: "unsupported_media_type",
        title: "Content-Type must be application/json",
        detail: "unsupported media type",
        retry_after: false,
    },
    Shared {
        status: 422,
        name: "UnprocessableEntity",
        description: "A value is refused: `errors[]` names each field (`validation_failed`), or the request \
            cannot be carried out as asked (e.g. `capability_not_supported`, `carrier_rejected`, \
            `idempotency_key_reused`). See `code`.",
        code: "validation_failed",
        title: "Request body is invalid",
        detail: "stops[0].address.country: \"USA\" is not an ISO 3166-1 alpha-2 country code (two upper-case letters)",
        retry_after: false,
    },
    Shared {
        status: 429,
        name: "TooManyRequests",
        description: "Too many failed authentications from this client; retry after `Retry-After` seconds.",
        code: "rate_limited",
        title: "Too many failed authentications",
        detail: "too many failed authentications from this address; retry later",
        retry_after: true,
    },
    Shared {
        status: 502,
        name: "BadGateway",
        description: "The carrier answered something the gateway cannot read (`carrier_protocol_error`).",
        code: "carrier_protocol_error",
        title: "Unexpected answer from the carrier",
        detail: "the carrier's answer could not be read",
        retry_after: false,
    },
    Shared {
        status: 503,
        name: "ServiceUnavailable",
        description: "Temporarily unavailable: the carrier is down or slow (`carrier_unavailable`), the database \
            is unreachable (`database_unavailable`) or the request timed out (`timeout`). Retry after \
            `Retry-After` seconds.",
        code: "database_unavailable",
        title: "Service temporarily unavailable",
        detail: "database unavailable",
        retry_after: true,
    },
];

fn shared(status: u16) -> Option<&'static Shared> {
    SHARED.iter().find(|s| s.status == status)
}

fn shared_response(s: &Shared) -> Response {
    let mut example = json!({
        "type": format!("https://shipgate.dev/problems/{}", s.code),
        "title": s.title,
        "status": s.status,
        "detail": s.detail,
        "code": s.code,
        "request_id": "3f1c0d6e8a2b4c5d9e7f1a2b3c4d5e6f",
    });
    if s.status == 422 {
        example["errors"] = json!([{
            "field": "stops[0].address.country",
            "message": "\"USA\" is not an ISO 3166-1 alpha-2 country code (two upper-case letters)"
        }]);
    }
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).example(Some(example)).build();
    let mut b = ResponseBuilder::new().description(s.description).content(PROBLEM_JSON, content);
    let int = || ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).build();
    if s.retry_after {
        b = b.header(
            "Retry-After",
            HeaderBuilder::new().schema(Some(int())).description(Some("Seconds to wait before retrying.")).build(),
        );
    }
    if s.status == 401 {
        b = b.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String).build()))
                .description(Some("`Bearer realm=\"shipgate\"`"))
                .build(),
        );
    }
    b.build()
}

/// What an operation is, as far as its possible answers go.
#[derive(Debug, Default)]
struct Kind {
    api_key: bool,
    json_body: bool,
    idempotent_write: bool,
    path_params: bool,
    query_params: bool,
    carrier: bool,
}

fn kind(method: &str, op: &Operation) -> Kind {
    let security = op.security.as_ref().map(|s| serde_json::to_value(s).unwrap_or_default()).unwrap_or_default();
    let api_key = security.as_array().is_some_and(|a| a.iter().any(|r| r.get("api_key").is_some()));
    let json_body = matches!(&op.request_body, Some(RefOr::T(b)) if b.content.contains_key("application/json"));
    let params = op.parameters.as_deref().unwrap_or_default();
    let param_in = |want: ParameterIn| {
        params.iter().any(
            |p| matches!(p, RefOr::T(p) if std::mem::discriminant(&p.parameter_in) == std::mem::discriminant(&want)),
        )
    };
    let carrier = op.extensions.as_ref().is_some_and(|e| e.contains_key(CARRIER_CALL));
    if !api_key {
        // Inbound pushes and the ops routes answer in their own way: they declare it.
        return Kind::default();
    }
    Kind {
        api_key,
        json_body,
        idempotent_write: api_key && matches!(method, "post" | "patch"),
        path_params: param_in(ParameterIn::Path),
        query_params: param_in(ParameterIn::Query),
        carrier,
    }
}

fn statuses(k: &Kind) -> Vec<u16> {
    let mut s = Vec::new();
    if k.api_key {
        s.extend([401, 429, 503]);
    }
    if k.json_body {
        s.extend([400, 413, 415, 422]);
    }
    if k.idempotent_write {
        s.extend([409, 413, 422]);
    }
    if k.path_params {
        s.push(404);
    }
    if k.query_params {
        s.push(422);
    }
    if k.carrier {
        s.extend([409, 422, 502, 503]);
    }
    s.sort_unstable();
    s.dedup();
    s
}

fn is_problem_or_empty(r: &RefOr<Response>) -> Option<String> {
    match r {
        RefOr::T(resp) if resp.content.is_empty() || resp.content.contains_key(PROBLEM_JSON) => {
            Some(resp.description.clone())
        }
        _ => None,
    }
}

fn reference(s: &Shared, description: String) -> RefOr<Response> {
    let mut r = Ref::new(format!("#/components/responses/{}", s.name));
    r.description = description;
    RefOr::Ref(r)
}

fn idempotency_key_param() -> RefOr<utoipa::openapi::path::Parameter> {
    RefOr::T(
        ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes the request safe to retry: the first response (other than a 5xx) is stored for 24 h and \
                 replayed (`Idempotent-Replayed: true`); reused with another body: 422 `idempotency_key_reused`; \
                 while the first is in flight: 409 `idempotency_key_in_use`. 1-255 visible ASCII characters.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255))
                    .pattern(Some("^[!-~]+$"))
                    .build(),
            ))
            .build(),
    )
}

fn finish_operation(method: &str, op: &mut Operation) {
    let k = kind(method, op);
    if k.idempotent_write {
        let params = op.parameters.get_or_insert_with(Vec::new);
        let has = params.iter().any(|p| matches!(p, RefOr::T(p) if p.name.eq_ignore_ascii_case("Idempotency-Key")));
        if has {
            // One wording everywhere: the handler's own description, if any, is replaced.
            params.retain(|p| !matches!(p, RefOr::T(p) if p.name.eq_ignore_ascii_case("Idempotency-Key")));
        }
        params.push(idempotency_key_param());
    }
    let responses = &mut op.responses.responses;
    // Statuses the handler declared itself: error ones become references, keeping the
    // handler's description.
    let declared: Vec<(String, String)> = responses
        .iter()
        .filter_map(|(status, r)| {
            let code: u16 = status.parse().ok()?;
            let s = shared(code)?;
            is_problem_or_empty(r).map(|d| (status.clone(), if d == s.description { String::new() } else { d }))
        })
        .collect();
    for (status, description) in declared {
        if let Some(s) = status.parse().ok().and_then(shared) {
            responses.insert(status, reference(s, description));
        }
    }
    for code in statuses(&k) {
        if let Some(s) = shared(code) {
            responses.entry(code.to_string()).or_insert_with(|| reference(s, String::new()));
        }
    }
}

/// Adds the shared responses and applies them to every operation.
pub fn finish(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    for s in SHARED {
        components.responses.insert(s.name.to_owned(), RefOr::T(shared_response(s)));
    }
    for item in doc.paths.paths.values_mut() {
        for (method, op) in [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ] {
            if let Some(op) = op {
                finish_operation(method, op);
            }
        }
    }
}

/// Statuses of the shared responses, for tests and docs.
pub fn shared_statuses() -> BTreeMap<u16, &'static str> {
    SHARED.iter().map(|s| (s.status, s.name)).collect()
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse as _;

    use super::*;
    use crate::error::ApiError;

    /// The examples of the shared responses are what the server really answers.
    #[tokio::test]
    async fn shared_examples_match_the_server_answers() {
        let cases = [
            (400, ApiError::MalformedJson("x".into())),
            (401, ApiError::Unauthorized),
            (404, ApiError::NotFound("shipment")),
            (413, ApiError::PayloadTooLarge(262_144)),
            (415, ApiError::UnsupportedMediaType),
            (422, ApiError::field("stops[0].address.country", "x")),
            (503, ApiError::DatabaseUnavailable),
        ];
        for (status, e) in cases {
            let s = shared(status).expect("shared");
            let resp = e.into_response();
            assert_eq!(resp.status().as_u16(), status);
            assert_eq!(resp.headers()["content-type"], PROBLEM_JSON);
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!((v["code"].as_str(), v["title"].as_str()), (Some(s.code), Some(s.title)), "{status}");
        }
    }
}
