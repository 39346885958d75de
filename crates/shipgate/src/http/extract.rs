//! Extractors that answer problem+json instead of axum's plain-text rejections
//! (TOOLCHAIN.md trap 6): JSON bodies (content type, size, NUL, depth, unknown fields
//! named), query strings and path ids.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::domain::FieldError;
use crate::error::ApiError;

/// Deepest JSON nesting accepted (QUALITY.md security: JSON depth limits).
pub const MAX_JSON_DEPTH: usize = 32;

pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(0)
            } else {
                ApiError::MalformedJson(e.body_text())
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parse a JSON body into `T`, naming the offending field on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    check_depth(bytes)?;
    // Postgres cannot store U+0000 in text or jsonb (TOOLCHAIN.md trap 8): refuse it here.
    if memchr_nul_escape(bytes) {
        return Err(ApiError::field("body", "strings must not contain the NUL character (\\u0000)"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::MalformedJson(inner.to_string()));
            }
            let msg = inner.to_string();
            // serde's message: "unknown field `x`, expected one of ..." — name the field.
            let msg = strip_position(&msg);
            if let Some(rest) = msg.strip_prefix("unknown field `")
                && let Some((name, _)) = rest.split_once('`')
            {
                let parent = parent_path(&path);
                let field = if parent.is_empty() { name.to_owned() } else { format!("{parent}.{name}") };
                return Err(ApiError::validation(vec![FieldError::new(field, "unknown field (or read-only)")]));
            }
            let field = if path == "." || path.is_empty() { "body".to_owned() } else { path };
            Err(ApiError::validation(vec![FieldError::new(field, msg)]))
        }
    }
}

/// serde_path_to_error reports the path of the object holding an unknown field as
/// that field's own path; keep the parent.
fn parent_path(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    match path.rfind('.') {
        Some(i) => path[..i].to_owned(),
        None => String::new(),
    }
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn memchr_nul_escape(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) || bytes.contains(&0)
}

fn check_depth(bytes: &[u8]) -> Result<(), ApiError> {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(ApiError::field("body", format!("JSON nested deeper than {MAX_JSON_DEPTH} levels")));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Query string into `T` (deny_unknown_fields on `T` names stray parameters).
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de).map(Query).map_err(|e| {
            let path = e.path().to_string();
            let msg = e.into_inner().to_string();
            let field = if let Some(rest) = msg.strip_prefix("unknown field `") {
                rest.split('`').next().unwrap_or("query").to_owned()
            } else if path == "." {
                "query".to_owned()
            } else {
                path
            };
            ApiError::validation(vec![FieldError::new(field, msg)])
        })
    }
}

/// A single `{id}` path segment.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| PathId(p.0))
            .map_err(|_| ApiError::NotFound("resource"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        a: u32,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Vec<Inner>,
    }

    fn field_of(e: ApiError) -> String {
        match e {
            ApiError::Validation { errors, .. } => errors[0].field.clone(),
            other => format!("not validation: {other:?}"),
        }
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let e = parse_json::<Outer>(br#"{"inner":[{"a":1,"bogus":2}]}"#).unwrap_err();
        assert_eq!(field_of(e), "inner[0].bogus");
        let e = parse_json::<Outer>(br#"{"inner":[],"status":"delivered"}"#).unwrap_err();
        assert_eq!(field_of(e), "status");
        let e = parse_json::<Outer>(br#"{"inner":[{"a":"x"}]}"#).unwrap_err();
        assert_eq!(field_of(e), "inner[0].a");
    }

    #[test]
    fn nul_deep_nesting_and_syntax_errors_are_refused() {
        assert!(matches!(parse_json::<serde_json::Value>(br#"{"a":"x\u0000"}"#), Err(ApiError::Validation { .. })));
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        assert!(matches!(parse_json::<serde_json::Value>(deep.as_bytes()), Err(ApiError::Validation { .. })));
        assert!(matches!(parse_json::<serde_json::Value>(b"{\"a\":"), Err(ApiError::MalformedJson(_))));
    }
}
