//! Reading request bodies the way e-Courier reads them.
//!
//! The e-Courier API reference (seed 001) says its JSON "follows the same conventions
//! defined in the XSD definition": orders are XML documents written as JSON. A reader
//! that turns JSON into XML writes one element per property as it streams through the
//! text, so a key written twice (the reference's own QuoteOrder example repeats
//! `"Stop"` inside `"Stops"`) becomes two sibling elements. A map-building JSON reader
//! would instead keep only the last `Stop` (serde_json's `Value`) or refuse the
//! document (serde's derived structs report a duplicate field). This module keeps
//! every occurrence: a repeated key becomes one array holding each occurrence's
//! elements in order, which is the "one or many" list the rest of the simulator reads.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;

/// Parses a request body. A UTF-8 byte order mark is skipped (.NET readers accept it);
/// anything that is not one JSON document is an error (e-Courier's status -2).
pub(crate) fn parse_body(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let Merged(value) = Merged::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct Merged(Value);

impl<'de> Deserialize<'de> for Merged {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MergedVisitor).map(Merged)
    }
}

struct MergedVisitor;

impl<'de> Visitor<'de> for MergedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Merged::deserialize(deserializer).map(|m| m.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Merged(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // (key, every occurrence's value) in order of first appearance.
        let mut entries: Vec<(String, Vec<Value>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let Merged(value) = map.next_value()?;
            match index.get(&key) {
                Some(&i) => entries[i].1.push(value),
                None => {
                    index.insert(key.clone(), entries.len());
                    entries.push((key, vec![value]));
                }
            }
        }
        let mut out = Map::new();
        for (key, mut values) in entries {
            let value = if values.len() == 1 {
                values.pop().unwrap_or(Value::Null)
            } else {
                // Each occurrence contributes its elements: an array occurrence is
                // already a list of elements, anything else is one element.
                let mut elements = Vec::new();
                for value in values {
                    match value {
                        Value::Array(items) => elements.extend(items),
                        other => elements.push(other),
                    }
                }
                Value::Array(elements)
            };
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repeated_keys_become_one_list() {
        let v = parse_body(br#"{"Stops":{"Stop":{"Sequence":"1"},"Stop":{"Sequence":"2"}}}"#).unwrap();
        assert_eq!(v, json!({"Stops":{"Stop":[{"Sequence":"1"},{"Sequence":"2"}]}}));
        let v = parse_body(br#"{"a":[1,2],"a":3,"b":{}}"#).unwrap();
        assert_eq!(v, json!({"a":[1,2,3],"b":{}}));
    }

    #[test]
    fn a_bom_is_skipped_and_trailing_text_refused() {
        assert_eq!(parse_body(b"\xEF\xBB\xBF{\"a\":\"1\"}").unwrap(), json!({"a":"1"}));
        assert!(parse_body(b"{\"a\":\"1\"} x").is_err());
        assert!(parse_body(b"").is_err());
        assert!(parse_body("{“a”: “1”}".as_bytes()).is_err());
    }
}
