//! Times at the edge: which instants the API accepts, and the one format it writes.
//!
//! Accepted: what RFC 3339 can write (a four-digit year, `date-fullyear = 4DIGIT`,
//! RFC 3339 §5.6), read in UTC. Postgres stores 4713 BC to 294276 AD (PostgreSQL 15
//! manual, "Date/Time Types"), so everything accepted can be stored; chrono parses
//! years up to ±262143, which Postgres refuses ("timestamp out of range").
//!
//! Written: RFC 3339 in UTC (`Z`) with exactly six fractional digits, everywhere —
//! Postgres keeps microseconds, so no stored instant loses digits and the same event
//! reads the same in a webhook payload, in `/v1/events` and in a shipment.

use chrono::{DateTime, Datelike as _, SecondsFormat, TimeZone, Utc};
use serde::Serializer;

/// The message for a time outside [`in_range`].
pub const RANGE_MESSAGE: &str = "must be between 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z";

/// Whether the API accepts this instant (its UTC year has four digits).
pub fn in_range<Tz: TimeZone>(t: &DateTime<Tz>) -> bool {
    (0..=9999).contains(&t.with_timezone(&Utc).year())
}

/// `2026-11-22T10:00:00.123456Z`.
pub fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `#[serde(serialize_with = "crate::domain::time::micros")]` on a `DateTime<Utc>`.
pub fn micros<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(t))
}

/// `#[serde(serialize_with = "crate::domain::time::micros_opt")]` on an
/// `Option<DateTime<Utc>>`.
pub fn micros_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format(t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_what_rfc3339_writes() {
        let t = |s: &str| s.parse::<DateTime<chrono::FixedOffset>>().expect(s);
        assert!(in_range(&t("0000-01-01T00:00:00Z")));
        assert!(in_range(&t("9999-12-31T23:59:59.999999Z")));
        assert!(!in_range(&t("-262143-01-01T00:00:00Z")));
        assert!(!in_range(&t("+10000-01-01T00:00:00Z")));
        // Year 0000 at +01:00 is still year -1 in UTC.
        assert!(!in_range(&t("0000-01-01T00:30:00+01:00")));
    }

    #[test]
    fn the_format_has_six_digits_and_z() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).single().expect("time");
        assert_eq!(format(&t), "2026-11-22T10:00:00.000000Z");
        let t = t + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(format(&t), "2026-11-22T10:00:00.123456Z");
    }
}
