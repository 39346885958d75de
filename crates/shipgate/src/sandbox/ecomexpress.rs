//! An Ecom Express pusher: posts scans to a gateway's inbound endpoint the way Ecom
//! does (seed `003_22468744d4026f76.txt`: one scan per POST, Basic Auth, all values
//! strings, `datetime` in India time) and reads the acknowledgement. Used by the tests,
//! the benches (`cargo run --release --example ecom_push`) and the sandbox demo.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Value, json};

/// One scan to push.
#[derive(Debug, Clone)]
pub struct Scan {
    pub awb: String,
    pub status_update_number: String,
    pub code: String,
    pub at: DateTime<Utc>,
    pub remark: String,
}

impl Scan {
    pub fn new(awb: impl Into<String>, status_update_number: impl Into<String>, code: impl Into<String>) -> Scan {
        Scan {
            awb: awb.into(),
            status_update_number: status_update_number.into(),
            code: code.into(),
            at: Utc::now(),
            remark: "scan".into(),
        }
    }

    pub fn at(mut self, at: DateTime<Utc>) -> Scan {
        self.at = at;
        self
    }

    /// The push body exactly as the seed shows it.
    pub fn body(&self) -> Value {
        let ist = FixedOffset::east_opt(5 * 3600 + 30 * 60).unwrap_or_else(|| FixedOffset::east_opt(0).expect("utc"));
        json!({
            "awb": self.awb,
            "datetime": self.at.with_timezone(&ist).format("%Y-%m-%d %H:%M:%S").to_string(),
            "status": self.remark,
            "reason_code": format!("{} - {}", self.code, self.remark),
            "reason_code_number": self.code,
            "location": "JRD",
            "Employee": "Sandbox Pusher",
            "status_update_number": self.status_update_number,
            "order_number": format!("ORD-{}", self.awb),
            "city": "Vadodara",
            "ref_awb": ""
        })
    }
}

/// What the gateway answered.
#[derive(Debug, Clone)]
pub struct Ack {
    pub http_status: u16,
    pub body: Value,
}

impl Ack {
    /// `status:true` (the scan is committed).
    pub fn accepted(&self) -> bool {
        self.http_status == 200 && self.body["status"] == json!(true)
    }
}

/// Pushes to one connection's inbound URL.
#[derive(Clone)]
pub struct EcomPusher {
    http: reqwest::Client,
    url: String,
    username: String,
    password: String,
}

impl EcomPusher {
    /// `url`: the connection's absolute inbound URL.
    pub fn new(url: impl Into<String>, username: impl Into<String>, password: impl Into<String>) -> EcomPusher {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        EcomPusher { http, url: url.into(), username: username.into(), password: password.into() }
    }

    pub async fn push(&self, scan: &Scan) -> Result<Ack, reqwest::Error> {
        self.push_body(&scan.body()).await
    }

    pub async fn push_body(&self, body: &Value) -> Result<Ack, reqwest::Error> {
        let resp = self
            .http
            .post(&self.url)
            .basic_auth(&self.username, Some(&self.password))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let http_status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        let body =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Ok(Ack { http_status, body })
    }
}
