//! The published document and the parser agree on every request type's limits (the
//! pairs of `deserialize_with` and `#[schema(...)]` limits, `domain::limits`).

use serde_json::{Value, json};

use super::connections::ConnectionIn;
use super::shipments::{ShipmentIn, ShipmentPatch};
use super::status_mappings::StatusMappingsPut;
use super::webhooks::WebhookEndpointIn;
use crate::domain::{Parcel, Stop};

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
