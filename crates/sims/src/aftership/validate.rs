//! What each 2024-04 request may carry, checked field by field.
//!
//! The field lists are the SDK's request models (aftership-tracking-sdk 2.0.2
//! `models/tracking_create_tracking_request.py`, `tracking_update_tracking_by_id_request.py`,
//! `tracking_update_tracking_by_slug_tracking_number_request.py`,
//! `mark_tracking_completed_by_id_request.py`); a field outside them, or of the wrong JSON
//! type, is refused with meta 400 "Schema validation error" (see [`ApiError::schema`]).
//! Values are then checked as the seed and AfterShip's docs describe them (4005, 4007,
//! 4008, 4009, 4010, 4017).

use chrono::{DateTime, NaiveDate};
use serde_json::{Map, Value};

use super::render::{ApiError, SELECTABLE_CHECKPOINT_FIELDS, SELECTABLE_TRACKING_FIELDS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    /// A courier slug: lowercase letters, digits and dashes, one of the account's couriers.
    Slug,
    /// `YYYY-MM-DD` (seed 002: `order_promised_delivery_date` "uses the format YYYY-MM-DD").
    Date,
    /// `YYYYMMDD` (SDK doc of `tracking_ship_date`: "using the format YYYYMMDD").
    ShipDate,
    /// ISO 3166-1 alpha-3, upper case.
    Iso3,
    /// ISO 639-1 (seed 002: `language` "Use an ISO 639-1 Language Code").
    Lang,
    /// Up to 3 strings (seed 002: emails/smses "Supports up to 3").
    Contacts,
    StrList,
    /// "Custom fields that accept an object with string field" (2024-04 Create a tracking).
    CustomFields,
    DeliveryType,
    SlugGroup,
    NextCouriers,
}

use Kind::*;

/// `TrackingCreateTrackingRequest` (SDK 2.0.2), minus `tracking_number`, checked apart.
pub(crate) const CREATE_FIELDS: &[(&str, Kind)] = &[
    ("slug", Slug),
    ("title", Str),
    ("order_id", Str),
    ("order_id_path", Str),
    ("custom_fields", CustomFields),
    ("language", Lang),
    ("order_promised_delivery_date", Date),
    ("delivery_type", DeliveryType),
    ("pickup_location", Str),
    ("pickup_note", Str),
    ("tracking_account_number", Str),
    ("tracking_key", Str),
    ("tracking_ship_date", ShipDate),
    ("emails", Contacts),
    ("smses", Contacts),
    ("customer_name", Str),
    ("origin_country_iso3", Iso3),
    ("origin_state", Str),
    ("origin_city", Str),
    ("origin_postal_code", Str),
    ("origin_raw_location", Str),
    ("destination_country_iso3", Iso3),
    ("destination_state", Str),
    ("destination_city", Str),
    ("destination_postal_code", Str),
    ("destination_raw_location", Str),
    ("note", Str),
    ("slug_group", SlugGroup),
    ("order_date", Str),
    ("order_number", Str),
    ("shipment_type", Str),
    ("shipment_tags", StrList),
    ("courier_connection_id", Str),
    ("next_couriers", NextCouriers),
    ("tracking_origin_country", Iso3),
    ("tracking_destination_country", Iso3),
    ("tracking_postal_code", Str),
    ("tracking_state", Str),
    ("location_id", Str),
    ("shipping_method", Str),
];

/// `TrackingUpdateTrackingByIdRequest` (SDK 2.0.2).
pub(crate) const UPDATE_BY_ID_FIELDS: &[(&str, Kind)] = &[
    ("smses", Contacts),
    ("emails", Contacts),
    ("title", Str),
    ("customer_name", Str),
    ("order_id", Str),
    ("order_id_path", Str),
    ("custom_fields", CustomFields),
    ("note", Str),
    ("language", Lang),
    ("order_promised_delivery_date", Date),
    ("delivery_type", DeliveryType),
    ("pickup_location", Str),
    ("pickup_note", Str),
    ("slug", Slug),
    ("tracking_account_number", Str),
    ("tracking_key", Str),
    ("tracking_ship_date", ShipDate),
    ("order_number", Str),
    ("order_date", Str),
    ("shipment_type", Str),
    ("origin_country_iso3", Iso3),
    ("origin_state", Str),
    ("origin_city", Str),
    ("origin_postal_code", Str),
    ("origin_raw_location", Str),
    ("destination_country_iso3", Iso3),
    ("destination_state", Str),
    ("destination_city", Str),
    ("destination_postal_code", Str),
    ("destination_raw_location", Str),
    ("tracking_origin_country", Iso3),
    ("tracking_destination_country", Iso3),
    ("tracking_postal_code", Str),
    ("tracking_state", Str),
    ("location_id", Str),
    ("shipping_method", Str),
];

/// `TrackingUpdateTrackingBySlugTrackingNumberRequest` (SDK 2.0.2): the legacy route
/// takes fewer fields (no `shipment_type`, no origin/destination address).
pub(crate) const UPDATE_BY_SLUG_FIELDS: &[(&str, Kind)] = &[
    ("smses", Contacts),
    ("emails", Contacts),
    ("title", Str),
    ("customer_name", Str),
    ("order_id", Str),
    ("order_id_path", Str),
    ("custom_fields", CustomFields),
    ("note", Str),
    ("language", Lang),
    ("order_promised_delivery_date", Date),
    ("delivery_type", DeliveryType),
    ("pickup_location", Str),
    ("pickup_note", Str),
    ("slug", Slug),
    ("tracking_account_number", Str),
    ("tracking_origin_country", Iso3),
    ("tracking_destination_country", Iso3),
    ("tracking_key", Str),
    ("tracking_postal_code", Str),
    ("tracking_ship_date", ShipDate),
    ("tracking_state", Str),
    ("order_number", Str),
    ("order_date", Str),
    ("location_id", Str),
    ("shipping_method", Str),
];

/// `SlugGroupV1` (SDK 2.0.2 `models/slug_group_v1.py`).
const SLUG_GROUPS: &[&str] = &[
    "amazon-group",
    "fedex-group",
    "toll-group",
    "taqbin-group",
    "tnt-group",
    "cj-group",
    "hermes-group",
    "dpd-group",
    "gls-group",
    "dhl-group",
    "fastway-group",
    "asendia-group",
];

/// Shipment delivery types (AfterShip Tracking model, `delivery_type`).
const DELIVERY_TYPES: &[&str] = &["pickup_at_store", "pickup_at_courier", "door_to_door"];

/// Target languages of `lang` (SDK 2.0.2 `get_tracking_by_id` doc).
const LANGS: &[&str] = &[
    "en", "fr", "fr-CA", "ar", "bg", "ca", "hr", "cs", "da", "nl", "et", "tl", "fi", "de", "el", "he", "hi", "hu",
    "id", "it", "ja", "ko", "lv", "lt", "ms", "pl", "pt", "ro", "ru", "sr", "sk", "sl", "es", "sv", "th", "tr", "uk",
    "vi", "zh-Hans", "zh-Hant", "nb",
];

/// The tags (SDK 2.0.2 `models/tag_v1.py`).
pub(crate) const TAGS: &[&str] = &[
    "Pending",
    "InfoReceived",
    "InTransit",
    "OutForDelivery",
    "AttemptFail",
    "Delivered",
    "AvailableForPickup",
    "Exception",
    "Expired",
];

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expect_str<'a>(path: &str, v: &'a Value) -> Result<&'a str, ApiError> {
    v.as_str().ok_or_else(|| ApiError::schema(format!("{path} must be a string, not {}", json_type(v))))
}

pub(crate) fn is_slug_shaped(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub(crate) fn is_iso3(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// Check one field's value; `null` is accepted for every optional field (it unsets it).
fn check_field(name: &str, kind: Kind, v: &Value, couriers: &[String]) -> Result<(), ApiError> {
    if v.is_null() {
        return Ok(());
    }
    let path = format!("tracking.{name}");
    match kind {
        Str => {
            expect_str(&path, v)?;
        }
        Slug => {
            let s = expect_str(&path, v)?;
            if !is_slug_shaped(s) || !couriers.iter().any(|c| c == s) {
                return Err(ApiError::slug_invalid());
            }
        }
        Date => {
            let s = expect_str(&path, v)?;
            if s.len() != 10 || NaiveDate::parse_from_str(s, "%Y-%m-%d").is_err() {
                return Err(ApiError::value_invalid(name));
            }
        }
        ShipDate => {
            let s = expect_str(&path, v)?;
            if s.len() != 8 || NaiveDate::parse_from_str(s, "%Y%m%d").is_err() {
                return Err(ApiError::value_invalid(name));
            }
        }
        Iso3 => {
            if !is_iso3(expect_str(&path, v)?) {
                return Err(ApiError::value_invalid(name));
            }
        }
        Lang => {
            let s = expect_str(&path, v)?;
            if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(ApiError::value_invalid(name));
            }
        }
        Contacts | StrList => {
            let items = v.as_array().ok_or_else(|| ApiError::schema(format!("{path} must be an array of strings")))?;
            for (i, item) in items.iter().enumerate() {
                let s = expect_str(&format!("{path}[{i}]"), item)?;
                if kind == Contacts && s.trim().is_empty() {
                    return Err(ApiError::value_invalid(name));
                }
                if name == "emails" && !looks_like_email(s) {
                    return Err(ApiError::value_invalid(name));
                }
            }
            if kind == Contacts && items.len() > 3 {
                return Err(ApiError::value_invalid(name));
            }
        }
        CustomFields => {
            let obj = v.as_object().ok_or_else(|| ApiError::schema(format!("{path} must be an object")))?;
            for (k, item) in obj {
                expect_str(&format!("{path}.{k}"), item)?;
            }
        }
        DeliveryType => {
            if !DELIVERY_TYPES.contains(&expect_str(&path, v)?) {
                return Err(ApiError::value_invalid(name));
            }
        }
        SlugGroup => {
            if !SLUG_GROUPS.contains(&expect_str(&path, v)?) {
                return Err(ApiError::value_invalid(name));
            }
        }
        NextCouriers => {
            let items = v.as_array().ok_or_else(|| ApiError::schema(format!("{path} must be an array")))?;
            for (i, item) in items.iter().enumerate() {
                let obj = item.as_object().ok_or_else(|| ApiError::schema(format!("{path}[{i}] must be an object")))?;
                for (k, sub) in obj {
                    let sub_path = format!("{path}[{i}].{k}");
                    match k.as_str() {
                        "slug" | "tracking_number" => {
                            expect_str(&sub_path, sub)?;
                        }
                        _ => return Err(ApiError::schema(format!("{sub_path} is not allowed"))),
                    }
                }
            }
        }
    }
    Ok(())
}

fn looks_like_email(s: &str) -> bool {
    let mut parts = s.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if !a.is_empty() && b.contains('.'))
}

/// Unwrap `{"tracking": {...}}`: 4006 without it (a body that forgot the wrapper), a
/// schema error for a `tracking` that is not an object or anything next to it.
pub(crate) fn unwrap_tracking(body: &Value) -> Result<&Map<String, Value>, ApiError> {
    let top = body.as_object().ok_or_else(|| ApiError::schema("the body must be a JSON object"))?;
    let tracking = match top.get("tracking") {
        None | Some(Value::Null) => return Err(ApiError::tracking_required()),
        Some(Value::Object(t)) => t,
        Some(other) => return Err(ApiError::schema(format!("tracking must be an object, not {}", json_type(other)))),
    };
    if let Some(k) = top.keys().find(|k| *k != "tracking") {
        return Err(ApiError::schema(format!("{k} is not allowed next to tracking")));
    }
    Ok(tracking)
}

/// Check a tracking object's fields against `allowed`; unknown names are refused.
pub(crate) fn check_fields(
    tracking: &Map<String, Value>,
    allowed: &[(&str, Kind)],
    skip: &[&str],
    couriers: &[String],
) -> Result<(), ApiError> {
    if let Some(k) = tracking.keys().find(|k| !skip.contains(&k.as_str()) && !allowed.iter().any(|(n, _)| n == k)) {
        return Err(ApiError::schema(format!("tracking.{k} is not allowed")));
    }
    // Types first (a schema error), then values, so a body's shape is judged as a whole.
    for (name, kind) in allowed {
        if let Some(v) = tracking.get(*name) {
            let shape = match kind {
                Str | Slug | Date | ShipDate | Iso3 | Lang | DeliveryType | SlugGroup => v.is_string(),
                Contacts | StrList | NextCouriers => v.is_array(),
                CustomFields => v.is_object(),
            };
            if !shape && !v.is_null() {
                return Err(ApiError::schema(format!("tracking.{name} must not be {}", json_type(v))));
            }
        }
    }
    for (name, kind) in allowed {
        if let Some(v) = tracking.get(*name) {
            check_field(name, *kind, v, couriers)?;
        }
    }
    Ok(())
}

/// `tracking_number`: required (4007), 4 to 100 characters (4005: "Only accept tracking
/// numbers with length from 4 to 100", seed 002), printable ASCII without surrounding
/// blanks (4017; the seed only says invalid formats "will not be accepted").
pub(crate) fn tracking_number(tracking: &Map<String, Value>) -> Result<String, ApiError> {
    let n = match tracking.get("tracking_number") {
        None | Some(Value::Null) => return Err(ApiError::number_required()),
        Some(v) => expect_str("tracking.tracking_number", v)?,
    };
    let len = n.chars().count();
    if !(4..=100).contains(&len) {
        return Err(ApiError::number_invalid());
    }
    if n.trim() != n || !n.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ApiError::number_format_invalid());
    }
    Ok(n.to_owned())
}

/// The mark-as-completed body `{reason}` (SDK 2.0.2 `MarkTrackingCompletedByIdRequest`).
pub(crate) fn completion_reason(body: &Value) -> Result<String, ApiError> {
    let obj = body.as_object().ok_or_else(|| ApiError::schema("the body must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| *k != "reason") {
        return Err(ApiError::schema(format!("{k} is not allowed")));
    }
    let reason = match obj.get("reason") {
        None | Some(Value::Null) => return Err(ApiError::value_required("reason")),
        Some(v) => expect_str("reason", v)?,
    };
    if super::state::completion(reason).is_none() {
        return Err(ApiError::value_invalid("reason"));
    }
    Ok(reason.to_owned())
}

/// A comma-separated `fields` query value, each name one of `allowed`.
fn field_list(raw: &str, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let names: Vec<String> = raw.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    if names.iter().any(|n| !allowed.contains(&n.as_str())) {
        return Err(ApiError::value_invalid("fields"));
    }
    Ok(names)
}

/// `fields` and `lang` of a single-tracking read; other query keys are ignored.
pub(crate) fn read_params(query: &[(String, String)], checkpoint: bool) -> Result<Option<Vec<String>>, ApiError> {
    let mut fields = None;
    for (k, v) in query {
        match k.as_str() {
            "fields" if !v.is_empty() => {
                let allowed = if checkpoint { SELECTABLE_CHECKPOINT_FIELDS } else { SELECTABLE_TRACKING_FIELDS };
                fields = Some(field_list(v, allowed)?);
            }
            "lang" if !LANGS.contains(&v.as_str()) => return Err(ApiError::value_invalid("lang")),
            _ => {}
        }
    }
    Ok(fields)
}

/// `GET /trackings` query (SDK 2.0.2 `get_trackings`).
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    pub page: usize,
    pub limit: usize,
    pub keyword: Option<String>,
    pub tracking_numbers: Option<Vec<String>>,
    pub slug: Option<Vec<String>>,
    pub transit_time: Option<i64>,
    pub origin: Vec<String>,
    pub destination: Vec<String>,
    pub tag: Option<Vec<String>>,
    pub created_at_min: Option<DateTime<chrono::FixedOffset>>,
    pub created_at_max: Option<DateTime<chrono::FixedOffset>>,
    pub updated_at_min: Option<DateTime<chrono::FixedOffset>>,
    pub updated_at_max: Option<DateTime<chrono::FixedOffset>>,
    pub fields: Option<Vec<String>>,
    pub return_to_sender: Option<Vec<bool>>,
    pub courier_destination_country_iso3: Vec<String>,
    pub shipment_tags: Option<Vec<String>>,
    pub order_id: Option<Vec<String>>,
}

fn csv(v: &str) -> Vec<String> {
    v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
}

pub(crate) fn list_query(query: &[(String, String)]) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery { page: 1, limit: 100, ..Default::default() };
    let time = |name: &str, v: &str| DateTime::parse_from_rfc3339(v).map_err(|_| ApiError::value_invalid(name));
    let iso3s = |name: &str, v: &str| {
        let list = csv(v);
        if list.iter().all(|c| is_iso3(c)) { Ok(list) } else { Err(ApiError::value_invalid(name)) }
    };
    for (k, v) in query {
        let name = k.as_str();
        match name {
            // "Number of trackings each page contain. (Default: 100, Max: 200)"
            "page" => q.page = v.parse().ok().filter(|p| *p >= 1).ok_or_else(|| ApiError::value_invalid(name))?,
            "limit" => {
                q.limit =
                    v.parse().ok().filter(|l| (1..=200).contains(l)).ok_or_else(|| ApiError::value_invalid(name))?
            }
            "keyword" if !v.is_empty() => q.keyword = Some(v.clone()),
            // "Supports up to 50 tracking numbers."
            "tracking_numbers" => {
                let list = csv(v);
                if list.len() > 50 {
                    return Err(ApiError::value_invalid(name));
                }
                q.tracking_numbers = Some(list);
            }
            "slug" => q.slug = Some(csv(v)),
            "transit_time" => q.transit_time = Some(v.parse().map_err(|_| ApiError::value_invalid(name))?),
            "origin" => q.origin = iso3s(name, v)?,
            "destination" => q.destination = iso3s(name, v)?,
            "courier_destination_country_iso3" => q.courier_destination_country_iso3 = iso3s(name, v)?,
            "tag" => {
                let list = csv(v);
                if list.iter().any(|t| !TAGS.contains(&t.as_str())) {
                    return Err(ApiError::value_invalid(name));
                }
                q.tag = Some(list);
            }
            "created_at_min" => q.created_at_min = Some(time(name, v)?),
            "created_at_max" => q.created_at_max = Some(time(name, v)?),
            "updated_at_min" => q.updated_at_min = Some(time(name, v)?),
            "updated_at_max" => q.updated_at_max = Some(time(name, v)?),
            "fields" if !v.is_empty() => q.fields = Some(field_list(v, SELECTABLE_TRACKING_FIELDS)?),
            "return_to_sender" => {
                let list = csv(v)
                    .iter()
                    .map(|b| b.parse::<bool>().map_err(|_| ApiError::value_invalid(name)))
                    .collect::<Result<Vec<_>, _>>()?;
                q.return_to_sender = Some(list);
            }
            "shipment_tags" => q.shipment_tags = Some(csv(v)),
            "order_id" => q.order_id = Some(csv(v)),
            _ => {}
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn couriers() -> Vec<String> {
        vec!["ecms".into(), "dhl".into()]
    }

    #[test]
    fn update_by_slug_refuses_what_only_update_by_id_takes() {
        let t = json!({"shipment_type": "box"});
        let t = t.as_object().unwrap();
        assert!(check_fields(t, UPDATE_BY_ID_FIELDS, &[], &couriers()).is_ok());
        assert_eq!(check_fields(t, UPDATE_BY_SLUG_FIELDS, &[], &couriers()).unwrap_err().code, 400);
    }

    #[test]
    fn value_rules() {
        let check =
            |t: Value| check_fields(t.as_object().unwrap(), CREATE_FIELDS, &[], &couriers()).map_err(|e| e.code);
        assert_eq!(check(json!({"emails": ["a@b.co", "c@d.co", "e@f.co", "g@h.co"]})), Err(4008));
        assert_eq!(check(json!({"order_promised_delivery_date": "2024-13-01"})), Err(4008));
        assert_eq!(check(json!({"tracking_ship_date": "2024-05-01"})), Err(4008));
        assert_eq!(check(json!({"slug": "unknown-courier"})), Err(4010));
        assert_eq!(check(json!({"title": 12})), Err(400));
        assert_eq!(check(json!({"custom_fields": {"a": 1}})), Err(400));
        assert_eq!(check(json!({"destination_country_iso3": "DE"})), Err(4008));
        assert!(check(json!({"slug": "dhl", "emails": [], "note": null, "tracking_ship_date": "20240501"})).is_ok());
    }
}
