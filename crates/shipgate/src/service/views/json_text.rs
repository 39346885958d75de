//! JSON written by hand for the shipment's answers (`GET /v1/shipments/{id}` and the
//! list, docs/quality.md P4; the booking and the other single-shipment answers, P3) and
//! for the shipment inside events (`service::events::view_event_text`): the same
//! bytes as the view's derived `Serialize` through serde_json, at a fraction of the
//! instructions.
//!
//! Through serde_json every key of every object is escaped byte by byte as if it could
//! hold a quote, and so is every value: on a list of 100 shipments, writing the page
//! was 37 % of the gateway's instructions, the escaping loop alone (keys and values)
//! 23 % (callgrind, `bench/p4_cpu.sh CALLGRIND=1 CALLGRIND_READ=list`). Here a key is
//! one copy of its text, written once at compile time with its quotes, colon and comma,
//! and a string is checked for what needs escaping in one pass the compiler vectorises,
//! then copied; only a string that needs escaping goes through serde_json.
//!
//! serde_json escapes `"`, `\` and the control characters U+0000–U+001F, nothing else
//! (its `ESCAPE` table, serde_json 1.x `src/ser.rs`); so does [`str`]'s check. Each
//! writer is tested against the derive it stands in for, byte for byte.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::types::PgJson;

/// A value that writes its own JSON (what `http::json_out::JsonOut` sends).
pub trait WriteJson {
    /// A rough length of the JSON, for the buffer it is written into.
    fn json_size_hint(&self) -> usize;
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()>;
}

/// Whether `s` holds a byte serde_json escapes. No early exit, so the loop is
/// vectorised: the strings of an answer are short and almost never hold one.
fn needs_escape(s: &[u8]) -> bool {
    s.iter().fold(false, |any, &b| any | (b < 0x20) | (b == b'"') | (b == b'\\'))
}

/// `s` as a JSON string.
pub fn str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    if needs_escape(s.as_bytes()) {
        return serde_json::to_writer(out, s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

/// `s` as a JSON string, or `null`.
pub fn opt_str(out: &mut Vec<u8>, s: Option<&str>) -> serde_json::Result<()> {
    match s {
        Some(s) => str(out, s),
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

/// Stored JSON, as it is (as [`PgJson`]'s `Serialize` writes it).
pub fn raw(out: &mut Vec<u8>, j: &PgJson) {
    out.extend_from_slice(j.get().as_bytes());
}

/// Stored JSON as it is, or `null`.
pub fn opt_raw(out: &mut Vec<u8>, j: Option<&PgJson>) {
    match j {
        Some(j) => raw(out, j),
        None => out.extend_from_slice(b"null"),
    }
}

/// A time as `crate::domain::time::micros` writes it.
pub fn time(out: &mut Vec<u8>, t: &DateTime<Utc>) -> serde_json::Result<()> {
    crate::domain::time::with_text(t, |text| str(out, text))
}

/// A time as `crate::domain::time::micros_opt` writes it.
pub fn opt_time(out: &mut Vec<u8>, t: Option<&DateTime<Utc>>) -> serde_json::Result<()> {
    match t {
        Some(t) => time(out, t),
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

/// Anything else, through serde_json (a rare or small value).
pub fn value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> serde_json::Result<()> {
    serde_json::to_writer(out, v)
}

/// `"<name>":`, the text of a key written at compile time, `{` or `,` in front as the
/// caller spells it: `key!("{", "id")` is `{"id":`.
macro_rules! key {
    ($before:literal, $name:literal) => {
        concat!($before, "\"", $name, "\":").as_bytes()
    };
}
pub(crate) use key;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_where_serde_json_escapes_them() {
        for s in [
            "",
            "plain",
            "say \"hi\"",
            "back\\slash",
            "line\nfeed\ttab\r",
            "\u{0}\u{1}\u{1f}",
            "\u{7f} DEL and / stay",
            "Zürich — 東京 🚚",
            "</script>",
        ] {
            let mut out = Vec::new();
            str(&mut out, s).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap(), "{s:?}");
        }
        let mut out = Vec::new();
        opt_str(&mut out, None).unwrap();
        assert_eq!(out, b"null");
    }

    #[test]
    fn keys_carry_their_punctuation() {
        assert_eq!(key!("{", "id"), br#"{"id":"#);
        assert_eq!(key!(",", "next_cursor"), br#","next_cursor":"#);
    }
}
