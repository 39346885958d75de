//! Shipment value objects, parsed once at the edge ("parse, don't validate"): a
//! country is a known ISO 3166 alpha-2 shape, money is a decimal string with an ISO
//! 4217 currency, times carry an offset. What a booking is made of, and the rules that
//! span its fields, are in [`super::plan`].

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One field-level problem, reported in problem+json `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident, $example:literal, $pattern:literal, $check:expr, $msg:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String, example = $example, pattern = $pattern)]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                let check: fn(&str) -> bool = $check;
                if check(&s) { Ok($name(s)) } else { Err(format!($msg, s)) }
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String { v.0 }
        }
        impl $name {
            pub fn as_str(&self) -> &str { &self.0 }
        }
    };
}

string_newtype!(
    /// ISO 3166-1 alpha-2 country code, upper case.
    CountryCode, "US", "^[A-Z]{2}$", |s| s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()),
    "{:?} is not an ISO 3166-1 alpha-2 country code (two upper-case letters)"
);
string_newtype!(
    /// ISO 4217 currency code, upper case.
    CurrencyCode, "USD", "^[A-Z]{3}$", |s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()),
    "{:?} is not an ISO 4217 currency code (three upper-case letters)"
);
string_newtype!(
    /// Non-negative decimal amount as a string (no float rounding): up to 12 integer
    /// digits and 4 decimals.
    DecimalAmount, "125.50", "^[0-9]{1,12}(\\.[0-9]{1,4})?$", is_decimal,
    "{:?} is not a decimal amount such as \"125.50\""
);

fn is_decimal(s: &str) -> bool {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    !int.is_empty()
        && int.len() <= 12
        && digits(int)
        && frac.len() <= 4
        && digits(frac)
        && !(s.contains('.') && frac.is_empty())
}

impl DecimalAmount {
    pub fn to_f64(&self) -> f64 {
        self.0.parse().unwrap_or(0.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    pub amount: DecimalAmount,
    pub currency: CurrencyCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopType {
    Pickup,
    Delivery,
    Both,
}

impl StopType {
    pub fn picks_up(self) -> bool {
        matches!(self, StopType::Pickup | StopType::Both)
    }
    pub fn delivers(self) -> bool {
        matches!(self, StopType::Delivery | StopType::Both)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// 1-200 characters.
    #[serde(deserialize_with = "super::limits::nonempty::<200, _>")]
    #[schema(example = "2251 Orange Blossom Trail", min_length = 1, max_length = 200)]
    pub line1: String,
    /// At most 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::limits::opt_text::<200, _>")]
    #[schema(max_length = 200)]
    pub line2: Option<String>,
    /// 1-100 characters.
    #[serde(deserialize_with = "super::limits::nonempty::<100, _>")]
    #[schema(example = "Orlando", min_length = 1, max_length = 100)]
    pub city: String,
    /// At most 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::limits::opt_text::<100, _>")]
    #[schema(example = "FL", max_length = 100)]
    pub state: Option<String>,
    /// At most 20 characters.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::limits::opt_text::<20, _>")]
    #[schema(example = "32804", max_length = 20)]
    pub postal_code: Option<String>,
    pub country: CountryCode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    /// Order of the stop on the route, unique within the shipment (1, 2, ... 999).
    #[serde(deserialize_with = "super::limits::count::<1, 999, _>")]
    #[schema(example = 1, minimum = 1, maximum = 999)]
    pub sequence: u32,
    #[serde(rename = "type")]
    pub stop_type: StopType,
    /// At most 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::limits::opt_text::<200, _>")]
    #[schema(example = "James Madison", max_length = 200)]
    pub name: Option<String>,
    /// At most 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::limits::opt_text::<200, _>")]
    #[schema(max_length = 200)]
    pub company: Option<String>,
    pub address: Address,
    /// At most 40 characters.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::limits::opt_text::<40, _>")]
    #[schema(example = "+13015551212", max_length = 40)]
    pub phone: Option<String>,
    /// At most 254 characters.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::limits::opt_text::<254, _>")]
    #[schema(max_length = 254)]
    pub email: Option<String>,
    /// RFC 3339 with offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-11-23T09:00:00-05:00")]
    pub scheduled_at: Option<DateTime<FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub window_start: Option<DateTime<FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub window_end: Option<DateTime<FixedOffset>>,
    /// At most 2000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::limits::opt_text::<2000, _>")]
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WeightUnit {
    Kg,
    G,
    Lb,
    Oz,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Weight {
    /// Greater than 0, at most 100000 (in `unit`).
    #[serde(deserialize_with = "super::limits::positive::<100000, _>")]
    #[schema(example = 2.5, exclusive_minimum = 0, maximum = 100000)]
    pub value: f64,
    pub unit: WeightUnit,
}

impl Weight {
    pub fn in_kg(&self) -> f64 {
        match self.unit {
            WeightUnit::Kg => self.value,
            WeightUnit::G => self.value / 1000.0,
            WeightUnit::Lb => self.value * 0.453_592_37,
            WeightUnit::Oz => self.value * 0.028_349_523_125,
        }
    }
    pub fn in_lb(&self) -> f64 {
        self.in_kg() / 0.453_592_37
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LengthUnit {
    Cm,
    In,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dimensions {
    /// Greater than 0, at most 10000 (in `unit`).
    #[serde(deserialize_with = "super::limits::positive::<10000, _>")]
    #[schema(exclusive_minimum = 0, maximum = 10000)]
    pub length: f64,
    /// Greater than 0, at most 10000 (in `unit`).
    #[serde(deserialize_with = "super::limits::positive::<10000, _>")]
    #[schema(exclusive_minimum = 0, maximum = 10000)]
    pub width: f64,
    /// Greater than 0, at most 10000 (in `unit`).
    #[serde(deserialize_with = "super::limits::positive::<10000, _>")]
    #[schema(exclusive_minimum = 0, maximum = 10000)]
    pub height: f64,
    pub unit: LengthUnit,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Parcel {
    /// The parcel's reference or barcode; at most 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::limits::opt_text::<100, _>")]
    #[schema(example = "PKG-0001", max_length = 100)]
    pub reference: Option<String>,
    /// 1-9999 (default 1).
    #[serde(default = "one", deserialize_with = "super::limits::count::<1, 9999, _>")]
    #[schema(example = 1, minimum = 1, maximum = 9999)]
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<Weight>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<Dimensions>,
    /// At most 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::limits::opt_text::<500, _>")]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Sequence of the stop where it is picked up (default: the first pickup stop).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::limits::opt_count::<1, 999, _>"
    )]
    #[schema(minimum = 1, maximum = 999)]
    pub pickup_stop: Option<u32>,
    /// Sequence of the stop where it is delivered (default: the last delivery stop).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::limits::opt_count::<1, 999, _>"
    )]
    #[schema(minimum = 1, maximum = 999)]
    pub delivery_stop: Option<u32>,
}

fn one() -> u32 {
    1
}

pub type Metadata = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_codes_are_parsed_at_the_edge() {
        assert!(serde_json::from_str::<Money>(r#"{"amount":"12.50","currency":"USD"}"#).is_ok());
        for bad in [
            r#"{"amount":"12,50","currency":"USD"}"#,
            r#"{"amount":"1.","currency":"USD"}"#,
            r#"{"amount":"1","currency":"usd"}"#,
        ] {
            assert!(serde_json::from_str::<Money>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<CountryCode>("\"USA\"").is_err());
    }
}
