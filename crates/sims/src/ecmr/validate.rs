//! The store-shipment body of docs/carriers/ecmr.md's `ecmr` section (*ours*, CMR convention):
//! `{"shipment": {reference, consignor, consignee, taking_over, delivery, goods, instructions?}}`.
//! Missing consignor/consignee/goods or a bad value → 422 `{error, field}` naming the field
//! by its JSON path (`shipment.goods[0].packages`).

use chrono::DateTime;
use serde_json::{Map, Value};

#[derive(Debug, PartialEq)]
pub(crate) struct Invalid {
    pub error: String,
    pub field: String,
}

fn invalid(field: impl Into<String>, error: impl Into<String>) -> Invalid {
    Invalid { field: field.into(), error: error.into() }
}

const PARTY: &[&str] = &["name", "address", "postal_code", "city", "country"];
const PLACE: &[&str] = &["address", "postal_code", "city", "country"];

/// Validates the body; gives back the reference and the `shipment` object to store.
pub(crate) fn store_body(body: &Value) -> Result<(String, Map<String, Value>), Invalid> {
    let top =
        body.as_object().ok_or_else(|| invalid("shipment", "the body must be an object {\"shipment\": {...}}"))?;
    let shipment = match top.get("shipment") {
        None | Some(Value::Null) => {
            return Err(invalid("shipment", "shipment is required: the body is {\"shipment\": {...}}"));
        }
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid("shipment", "shipment must be an object")),
    };
    only_known(top, "", &["shipment"])?;
    let p = "shipment";
    only_known(
        shipment,
        p,
        &["reference", "consignor", "consignee", "taking_over", "delivery", "goods", "instructions"],
    )?;
    let reference = required_str(shipment, p, "reference", 100)?;
    party(shipment, p, "consignor")?;
    party(shipment, p, "consignee")?;

    let taking_over = required_obj(shipment, p, "taking_over")?;
    let tp = format!("{p}.taking_over");
    only_known(taking_over, &tp, &["place", "date"])?;
    place(taking_over, &tp)?;
    let taken = required_date(taking_over, &tp, "date")?;

    let delivery = required_obj(shipment, p, "delivery")?;
    let dp = format!("{p}.delivery");
    only_known(delivery, &dp, &["place", "date"])?;
    place(delivery, &dp)?;
    if let Some(delivered) = optional_date(delivery, &dp, "date")?
        && delivered < taken
    {
        return Err(invalid(format!("{dp}.date"), format!("{dp}.date must not be before {tp}.date")));
    }

    let goods = match shipment.get("goods") {
        None | Some(Value::Null) => return Err(invalid(format!("{p}.goods"), format!("{p}.goods is required"))),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(invalid(format!("{p}.goods"), format!("{p}.goods must be an array"))),
    };
    if goods.is_empty() {
        return Err(invalid(format!("{p}.goods"), format!("{p}.goods must hold at least one line")));
    }
    if goods.len() > 999 {
        return Err(invalid(format!("{p}.goods"), format!("{p}.goods must hold at most 999 lines")));
    }
    for (i, line) in goods.iter().enumerate() {
        goods_line(line, &format!("{p}.goods[{i}]"))?;
    }
    optional_str(shipment, p, "instructions", 2000)?;
    Ok((reference, shipment.clone()))
}

fn goods_line(line: &Value, lp: &str) -> Result<(), Invalid> {
    let m = line.as_object().ok_or_else(|| invalid(lp, format!("{lp} must be an object")))?;
    only_known(m, lp, &["marks", "packages", "packing", "description", "gross_weight_kg", "volume_m3"])?;
    optional_str(m, lp, "marks", 200)?;
    let field = format!("{lp}.packages");
    match m.get("packages") {
        None | Some(Value::Null) => return Err(invalid(&field, format!("{field} is required"))),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=99_999).contains(&n) => {}
            _ => return Err(invalid(&field, format!("{field} must be a whole number from 1 to 99999"))),
        },
    }
    optional_str(m, lp, "packing", 200)?;
    required_str(m, lp, "description", 500)?;
    for key in ["gross_weight_kg", "volume_m3"] {
        let field = format!("{lp}.{key}");
        match m.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => {}
                _ => return Err(invalid(&field, format!("{field} must be a number of at least 0"))),
            },
        }
    }
    Ok(())
}

fn party(parent: &Map<String, Value>, pp: &str, key: &str) -> Result<(), Invalid> {
    let m = required_obj(parent, pp, key)?;
    let path = format!("{pp}.{key}");
    only_known(m, &path, PARTY)?;
    for k in PARTY {
        if *k == "country" {
            country(m, &path)?;
        } else {
            required_str(m, &path, k, 200)?;
        }
    }
    Ok(())
}

fn place(parent: &Map<String, Value>, pp: &str) -> Result<(), Invalid> {
    let m = required_obj(parent, pp, "place")?;
    let path = format!("{pp}.place");
    only_known(m, &path, PLACE)?;
    for k in PLACE {
        if *k == "country" {
            country(m, &path)?;
        } else {
            required_str(m, &path, k, 200)?;
        }
    }
    Ok(())
}

fn country(m: &Map<String, Value>, pp: &str) -> Result<(), Invalid> {
    let c = required_str(m, pp, "country", 2)?;
    if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
        let field = format!("{pp}.country");
        return Err(invalid(&field, format!("{field} must be an ISO 3166-1 alpha-2 code such as \"NL\"")));
    }
    Ok(())
}

fn only_known(m: &Map<String, Value>, pp: &str, known: &[&str]) -> Result<(), Invalid> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => {
            let field = if pp.is_empty() { k.clone() } else { format!("{pp}.{k}") };
            Err(invalid(&field, format!("unknown field {field}")))
        }
        None => Ok(()),
    }
}

fn required_obj<'a>(m: &'a Map<String, Value>, pp: &str, key: &str) -> Result<&'a Map<String, Value>, Invalid> {
    let field = format!("{pp}.{key}");
    match m.get(key) {
        None | Some(Value::Null) => Err(invalid(&field, format!("{field} is required"))),
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(invalid(&field, format!("{field} must be an object"))),
    }
}

fn text_ok(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max && !s.contains('\0')
}

fn required_str(m: &Map<String, Value>, pp: &str, key: &str, max: usize) -> Result<String, Invalid> {
    let field = format!("{pp}.{key}");
    match m.get(key) {
        None | Some(Value::Null) => Err(invalid(&field, format!("{field} is required"))),
        Some(Value::String(s)) if text_ok(s, max) => Ok(s.clone()),
        Some(_) => Err(invalid(&field, format!("{field} must be a non-empty string of at most {max} characters"))),
    }
}

fn optional_str(m: &Map<String, Value>, pp: &str, key: &str, max: usize) -> Result<(), Invalid> {
    let field = format!("{pp}.{key}");
    match m.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if text_ok(s, max) => Ok(()),
        Some(_) => Err(invalid(&field, format!("{field} must be a non-empty string of at most {max} characters"))),
    }
}

type Date = DateTime<chrono::FixedOffset>;

fn optional_date(m: &Map<String, Value>, pp: &str, key: &str) -> Result<Option<Date>, Invalid> {
    let field = format!("{pp}.{key}");
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s).map(Some).map_err(|_| {
            invalid(&field, format!("{field} must be an RFC 3339 date-time such as 2025-05-28T08:00:00+02:00"))
        }),
        Some(_) => Err(invalid(&field, format!("{field} must be an RFC 3339 date-time string"))),
    }
}

fn required_date(m: &Map<String, Value>, pp: &str, key: &str) -> Result<Date, Invalid> {
    optional_date(m, pp, key)?.ok_or_else(|| {
        let field = format!("{pp}.{key}");
        invalid(&field, format!("{field} is required"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Value {
        json!({"shipment": {
            "reference": "SO-1001",
            "consignor": {"name": "Acme BV", "address": "Kade 1", "postal_code": "1011 AA", "city": "Amsterdam", "country": "NL"},
            "consignee": {"name": "Beta GmbH", "address": "Strasse 2", "postal_code": "10115", "city": "Berlin", "country": "DE"},
            "taking_over": {"place": {"address": "Kade 1", "postal_code": "1011 AA", "city": "Amsterdam", "country": "NL"}, "date": "2025-05-28T08:00:00+02:00"},
            "delivery": {"place": {"address": "Strasse 2", "postal_code": "10115", "city": "Berlin", "country": "DE"}},
            "goods": [{"packages": 2, "description": "Pallets of books", "gross_weight_kg": 480.5}]
        }})
    }

    fn field_of(mut b: Value, f: impl FnOnce(&mut Value)) -> String {
        f(&mut b);
        store_body(&b).unwrap_err().field
    }

    #[test]
    fn accepts_the_carriers_md_body_and_names_each_bad_field() {
        assert_eq!(store_body(&body()).unwrap().0, "SO-1001");
        let s = |v: &mut Value| v["shipment"].as_object_mut().unwrap().remove("consignor");
        assert_eq!(field_of(body(), |v| drop(s(v))), "shipment.consignor");
        assert_eq!(field_of(body(), |v| v["shipment"]["goods"] = json!([])), "shipment.goods");
        assert_eq!(
            field_of(body(), |v| v["shipment"]["goods"][0]["packages"] = json!(0)),
            "shipment.goods[0].packages"
        );
        assert_eq!(
            field_of(body(), |v| v["shipment"]["goods"][0]["packages"] = json!(1.5)),
            "shipment.goods[0].packages"
        );
        assert_eq!(
            field_of(body(), |v| v["shipment"]["consignee"]["country"] = json!("DEU")),
            "shipment.consignee.country"
        );
        assert_eq!(
            field_of(body(), |v| v["shipment"]["taking_over"]["date"] = json!("28-05-2025")),
            "shipment.taking_over.date"
        );
        assert_eq!(
            field_of(body(), |v| v["shipment"]["delivery"]["date"] = json!("2025-05-27T08:00:00Z")),
            "shipment.delivery.date"
        );
        assert_eq!(
            field_of(body(), |v| v["shipment"]["goods"][0]["grossWeight"] = json!(1)),
            "shipment.goods[0].grossWeight"
        );
        assert_eq!(field_of(body(), |v| *v = v["shipment"].clone()), "shipment");
    }
}
