//! A request body that holds a domain struct's fields flat beside its own, like
//! `#[serde(flatten)]`, without flatten's costs. serde's flatten reads the whole object
//! into memory first and deserializes the parts from that copy: every error then loses
//! its path (`stops[0].address.country` is reported at the body), and utoipa documents
//! the body as an `allOf`. Here the shared struct's own derived `Deserialize` reads
//! the object straight from the parser; the body's own fields are taken out on the way
//! ([`OwnFields::read`]), so every error keeps its path, and [`schema`] documents one
//! flat object.
//!
//! Used for the booking body: `ShipmentIn` (book, register, quote) and `ShipmentPatch`
//! read the plan (`domain::ShipmentPlan`, `domain::PlanPatch`) this way, so its fields,
//! limits and documentation are declared once, in the domain.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, Schema};

/// The fields a body has besides the shared struct's, read as their keys come.
pub trait OwnFields: Default {
    /// Read the value of `key` from `map` when it is one of these fields (true); false
    /// leaves the key to the shared struct (which refuses a key it does not know).
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

/// Read a JSON object as `O`'s fields and `S`'s, in one pass.
pub fn deserialize<'de, D, O, S>(d: D) -> Result<(O, S), D::Error>
where
    D: Deserializer<'de>,
    O: OwnFields,
    S: Deserialize<'de>,
{
    d.deserialize_map(Flat::<O, S>(PhantomData))
}

/// Set `slot` from the next value, once: a repeated key is refused like serde refuses it.
pub fn once<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    slot: &mut Option<T>,
    key: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(key));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// A required field that never came.
pub fn required<T, E: de::Error>(slot: Option<T>, key: &'static str) -> Result<T, E> {
    slot.ok_or_else(|| E::missing_field(key))
}

/// A string of at most `MAX` characters (`domain::limits::text`).
pub struct Text<const MAX: usize>(pub String);

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::domain::limits::text::<MAX, D>(d).map(Text)
    }
}

/// An optional string of at most `MAX` characters (`domain::limits::opt_text`).
pub struct OptText<const MAX: usize>(pub Option<String>);

impl<'de, const MAX: usize> Deserialize<'de> for OptText<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::domain::limits::opt_text::<MAX, D>(d).map(OptText)
    }
}

/// The schema of a flat body: `own`'s properties with `shared`'s spliced in after the
/// first `at` of them, both parts' required fields, and no other property allowed.
/// `own` keeps its description and example.
pub fn schema(own: RefOr<Schema>, shared: RefOr<Schema>, at: usize) -> RefOr<Schema> {
    // Both parts are derived from structs, so both are inline objects.
    let (RefOr::T(Schema::Object(mut own)), RefOr::T(Schema::Object(shared))) = (own, shared) else {
        return RefOr::T(Schema::default());
    };
    let mut own_properties = std::mem::take(&mut own.properties).into_iter();
    let mut properties: Vec<_> = own_properties.by_ref().take(at).collect();
    properties.extend(shared.properties);
    properties.extend(own_properties);
    own.properties = properties.into_iter().collect();
    own.required.extend(shared.required);
    own.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
    RefOr::T(Schema::Object(own))
}

struct Flat<O, S>(PhantomData<(O, S)>);

impl<'de, O: OwnFields, S: Deserialize<'de>> Visitor<'de> for Flat<O, S> {
    type Value = (O, S);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(O, S), A::Error> {
        let mut own = O::default();
        let shared = S::deserialize(SharedPart { map, own: &mut own })?;
        Ok((own, shared))
    }
}

/// A key, borrowed from the body when it can be (no escapes in it), so that reading a
/// body flat allocates no more than serde's derive does (QUALITY P3: the booking path).
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(k) => k,
            Key::Owned(k) => k,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The object as the shared struct sees it: the own fields are read and passed over.
struct SharedPart<'a, A, O> {
    map: A,
    own: &'a mut O,
}

impl<'de, A: MapAccess<'de>, O: OwnFields> Deserializer<'de> for SharedPart<'_, A, O> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>, O: OwnFields> MapAccess<'de> for SharedPart<'_, A, O> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<Key<'de>>()? {
            if self.own.read(key.as_str(), &mut self.map)? {
                continue;
            }
            return match key {
                Key::Borrowed(k) => seed.deserialize(BorrowedStrDeserializer::<A::Error>::new(k)).map(Some),
                Key::Owned(k) => seed.deserialize(IntoDeserializer::<A::Error>::into_deserializer(k)).map(Some),
            };
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct Own {
        name: Option<String>,
    }

    impl OwnFields for Own {
        fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
            match key {
                "name" => once(&mut self.name, "name", map)?,
                _ => return Ok(false),
            }
            Ok(true)
        }
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        n: u32,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Shared {
        #[serde(default)]
        items: Vec<Inner>,
    }

    /// The error's path and message, as the JSON extractor reads them.
    fn parse(body: &str) -> Result<(Own, Shared), (String, String)> {
        let de = &mut serde_json::Deserializer::from_str(body);
        serde_path_to_error::deserialize(de)
            .map(|Wrapper(o, s)| (o, s))
            .map_err(|e| (e.path().to_string(), e.into_inner().to_string()))
    }

    struct Wrapper(Own, Shared);

    impl<'de> Deserialize<'de> for Wrapper {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize::<D, Own, Shared>(d).map(|(o, s)| Wrapper(o, s))
        }
    }

    #[test]
    fn both_parts_are_read_from_one_object_in_any_order() {
        let (own, shared) = parse(r#"{"items": [{"n": 1}], "name": "x"}"#).expect("parses");
        assert_eq!(own.name.as_deref(), Some("x"));
        assert_eq!(shared.items, vec![Inner { n: 1 }]);
        // A key written with an escape cannot be borrowed from the body; it reads the same.
        let (own, shared) = parse(r#"{"it\u0065ms": [{"n": 2}], "n\u0061me": "y"}"#).expect("parses");
        assert_eq!(own.name.as_deref(), Some("y"));
        assert_eq!(shared.items, vec![Inner { n: 2 }]);
    }

    #[test]
    fn errors_keep_their_path_and_unknown_or_repeated_keys_are_refused() {
        let (path, message) = parse(r#"{"name": "x", "items": [{"n": "one"}]}"#).expect_err("refused");
        assert_eq!(path, "items[0].n");
        assert!(message.starts_with("invalid type: string \"one\""), "{message}");
        let (_, message) = parse(r#"{"items": [], "bogus": 1}"#).expect_err("refused");
        assert!(message.starts_with("unknown field `bogus`"), "{message}");
        let (_, message) = parse(r#"{"name": "x", "name": "y"}"#).expect_err("refused");
        assert!(message.starts_with("duplicate field `name`"), "{message}");
        assert_eq!(parse(r#"{"name": 5}"#).expect_err("refused").0, "name");
    }
}
