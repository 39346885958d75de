//! Size and range limits of request fields, enforced while the body is parsed (a
//! refused value is a 422 naming its field, never a value passed on to a carrier).
//!
//! Each bounded field carries two attributes side by side: `deserialize_with` naming
//! one of these functions with its limit, and the `#[schema(...)]` limit the OpenAPI
//! document publishes. The contract check (`contract/openapi/run.sh`, schemathesis)
//! sends values past the published limits, and `tests::published_limits_are_enforced`
//! checks the pairs one by one, so the two cannot drift apart unnoticed.
//!
//! Lengths are counted in Unicode scalar values, as JSON Schema's `maxLength` counts.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

fn check_len<E: serde::de::Error>(s: &str, min: usize, max: usize) -> Result<(), E> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(if min == 0 {
            E::custom(format!("must be at most {max} characters"))
        } else {
            E::custom(format!("must be {min}-{max} characters"))
        });
    }
    Ok(())
}

/// A string of at most `MAX` characters.
pub fn text<'de, const MAX: usize, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_len(&s, 0, MAX)?;
    Ok(s)
}

/// A string of 1 to `MAX` characters.
pub fn nonempty<'de, const MAX: usize, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_len(&s, 1, MAX)?;
    Ok(s)
}

/// An optional string of at most `MAX` characters (null: absent).
pub fn opt_text<'de, const MAX: usize, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    if let Some(s) = &s {
        check_len(s, 0, MAX)?;
    }
    Ok(s)
}

/// A PATCH string field of at most `MAX` characters: absent (outer None, by `default`),
/// null (cleared) or a value.
pub fn patch_text<'de, const MAX: usize, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    opt_text::<MAX, D>(d).map(Some)
}

/// A list of at most `ITEMS` strings of at most `MAX` characters each.
pub fn opt_text_list<'de, const ITEMS: usize, const MAX: usize, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let v = Option::<Vec<String>>::deserialize(d)?;
    if let Some(v) = &v {
        if v.len() > ITEMS {
            return Err(D::Error::custom(format!("at most {ITEMS} entries")));
        }
        for s in v {
            check_len(s, 0, MAX)?;
        }
    }
    Ok(v)
}

/// A list of at most `ITEMS` entries.
pub fn opt_list<'de, const ITEMS: usize, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    let v = Option::<Vec<T>>::deserialize(d)?;
    if v.as_ref().is_some_and(|v| v.len() > ITEMS) {
        return Err(D::Error::custom(format!("at most {ITEMS} entries")));
    }
    Ok(v)
}

fn check_count<E: serde::de::Error>(n: u32, min: u32, max: u32) -> Result<u32, E> {
    if (min..=max).contains(&n) { Ok(n) } else { Err(E::custom(format!("must be between {min} and {max}"))) }
}

/// A whole number from `MIN` to `MAX`.
pub fn count<'de, const MIN: u32, const MAX: u32, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    check_count(u32::deserialize(d)?, MIN, MAX)
}

/// An optional whole number from `MIN` to `MAX`.
pub fn opt_count<'de, const MIN: u32, const MAX: u32, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Option::<u32>::deserialize(d)?.map(|n| check_count(n, MIN, MAX)).transpose()
}

/// A number greater than 0 and at most `MAX` (a weight of 1e308 is refused here, not
/// sent to a carrier as `inf`).
pub fn positive<'de, const MAX: u32, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v > 0.0 && v <= f64::from(MAX) {
        Ok(v)
    } else {
        Err(D::Error::custom(format!("must be greater than 0 and at most {MAX}")))
    }
}

/// An optional number greater than 0 and at most `MAX`.
pub fn opt_positive<'de, const MAX: u32, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        Some(v) if v.is_finite() && v > 0.0 && v <= f64::from(MAX) => Ok(Some(v)),
        Some(_) => Err(D::Error::custom(format!("must be greater than 0 and at most {MAX}"))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::domain::{Parcel, Stop};
    use crate::http::connections::ConnectionIn;
    use crate::http::shipments::{ShipmentIn, ShipmentPatch};
    use crate::http::status_mappings::StatusMappingsPut;
    use crate::http::webhooks::WebhookEndpointIn;

    /// The published document and the parser agree: for every string field with a
    /// `maxLength` (and every number with a `maximum`) in the request schemas, a value
    /// one past the limit, put into a valid example, is refused naming that field, and
    /// the value at the limit is accepted.
    #[test]
    fn published_limits_are_enforced() {
        let doc: Value = serde_json::from_str(&crate::http::openapi().to_json().expect("json")).expect("doc");
        let schemas = &doc["components"]["schemas"];
        let stop = json!({"sequence": 1, "type": "pickup", "name": "n", "company": "c",
            "address": {"line1": "l", "line2": "l", "city": "c", "state": "s", "postal_code": "p", "country": "US"},
            "phone": "1", "email": "e@example.com", "notes": "n"});
        let parcel = json!({"reference": "r", "quantity": 1, "weight": {"value": 1.0, "unit": "kg"},
            "dimensions": {"length": 1.0, "width": 1.0, "height": 1.0, "unit": "cm"}, "description": "d",
            "pickup_stop": 1, "delivery_stop": 2});
        let shipment = json!({"connection_id": "con_1", "reference": "r", "tracking_number": "t", "service": "s",
            "notes": "n", "stops": [stop], "parcels": [parcel],
            "channel": {"ecomdash": {"connection_id": "con_1", "shipment_id": 1, "carrier_id": 2, "line_item_ids": [3]}}});
        let cases: Vec<(&str, Value, Parser)> = vec![
            ("ShipmentIn", shipment.clone(), |b| parse::<ShipmentIn>(b)),
            (
                "ShipmentPatch",
                shipment
                    .as_object()
                    .map(|o| {
                        let mut o = o.clone();
                        o.remove("connection_id");
                        o.remove("tracking_number");
                        Value::Object(o)
                    })
                    .expect("object"),
                |b| parse::<ShipmentPatch>(b),
            ),
            ("Stop", stop.clone(), |b| parse::<Stop>(b)),
            (
                "EstimateIn",
                json!({"connection_id": "con_1", "items": [{"slug": "fedex", "service_type_name": "s",
                    "origin_address": {"country": "USA", "state": "s", "city": "c", "postal_code": "p", "raw_location": "r"},
                    "destination_address": {"country": "USA"}, "weight": {"unit": "kg", "value": 1.0},
                    "package_count": 1, "pickup_time": "2026-11-23 15:00:00",
                    "estimated_pickup": {"order_time": "2026-11-23 09:00:00", "order_cutoff_time": "18:00:00",
                        "business_days": [1], "order_processing_time": {"unit": "day", "value": 0}}}]}),
                |b| parse::<crate::http::estimates::EstimateIn>(b),
            ),
            ("Parcel", parcel.clone(), |b| parse::<Parcel>(b)),
            ("ConnectionIn", json!({"carrier": "ecourier", "name": "n", "base_url": "https://x.example"}), |b| {
                parse::<ConnectionIn>(b)
            }),
            ("WebhookEndpointIn", json!({"url": "https://x.example", "description": "d"}), |b| {
                parse::<WebhookEndpointIn>(b)
            }),
            (
                "StatusMappingsPut",
                json!({"mappings": [{"carrier": "ecomexpress", "code": "1", "after_code": "2",
                "status": "delivered", "subtag": "Delivered_001", "description": "d"}]}),
                |b| parse::<StatusMappingsPut>(b),
            ),
        ];
        let mut checked = 0;
        for (name, example, parse_fn) in cases {
            assert!(parse_fn(example.to_string().as_bytes()).is_ok(), "{name}: the example parses");
            let mut fields = Vec::new();
            collect(schemas, &schemas[name], &example, String::new(), &mut fields);
            for (path, limit) in fields {
                for (value, ok) in limit.probes() {
                    let mut body = example.clone();
                    set(&mut body, &path, value.clone());
                    let r = parse_fn(body.to_string().as_bytes());
                    if ok {
                        assert!(r.is_ok(), "{name}.{path} = {value}: refused at the published limit: {r:?}");
                    } else {
                        let field = r.expect_err(&format!("{name}.{path}: {value} accepted past the published limit"));
                        assert_eq!(field, path.replace('/', ".").replace(".[", "["), "{name}: the refused field");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 40, "only {checked} probes");
    }

    /// Parses a body as one request type; Err is the refused field.
    type Parser = fn(&[u8]) -> Result<(), String>;

    #[derive(Debug, Clone)]
    enum Limit {
        Len(u64),
        Max(f64, bool),
    }

    impl Limit {
        fn probes(&self) -> Vec<(Value, bool)> {
            match self {
                Limit::Len(n) => {
                    vec![(json!("x".repeat(*n as usize)), true), (json!("x".repeat(*n as usize + 1)), false)]
                }
                Limit::Max(m, integer) if *integer => vec![(json!(*m as u64), true), (json!(*m as u64 + 1), false)],
                Limit::Max(m, _) => vec![(json!(m), true), (json!(m * 1.5), false), (json!(1e308), false)],
            }
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<(), String> {
        match crate::http::extract::parse_json::<T>(b) {
            Ok(_) => Ok(()),
            Err(crate::error::ApiError::Validation { errors, .. }) => Err(errors[0].field.clone()),
            Err(other) => Err(format!("{other:?}")),
        }
    }

    fn resolve<'a>(schemas: &'a Value, s: &'a Value) -> &'a Value {
        if let Some(r) = s["$ref"].as_str() {
            return resolve(schemas, &schemas[r.trim_start_matches("#/components/schemas/")]);
        }
        if let Some(one) = s["oneOf"].as_array()
            && let Some(non_null) = one.iter().find(|v| v["type"] != "null")
        {
            return resolve(schemas, non_null);
        }
        s
    }

    /// Every bounded leaf present in `example`, with its path (`a/b/[0]/c`).
    fn collect(schemas: &Value, schema: &Value, example: &Value, path: String, out: &mut Vec<(String, Limit)>) {
        let s = resolve(schemas, schema);
        if let Some(n) = s["maxLength"].as_u64() {
            out.push((path.clone(), Limit::Len(n)));
        }
        if let Some(m) = s["maximum"].as_f64() {
            let integer = s["type"] == "integer" || s["type"].as_array().is_some_and(|t| t.contains(&json!("integer")));
            out.push((path.clone(), Limit::Max(m, integer)));
        }
        match example {
            Value::Object(o) => {
                for (k, v) in o {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}/{k}") };
                    collect(schemas, &s["properties"][k], v, p, out);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    collect(schemas, &s["items"], v, format!("{path}/[{i}]"), out);
                }
            }
            _ => {}
        }
    }

    fn set(body: &mut Value, path: &str, value: Value) {
        let mut cur = body;
        for part in path.split('/') {
            cur = match part.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
                Some(i) => &mut cur[i.parse::<usize>().expect("index")],
                None => &mut cur[part],
            };
        }
        *cur = value;
    }
}
