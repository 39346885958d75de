//! How the domain's enums are kept in text columns: written as their names and parsed
//! when read, once, here at the store's edge. A name the gateway does not know is a
//! decode error (the request fails and the log names the value), never a silent default.

use sqlx::Postgres;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef};

use crate::domain::{BookingState, Status};

macro_rules! text_enum {
    ($t:ty, $what:literal) => {
        impl sqlx::Type<Postgres> for $t {
            fn type_info() -> PgTypeInfo {
                <str as sqlx::Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <str as sqlx::Type<Postgres>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, Postgres> for $t {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let s = <&str as sqlx::Decode<Postgres>>::decode(value)?;
                <$t>::parse(s).ok_or_else(|| format!("unknown {} {s:?} in the database", $what).into())
            }
        }

        impl sqlx::Encode<'_, Postgres> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut <Postgres as sqlx::Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                <&str as sqlx::Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }
    };
}

text_enum!(Status, "shipment status");
text_enum!(BookingState, "booking state");

/// A JSON value held as its compact text and written out as it is: what the read paths
/// (`GET /v1/shipments/{id}`, the list) show of a shipment's jsonb columns. Reading the
/// columns into the domain's types and writing them out again was most of a list's cost
/// (docs/quality.md P4); the stored text is already the answer.
///
/// Postgres writes jsonb as `{"a": 1, "b": [1, 2]}`: a space after every `:` and `,` and
/// nowhere else outside strings (`JsonbToCString` in src/backend/utils/adt/jsonb.c), keys
/// ordered shortest first, then bytewise. The spaces are dropped when it is read; the key
/// order is jsonb's. Strings are escaped as serde_json escapes them (`escape_json` in
/// src/backend/utils/adt/json.c: `"`, `\`, and control characters only), so a value
/// reads the same whichever path wrote it.
///
/// The text is not parsed again: jsonb's output is JSON by construction, and parsing it
/// only to check (`RawValue::from_string`) was a fifth of a list's instructions. It is
/// kept in the buffer it was compacted into, with that buffer's slack: shrinking it to a
/// `Box<str>` reallocated every value (callgrind: 2.07M instructions per list of 100 with
/// the shrink, 2.05M without).
#[derive(Debug, Clone)]
pub struct PgJson(String);

/// The name under which serde_json's serializers take a value's text as it is: the
/// protocol of its `RawValue` (serde_json 1.x `src/raw.rs` `TOKEN`, the `Serialize` impl
/// under it; `ser.rs` and `value/ser.rs` recognise it). Written through another
/// serializer, a [`PgJson`] would come out as a one-field object of this name; the
/// shipments API tests compare the reads' answers with the booking's.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

impl PgJson {
    /// A value written from a domain type, as the workflows' answers and events show it.
    pub fn of<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<Self> {
        Ok(PgJson(serde_json::to_string(value)?))
    }

    /// The value read into a domain type.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.0)
    }

    pub fn get(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PgJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for PgJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut raw = s.serialize_struct(RAW_VALUE_TOKEN, 1)?;
        raw.serialize_field(RAW_VALUE_TOKEN, self.0.as_str())?;
        raw.end()
    }
}

impl sqlx::Type<Postgres> for PgJson {
    fn type_info() -> PgTypeInfo {
        <sqlx::types::Json<()> as sqlx::Type<Postgres>>::type_info()
    }
    /// jsonb only: a json column would keep whatever spacing it was given.
    fn compatible(ty: &PgTypeInfo) -> bool {
        *ty == Self::type_info()
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for PgJson {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let mut text = value.as_bytes()?;
        // jsonb's binary form is a version byte (1, the only one) and then the text
        // (`jsonb_send`, src/backend/utils/adt/jsonb.c).
        if value.format() == sqlx::postgres::PgValueFormat::Binary {
            match text.split_first() {
                Some((1, rest)) => text = rest,
                _ => return Err("a jsonb value of an unknown binary format version".into()),
            }
        }
        Ok(PgJson(String::from_utf8(compact_jsonb(text))?))
    }
}

/// jsonb's text without the spaces outside strings: the text between them is copied a
/// run at a time. A string's inside is skipped eight bytes at a time while they hold no
/// `"` and no `\` (most of a stored value's bytes are inside strings). With the byte
/// loop this replaced, reading the jsonb columns was 26 % of a list of 100's
/// instructions, 727k of 2.87M; with the word scan 570k (callgrind,
/// `bench/p4_cpu.sh CALLGRIND=1 CALLGRIND_READ=list`).
fn compact_jsonb(text: &[u8]) -> Vec<u8> {
    let n = text.len();
    let mut out = Vec::with_capacity(n);
    let (mut i, mut run) = (0, 0);
    while i < n {
        match text[i] {
            b'"' => i = string_end(text, i + 1),
            b' ' | b'\n' | b'\r' | b'\t' => {
                out.extend_from_slice(&text[run..i]);
                i += 1;
                run = i;
            }
            _ => i += 1,
        }
    }
    out.extend_from_slice(&text[run..]);
    out
}

/// The index just past the quote closing the string whose first byte is at `i` (or the
/// end of the text).
fn string_end(text: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The bytes of `x` equal to `b`, as their high bit (the classic "has zero byte" test
    // on x ^ b: exact for the lowest match, which is the only one used).
    let matching = |x: u64, b: u8| {
        let y = x ^ (ONES * b as u64);
        y.wrapping_sub(ONES) & !y & HIGH
    };
    let n = text.len();
    loop {
        while let Some(word) = text.get(i..i + 8) {
            let x = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            let hits = matching(x, b'"') | matching(x, b'\\');
            if hits == 0 {
                i += 8;
            } else {
                i += (hits.trailing_zeros() / 8) as usize;
                break;
            }
        }
        if i >= n {
            return n;
        }
        match text[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PgJson, compact_jsonb};

    fn compact(s: &str) -> String {
        String::from_utf8(compact_jsonb(s.as_bytes())).unwrap()
    }

    /// The plain byte loop the word-at-a-time scan must agree with.
    fn reference(text: &[u8]) -> Vec<u8> {
        let (mut out, mut in_string, mut escaped) = (Vec::new(), false, false);
        for &b in text {
            if in_string {
                out.push(b);
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
            } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                in_string = b == b'"';
                out.push(b);
            }
        }
        out
    }

    #[test]
    fn the_word_scan_agrees_with_the_byte_loop() {
        // Quotes and backslashes at every offset of an eight-byte word, runs of
        // backslashes, multi-byte characters, and texts cut anywhere (unterminated).
        let pieces = ["\"", "\\", "\\\"", "\\\\", " ", ", ", ": ", "a", "é", "東", "0123456", "{", "]", "\n"];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let mut r = seed;
            for _ in 0..len {
                r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.push_str(pieces[(r >> 33) as usize % pieces.len()]);
            }
            assert_eq!(compact_jsonb(text.as_bytes()), reference(text.as_bytes()), "{text:?}");
        }
        let stored =
            r#"[{"name": "James \"Jim\" Madison, Jr.", "address": {"line1": "2251 Orange Blossom Trail: back\\"}}]"#;
        assert_eq!(
            compact(stored),
            r#"[{"name":"James \"Jim\" Madison, Jr.","address":{"line1":"2251 Orange Blossom Trail: back\\"}}]"#
        );
    }

    #[test]
    fn jsonb_text_loses_its_spaces_but_not_those_in_strings() {
        assert_eq!(compact(r#"{"a": 1, "b": [1, 2.50, null], "c": {}}"#), r#"{"a":1,"b":[1,2.50,null],"c":{}}"#);
        assert_eq!(
            compact(r#"{"k y": "a, b: c", "q": "say \"hi\", ok"}"#),
            r#"{"k y":"a, b: c","q":"say \"hi\", ok"}"#
        );
        assert_eq!(compact(r#"["back\\", " x "]"#), r#"["back\\"," x "]"#);
        assert_eq!(compact(r#"{"é": "Zürich  "}"#), r#"{"é":"Zürich  "}"#);
        assert_eq!(compact("[]"), "[]");
        assert_eq!(compact(r#"["unterminated \"#), r#"["unterminated \"#);
    }

    /// serde_json takes the text as it is, into text and into a `Value` (the events'
    /// data): if its raw-value protocol changed, this says so before an answer does.
    #[test]
    fn the_text_is_written_as_it_is() {
        let v = PgJson(r#"{"b":[1,2.50],"a":"x\"y"}"#.into());
        assert_eq!(serde_json::to_string(&[&v]).unwrap(), r#"[{"b":[1,2.50],"a":"x\"y"}]"#);
        assert_eq!(serde_json::to_value(&v).unwrap(), serde_json::json!({"a": "x\"y", "b": [1, 2.5]}));
        assert_eq!(PgJson::of(&serde_json::json!({"k": [true]})).unwrap().get(), r#"{"k":[true]}"#);
    }
}
