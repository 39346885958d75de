//! Size and range limits of request fields, enforced while the body is parsed (a
//! refused value is a 422 naming its field, never a value passed on to a carrier).
//!
//! Each bounded field carries two attributes side by side: `deserialize_with` naming
//! one of these functions with its limit, and the `#[schema(...)]` limit the OpenAPI
//! document publishes. The contract check (`contract/openapi/run.sh`, schemathesis)
//! sends values past the published limits, and `http::limits_tests` checks the pairs
//! one by one on every request type, so the two cannot drift apart unnoticed.
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

/// A PATCH field: absent (outer None, by `default`), null (cleared) or a value.
pub fn patch<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
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
