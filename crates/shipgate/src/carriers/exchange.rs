//! One HTTP exchange with a carrier: send, time, classify transport failures, count
//! it in `/metrics`, and record it (secrets redacted, bodies capped) in the call
//! context so the caller can store it with the shipment it was made for.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::Method;
use serde_json::Value;

use super::CarrierError;
use super::limits::Limits;
use crate::domain::Exchange;

/// Collects the exchanges made while serving one API call.
#[derive(Default)]
pub struct CallCx {
    exchanges: Mutex<Vec<Exchange>>,
}

impl CallCx {
    pub fn new() -> CallCx {
        CallCx::default()
    }
    pub fn record(&self, x: Exchange) {
        if let Ok(mut v) = self.exchanges.lock() {
            v.push(x);
        }
    }
    pub fn take(&self) -> Vec<Exchange> {
        self.exchanges.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }
}

/// A raw answer: HTTP status and body bytes.
pub struct Answer {
    pub status: u16,
    pub body: bytes::Bytes,
    pub retry_after: Option<Duration>,
}

/// Replace the value of every key named in `secret_keys` (case-insensitive, also
/// with an `@` prefix) anywhere in a JSON document.
pub fn redact(v: &mut Value, secret_keys: &[&str]) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                let bare = k.trim_start_matches('@');
                if secret_keys.iter().any(|s| s.eq_ignore_ascii_case(bare)) {
                    *val = Value::String("[REDACTED]".into());
                } else {
                    redact(val, secret_keys);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redact(i, secret_keys)),
        _ => {}
    }
}

/// Whether `bytes` may hold a member named by one of `secret_keys`: the name appears
/// in it in any case, or the text has a `\u` escape (in JSON the only way to spell a
/// letter of a name otherwise, RFC 8259 section 7). False means [`redact`] would change
/// nothing, so the body can be kept as it came.
fn may_hold_secret(bytes: &[u8], secret_keys: &[&str]) -> bool {
    // One pass: only where a byte could start a name (or an escape) are names compared.
    let mut starts = [false; 256];
    starts[usize::from(b'\\')] = true;
    for c in secret_keys.iter().filter_map(|k| k.as_bytes().first()) {
        starts[usize::from(c.to_ascii_lowercase())] = true;
        starts[usize::from(c.to_ascii_uppercase())] = true;
    }
    (0..bytes.len()).filter(|&i| starts[usize::from(bytes[i])]).any(|i| {
        let rest = &bytes[i..];
        rest.starts_with(b"\\u")
            || secret_keys.iter().any(|k| rest.get(..k.len()).is_some_and(|w| w.eq_ignore_ascii_case(k.as_bytes())))
    })
}

/// A body as kept in `carrier_exchanges`: JSON with the values of secret members
/// replaced, capped at `limit` bytes. A body that names no secret is kept as it came
/// (parsing and re-writing it changed nothing but the members' order and spacing, and
/// was a tenth of a booking's CPU: bench/README.md, "P3 on a slower machine").
fn capped_text(bytes: &[u8], limit: usize, secret_keys: &[&str]) -> String {
    let text = match may_hold_secret(bytes, secret_keys).then(|| serde_json::from_slice::<Value>(bytes)) {
        Some(Ok(mut v)) => {
            redact(&mut v, secret_keys);
            v.to_string()
        }
        // Names no secret, or not JSON (then it cannot carry our JSON secrets by key):
        // kept as it is, capped all the same.
        None | Some(Err(_)) => String::from_utf8_lossy(bytes).into_owned(),
    };
    if text.len() <= limit {
        return text;
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…[truncated {} bytes]", &text[..cut], text.len() - cut)
}

pub struct Wire<'a> {
    pub http: &'a reqwest::Client,
    pub limits: &'a Limits,
    pub carrier: &'static str,
    pub connection_id: &'a str,
    pub body_limit: usize,
    pub secret_keys: &'a [&'a str],
}

impl Wire<'_> {
    /// Send one request. Transport failures (connect, timeout) come back as
    /// `Transient`; any HTTP answer comes back as `Ok` for the adapter to classify.
    ///
    /// Every carrier call goes through here, so its span is the one place that names
    /// the carrier, connection and operation (docs/architecture.md rule 8); the tenant, request,
    /// job or shipment come from the caller's span around it.
    pub async fn send(
        &self,
        cx: &CallCx,
        operation: &'static str,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer, CarrierError> {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        self.send_to(cx, operation, method, url, None, headers, bytes).await
    }

    /// [`Wire::send`] with the body already written as JSON (an adapter that writes its
    /// wire types straight to text builds no `Value` tree to write and drop) and, when
    /// the caller has it, `parsed`: `url` already parsed (reqwest parses a URL given as
    /// text on every call). Without it, `url` is sent as text, so a URL that does not
    /// parse is refused by reqwest and recorded as a failed call like any other. With the
    /// e-Courier adapter's bodies written this way and its URLs parsed once, a booking
    /// went from 431k to 400k instructions (callgrind, `bench/p3_cpu.sh`). The exchange
    /// records `url` as given.
    #[allow(clippy::too_many_arguments)]
    #[tracing::instrument(name = "carrier_call", skip_all,
        fields(carrier = self.carrier, connection_id = %self.connection_id, operation = operation, method = %method))]
    pub async fn send_to(
        &self,
        cx: &CallCx,
        operation: &'static str,
        method: Method,
        url: &str,
        parsed: Option<reqwest::Url>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, CarrierError> {
        let mut req = match parsed {
            Some(to) => self.http.request(method.clone(), to),
            None => self.http.request(method.clone(), url),
        };
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        // Shared, not copied, between the request and the exchange that records it.
        let request_bytes = body.map(bytes::Bytes::from);
        if let Some(b) = &request_bytes {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.clone());
        }
        let _permit = match self.limits.acquire().await {
            Ok(p) => p,
            Err(e) => {
                metrics::counter!("shipgate_carrier_calls_total", "carrier" => self.carrier, "operation" => operation, "outcome" => "throttled_locally")
                    .increment(1);
                return Err(e);
            }
        };
        let started = Instant::now();
        let at = Utc::now();
        let result = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let retry_after = wait_hint(resp.headers());
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>(Answer { status, body, retry_after })
        }
        .await;
        let elapsed = started.elapsed();
        if let Ok(a) = &result
            && a.status == 429
        {
            self.limits.throttled(a.retry_after.unwrap_or(Duration::from_secs(1)));
        }
        let (outcome, response_status, response_body, error) = match &result {
            Ok(a) => (
                if a.status < 400 {
                    "ok"
                } else if a.status < 500 {
                    "client_error"
                } else {
                    "server_error"
                },
                Some(i32::from(a.status)),
                Some(capped_text(&a.body, self.body_limit, self.secret_keys)),
                None,
            ),
            Err(e) if e.is_timeout() => {
                ("timeout", None, None, Some(format!("timeout after {} ms", elapsed.as_millis())))
            }
            Err(e) => ("transport_error", None, None, Some(transport_message(e))),
        };
        metrics::counter!("shipgate_carrier_calls_total", "carrier" => self.carrier, "operation" => operation, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("shipgate_carrier_call_duration_seconds", "carrier" => self.carrier, "operation" => operation)
            .record(elapsed.as_secs_f64());
        tracing::info!(carrier = self.carrier, operation, outcome, status = ?response_status, ms = elapsed.as_millis() as u64, "carrier call");
        cx.record(Exchange {
            connection_id: self.connection_id.to_owned(),
            carrier: self.carrier,
            operation,
            method: method.to_string(),
            url: url.to_owned(),
            request_body: request_bytes.map(|b| capped_text(&b, self.body_limit, self.secret_keys)),
            response_status,
            response_body,
            duration_ms: i32::try_from(elapsed.as_millis()).unwrap_or(i32::MAX),
            error: error.clone(),
            at,
        });
        result.map_err(|_| CarrierError::Transient { message: error.unwrap_or_default(), retry_after: None })
    }
}

/// How long the carrier asks us to wait: `Retry-After` (seconds or an HTTP date) or
/// AfterShip's `X-RateLimit-Reset` (a Unix time, public AfterShip docs).
fn wait_hint(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(v) = text("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc2822(v) {
            return (t.with_timezone(&Utc) - Utc::now()).to_std().ok();
        }
    }
    let reset = text("x-ratelimit-reset")?.parse::<i64>().ok()?;
    let now = Utc::now().timestamp();
    Some(Duration::from_secs(u64::try_from(reset - now).unwrap_or(0).max(1)))
}

fn transport_message(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "could not connect to the carrier".to_owned()
    } else if e.is_body() || e.is_decode() {
        "connection dropped while reading the answer".to_owned()
    } else {
        "request to the carrier failed".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_reaches_nested_and_attribute_keys() {
        let mut v =
            serde_json::json!({"password": "p", "Order": {"@UserGUID": "{G}", "x": [{"userguid": "g"}]}, "ok": 1});
        redact(&mut v, &["password", "UserGUID"]);
        let s = v.to_string();
        assert!(!s.contains("\"p\"") && !s.contains("{G}") && !s.contains("\"g\""), "{s}");
        assert!(s.contains("\"ok\":1"));
    }

    #[test]
    fn a_body_naming_a_secret_in_any_case_or_escape_is_redacted_and_any_other_kept_as_it_came() {
        let keys = ["password", "UserGUID"];
        for body in [
            r#"{"Order": {"@userguid": "{G}", "n": 1}}"#,
            r#"{"PASSWORD": "{G}"}"#,
            r#"{"pass\u0077ord": "{G}"}"#,
            r#"{"a": [{"UserGuid": "{G}"}]}"#,
        ] {
            let kept = capped_text(body.as_bytes(), 1000, &keys);
            assert!(!kept.contains("{G}") && kept.contains("[REDACTED]"), "{body} kept as {kept}");
        }
        // Nothing to redact: the body as it came, order and spacing included.
        let body = r#"{"z": 1, "a": {"GUIDE": "x", "pass": "word"}}"#;
        assert_eq!(capped_text(body.as_bytes(), 1000, &keys), body);
        // Not JSON at all, and a secret's name in it: kept (there is no member to find).
        assert_eq!(capped_text(b"password=1", 1000, &keys), "password=1");
    }

    #[test]
    fn long_bodies_are_capped() {
        let s = capped_text(&[b'a'; 100], 10, &[]);
        assert!(s.starts_with("aaaaaaaaaa…[truncated 90 bytes]"), "{s}");
    }

    /// A span's name and its fields as text.
    type SeenSpan = (String, Vec<(String, String)>);

    /// Collects every new span's name and fields.
    #[derive(Clone, Default)]
    struct Spans(std::sync::Arc<Mutex<Vec<SeenSpan>>>);

    struct Fields(Vec<(String, String)>);

    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push((field.name().to_owned(), format!("{value:?}")));
        }
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            self.0.push((field.name().to_owned(), value.to_owned()));
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Spans {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut fields = Fields(Vec::new());
            attrs.record(&mut fields);
            if let Ok(mut v) = self.0.lock() {
                v.push((attrs.metadata().name().to_owned(), fields.0));
            }
        }
    }

    #[tokio::test]
    async fn every_call_runs_in_a_span_naming_carrier_connection_and_operation() {
        use tracing_subscriber::layer::SubscriberExt as _;
        crate::crypto::install_tls_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/api", listener.local_addr().expect("addr"));
        let carrier = axum::Router::new().fallback(|| async { "{}" });
        tokio::spawn(async move { axum::serve(listener, carrier).await });
        let spans = Spans::default();
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
        // Tests on other threads run without a subscriber. With a single registered
        // dispatcher, tracing-core computes a callsite's interest from the default of
        // whichever thread hits it first, and may cache "never" for ours; a second live
        // dispatcher makes it ask every registered one. Then recompute what is cached.
        let _second = tracing::Dispatch::new(tracing_subscriber::registry());
        tracing::callsite::rebuild_interest_cache();

        let http = reqwest::Client::new();
        let limits = Limits::new(super::super::limits::LimitsConfig::default());
        let wire = Wire {
            http: &http,
            limits: &limits,
            carrier: "somecarrier",
            connection_id: "con_1",
            body_limit: 1024,
            secret_keys: &[],
        };
        let answer = wire.send(&CallCx::new(), "SaveOrder", Method::POST, &url, &[], None).await.expect("answer");
        assert_eq!(answer.status, 200);

        let seen = spans.0.lock().expect("spans").clone();
        let (_, fields) = seen
            .iter()
            .find(|(name, _)| name == "carrier_call")
            .unwrap_or_else(|| panic!("no carrier_call span in {seen:?}"));
        for (k, v) in [("carrier", "somecarrier"), ("connection_id", "con_1"), ("operation", "SaveOrder")] {
            assert!(fields.iter().any(|(fk, fv)| fk == k && fv == v), "{k}={v} in {fields:?}");
        }
    }
}
