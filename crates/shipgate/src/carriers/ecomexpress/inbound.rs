//! Ecom Express scans as pushed (seed `003_22468744d4026f76.txt` "Payload", "Sample
//! Response", "Failure Responses"; docs/carriers/ecomexpress.md "ecomexpress"): HTTP Basic Auth with the
//! connection's credentials, one scan per request, every value a string, unknown fields
//! accepted (public receivers see `received_by`, `EDD`, ...) and kept in the raw push.
//! Every answer, refusals included, is Ecom's acknowledgement, echoing `awb` and
//! `status_update_number` exactly as pushed; `status:true` only once the scan is
//! committed.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::{OpenApi, ToSchema};

use crate::carriers::Location;
use crate::carriers::inbound::{Inbound, InboundAuth, Push, Refusal, Replies, Reply, Scan, ScanNames, json_body};
use crate::domain::Metadata;

/// Largest push body: one scan is well under 1 KiB (seed "Payload").
pub const BODY_LIMIT: usize = 16 * 1024;
/// Longest AWB / status_update_number / code we accept (Ecom AWBs are ~10-12 digits).
const MAX_KEY_LEN: usize = 64;
/// Longest free-text field we keep from a push.
const MAX_TEXT_LEN: usize = 1000;

pub static INBOUND: Inbound = Inbound {
    auth: InboundAuth::Basic { user: "username", password: "password" },
    body_limit: BODY_LIMIT,
    parse,
    replies: Replies::Acknowledgement(acknowledge),
    openapi: Doc::openapi,
};

/// India Standard Time: Ecom's `datetime` carries no offset and is local time in India
/// (docs/carriers/ecomexpress.md "ecomexpress": "YYYY-mm-dd H:M:S", India time).
fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 30 * 60).unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
}

pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .and_then(|n| n.and_local_timezone(ist()).single())
        .map(|d| d.with_timezone(&Utc))
}

/// One scan into the gateway's vocabulary; the reason names the first bad field.
fn parse(body: &Value) -> Result<Push, Refusal> {
    let Some(map) = body.as_object() else { return Err(Refusal::Reason("body must be a JSON object".into())) };
    // Every value is a string (seed); null or "" count as absent for optional fields.
    let text = |name: &str, max: usize| -> Result<Option<String>, String> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.contains('\0') => Err(format!("{name} must not contain NUL")),
            Some(Value::String(s)) if s.chars().count() > max => Err(format!("{name} is longer than {max} characters")),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
            Some(_) => Err(format!("{name} must be a string")),
        }
    };
    let required = |name: &str| -> Result<String, String> {
        text(name, MAX_KEY_LEN)?.ok_or_else(|| format!("{name} is required"))
    };
    let scan = (|| -> Result<Scan, String> {
        let awb = required("awb")?;
        let status_update_number = required("status_update_number")?;
        let datetime = required("datetime")?;
        let occurred_at =
            parse_datetime(&datetime).ok_or_else(|| format!("datetime {datetime:?} is not \"YYYY-mm-dd H:M:S\""))?;
        // `child_reason_code_number` when present (it is the more precise code), else
        // `reason_code_number` (docs/carriers/ecomexpress.md "ecomexpress").
        let code = match text("child_reason_code_number", MAX_KEY_LEN)? {
            Some(c) => c,
            None => {
                text("reason_code_number", MAX_KEY_LEN)?.ok_or_else(|| "reason_code_number is required".to_owned())?
            }
        };
        // `reason_code`, e.g. "777 - RTS - Return To Shipper"; `status` is a free-text remark.
        let reason_text = text("reason_code", MAX_TEXT_LEN)?;
        let remark = text("status", MAX_TEXT_LEN)?;
        let (location, city) = (text("location", MAX_TEXT_LEN)?, text("city", MAX_TEXT_LEN)?);
        let employee = text("Employee", MAX_TEXT_LEN)?;
        let mut metadata = Metadata::new();
        for (key, value) in
            [("order_number", text("order_number", MAX_TEXT_LEN)?), ("ref_awb", text("ref_awb", MAX_TEXT_LEN)?)]
        {
            if let Some(v) = value {
                metadata.insert(key.to_owned(), v);
            }
        }
        if !crate::domain::time::in_range(&occurred_at) {
            return Err(format!("datetime {}", crate::domain::time::RANGE_MESSAGE));
        }
        Ok(Scan {
            tracking_number: awb,
            scan_id: status_update_number,
            names: ScanNames { tracking_number: "awb", scan_id: "status_update_number" },
            occurred_at,
            code,
            message: remark.or_else(|| reason_text.clone()),
            code_text: reason_text,
            location: (location.is_some() || city.is_some()).then(|| Location {
                code: location,
                city,
                state: None,
                country: Some("IN".to_owned()),
            }),
            actor: employee,
            metadata,
        })
    })();
    scan.map(Push::Scan).map_err(Refusal::Reason)
}

/// The Ecom Express acknowledgement (seed "Sample Response" / "Failure Responses"):
/// `awb` and `status_update_number` are echoed exactly as pushed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushAck {
    #[schema(example = "AWB_NUMBER")]
    pub awb: Value,
    /// True only once the scan is committed.
    pub status: bool,
    /// Why the push was not accepted (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[schema(example = "44591782")]
    pub status_update_number: Value,
}

fn acknowledge(reply: &Reply<'_>, pushed: &Value) -> Box<RawValue> {
    let echo = |name: &str| pushed.get(name).cloned().unwrap_or(Value::Null);
    json_body(&PushAck {
        awb: echo("awb"),
        status: matches!(reply, Reply::Accepted(_)),
        reason: reply.reason().map(str::to_owned),
        status_update_number: echo("status_update_number"),
    })
}

/// One Ecom Express scan as pushed (all values strings; unknown fields accepted).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)] // the documented shape; `parse` reads the fields one by one
#[schema(example = json!({
    "awb": "AWB_NUMBER", "datetime": "2026-11-22 10:30:00", "status": "remark",
    "reason_code": "777 - RTS - Return To Shipper", "reason_code_number": "777", "location": "JRD",
    "Employee": "Name of Employee", "status_update_number": "44591782", "order_number": "ORDER_NUMBER",
    "city": "Vadodara", "ref_awb": ""
}))]
pub struct EcomPushIn {
    awb: String,
    /// "YYYY-mm-dd H:M:S", India time (+05:30).
    datetime: String,
    status: Option<String>,
    reason_code: Option<String>,
    reason_code_number: String,
    /// Takes priority over `reason_code_number` when present.
    child_reason_code_number: Option<String>,
    location: Option<String>,
    #[serde(rename = "Employee")]
    #[schema(rename = "Employee")]
    employee: Option<String>,
    /// Unique id of this scan; a repeated one is acknowledged and stored once.
    status_update_number: String,
    order_number: Option<String>,
    city: Option<String>,
    ref_awb: Option<String>,
}

#[derive(OpenApi)]
#[openapi(paths(push))]
struct Doc;

/// Receive an Ecom Express scan
///
/// Authenticated with the connection's Basic-Auth credentials (shown once when the connection was created). `status:true` is answered
/// only after the scan is committed; a repeated `status_update_number` is acknowledged
/// `true` again and stored once. Malformed pushes are answered 400 with `status:false`
/// and a `reason` naming the field; nothing is stored. The database being unavailable
/// is answered 503 with `status:false` (retry later).
#[utoipa::path(post, path = "/{connection_id}", operation_id = "ecomexpress_push",
    params(("connection_id" = String, Path, description = "The ecomexpress connection")),
    request_body = EcomPushIn,
    responses(
        (status = 200, body = PushAck, description = "Committed (or already stored): `status:true`"),
        (status = 400, body = PushAck, description = "Malformed push: `status:false` with a reason; nothing stored"),
        (status = 401, body = PushAck, description = "Wrong or missing credentials (`WWW-Authenticate: Basic`)"),
        (status = 413),
        (status = 429, body = PushAck, description = "Too many failed authentications; see Retry-After"),
        (status = 503, body = PushAck, description = "Not stored (database unavailable): `status:false`, retry")))]
#[allow(dead_code)] // documentation only: `http::inbound` serves every carrier's pushes
fn push() {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scan(body: Value) -> Result<Scan, Refusal> {
        parse(&body).map(|p| match p {
            Push::Scan(s) => s,
            Push::Tracking(_) => panic!("a scan"),
        })
    }

    #[test]
    fn datetime_is_india_time() {
        let t = parse_datetime("2026-11-22 10:30:00").expect("parse");
        assert_eq!(t.to_rfc3339(), "2026-11-22T05:00:00+00:00");
        assert!(parse_datetime("22-11-2026 10:30").is_none());
    }

    #[test]
    fn child_code_takes_priority_and_extra_fields_are_accepted() {
        let s = scan(json!({"awb": "A1", "datetime": "2026-11-22 10:30:00", "reason_code_number": "777",
            "child_reason_code_number": "999", "status_update_number": "5", "EDD": "x", "received_by": "me",
            "reason_code": "999 - Delivered", "city": "Pune", "order_number": "O-1", "Employee": "E"}))
        .expect("valid");
        assert_eq!((s.code.as_str(), s.tracking_number.as_str(), s.scan_id.as_str()), ("999", "A1", "5"));
        assert_eq!(s.message.as_deref(), Some("999 - Delivered"), "the reason when there is no remark");
        assert_eq!(s.location.and_then(|l| l.country).as_deref(), Some("IN"));
        assert_eq!(s.metadata.get("order_number").map(String::as_str), Some("O-1"));
        assert_eq!(s.actor.as_deref(), Some("E"));
    }

    #[test]
    fn malformed_names_the_field_and_echoes_the_keys() {
        let body = json!({"awb": "A1", "datetime": "2026-11-22 10:30:00", "status_update_number": 7});
        let Err(Refusal::Reason(reason)) = parse(&body) else { panic!("a number is not a string") };
        assert_eq!(reason, "status_update_number must be a string");
        let ack: Value = serde_json::from_str(acknowledge(&Reply::Refused(&reason), &body).get()).expect("json");
        assert_eq!(ack, json!({"awb": "A1", "status": false, "reason": reason, "status_update_number": 7}));
        let late = json!({"awb": "A1", "datetime": "0000-01-01 01:00:00", "status_update_number": "1",
            "reason_code_number": "1"});
        assert!(matches!(parse(&late), Err(Refusal::Reason(r)) if r.starts_with("datetime ")));
    }

    #[test]
    fn the_acknowledgement_keeps_the_seed_s_field_order() {
        let ack = acknowledge(&Reply::Unauthorized, &json!({"awb": "A", "status_update_number": "1"}));
        assert_eq!(ack.get(), r#"{"awb":"A","status":false,"reason":"unauthorized","status_update_number":"1"}"#);
        let ok = acknowledge(&Reply::Accepted(&crate::carriers::inbound::Ingested::Duplicate), &Value::Null);
        assert_eq!(ok.get(), r#"{"awb":null,"status":true,"status_update_number":null}"#);
    }
}
