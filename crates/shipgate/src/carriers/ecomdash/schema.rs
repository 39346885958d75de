//! The seed's request schema and a checker for the part of JSON Schema it uses, so
//! tests can prove every body we send to ecomdash is one its API accepts.
//!
//! `list_of_fulfillment_request.schema.json` is ecomdash's `ListOfFulfillmentRequest`
//! exactly as published in seed 004 ("Submit Tracking Info", request body schema).
//! Keywords understood: `title`, `type` (`array`, `object`, `number`, `integer`,
//! `string`, `boolean`), `properties`, `additionalProperties: false`, `required`,
//! `items`, and `format` (`date-time`: RFC 3339, checked as an assertion since
//! ecomdash parses the dates; `decimal` is a numeric annotation). Any other keyword
//! fails the check, so the checker cannot silently pass a schema it does not understand.

use serde_json::Value;

pub const LIST_OF_FULFILLMENT_REQUEST: &str = include_str!("list_of_fulfillment_request.schema.json");

const KNOWN: [&str; 7] = ["title", "type", "format", "properties", "additionalProperties", "required", "items"];

/// Every way `value` breaks `schema`, each with its JSON path (`$[0].LineItems[1].LineItemId`).
pub fn violations(schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, value, "$", &mut out);
    out
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "array" => v.is_array(),
        "object" => v.is_object(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}

fn check(schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        out.push(format!("{at}: schema is not an object"));
        return;
    };
    if let Some(k) = s.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        out.push(format!("{at}: schema keyword {k:?} is not understood by this checker"));
        return;
    }
    match s.get("type") {
        Some(Value::String(t)) if !type_matches(t, v) => {
            out.push(format!("{at}: {v} is not of type {t}"));
            return;
        }
        Some(Value::Array(ts)) if !ts.iter().filter_map(Value::as_str).any(|t| type_matches(t, v)) => {
            out.push(format!("{at}: {v} is none of the types {ts:?}"));
            return;
        }
        _ => {}
    }
    if s.get("format").and_then(Value::as_str) == Some("date-time")
        && let Some(text) = v.as_str()
        && chrono::DateTime::parse_from_rfc3339(text).is_err()
    {
        out.push(format!("{at}: {text:?} is not an RFC 3339 date-time"));
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(sub) => check(sub, val, &format!("{at}.{k}"), out),
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    out.push(format!("{at}: property {k:?} is not allowed (additionalProperties: false)"))
                }
                None => {}
            }
        }
        for r in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !obj.contains_key(r) {
                out.push(format!("{at}: required property {r:?} is missing"));
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            check(items, item, &format!("{at}[{i}]"), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        serde_json::from_str(LIST_OF_FULFILLMENT_REQUEST).expect("the seed's schema is JSON")
    }

    #[test]
    fn the_checker_refuses_what_the_seed_schema_refuses() {
        let ok = json!([{"ShipmentId": 20405, "CarrierId": 4, "TrackingNumber": "ABC123XYZ",
            "TrackingURL": "https://t.example/ABC123XYZ", "ShippedDate": "2016-07-18T12:57:33Z",
            "EstimatedDeliveryDate": "2016-07-21T00:00:00+00:00",
            "LineItems": [{"LineItemId": 7, "CarrierId": 4, "TrackingNumber": "ABC123XYZ",
                "TrackingURL": "https://t.example/ABC123XYZ", "EstimatedDeliveryDate": "2016-07-21T00:00:00Z"}]}]);
        assert_eq!(violations(&schema(), &ok), Vec::<String>::new());
        let bad = json!([{"ShipmentId": "20405", "Colour": 1, "ShippedDate": "18/07/2016",
            "LineItems": [{"LineItemId": "7", "Quantity": 1}]}]);
        let v = violations(&schema(), &bad);
        for needle in
            ["$[0].ShipmentId", "\"Colour\"", "$[0].ShippedDate", "$[0].LineItems[0].LineItemId", "\"Quantity\""]
        {
            assert!(v.iter().any(|x| x.contains(needle)), "{needle} not reported in {v:?}");
        }
        assert!(!violations(&schema(), &json!({"ShipmentId": 1})).is_empty(), "not an array");
        assert!(!violations(&json!({"type": "string", "pattern": "x"}), &json!("x")).is_empty(), "unknown keyword");
    }
}
