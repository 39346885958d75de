//! `POST /estimated-delivery-date/predict-batch`, 2024-04.
//!
//! Request and answer models: SDK 2.0.2 `models/predict_batch_request.py`,
//! `estimated_delivery_date_request.py`, `*_address_estimated_delivery_date_request.py`
//! (`{country, state, city, postal_code, raw_location}`; `country_region` only arrives
//! in 2025-01 and is refused here as an unknown field), `weight_...`,
//! `estimated_pickup_...`, `order_processing_time_...`, and their `_response` twins.
//! Rules from seed 002 ("Batch predict the estimated delivery date"): 1 to 5 items,
//! `slug`, `origin_address` and `destination_address` required, "Either pickup_time or
//! estimated_pickup is required"; from AfterShip's EDD model docs: `country` is "3 letters
//! of ISO 3166-1", "Either origin_address.state or origin_address.postal_code is
//! required" (and the same for the destination), and the order cut-off defaults to
//! 18:00:00.
//!
//! The prediction itself is ours and deterministic: pickup day + 2 days inside one country,
//! + 6 days across borders; the window is one day earlier to two days later.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{Map, Value, json};

use super::render::ApiError;
use super::validate::{is_iso3, is_slug_shaped, json_type};

const ITEM_FIELDS: &[&str] = &[
    "slug",
    "service_type_name",
    "origin_address",
    "destination_address",
    "weight",
    "package_count",
    "pickup_time",
    "estimated_pickup",
];
const ADDRESS_FIELDS: &[&str] = &["country", "state", "city", "postal_code", "raw_location"];
const WEIGHT_UNITS: &[&str] = &["kg", "g", "lb", "oz"];
/// Local times are `YYYY-MM-DD HH:mm:ss`, no offset: "The local pickup time in the origin
/// address time zone" (seed 002).
const LOCAL_TIME: &str = "%Y-%m-%d %H:%M:%S";

fn strict_keys(obj: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), ApiError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::schema(format!("{path}.{k} is not allowed"))),
        None => Ok(()),
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| ApiError::schema(format!("{path} must be an object, not {}", json_type(v))))
}

fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<Option<&'a str>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(ApiError::schema(format!("{path}.{key} must be a string, not {}", json_type(v)))),
    }
}

fn opt_number(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<f64>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(v) => Err(ApiError::schema(format!("{path}.{key} must be a number, not {}", json_type(v)))),
    }
}

fn address(item: &Map<String, Value>, key: &str, path: &str) -> Result<Value, ApiError> {
    let path = format!("{path}.{key}");
    let addr = match item.get(key) {
        None | Some(Value::Null) => return Err(ApiError::value_required(&path)),
        Some(v) => object(v, &path)?,
    };
    strict_keys(addr, ADDRESS_FIELDS, &path)?;
    let mut out = Map::new();
    for f in ADDRESS_FIELDS {
        out.insert((*f).to_owned(), opt_str(addr, f, &path)?.map_or(Value::Null, |s| json!(s)));
    }
    match opt_str(addr, "country", &path)? {
        None => return Err(ApiError::value_required(&format!("{path}.country"))),
        Some(c) if !is_iso3(c) => return Err(ApiError::value_invalid(&format!("{path}.country"))),
        Some(_) => {}
    }
    if out["state"].is_null() && out["postal_code"].is_null() {
        return Err(ApiError::value_required(&format!("{path}.state or {path}.postal_code")));
    }
    Ok(Value::Object(out))
}

fn weight(item: &Map<String, Value>, path: &str) -> Result<Value, ApiError> {
    let path = format!("{path}.weight");
    let w = match item.get("weight") {
        None | Some(Value::Null) => return Ok(Value::Null),
        Some(v) => object(v, &path)?,
    };
    strict_keys(w, &["unit", "value"], &path)?;
    let unit = opt_str(w, "unit", &path)?.ok_or_else(|| ApiError::value_required(&format!("{path}.unit")))?;
    if !WEIGHT_UNITS.contains(&unit) {
        return Err(ApiError::value_invalid(&format!("{path}.unit")));
    }
    let value = opt_number(w, "value", &path)?.ok_or_else(|| ApiError::value_required(&format!("{path}.value")))?;
    if value <= 0.0 {
        return Err(ApiError::value_invalid(&format!("{path}.value")));
    }
    Ok(json!({"unit": unit, "value": w["value"]}))
}

/// The estimated pickup, echoed with the `pickup_time` it works out to.
fn estimated_pickup(ep: &Map<String, Value>, path: &str) -> Result<(Value, NaiveDate), ApiError> {
    strict_keys(ep, &["order_time", "order_cutoff_time", "business_days", "order_processing_time"], path)?;
    let order_time =
        opt_str(ep, "order_time", path)?.ok_or_else(|| ApiError::value_required(&format!("{path}.order_time")))?;
    let ordered = NaiveDateTime::parse_from_str(order_time, LOCAL_TIME)
        .map_err(|_| ApiError::value_invalid(&format!("{path}.order_time")))?;
    let cutoff_raw = opt_str(ep, "order_cutoff_time", path)?;
    let cutoff = match cutoff_raw {
        Some(c) => NaiveTime::parse_from_str(c, "%H:%M:%S")
            .map_err(|_| ApiError::value_invalid(&format!("{path}.order_cutoff_time")))?,
        None => NaiveTime::from_hms_opt(18, 0, 0).expect("valid time"),
    };
    let days = match ep.get("business_days") {
        None | Some(Value::Null) => (1..=7).collect::<Vec<u32>>(),
        Some(Value::Array(items)) => {
            let mut days = Vec::new();
            for (i, d) in items.iter().enumerate() {
                let n = d
                    .as_u64()
                    .ok_or_else(|| ApiError::schema(format!("{path}.business_days[{i}] must be an integer")))?;
                if !(1..=7).contains(&n) {
                    return Err(ApiError::value_invalid(&format!("{path}.business_days")));
                }
                days.push(n as u32);
            }
            if days.is_empty() {
                return Err(ApiError::value_invalid(&format!("{path}.business_days")));
            }
            days
        }
        Some(v) => {
            return Err(ApiError::schema(format!("{path}.business_days must be an array, not {}", json_type(v))));
        }
    };
    let processing = match ep.get("order_processing_time") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let p_path = format!("{path}.order_processing_time");
            let p = object(v, &p_path)?;
            strict_keys(p, &["unit", "value"], &p_path)?;
            let unit =
                opt_str(p, "unit", &p_path)?.ok_or_else(|| ApiError::value_required(&format!("{p_path}.unit")))?;
            if unit != "day" {
                return Err(ApiError::value_invalid(&format!("{p_path}.unit")));
            }
            let value =
                opt_number(p, "value", &p_path)?.ok_or_else(|| ApiError::value_required(&format!("{p_path}.value")))?;
            if value < 0.0 {
                return Err(ApiError::value_invalid(&format!("{p_path}.value")));
            }
            Some((json!(unit), p["value"].clone(), value))
        }
    };
    // Orders after the cut-off are handled the next day; then processing; then the first
    // business day (1 = Monday ... 7 = Sunday).
    let mut day = ordered.date();
    if ordered.time() > cutoff {
        day += Duration::days(1);
    }
    day += Duration::days(processing.as_ref().map_or(0, |p| p.2.ceil() as i64));
    while !days.contains(&day.weekday().number_from_monday()) {
        day += Duration::days(1);
    }
    let echoed = json!({
        "order_time": order_time,
        "order_cutoff_time": cutoff_raw,
        "business_days": ep.get("business_days").cloned().unwrap_or(Value::Null),
        "order_processing_time": processing.map_or(Value::Null, |(u, v, _)| json!({"unit": u, "value": v})),
        "pickup_time": day.and_time(cutoff).format(LOCAL_TIME).to_string(),
    });
    Ok((echoed, day))
}

/// Validate a predict-batch body and answer its `estimated_delivery_dates`.
pub(crate) fn predict_batch(body: &Value, couriers: &[String]) -> Result<Value, ApiError> {
    let top = object(body, "the body")?;
    strict_keys(top, &["estimated_delivery_dates"], "body")?;
    let items = match top.get("estimated_delivery_dates") {
        None | Some(Value::Null) => return Err(ApiError::value_required("estimated_delivery_dates")),
        Some(Value::Array(items)) => items,
        Some(v) => {
            return Err(ApiError::schema(format!("estimated_delivery_dates must be an array, not {}", json_type(v))));
        }
    };
    // ">= 1 items, <= 5 items" (seed 002).
    if items.is_empty() || items.len() > 5 {
        return Err(ApiError::value_invalid("estimated_delivery_dates"));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("estimated_delivery_dates[{i}]");
        let item = object(item, &path)?;
        strict_keys(item, ITEM_FIELDS, &path)?;
        let slug = opt_str(item, "slug", &path)?.ok_or_else(|| ApiError::value_required(&format!("{path}.slug")))?;
        if !is_slug_shaped(slug) || !couriers.iter().any(|c| c == slug) {
            return Err(ApiError::slug_invalid());
        }
        let service_type_name = opt_str(item, "service_type_name", &path)?;
        let origin = address(item, "origin_address", &path)?;
        let destination = address(item, "destination_address", &path)?;
        let weight = weight(item, &path)?;
        let package_count = match item.get("package_count") {
            None | Some(Value::Null) => Value::Null,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => json!(n),
                Some(_) => return Err(ApiError::value_invalid(&format!("{path}.package_count"))),
                None => return Err(ApiError::schema(format!("{path}.package_count must be an integer"))),
            },
        };
        let pickup_time = opt_str(item, "pickup_time", &path)?;
        let estimated = match item.get("estimated_pickup") {
            None | Some(Value::Null) => None,
            Some(v) => Some(estimated_pickup(
                object(v, &format!("{path}.estimated_pickup"))?,
                &format!("{path}.estimated_pickup"),
            )?),
        };
        let pickup_day = match (pickup_time, &estimated) {
            (Some(t), _) => NaiveDateTime::parse_from_str(t, LOCAL_TIME)
                .map_err(|_| ApiError::value_invalid(&format!("{path}.pickup_time")))?
                .date(),
            (None, Some((_, day))) => *day,
            (None, None) => {
                return Err(ApiError::value_required(&format!("{path}.pickup_time or {path}.estimated_pickup")));
            }
        };
        let transit = if origin["country"] == destination["country"] { 2 } else { 6 };
        let date = |d: i64| (pickup_day + Duration::days(d)).format("%Y-%m-%d").to_string();
        out.push(json!({
            "slug": slug,
            "service_type_name": service_type_name,
            "origin_address": origin,
            "destination_address": destination,
            "weight": weight,
            "package_count": package_count,
            "pickup_time": pickup_time,
            "estimated_pickup": estimated.map_or(Value::Null, |(e, _)| e),
            "estimated_delivery_date": date(transit),
            "confidence_code": null,
            "estimated_delivery_date_min": date((transit - 1).max(1)),
            "estimated_delivery_date_max": date(transit + 2),
        }));
    }
    Ok(json!({"estimated_delivery_dates": out}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> Value {
        json!({
            "slug": "ecms",
            "origin_address": {"country": "CHN", "state": "Guangdong"},
            "destination_address": {"country": "USA", "postal_code": "10001"},
            "pickup_time": "2024-05-01 15:00:00"
        })
    }

    #[test]
    fn predicts_six_days_across_borders() {
        let out = predict_batch(&json!({"estimated_delivery_dates": [item()]}), &["ecms".into()]).unwrap();
        assert_eq!(out["estimated_delivery_dates"][0]["estimated_delivery_date"], "2024-05-07");
    }

    #[test]
    fn country_region_is_refused() {
        let mut i = item();
        i["origin_address"] = json!({"country_region": "CHN", "state": "Guangdong"});
        let err = predict_batch(&json!({"estimated_delivery_dates": [i]}), &["ecms".into()]).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.contains("country_region"), "{}", err.message);
    }

    #[test]
    fn estimated_pickup_after_cutoff_moves_to_next_business_day() {
        let mut i = item();
        i.as_object_mut().unwrap().remove("pickup_time");
        // Friday 2024-05-03 19:00 after an 18:00 cut-off, Monday-Friday only: Monday.
        i["estimated_pickup"] = json!({"order_time": "2024-05-03 19:00:00", "business_days": [1, 2, 3, 4, 5]});
        let out = predict_batch(&json!({"estimated_delivery_dates": [i]}), &["ecms".into()]).unwrap();
        assert_eq!(out["estimated_delivery_dates"][0]["estimated_pickup"]["pickup_time"], "2024-05-06 18:00:00");
    }
}
