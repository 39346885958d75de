//! Extractors that answer problem+json instead of axum's plain-text rejections
//! (docs/architecture.md, toolchain note 6): JSON bodies (content type, size, one document, depth, unknown
//! and missing fields named), query strings and path ids. This is where text with a
//! NUL (U+0000) is refused, once for every handler: Postgres stores none.
//!
//! serde's messages are rewritten for a person: the field that is missing or unknown
//! is named itself, and Rust type names (`u32`, `struct Stop`) become words.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::app::AppState;
use crate::domain::FieldError;
use crate::error::{ApiError, Location};

/// Deepest JSON nesting accepted (docs/quality.md security: JSON depth limits).
pub const MAX_JSON_DEPTH: usize = 32;

/// What a refused NUL is told. Postgres cannot store U+0000 in text or jsonb
/// (docs/architecture.md, toolchain note 8), so it is refused wherever a request can carry it.
pub const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";
const NUL_KEY_MESSAGE: &str = "names in this object must not contain the NUL character (U+0000)";

pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
    AppState: FromRef<S>,
{
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
                // The router's DefaultBodyLimit is this setting (src/http/mod.rs).
                ApiError::PayloadTooLarge(AppState::from_ref(state).config.body_limit_bytes)
            } else {
                ApiError::MalformedJson(e.body_text())
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parse a JSON body into `T`, naming the offending field on failure: one JSON
/// document, no deeper than [`MAX_JSON_DEPTH`], no NUL in any string or key.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if scan(bytes)? {
        return Err(nul_in_json(bytes));
    }
    // Every body this API reads is an object; serde would also take a struct written
    // as an array, and then name its fields by position.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => return Err(ApiError::MalformedJson("the body is empty".to_owned())),
        Some(_) => {
            return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::field("body", "must be a JSON object"),
                Err(e) => ApiError::MalformedJson(e.to_string()),
            });
        }
    }
    // Parsed plainly first: tracking the path of every field was a quarter of parsing a
    // booking's body (41k instructions with it, 33k without; callgrind, bench/p3_cpu.sh,
    // issue 13), and only a refused body needs it. A refused body is parsed again with
    // the path tracked, so the message names the field exactly as before.
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    if let Ok(v) = T::deserialize(&mut *de)
        && de.end().is_ok()
    {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut *de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::MalformedJson(inner.to_string()));
            }
            return Err(ApiError::validation(vec![field_error(&path, &inner.to_string(), "body")]));
        }
    };
    // A document followed by anything but whitespace is not one JSON document.
    de.end().map_err(|_| ApiError::MalformedJson("unexpected data after the JSON document".to_owned()))?;
    Ok(value)
}

/// A NUL was seen in a string or key: find where, for the message.
fn nul_in_json(bytes: &[u8]) -> ApiError {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => match find_nul(&v) {
            Some(at) => ApiError::field(&at.field, at.message()),
            None => ApiError::field("body", NUL_MESSAGE),
        },
        Err(e) => ApiError::MalformedJson(e.to_string()),
    }
}

/// Where a NUL sits in a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NulAt {
    /// `stops[0].name`; `body` for the document itself.
    pub field: String,
    /// In a key of the object at `field`, not in a value.
    pub in_key: bool,
}

impl NulAt {
    pub fn message(&self) -> &'static str {
        if self.in_key { NUL_KEY_MESSAGE } else { NUL_MESSAGE }
    }
}

/// The first string or key holding U+0000, depth first.
pub fn find_nul(v: &Value) -> Option<NulAt> {
    fn walk(v: &Value, path: &str) -> Option<NulAt> {
        let here = || if path.is_empty() { "body".to_owned() } else { path.to_owned() };
        match v {
            Value::String(s) if s.contains('\0') => Some(NulAt { field: here(), in_key: false }),
            Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            Value::Object(m) => m.iter().find_map(|(k, x)| {
                if k.contains('\0') {
                    return Some(NulAt { field: here(), in_key: true });
                }
                walk(x, &if path.is_empty() { k.clone() } else { format!("{path}.{k}") })
            }),
            _ => None,
        }
    }
    walk(v, "")
}

/// One pass over the raw body: refuse nesting deeper than [`MAX_JSON_DEPTH`] and tell
/// whether a string holds the escape `\u0000`. Escapes are followed, so the text
/// `\\u0000` (a backslash, then `u0000`) is not a NUL. A raw 0x00 byte is invalid JSON
/// and left to the parser.
fn scan(bytes: &[u8]) -> Result<bool, ApiError> {
    let (mut depth, mut in_str, mut escaped, mut nul) = (0usize, false, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_str {
            match (escaped, b) {
                (true, b'u') => {
                    escaped = false;
                    nul |= bytes.get(i + 1..i + 5) == Some(b"0000".as_slice());
                }
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
    Ok(nul)
}

/// serde's error at `path` as a field error a person reads: the field that is missing,
/// unknown or repeated is named itself, and Rust type names become words.
pub(crate) fn field_error(path: &str, raw: &str, root: &str) -> FieldError {
    let msg = strip_position(raw);
    let join = |name: &str| if path == "." || path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
    if let Some(name) = backticked(msg, "missing field `") {
        return FieldError::new(join(name), "is required");
    }
    if let Some(name) = backticked(msg, "duplicate field `") {
        return FieldError::new(join(name), "appears more than once");
    }
    if let Some(name) = backticked(msg, "unknown field `") {
        // serde_path_to_error already ends the path with the unknown field's name.
        let field = if path.ends_with(name) { path.to_owned() } else { join(name) };
        return FieldError::new(field, "unknown field (or read-only)");
    }
    let field = if path == "." || path.is_empty() { root.to_owned() } else { path.to_owned() };
    FieldError::new(field, humanize(msg))
}

fn backticked<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    msg.strip_prefix(prefix)?.split_once('`').map(|(name, _)| name)
}

fn strip_position(msg: &str) -> &str {
    match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

const DATE_TIME: &str = "an RFC 3339 date-time with offset, e.g. 2026-11-23T09:00:00Z";

/// serde, serde_json, serde_urlencoded and chrono messages in words: no Rust types.
pub fn humanize(msg: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((got, want)) = msg.strip_prefix(prefix).and_then(|r| r.split_once(", expected ")) {
            return format!("must be {}, not {}", expected(want), unexpected(got));
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `")
        && let Some((got, want)) = rest.split_once("`, expected ")
    {
        return format!("must be {}, not {}", one_of(want), quoted(got));
    }
    if let Some((_, want)) = msg.strip_prefix("invalid length ").and_then(|r| r.split_once(", expected ")) {
        return format!("must be {}", expected(want));
    }
    match msg {
        // chrono's ParseError texts (chrono 0.4 format/mod.rs).
        "input contains invalid characters"
        | "premature end of input"
        | "trailing input"
        | "input is out of range"
        | "input is not enough for unique date and time"
        | "no possible date and time matching input"
        | "bad or unsupported format string" => format!("must be {DATE_TIME}"),
        // core::num's ParseIntError / ParseFloatError / ParseBoolError texts (query strings).
        "invalid digit found in string" | "cannot parse integer from empty string" => {
            "must be a whole number".to_owned()
        }
        "number too large to fit in target type" | "number too small to fit in target type" => {
            "is out of range for a whole number".to_owned()
        }
        "invalid float literal" | "cannot parse float from empty string" => "must be a number".to_owned(),
        "provided string was not `true` or `false`" => "must be true or false".to_owned(),
        "number out of range" => "is out of range".to_owned(),
        other => other.to_owned(),
    }
}

/// serde's "expected" in words.
fn expected(want: &str) -> String {
    let whole = |lo: &str, hi: &str| format!("a whole number from {lo} to {hi}");
    match want {
        "u8" => whole("0", "255"),
        "u16" => whole("0", "65535"),
        "u32" => whole("0", "4294967295"),
        "u64" | "usize" => whole("0", "18446744073709551615"),
        "i8" => whole("-128", "127"),
        "i16" => whole("-32768", "32767"),
        "i32" => whole("-2147483648", "2147483647"),
        "i64" | "isize" => whole("-9223372036854775808", "9223372036854775807"),
        "f32" | "f64" => "a number".to_owned(),
        "a string" | "a borrowed string" | "string" => "a string".to_owned(),
        "a character" | "char" => "a single character".to_owned(),
        "a boolean" | "bool" => "true or false".to_owned(),
        "a sequence" | "a tuple" => "an array".to_owned(),
        "a map" => "an object".to_owned(),
        "unit" => "null".to_owned(),
        w if w.starts_with("struct ") => "an object".to_owned(),
        w if w.starts_with("tuple ") => "an array".to_owned(),
        w if w.starts_with("enum ") || w == "variant identifier" => "one of the documented values".to_owned(),
        w if w.contains("date") => DATE_TIME.to_owned(),
        w if w.starts_with("one of `") || w.starts_with('`') => one_of(w),
        w => w.to_owned(),
    }
}

/// serde's "invalid type" subject in words (`string "x"` → `"x"`, `map` → an object).
fn unexpected(got: &str) -> String {
    if let Some(s) = got.strip_prefix("string ") {
        return quoted(s.trim_matches('"'));
    }
    for prefix in ["integer ", "floating point ", "boolean ", "character "] {
        if let Some(v) = got.strip_prefix(prefix) {
            return v.trim_matches('`').to_owned();
        }
    }
    match got {
        "map" => "an object".to_owned(),
        "sequence" => "an array".to_owned(),
        "unit value" | "null" | "unit" | "Option value" => "null".to_owned(),
        other => other.to_owned(),
    }
}

/// "one of `a`, `b`" / "`a` or `b`" → "one of a, b".
fn one_of(want: &str) -> String {
    let names: Vec<&str> = want.split('`').skip(1).step_by(2).collect();
    match names.as_slice() {
        [] => "one of the documented values".to_owned(),
        [one] => format!("\"{one}\""),
        many => format!("one of {}", many.join(", ")),
    }
}

/// A value echoed in a message: quoted, and cut so a huge input does not come back whole.
fn quoted(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("\"{}…\"", &s[..i]),
        None => format!("\"{s}\""),
    }
}

/// Query string into `T` (deny_unknown_fields on `T` names stray parameters). A NUL
/// in any name or value is refused here, before any handler sees it.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

/// Parse a query string into `T`, naming the offending parameter on failure.
pub fn parse_query<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    let query_error = |field: &str, message: &str| ApiError::query_field(field, message);
    for (name, value) in form_urlencoded::parse(q.as_bytes()) {
        if name.contains('\0') {
            return Err(query_error("query", "parameter names must not contain the NUL character (U+0000)"));
        }
        if value.contains('\0') {
            return Err(query_error(&name, NUL_MESSAGE));
        }
    }
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        let mut fe = field_error(&path, &msg, "query");
        if fe.message.starts_with("unknown field") {
            fe.message = match msg.split_once(", expected ") {
                Some((_, want)) => format!("is not a parameter of this operation; use {}", one_of(want)),
                None => "is not a parameter of this operation".to_owned(),
            };
        }
        ApiError::invalid(Location::Query, vec![fe])
    })
}

/// A single `{id}` path segment. One with a NUL is refused naming `id`; any other
/// that fails to decode is "not found".
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let id = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| p.0)
            .map_err(|_| ApiError::NotFound("resource"))?;
        check_path_text("id", &id)?;
        Ok(PathId(id))
    }
}

/// Two path parameters (`/v1/shipments/{id}/documents/{document_id}`), with the same
/// rules as [`PathId`].
pub struct PathIds(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let (a, b) = axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map(|p| p.0)
            .map_err(|_| ApiError::NotFound("resource"))?;
        check_path_text("id", &a)?;
        check_path_text("id", &b)?;
        Ok(PathIds(a, b))
    }
}

/// Refuse a NUL in a decoded path parameter.
pub fn check_path_text(name: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::invalid(Location::Path, vec![FieldError::new(name, NUL_MESSAGE)]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        a: u32,
        city: String,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Vec<Inner>,
        #[serde(default)]
        when: Option<chrono::DateTime<chrono::FixedOffset>>,
        #[serde(default)]
        kind: Option<Kind>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Pickup,
        Delivery,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Params {
        limit: Option<i64>,
        carrier: Option<String>,
    }

    fn first(e: ApiError) -> (String, String) {
        match e {
            ApiError::Validation { errors, .. } => (errors[0].field.clone(), errors[0].message.clone()),
            other => (format!("not validation: {other:?}"), String::new()),
        }
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let e = parse_json::<Outer>(br#"{"inner":[{"a":1,"city":"x","bogus":2}]}"#).unwrap_err();
        assert_eq!(first(e).0, "inner[0].bogus");
        let e = parse_json::<Outer>(br#"{"inner":[],"status":"delivered"}"#).unwrap_err();
        assert_eq!(first(e).0, "status");
    }

    #[test]
    fn missing_fields_are_named_themselves() {
        let e = parse_json::<Outer>(br#"{"inner":[{"a":1}]}"#).unwrap_err();
        assert_eq!(first(e), ("inner[0].city".to_owned(), "is required".to_owned()));
        let e = parse_json::<Outer>(br#"{}"#).unwrap_err();
        assert_eq!(first(e), ("inner".to_owned(), "is required".to_owned()));
    }

    #[test]
    fn messages_name_no_rust_types() {
        let e = parse_json::<Outer>(br#"{"inner":[{"a":"x","city":"c"}]}"#).unwrap_err();
        assert_eq!(
            first(e),
            ("inner[0].a".to_owned(), "must be a whole number from 0 to 4294967295, not \"x\"".into())
        );
        let e = parse_json::<Outer>(br#"{"inner":[{"a":-1,"city":"c"}]}"#).unwrap_err();
        assert_eq!(first(e).1, "must be a whole number from 0 to 4294967295, not -1");
        let e = parse_json::<Outer>(br#"{"inner":{}}"#).unwrap_err();
        assert_eq!(first(e), ("inner".to_owned(), "must be an array, not an object".to_owned()));
        let e = parse_json::<Outer>(br#"{"inner":[],"kind":"teleport"}"#).unwrap_err();
        assert_eq!(first(e), ("kind".to_owned(), "must be one of pickup, delivery, not \"teleport\"".to_owned()));
        let e = parse_json::<Outer>(br#"{"inner":[],"when":"tomorrow"}"#).unwrap_err();
        assert_eq!(first(e), ("when".to_owned(), format!("must be {DATE_TIME}")));
        let e = parse_json::<Outer>(br#"[1]"#).unwrap_err();
        assert_eq!(first(e), ("body".to_owned(), "must be a JSON object".to_owned()));
    }

    #[test]
    fn nul_is_refused_naming_the_field_or_key_but_the_escaped_text_is_not_nul() {
        let e = parse_json::<Value>(br#"{"a":{"b":["ok","x\u0000"]}}"#).unwrap_err();
        assert_eq!(first(e), ("a.b[1]".to_owned(), NUL_MESSAGE.to_owned()));
        let e = parse_json::<Value>(br#"{"meta":{"k\u0000":"v"}}"#).unwrap_err();
        assert_eq!(first(e), ("meta".to_owned(), NUL_KEY_MESSAGE.to_owned()));
        let e = parse_json::<Value>(br#"{"\u0000":1}"#).unwrap_err();
        assert_eq!(first(e), ("body".to_owned(), NUL_KEY_MESSAGE.to_owned()));
        // The six characters \u0000 written as text: a backslash, then "u0000".
        let v = parse_json::<Value>(br#"{"a":"\\u0000","\\u0000":"b"}"#).expect("not a NUL");
        assert_eq!(v["a"], "\\u0000");
        assert_eq!(v["\\u0000"], "b");
    }

    #[test]
    fn depth_syntax_and_trailing_data_are_refused() {
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        assert!(matches!(parse_json::<Value>(deep.as_bytes()), Err(ApiError::Validation { .. })));
        assert!(matches!(parse_json::<Value>(b"{\"a\":"), Err(ApiError::MalformedJson(_))));
        assert!(matches!(parse_json::<Value>(b"{\"a\":1} {\"b\":2}"), Err(ApiError::MalformedJson(_))));
        assert!(matches!(parse_json::<Value>(b"{\"a\":1}x"), Err(ApiError::MalformedJson(_))));
        assert!(parse_json::<Value>(b"{\"a\":1} \n").is_ok());
    }

    #[test]
    fn query_errors_name_the_parameter_in_words() {
        let e = parse_query::<Params>("limit=abc").unwrap_err();
        assert_eq!(first(e), ("limit".to_owned(), "must be a whole number".to_owned()));
        let e = parse_query::<Params>("carrier=a%00b").unwrap_err();
        assert!(matches!(&e, ApiError::Validation { location: Location::Query, .. }));
        assert_eq!(first(e), ("carrier".to_owned(), NUL_MESSAGE.to_owned()));
        let e = parse_query::<Params>("bogus=1").unwrap_err();
        assert_eq!(
            first(e),
            ("bogus".to_owned(), "is not a parameter of this operation; use one of limit, carrier".into())
        );
        let e = parse_query::<Params>("limit=1&limit=2").unwrap_err();
        assert_eq!(first(e), ("limit".to_owned(), "appears more than once".to_owned()));
        assert!(parse_query::<Params>("carrier=%5Cu0000").is_ok());
    }
}
