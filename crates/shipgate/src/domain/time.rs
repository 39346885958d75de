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

use chrono::{DateTime, Datelike as _, SecondsFormat, TimeZone, Timelike as _, Utc};
use serde::Serializer;

/// The message for a time outside [`in_range`].
pub const RANGE_MESSAGE: &str = "must be between 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z";

/// Whether the API accepts this instant (its UTC year has four digits).
pub fn in_range<Tz: TimeZone>(t: &DateTime<Tz>) -> bool {
    (0..=9999).contains(&t.with_timezone(&Utc).year())
}

/// `2026-11-22T10:00:00.123456Z`.
pub fn format(t: &DateTime<Utc>) -> String {
    with_text(t, str::to_owned)
}

/// `f` of the time's text, written on the stack where [`fixed`] can.
pub(crate) fn with_text<R>(t: &DateTime<Utc>, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0; 27];
    match fixed(t, &mut buf) {
        Some(text) => f(text),
        None => f(&t.to_rfc3339_opts(SecondsFormat::Micros, true)),
    }
}

/// The format written digit by digit into `buf`, for the instants the API accepts (a
/// four-digit year; no leap second, which chrono keeps as a fraction of 1 s or more and
/// Postgres never returns): every time of every answer goes through here, and chrono's
/// general formatter was 7 % of the instructions of a list of 100 shipments (callgrind,
/// `bench/p4_cpu.sh`). Anything else is `None`, for chrono to write.
fn fixed<'a>(t: &DateTime<Utc>, buf: &'a mut [u8; 27]) -> Option<&'a str> {
    let (year, micros) = (t.year(), t.timestamp_subsec_micros());
    if !(0..=9999).contains(&year) || micros >= 1_000_000 {
        return None;
    }
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    put(20, 6, micros);
    for (at, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (26, b'Z')] {
        buf[at] = c;
    }
    std::str::from_utf8(buf).ok()
}

/// `#[serde(serialize_with = "crate::domain::time::micros")]` on a `DateTime<Utc>`.
pub fn micros<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    with_text(t, |text| s.serialize_str(text))
}

/// `#[serde(serialize_with = "crate::domain::time::micros_opt")]` on an
/// `Option<DateTime<Utc>>`.
pub fn micros_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => micros(t, s),
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

    #[test]
    fn the_digit_by_digit_format_writes_what_chrono_writes() {
        let chrono = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
        // The ends of the range, and instants spread over it (a fixed stride of an odd
        // number of microseconds, so every field takes many values).
        let first = Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).single().expect("first");
        let last = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single().expect("last")
            + chrono::Duration::microseconds(999_999);
        let stride = chrono::Duration::microseconds(31_556_926_123_457);
        let mut t = first;
        let mut checked = 0;
        while t <= last {
            let mut buf = [0; 27];
            assert_eq!(fixed(&t, &mut buf), Some(chrono(&t).as_str()), "{t:?}");
            t += stride;
            checked += 1;
        }
        assert!(checked > 9_000, "{checked}");
        let mut buf = [0; 27];
        assert_eq!(fixed(&last, &mut buf), Some("9999-12-31T23:59:59.999999Z"));
        assert_eq!(format(&first), "0000-01-01T00:00:00.000000Z");
        // Outside the range, chrono writes it.
        let far = Utc.with_ymd_and_hms(12026, 1, 2, 3, 4, 5).single().expect("far");
        assert_eq!(fixed(&far, &mut buf), None);
        assert_eq!(format(&far), chrono(&far));
        let before = Utc.with_ymd_and_hms(-1, 12, 31, 23, 0, 0).single().expect("before");
        assert_eq!(format(&before), chrono(&before));
        // A leap second (chrono: a fraction of 1 s or more) is chrono's too.
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 1_500_000))
            .expect("leap")
            .and_utc();
        assert_eq!(fixed(&leap, &mut buf), None);
        assert_eq!(format(&leap), chrono(&leap));
    }
}
