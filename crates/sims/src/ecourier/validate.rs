//! SaveOrder / QuoteOrder validation, "like a create each time" (docs/carriers/ecourier.md).
//!
//! The reference (seed 001) says e-Courier answers -4 "if required order elements are
//! missing, or if submitted values do not match available options", with a status
//! description that "will attempt to return useful information". Every problem found
//! is reported (path in XPath style, `Order/Stops/Stop[2]/Sequence`), joined by "; ".
//!
//! Choices where the reference is silent (also in docs/carriers/ecourier-simulator.md):
//! - a field outside the reference's model is refused (the order is checked against
//!   the XSD the reference names); `@Name` and `Name` are the same attribute;
//! - every value must be a JSON string; `""` means "not set";
//! - typed values must parse: integers, decimals, XSD booleans (`true`, `false`, `1`,
//!   `0`), dates as the reference writes them (`11/13/2019 6:00:00 AM`) or ISO 8601,
//!   years 1753-9999 (SQL Server's datetime range).

use super::schema::{self, Attr, Child, Schema, Shape, Ty, Use};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// One element of an order as e-Courier keeps it: attributes by name (no `@`) and
/// child containers by name (`Stops` → its `Stop` items).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Elem {
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub children: BTreeMap<String, Vec<Elem>>,
}

impl Elem {
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }

    pub(crate) fn items(&self, container: &str) -> &[Elem] {
        self.children.get(container).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// A valid order document. `doc` holds what was ordered; the order's identity and
/// status travel beside it.
#[derive(Debug, Clone)]
pub(crate) struct ValidOrder {
    pub doc: Elem,
    pub order_number: Option<String>,
    pub status: Option<String>,
}

/// Validates a SaveOrder / QuoteOrder body for the account whose customer code and
/// id are given. The body must already be a JSON object (else the caller answers -2).
pub(crate) fn validate_order(
    body: &Map<String, Value>,
    customer_code: &str,
    customer_id: u64,
) -> Result<ValidOrder, String> {
    let mut errs = Vec::new();
    for key in body.keys().filter(|k| k.as_str() != "Order") {
        errs.push(format!("{key} is not part of an order post: the body is {{\"Order\":{{...}}}}"));
    }
    let order = match body.get("Order") {
        Some(Value::Object(order)) => order,
        Some(_) => return Err(join(vec!["Order must be one element: {\"Order\":{...}}".to_owned()])),
        None => return Err(join(vec!["Order element is missing: the body is {\"Order\":{...}}".to_owned()])),
    };
    let mut doc = validate_elem(order, &schema::ORDER, "Order", &mut errs);
    check_order_rules(&doc, customer_code, customer_id, &mut errs);
    if !errs.is_empty() {
        return Err(join(errs));
    }
    let order_number = doc.attrs.remove("OrderNumber");
    let status = doc.attrs.remove("OrderStatus");
    doc.attrs.remove("CustomerCode");
    Ok(ValidOrder { doc, order_number, status })
}

fn join(mut errs: Vec<String>) -> String {
    const SHOWN: usize = 10;
    let more = errs.len().saturating_sub(SHOWN);
    errs.truncate(SHOWN);
    let mut text = errs.join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    text
}

fn validate_elem(map: &Map<String, Value>, schema: &Schema, path: &str, errs: &mut Vec<String>) -> Elem {
    let mut elem = Elem::default();
    let mut given: BTreeSet<&str> = BTreeSet::new();
    for (key, value) in map {
        let (at, name) = match key.strip_prefix('@') {
            Some(name) => (true, name),
            None => (false, key.as_str()),
        };
        let attr = schema.attr(name);
        let child = if at { None } else { schema.child(name) };
        let element_like = value.is_object() || value.is_array();
        match (attr, child) {
            (_, Some(child)) if element_like || attr.is_none() => validate_child(value, child, path, &mut elem, errs),
            (Some(attr), _) => {
                if !given.insert(attr.name) {
                    errs.push(format!("{path}/{name} is given twice (as {name} and @{name})"));
                    continue;
                }
                if let Some(v) = validate_attr(value, attr, path, errs) {
                    elem.attrs.insert(attr.name.to_owned(), v);
                }
            }
            (None, _) => errs.push(format!("{path}/{key} is not a field of the e-Courier order model")),
        }
    }
    for attr in schema.attrs.iter().filter(|a| a.use_ == Use::Required) {
        if !elem.attrs.contains_key(attr.name) && !given.contains(attr.name) {
            errs.push(format!("{path}/{} is required", attr.name));
        } else if given.contains(attr.name) && !elem.attrs.contains_key(attr.name) && map_has_empty(map, attr.name) {
            errs.push(format!("{path}/{} is required and may not be empty", attr.name));
        }
    }
    elem
}

fn map_has_empty(map: &Map<String, Value>, name: &str) -> bool {
    [name.to_owned(), format!("@{name}")].iter().any(|k| map.get(k).and_then(Value::as_str) == Some(""))
}

fn validate_attr(value: &Value, attr: &Attr, path: &str, errs: &mut Vec<String>) -> Option<String> {
    let name = attr.name;
    match attr.use_ {
        Use::System => {
            errs.push(format!("{path}/{name} may not be set via API"));
            return None;
        }
        Use::Prohibited => {
            errs.push(format!("{path}/{name} may not be set: e-Courier stamps it"));
            return None;
        }
        Use::Optional | Use::Required => {}
    }
    let Value::String(text) = value else {
        errs.push(format!(
            "{path}/{name} must be a JSON string (every e-Courier value is a string), not {}",
            kind(value)
        ));
        return None;
    };
    if text.is_empty() {
        return None;
    }
    if let Err(expected) = check_type(text, attr.ty) {
        errs.push(format!("{path}/{name} '{text}' is not {expected}"));
        return None;
    }
    Some(text.clone())
}

fn validate_child(value: &Value, child: &Child, path: &str, elem: &mut Elem, errs: &mut Vec<String>) {
    let name = child.name;
    if child.system_only {
        errs.push(format!("{path}/{name} may only be set by e-Courier"));
        return;
    }
    match child.shape {
        Shape::Single => match value {
            Value::Object(map) => {
                let item = validate_elem(map, child.schema, &format!("{path}/{name}"), errs);
                elem.children.insert(name.to_owned(), vec![item]);
            }
            other => errs.push(format!("{path}/{name} must be one element, not {}", kind(other))),
        },
        Shape::List { item } => {
            let Value::Object(container) = value else {
                errs.push(format!("{path}/{name} must be an element holding {item}: {{\"{item}\": ...}}"));
                return;
            };
            let mut items = Vec::new();
            for (key, value) in container {
                if key != item {
                    errs.push(format!(
                        "{path}/{name}/{key} is not a field of the e-Courier order model ({name} holds {item})"
                    ));
                    continue;
                }
                // "One or many": a single item may come as an object, several as an array.
                let listed: Vec<&Value> = match value {
                    Value::Array(values) => values.iter().collect(),
                    other => vec![other],
                };
                for (i, v) in listed.into_iter().enumerate() {
                    let item_path = format!("{path}/{name}/{item}[{}]", i + 1);
                    match v {
                        Value::Object(map) => items.push(validate_elem(map, child.schema, &item_path, errs)),
                        other => errs.push(format!("{item_path} must be an element, not {}", kind(other))),
                    }
                }
            }
            elem.children.insert(name.to_owned(), items);
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a JSON boolean",
        Value::Number(_) => "a JSON number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_type(text: &str, ty: Ty) -> Result<(), String> {
    let ok = match ty {
        Ty::Str => true,
        Ty::Int => parse_int(text).is_some(),
        Ty::Double => {
            text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
                && text.parse::<f64>().is_ok_and(f64::is_finite)
        }
        Ty::Bool => matches!(text, "true" | "false" | "1" | "0"),
        Ty::Date | Ty::DateTime => parse_datetime(text).is_some(),
        Ty::OneOf(values) => values.contains(&text),
    };
    if ok {
        return Ok(());
    }
    Err(match ty {
        Ty::Str => "a string".to_owned(),
        Ty::Int => "an integer".to_owned(),
        Ty::Double => "a number".to_owned(),
        Ty::Bool => "a boolean (true, false, 1 or 0)".to_owned(),
        Ty::Date => "a date such as 11/13/2019".to_owned(),
        Ty::DateTime => "a date and time such as 11/13/2019 6:00:00 AM".to_owned(),
        Ty::OneOf(values) => format!("one of {}", values.join(", ")),
    })
}

pub(crate) fn parse_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Dates as the reference writes them (`11/13/2019 6:00:00 AM`, `12/05/2020 09:00`,
/// `12/05/20 11:00`, `9/3/2020`) or ISO 8601 (`2019-11-13T06:00:00`, with an optional
/// fraction and offset). Two-digit years follow .NET's default window (00-29 → 20xx).
pub(crate) fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    let parsed = if text.contains('/') { parse_us(text) } else { parse_iso(text) }?;
    (1753..=9999).contains(&chrono::Datelike::year(&parsed)).then_some(parsed)
}

fn parse_iso(text: &str) -> Option<NaiveDateTime> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(dt.naive_utc());
    }
    let text = text.strip_suffix('Z').unwrap_or(text);
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, format) {
            return Some(dt);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(|d| d.and_time(NaiveTime::MIN))
}

fn parse_us(text: &str) -> Option<NaiveDateTime> {
    let mut words = text.split(' ').filter(|w| !w.is_empty());
    let date = words.next()?;
    let time = words.next();
    let meridiem = words.next();
    if words.next().is_some() {
        return None;
    }
    let parts: Vec<&str> = date.split('/').collect();
    let [month, day, year] = parts.as_slice() else { return None };
    let number = |s: &str, max_len: usize| -> Option<u32> {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let (month, day) = (number(month, 2)?, number(day, 2)?);
    let year = match year.len() {
        2 => {
            let yy = number(year, 2)? as i32;
            if yy < 30 { 2000 + yy } else { 1900 + yy }
        }
        4 => number(year, 4)? as i32,
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let Some(time) = time else { return Some(date.and_time(NaiveTime::MIN)) };
    let fields: Vec<&str> = time.split(':').collect();
    let (hour, minute, second) = match fields.as_slice() {
        [h, m] => (number(h, 2)?, number(m, 2)?, 0),
        [h, m, s] => (number(h, 2)?, number(m, 2)?, number(s, 2)?),
        _ => return None,
    };
    let hour = match meridiem.map(str::to_ascii_uppercase).as_deref() {
        None => hour,
        Some(m @ ("AM" | "PM")) if (1..=12).contains(&hour) => (hour % 12) + if m == "PM" { 12 } else { 0 },
        Some(_) => return None,
    };
    Some(date.and_time(NaiveTime::from_hms_opt(hour, minute, second)?))
}

/// The order-level rules of the reference: "Each order has at least a pickup stop and
/// a destination stop"; an OrderStopPiece's sequence "matches the sequence of the
/// corresponding piece in the Order/Pieces/Piece element"; plus the account's customer.
fn check_order_rules(doc: &Elem, customer_code: &str, customer_id: u64, errs: &mut Vec<String>) {
    let stops = doc.items("Stops");
    if stops.is_empty() {
        errs.push("Order/Stops is required: every order has at least a pickup stop and a destination stop".to_owned());
    } else {
        let pickups: Vec<usize> =
            (0..stops.len()).filter(|&i| matches!(stops[i].attr("StopType"), Some("P" | "B"))).collect();
        let destinations: Vec<usize> =
            (0..stops.len()).filter(|&i| matches!(stops[i].attr("StopType"), Some("D" | "B"))).collect();
        if pickups.is_empty() {
            errs.push("Order/Stops has no pickup stop (StopType P or B)".to_owned());
        }
        if destinations.is_empty() {
            errs.push("Order/Stops has no destination stop (StopType D or B)".to_owned());
        }
        if pickups.len() == 1 && destinations.len() == 1 && pickups == destinations {
            errs.push("Order/Stops needs a pickup stop and a different destination stop".to_owned());
        }
        check_unique(stops, "Order/Stops/Stop", "stop", errs);
    }
    let pieces = doc.items("Pieces");
    check_unique(pieces, "Order/Pieces/Piece", "piece", errs);
    let piece_seqs: BTreeSet<i64> = pieces.iter().filter_map(|p| p.attr("Sequence").and_then(parse_int)).collect();
    for (i, stop) in stops.iter().enumerate() {
        for (j, osp) in stop.items("OrderStopPieces").iter().enumerate() {
            if let Some(seq) = osp.attr("Sequence").and_then(parse_int)
                && !piece_seqs.contains(&seq)
            {
                errs.push(format!(
                    "Order/Stops/Stop[{}]/OrderStopPieces/OrderStopPiece[{}]/Sequence {seq} matches no Order/Pieces/Piece",
                    i + 1,
                    j + 1
                ));
            }
        }
    }
    if let Some(code) = doc.attr("CustomerCode")
        && code != customer_code
    {
        errs.push(format!("Order/CustomerCode '{code}' is not a customer of this UserGUID"));
    }
    if let Some(id) = doc.attr("CustomerID")
        && parse_int(id) != i64::try_from(customer_id).ok()
    {
        errs.push(format!("Order/CustomerID '{id}' is not a customer of this UserGUID"));
    }
    if let Some(customer) = doc.items("Customer").first() {
        if customer.attr("CustomerCode").is_some_and(|c| c != customer_code) {
            errs.push("Order/Customer/CustomerCode is not a customer of this UserGUID".to_owned());
        }
        if customer.attr("CustomerID").and_then(parse_int).is_some_and(|c| Ok(c) != i64::try_from(customer_id)) {
            errs.push("Order/Customer/CustomerID is not a customer of this UserGUID".to_owned());
        }
    }
    if let Some(status) = doc.attr("OrderStatus")
        && matches!(status, "A" | "I" | "P")
    {
        errs.push(format!(
            "Order/OrderStatus '{status}' is set by e-Courier's dispatch; a post may send N (new), X (delete) or T (template)"
        ));
    }
}

fn check_unique(items: &[Elem], path: &str, what: &str, errs: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(seq) = item.attr("Sequence").and_then(parse_int)
            && !seen.insert(seq)
        {
            errs.push(format!("{path}[{}]/Sequence {seq} is used by another {what}", i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> Option<String> {
        parse_datetime(s).map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
    }

    #[test]
    fn dates_as_the_reference_writes_them() {
        assert_eq!(dt("11/13/2019 6:00:00 AM").as_deref(), Some("2019-11-13 06:00:00"));
        assert_eq!(dt("11/13/2019 5:00:00 PM").as_deref(), Some("2019-11-13 17:00:00"));
        assert_eq!(dt("12/05/2020 09:00").as_deref(), Some("2020-12-05 09:00:00"));
        assert_eq!(dt("12/05/20 11:00").as_deref(), Some("2020-12-05 11:00:00"));
        assert_eq!(dt("9/3/2020 12:43:00 AM").as_deref(), Some("2020-09-03 00:43:00"));
        assert_eq!(dt("2019-11-13T06:00:00").as_deref(), Some("2019-11-13 06:00:00"));
        assert_eq!(dt("2019-11-13T06:00:00+02:00").as_deref(), Some("2019-11-13 04:00:00"));
        assert_eq!(dt("2019-11-13").as_deref(), Some("2019-11-13 00:00:00"));
        for bad in ["13/11/2019", "11/13/2019 13:00 PM", "11/13/19/1", "yesterday", "0001-01-01", "11/13/2019 6 AM"] {
            assert_eq!(dt(bad), None, "{bad}");
        }
    }

    #[test]
    fn typed_values() {
        assert!(check_type("12", Ty::Int).is_ok());
        assert!(check_type("1.5", Ty::Int).is_err());
        assert!(check_type("2.5", Ty::Double).is_ok());
        assert!(check_type("NaN", Ty::Double).is_err());
        assert!(check_type("$40.00", Ty::Double).is_err());
        assert!(check_type("True", Ty::Bool).is_err());
        assert!(check_type("1", Ty::Bool).is_ok());
    }
}
