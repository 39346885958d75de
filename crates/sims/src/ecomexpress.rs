//! Ecom Express status push, the carrier's side: Ecom calls *us* (seed 003, "ECOM STATUS
//! UPDATE API Reference Manual"), so this is a client that pushes scans the way Ecom does,
//! for tests and benchmarks of a receiver. Contract as implemented:
//! `docs/carriers/ecomexpress-simulator.md`; the seed's payload and acknowledgements are in
//! `contract/fixtures/ecomexpress/`.
//!
//! - One scan per `POST`, Basic Auth with the username/password the customer gave Ecom, JSON
//!   body with the seed's eleven keys, every value a string; `datetime` is
//!   `YYYY-mm-dd H:M:S` in India time (IST, UTC+05:30, no daylight saving), written
//!   zero-padded (`2024-05-28 07:05:09`).
//! - docs/carriers/ecomexpress.md adds the fields public receivers also see (`child_reason_code_number`,
//!   `received_by`, `EDD`): [`Scan::extra`] adds those, or any other string field.
//! - Fields not set are sent as empty strings (the seed's own payload sends `"ref_awb": ""`),
//!   so every push carries all eleven keys.
//! - The acknowledgement: success `{awb, status: true, status_update_number}`, failure
//!   `{awb, status: false, reason, status_update_number}`; the seed's success example echoes
//!   `status_update_number` as a number although the payload sends a string, so echoes are
//!   compared by their text.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde_json::{Map, Value};

/// India Standard Time, the zone of the payload's `datetime`.
pub fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 30 * 60).expect("+05:30 is a valid offset")
}

/// One scan as Ecom Express pushes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Scan {
    pub awb: String,
    pub status_update_number: String,
    pub reason_code_number: String,
    pub at: DateTime<Utc>,
    pub status: String,
    pub reason_code: String,
    pub location: String,
    pub employee: String,
    pub order_number: String,
    pub city: String,
    pub ref_awb: String,
    /// Further string fields, in the order added; one named like a seed field replaces it.
    pub extra: Vec<(String, String)>,
}

impl Scan {
    /// A scan of `awb` with its unique `status_update_number` and its `reason_code_number`
    /// (e.g. "777"), taken now; the other fields are empty until set.
    pub fn new(
        awb: impl Into<String>,
        status_update_number: impl Into<String>,
        reason_code_number: impl Into<String>,
    ) -> Self {
        Scan {
            awb: awb.into(),
            status_update_number: status_update_number.into(),
            reason_code_number: reason_code_number.into(),
            at: Utc::now(),
            status: String::new(),
            reason_code: String::new(),
            location: String::new(),
            employee: String::new(),
            order_number: String::new(),
            city: String::new(),
            ref_awb: String::new(),
            extra: Vec::new(),
        }
    }

    /// When the scan happened (sent as India time).
    pub fn at<Tz: TimeZone>(mut self, at: DateTime<Tz>) -> Self {
        self.at = at.with_timezone(&Utc);
        self
    }

    /// The free-text remark (`status`).
    pub fn status(mut self, remark: impl Into<String>) -> Self {
        self.status = remark.into();
        self
    }

    /// The reason text, e.g. "777 - RTS - Return To Shipper".
    pub fn reason_code(mut self, text: impl Into<String>) -> Self {
        self.reason_code = text.into();
        self
    }

    /// The scanning location code, e.g. "JRD".
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.location = location.into();
        self
    }

    /// Who scanned (`Employee`, capitalised as in the seed).
    pub fn employee(mut self, name: impl Into<String>) -> Self {
        self.employee = name.into();
        self
    }

    pub fn order_number(mut self, order_number: impl Into<String>) -> Self {
        self.order_number = order_number.into();
        self
    }

    pub fn city(mut self, city: impl Into<String>) -> Self {
        self.city = city.into();
        self
    }

    pub fn ref_awb(mut self, ref_awb: impl Into<String>) -> Self {
        self.ref_awb = ref_awb.into();
        self
    }

    /// Another string field, e.g. `child_reason_code_number`, `received_by`, `EDD`.
    pub fn extra(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }

    /// `datetime` as the payload writes it: `YYYY-mm-dd H:M:S`, India time.
    pub fn datetime(&self) -> String {
        self.at.with_timezone(&ist()).format("%Y-%m-%d %H:%M:%S").to_string()
    }

    /// The seed's payload for this scan, every value a string.
    pub fn body(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: &str| {
            m.insert(k.to_owned(), Value::String(v.to_owned()));
        };
        put("awb", &self.awb);
        put("datetime", &self.datetime());
        put("status", &self.status);
        put("reason_code", &self.reason_code);
        put("reason_code_number", &self.reason_code_number);
        put("location", &self.location);
        put("Employee", &self.employee);
        put("status_update_number", &self.status_update_number);
        put("order_number", &self.order_number);
        put("city", &self.city);
        put("ref_awb", &self.ref_awb);
        for (k, v) in &self.extra {
            put(k, v);
        }
        Value::Object(m)
    }
}

/// A receiver's answer to one push.
#[derive(Clone, Debug, PartialEq)]
pub struct Ack {
    pub http_status: u16,
    /// The answer as JSON (`Null` when it was not JSON).
    pub body: Value,
    /// The answer as received.
    pub raw: String,
    /// What was pushed, to check the echo against.
    pub pushed_awb: String,
    pub pushed_status_update_number: String,
}

/// A scalar echo as text: `"44591782"` and `44591782` are the same echo.
fn scalar_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Ack {
    /// Reads a receiver's answer to a push of `pushed_awb` / `pushed_status_update_number`.
    pub fn parse(http_status: u16, raw: &str, pushed_awb: &str, pushed_status_update_number: &str) -> Ack {
        Ack {
            http_status,
            body: serde_json::from_str(raw).unwrap_or(Value::Null),
            raw: raw.to_owned(),
            pushed_awb: pushed_awb.to_owned(),
            pushed_status_update_number: pushed_status_update_number.to_owned(),
        }
    }

    /// The ack's `status` (true = accepted, false = failure), when it is a boolean.
    pub fn status(&self) -> Option<bool> {
        self.body.get("status").and_then(Value::as_bool)
    }

    /// The failure ack's `reason`, as text.
    pub fn reason(&self) -> Option<String> {
        match self.body.get("reason")? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The echoed `awb`, as text.
    pub fn awb(&self) -> Option<String> {
        scalar_text(self.body.get("awb"))
    }

    /// The echoed `status_update_number`, as text.
    pub fn status_update_number(&self) -> Option<String> {
        scalar_text(self.body.get("status_update_number"))
    }

    /// A 2xx answer with `status: true` echoing the pushed awb and status_update_number.
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.http_status)
            && self.status() == Some(true)
            && self.awb().as_deref() == Some(self.pushed_awb.as_str())
            && self.status_update_number().as_deref() == Some(self.pushed_status_update_number.as_str())
    }
}

/// Pushes scans to one receiver URL with Basic Auth, as Ecom Express does.
#[derive(Clone)]
pub struct EcomPusher {
    client: reqwest::Client,
    url: Arc<str>,
    username: Arc<str>,
    password: Arc<str>,
}

impl std::fmt::Debug for EcomPusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never prints.
        f.debug_struct("EcomPusher").field("url", &self.url).field("username", &self.username).finish_non_exhaustive()
    }
}

impl EcomPusher {
    /// A pusher with its own client (10 s timeout). reqwest 0.13 built with
    /// `rustls-no-provider` panics when it builds a client and no rustls crypto provider is
    /// installed, even for plain http: this installs the ring provider if none is yet.
    pub fn new(url: impl Into<String>, username: impl Into<String>, password: impl Into<String>) -> Self {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Err only means another thread installed one first: either is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client with a rustls provider installed builds");
        Self::with_client(client, url, username, password)
    }

    /// A pusher that uses the caller's client (shared pools, other timeouts).
    pub fn with_client(
        client: reqwest::Client,
        url: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        EcomPusher {
            client,
            url: url.into().into(),
            username: username.into().into(),
            password: password.into().into(),
        }
    }

    /// Pushes one scan. `Err` only when no HTTP answer came (connection, timeout).
    pub async fn push(&self, scan: &Scan) -> Result<Ack, reqwest::Error> {
        self.push_body(&scan.body()).await
    }

    /// Pushes any JSON body (malformed pushes included) with the same transport.
    pub async fn push_body(&self, body: &Value) -> Result<Ack, reqwest::Error> {
        let response =
            self.client.post(&*self.url).basic_auth(&*self.username, Some(&*self.password)).json(body).send().await?;
        let status = response.status().as_u16();
        let raw = response.text().await?;
        let pushed = |k: &str| scalar_text(body.get(k)).unwrap_or_default();
        Ok(Ack::parse(status, &raw, &pushed("awb"), &pushed("status_update_number")))
    }
}
