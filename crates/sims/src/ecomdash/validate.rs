//! The request body of `Submit Tracking Info` (seed 004): a JSON array valid against the
//! seed's `ListOfFulfillmentRequest` schema (`additionalProperties: false`, ids and carrier ids
//! numbers, dates `format: date-time` strings) and its field table (ShipmentId required;
//! TrackingNumber "Required if LineItems are not passed in"; `LineItems[i].LineItemId`
//! required; `LineItems[i].TrackingNumber` "Required if the base request is missing a
//! TrackingNumber"; ids are Integers). Every problem is reported, as ASP.NET's model state does.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::{Map, Number, Value};

const ITEM_KEYS: &[&str] =
    &["ShipmentId", "CarrierId", "TrackingNumber", "TrackingURL", "ShippedDate", "EstimatedDeliveryDate", "LineItems"];
const LINE_KEYS: &[&str] = &["LineItemId", "CarrierId", "TrackingNumber", "TrackingURL", "EstimatedDeliveryDate"];

/// An id as sent (`raw`, echoed unchanged) and as the whole number it stands for.
#[derive(Clone, Debug)]
pub(crate) struct Id {
    pub raw: Number,
    pub value: i64,
}

#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub shipment_id: Id,
    pub carrier_id: Option<Id>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub shipped_date: Option<String>,
    pub estimated_delivery_date: Option<String>,
    pub line_items: Vec<LineItem>,
}

#[derive(Clone, Debug)]
pub(crate) struct LineItem {
    pub line_item_id: Id,
    pub carrier_id: Option<Id>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub estimated_delivery_date: Option<String>,
}

/// The items of a valid body, or every message explaining why it is refused.
pub(crate) fn items(body: &Value, max_items: Option<usize>) -> Result<Vec<Item>, Vec<String>> {
    let Some(array) = body.as_array() else {
        return Err(vec!["The request body must be a JSON array of fulfillment requests.".into()]);
    };
    if array.is_empty() {
        return Err(vec!["The request body must hold at least one fulfillment request.".into()]);
    }
    if let Some(max) = max_items
        && array.len() > max
    {
        return Err(vec![format!("At most {max} fulfillment requests may be sent in one call.")]);
    }
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(array.len());
    for (i, v) in array.iter().enumerate() {
        if let Some(item) = item(v, &format!("[{i}]"), &mut errors) {
            out.push(item);
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.truncate(50);
        Err(errors)
    }
}

fn item(v: &Value, p: &str, errors: &mut Vec<String>) -> Option<Item> {
    let Some(m) = v.as_object() else {
        errors.push(format!("{p} must be an object."));
        return None;
    };
    let before = errors.len();
    unknown_keys(m, p, ITEM_KEYS, errors);
    let shipment_id = id(m, p, "ShipmentId", true, errors);
    let carrier_id = id(m, p, "CarrierId", false, errors);
    let tracking_number = string(m, p, "TrackingNumber", errors);
    let tracking_url = string(m, p, "TrackingURL", errors);
    let shipped_date = date(m, p, "ShippedDate", errors);
    let estimated_delivery_date = date(m, p, "EstimatedDeliveryDate", errors);
    let mut line_items = Vec::new();
    match m.get("LineItems") {
        None => {}
        Some(Value::Array(lines)) => {
            for (j, line) in lines.iter().enumerate() {
                if let Some(l) = line_item(line, &format!("{p}.LineItems[{j}]"), tracking_number.is_some(), errors) {
                    line_items.push(l);
                }
            }
        }
        Some(_) => errors.push(format!("{p}.LineItems must be an array.")),
    }
    let has_lines = m.get("LineItems").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    // A TrackingNumber of the wrong type was reported above; blank counts as not passed in.
    let bad_type = m.get("TrackingNumber").is_some_and(|v| !v.is_string());
    if tracking_number.is_none() && !has_lines && !bad_type {
        errors.push(format!("{p}.TrackingNumber is required if LineItems are not passed in."));
    }
    if errors.len() > before {
        return None;
    }
    Some(Item {
        shipment_id: shipment_id?,
        carrier_id,
        tracking_number,
        tracking_url,
        shipped_date,
        estimated_delivery_date,
        line_items,
    })
}

fn line_item(v: &Value, p: &str, base_has_tracking: bool, errors: &mut Vec<String>) -> Option<LineItem> {
    let Some(m) = v.as_object() else {
        errors.push(format!("{p} must be an object."));
        return None;
    };
    let before = errors.len();
    unknown_keys(m, p, LINE_KEYS, errors);
    let line_item_id = id(m, p, "LineItemId", true, errors);
    let carrier_id = id(m, p, "CarrierId", false, errors);
    let tracking_number = string(m, p, "TrackingNumber", errors);
    let tracking_url = string(m, p, "TrackingURL", errors);
    let estimated_delivery_date = date(m, p, "EstimatedDeliveryDate", errors);
    let bad_type = m.get("TrackingNumber").is_some_and(|v| !v.is_string());
    if tracking_number.is_none() && !base_has_tracking && !bad_type {
        errors.push(format!("{p}.TrackingNumber is required if the base request is missing a TrackingNumber."));
    }
    if errors.len() > before {
        return None;
    }
    Some(LineItem { line_item_id: line_item_id?, carrier_id, tracking_number, tracking_url, estimated_delivery_date })
}

fn unknown_keys(m: &Map<String, Value>, p: &str, known: &[&str], errors: &mut Vec<String>) {
    for k in m.keys().filter(|k| !known.contains(&k.as_str())) {
        errors.push(format!("{p}.{k} is not a member of the request (additionalProperties: false)."));
    }
}

/// A whole, positive number (the table types ids as Integer; the schema as number/decimal,
/// so `28.0` is the id 28).
fn id(m: &Map<String, Value>, p: &str, key: &str, required: bool, errors: &mut Vec<String>) -> Option<Id> {
    match m.get(key) {
        None if required => {
            errors.push(format!("{p}.{key} is required."));
            None
        }
        None => None,
        Some(Value::Number(n)) => {
            let value =
                n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64));
            match value {
                Some(value) if value > 0 => Some(Id { raw: n.clone(), value }),
                _ => {
                    errors.push(format!("{p}.{key} must be a whole number greater than 0."));
                    None
                }
            }
        }
        Some(_) => {
            errors.push(format!("{p}.{key} must be a number."));
            None
        }
    }
}

/// A string property; an empty (or blank) one counts as not passed in.
fn string(m: &Map<String, Value>, p: &str, key: &str, errors: &mut Vec<String>) -> Option<String> {
    match m.get(key) {
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) if s.contains('\0') => {
            errors.push(format!("{p}.{key} must not contain NUL characters."));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(format!("{p}.{key} must be a string."));
            None
        }
    }
}

fn date(m: &Map<String, Value>, p: &str, key: &str, errors: &mut Vec<String>) -> Option<String> {
    match m.get(key) {
        None => None,
        Some(Value::String(s)) if is_date_time(s) => Some(s.clone()),
        Some(_) => {
            errors.push(format!(
                "{p}.{key} must be a date-time string such as 2016-07-18T12:57:33 (or a date such as 2016-07-21)."
            ));
            None
        }
    }
}

/// ISO 8601 as ASP.NET binds a DateTime from JSON: a date, or a date-time with seconds, an
/// optional fraction and an optional `Z`/offset (the seed's own example has no offset:
/// `2016-07-18T12:57:33`; its table says "The date or date/time").
pub(crate) fn is_date_time(s: &str) -> bool {
    if s.len() == 10 {
        return NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok();
    }
    DateTime::parse_from_rfc3339(s).is_ok() || NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
}

/// The echo of a date: a date-only value at midnight, as a .NET DateTime serializes it.
pub(crate) fn echo_date(s: &str) -> String {
    if s.len() == 10 { format!("{s}T00:00:00") } else { s.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(body: Value) -> Vec<String> {
        items(&body, None).unwrap_err()
    }

    #[test]
    fn the_seeds_field_table_is_enforced() {
        let ok = items(
            &json!([{"ShipmentId": 20405, "TrackingNumber": "ABC123XYZ", "ShippedDate": "2016-07-18T12:57:33"}]),
            None,
        );
        assert_eq!(ok.unwrap()[0].shipment_id.value, 20405);
        assert_eq!(
            items(&json!([{"ShipmentId": 28.0, "TrackingNumber": "T"}]), None).unwrap()[0].shipment_id.value,
            28
        );
        assert_eq!(
            refused(json!({"ShipmentId": 1})),
            ["The request body must be a JSON array of fulfillment requests."]
        );
        assert_eq!(refused(json!([{"TrackingNumber": "T"}])), ["[0].ShipmentId is required."]);
        assert_eq!(
            refused(json!([{"ShipmentId": "20405", "TrackingNumber": "T"}])),
            ["[0].ShipmentId must be a number."]
        );
        assert_eq!(
            refused(json!([{"ShipmentId": 1.5, "TrackingNumber": "T"}])),
            ["[0].ShipmentId must be a whole number greater than 0."]
        );
        assert_eq!(
            refused(json!([{"ShipmentId": 1}])),
            ["[0].TrackingNumber is required if LineItems are not passed in."]
        );
        assert_eq!(
            refused(json!([{"ShipmentId": 1, "LineItems": []}])),
            ["[0].TrackingNumber is required if LineItems are not passed in."]
        );
        assert_eq!(
            refused(json!([{"ShipmentId": 1, "LineItems": [{"TrackingNumber": "T"}]}])),
            ["[0].LineItems[0].LineItemId is required."]
        );
        assert_eq!(
            refused(json!([{"ShipmentId": 1, "LineItems": [{"LineItemId": 7}]}])),
            ["[0].LineItems[0].TrackingNumber is required if the base request is missing a TrackingNumber."]
        );
        assert!(
            items(&json!([{"ShipmentId": 1, "TrackingNumber": "T", "LineItems": [{"LineItemId": 7}]}]), None).is_ok()
        );
        assert_eq!(
            refused(json!([{"ShipmentId": 1, "TrackingNumber": "T", "Carrier": "UPS"}])),
            ["[0].Carrier is not a member of the request (additionalProperties: false)."]
        );
        assert_eq!(
            refused(json!([{"ShipmentId": 1, "TrackingNumber": "T", "CarrierId": null}])),
            ["[0].CarrierId must be a number."]
        );
        assert_eq!(refused(json!([{"ShipmentId": 1, "TrackingNumber": "T", "ShippedDate": "07/18/2016"}])).len(), 1);
        assert_eq!(refused(json!([{"ShipmentId": 1, "TrackingNumber": "T"}, 5, {"ShipmentId": 2}])).len(), 2);
    }

    #[test]
    fn dates_are_iso_8601_dates_or_date_times() {
        for ok in [
            "2016-07-21",
            "2016-07-18T12:57:33",
            "2016-07-18T12:57:33.123",
            "2016-07-18T12:57:33Z",
            "2016-07-18T12:57:33+05:30",
        ] {
            assert!(is_date_time(ok), "{ok}");
        }
        for bad in ["string", "2016-13-01", "2016-07-18 12:57:33", "1468846653", "2016-07-18T12:57"] {
            assert!(!is_date_time(bad), "{bad}");
        }
        assert_eq!(echo_date("2016-07-21"), "2016-07-21T00:00:00");
    }
}
