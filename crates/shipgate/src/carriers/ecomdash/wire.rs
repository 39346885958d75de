//! ecomdash wire types (seed `004_ad6b9d4634b2b6ed.txt`, docs/carriers/ecomdash.md "ecomdash").
//!
//! Request: a JSON **array** of tracking items with PascalCase keys, exactly the seed's
//! `ListOfFulfillmentRequest` JSON Schema (`additionalProperties: false`; ids are
//! numbers, dates RFC 3339 `date-time` strings); the schema is kept beside this file
//! and every body the tests send is validated against it. Answer: an envelope
//! `{status, messages, pagination, data:[{Request, WasSuccessful, Messages}]}`. The
//! readers are lenient where the public API is known to vary: ids may come back as
//! decimals (`28.0`) or strings, `Messages` may be null, a string or a list.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

// ---------- requests ----------

/// One `submitTrackingInfo` item (seed "Request body").
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrackingInfo {
    /// ecomdash's ShipmentId: "Integer", required (always a JSON number).
    pub shipment_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    #[serde(rename = "TrackingURL", skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipped_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_delivery_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_items: Option<Vec<LineItem>>,
}

/// One `LineItems[i]` entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LineItem {
    /// ecomdash's ShipmentItem id: "Integer", required.
    pub line_item_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    #[serde(rename = "TrackingURL", skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_delivery_date: Option<String>,
}

// ---------- answers ----------

/// The 200 envelope.
#[derive(Debug, Deserialize)]
pub struct SubmitAnswer {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "messages")]
    pub messages: Vec<String>,
    /// None when absent or null (a non-array `data` fails the parse).
    #[serde(default)]
    pub data: Option<Vec<ItemAnswer>>,
}

/// One entry of `data`.
#[derive(Debug, Deserialize)]
pub struct ItemAnswer {
    #[serde(rename = "Request", default)]
    pub request: Option<EchoedRequest>,
    #[serde(rename = "WasSuccessful", default)]
    pub was_successful: Option<bool>,
    #[serde(rename = "Messages", default, deserialize_with = "messages")]
    pub messages: Vec<String>,
}

/// The part of the echoed `Request` we check: its shipment id, normalized.
#[derive(Debug, Deserialize)]
pub struct EchoedRequest {
    #[serde(rename = "ShipmentId", default, deserialize_with = "id")]
    pub shipment_id: Option<String>,
}

/// Error bodies: the seed's `{"Message": ...}` (403, 500) and Azure API Management's
/// `{"statusCode": 429, "message": ...}` (401, 429).
#[derive(Debug, Default, Deserialize)]
pub struct ErrorAnswer {
    #[serde(rename = "Message", alias = "message", default)]
    pub message: Option<String>,
}

/// An id as we compare it: numbers and numeric strings lose a zero fraction
/// (`28.0`, `"28.0"`, `28` → `"28"`); other strings are trimmed.
pub fn normalize_id(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(normalize_numeric(&n.to_string())),
        Value::String(s) if !s.trim().is_empty() => Some(normalize_numeric(s.trim())),
        _ => None,
    }
}

fn normalize_numeric(s: &str) -> String {
    match s.split_once('.') {
        Some((int, frac))
            if !int.is_empty()
                && int.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b == b'0') =>
        {
            int.to_owned()
        }
        _ => s.to_owned(),
    }
}

/// Our stored id as it goes on the wire: ecomdash's integer, or `None` when the text is
/// not a whole number (the seed types every id "Integer": nothing else may be sent) or
/// is 0: the ids are ones ecomdash gave out (seed 004: "given in the results of the
/// /shipments/create call"), and ecomdash refuses 0 with a 400 that fails the whole
/// batch (docs/carriers/ecomdash-simulator.md), so such an item fails on its own.
pub fn wire_id(s: &str) -> Option<u64> {
    super::EcomdashId::parse(s).map(|id| id.0).filter(|id| *id > 0)
}

fn id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(normalize_id(&Value::deserialize(d)?))
}

/// `Messages`: null, a string, or a list of strings (other entries printed).
fn messages<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.is_empty() => vec![s],
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                Value::Null => None,
                other => Some(other.to_string()),
            })
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_seed_answer_and_decimal_ids() {
        let v = json!({"status": "Success", "messages": [], "pagination": null, "data": [
            {"Request": {"ShipmentId": 20405, "CarrierId": null, "TrackingNumber": "ABC123XYZ", "LineItems": []},
             "WasSuccessful": true, "Messages": null},
            {"Request": {"ShipmentId": 28.0}, "WasSuccessful": false, "Messages": ["Shipment not found"]},
            {"Request": {"ShipmentId": "29.00"}, "WasSuccessful": false, "Messages": "busy"}
        ]});
        let a: SubmitAnswer = serde_json::from_value(v).expect("parses");
        let data = a.data.expect("data");
        assert_eq!(data[0].request.as_ref().and_then(|r| r.shipment_id.as_deref()), Some("20405"));
        assert_eq!(data[1].request.as_ref().and_then(|r| r.shipment_id.as_deref()), Some("28"));
        assert_eq!(data[1].messages, vec!["Shipment not found".to_owned()]);
        assert_eq!(data[2].request.as_ref().and_then(|r| r.shipment_id.as_deref()), Some("29"));
        assert_eq!(data[2].messages, vec!["busy".to_owned()]);
        assert!(data[0].messages.is_empty());
    }

    #[test]
    fn ids_go_out_as_numbers_or_not_at_all() {
        assert_eq!(wire_id("28"), Some(28));
        assert_eq!(wire_id("28.0"), Some(28));
        assert_eq!(wire_id("SH-1"), None);
        assert_eq!(wire_id("1.5"), None);
        assert_eq!(wire_id("0"), None, "no id ecomdash gave out");
        assert_eq!(normalize_id(&json!(1.5)).as_deref(), Some("1.5"));
        assert_eq!(normalize_id(&json!(null)), None);
    }

    #[test]
    fn optional_fields_are_left_out() {
        let item = TrackingInfo {
            shipment_id: 7,
            carrier_id: None,
            tracking_number: Some("T".into()),
            tracking_url: None,
            shipped_date: None,
            estimated_delivery_date: None,
            line_items: None,
        };
        assert_eq!(serde_json::to_value(item).expect("serializes"), json!({"ShipmentId": 7, "TrackingNumber": "T"}));
    }
}
