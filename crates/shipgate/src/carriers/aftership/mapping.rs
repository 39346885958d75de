//! AfterShip ↔ gateway mapping: meta codes to error classes, tags to statuses,
//! checkpoints to events, plans to create/update bodies, and the predict-batch item
//! rules (seed 002, CARRIERS.md "aftership", PRODUCT.md).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::wire::{Checkpoint, CreateTracking, Envelope, LastCheckpoint, Tracking, UpdateTracking};
use crate::carriers::{CarrierError, CarrierEvent, CompleteReason, Location, OrderRequest, TrackingSnapshot};
use crate::domain::{FieldError, ShipmentPlan, Status, Stop};

/// AfterShip accepts up to 3 emails and 3 phone numbers per tracking (seed: update).
pub const MAX_CONTACTS: usize = 3;

/// Public meta codes (AfterShip tracking-sdk-go `errorx/error_code.go`, 2024-04).
pub mod meta {
    pub const INVALID_JSON: i64 = 4001;
    pub const ALREADY_EXISTS: i64 = 4003;
    pub const DOES_NOT_EXIST: i64 = 4004;
    pub const INVALID_NUMBER: i64 = 4005;
    pub const INVALID_SLUG: i64 = 4010;
    pub const RETRACK_LIMIT: i64 = 4013;
    pub const RETRACK_NOT_EXPIRED: i64 = 4016;
    pub const INVALID_NUMBER_FORMAT: i64 = 4017;
    pub const BAD_KEY: i64 = 401;
    pub const FORBIDDEN: i64 = 403;
    pub const NOT_FOUND: i64 = 404;
    pub const TOO_MANY_REQUESTS: i64 = 429;
}

/// AfterShip tag → our status (PRODUCT.md: statuses are AfterShip's tags, snake_case).
pub fn tag_status(tag: &str) -> Option<Status> {
    Some(match tag {
        "Pending" => Status::Pending,
        "InfoReceived" => Status::InfoReceived,
        "InTransit" => Status::InTransit,
        "OutForDelivery" => Status::OutForDelivery,
        "AttemptFail" => Status::AttemptFail,
        "Delivered" => Status::Delivered,
        "AvailableForPickup" => Status::AvailableForPickup,
        "Exception" => Status::Exception,
        "Expired" => Status::Expired,
        _ => return None,
    })
}

/// The mark-as-completed `reason` (seed: DELIVERED, LOST or RETURNED_TO_SENDER).
pub fn complete_reason(r: CompleteReason) -> &'static str {
    match r {
        CompleteReason::Delivered => "DELIVERED",
        CompleteReason::Lost => "LOST",
        CompleteReason::ReturnedToSender => "RETURNED_TO_SENDER",
    }
}

/// The tag/subtag AfterShip sets for a completion reason (seed "Mark tracking as completed").
pub fn completed_tag(r: CompleteReason) -> (&'static str, &'static str) {
    match r {
        CompleteReason::Delivered => ("Delivered", "Delivered_001"),
        CompleteReason::Lost => ("Exception", "Exception_013"),
        CompleteReason::ReturnedToSender => ("Exception", "Exception_011"),
    }
}

/// Classify an HTTP answer by status and meta code. `Ok(())` for success.
pub fn classify(
    operation: &str,
    status: u16,
    env: Option<&Envelope>,
    retry_after: Option<Duration>,
) -> Result<(), CarrierError> {
    let code = env.and_then(|e| e.meta.code);
    let text = env.and_then(|e| e.meta.message.clone()).filter(|m| !m.trim().is_empty());
    let message = |fallback: &str| match (&text, code) {
        (Some(t), Some(c)) => format!("{t} (AfterShip meta {c})"),
        (Some(t), None) => t.clone(),
        (None, Some(c)) => format!("{operation}: {fallback} (AfterShip meta {c}, HTTP {status})"),
        (None, None) => format!("{operation}: {fallback} (HTTP {status})"),
    };
    if (200..300).contains(&status) {
        return match (env, code) {
            (None, _) => Err(CarrierError::Protocol { message: format!("{operation}: answer is not AfterShip JSON") }),
            (Some(_), None) => Ok(()),
            (Some(_), Some(c)) if (200..300).contains(&c) => Ok(()),
            (Some(_), Some(_)) => Err(CarrierError::Rejected { message: message("refused") }),
        };
    }
    if status == 429 || code == Some(meta::TOO_MANY_REQUESTS) {
        return Err(CarrierError::Transient {
            message: message("rate limited"),
            retry_after: Some(retry_after.unwrap_or(Duration::from_secs(1))),
        });
    }
    if status >= 500 || status == 408 {
        return Err(CarrierError::Transient { message: message("carrier error"), retry_after });
    }
    match code {
        Some(meta::BAD_KEY | meta::FORBIDDEN) => {
            Err(CarrierError::Misconfigured { message: message("API key refused") })
        }
        Some(meta::DOES_NOT_EXIST | meta::NOT_FOUND) => Err(CarrierError::NotFound { message: message("not found") }),
        Some(meta::ALREADY_EXISTS) => Err(CarrierError::Conflict { message: message("already exists") }),
        Some(c) if (4000..5000).contains(&c) || c == 400 => Err(CarrierError::Rejected { message: message("refused") }),
        _ => match status {
            401 | 403 => Err(CarrierError::Misconfigured { message: message("API key refused") }),
            404 if env.is_some() => Err(CarrierError::NotFound { message: message("not found") }),
            400 | 422 => Err(CarrierError::Rejected { message: message("refused") }),
            _ => Err(CarrierError::Protocol { message: message("unexpected answer") }),
        },
    }
}

// ---------- answers → snapshot ----------

/// AfterShip times: RFC 3339, `YYYY-MM-DDTHH:mm:ss` without zone (taken as UTC: the
/// checkpoint's own zone is not given), or a bare date (midnight UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|v| v.trim()).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// A stable key for a checkpoint: the same checkpoint read again (GET, last
/// checkpoint, webhook) gives the same key.
pub fn dedup_key(c: &Checkpoint) -> String {
    let mut h = Sha256::new();
    for part in [
        &c.checkpoint_time,
        &c.tag,
        &c.subtag,
        &c.message,
        &c.location,
        &c.city,
        &c.state,
        &c.zip,
        &c.country_region.clone().or_else(|| c.country_iso3.clone()),
    ] {
        h.update(part.as_deref().unwrap_or_default().trim().as_bytes());
        h.update([0x1f]);
    }
    format!("aftership:{}", &hex::encode(h.finalize())[..32])
}

pub fn event_from(c: &Checkpoint) -> Option<CarrierEvent> {
    let occurred_at =
        c.checkpoint_time.as_deref().and_then(parse_time).or_else(|| c.created_at.as_deref().and_then(parse_time))?;
    let country = non_empty(&c.country_region).or_else(|| non_empty(&c.country_iso3));
    let city = non_empty(&c.city);
    let state = non_empty(&c.state);
    let location = if city.is_some() || state.is_some() || country.is_some() {
        Some(Location { code: non_empty(&c.zip), city, state, country })
    } else {
        non_empty(&c.location).map(|l| Location { code: non_empty(&c.zip), city: Some(l), state: None, country: None })
    };
    let tag = non_empty(&c.tag);
    Some(CarrierEvent {
        occurred_at,
        status: tag.as_deref().and_then(tag_status),
        subtag: non_empty(&c.subtag),
        message: non_empty(&c.message).or_else(|| non_empty(&c.subtag_message)),
        location,
        raw_code: non_empty(&c.raw_tag).or(tag),
        raw_text: non_empty(&c.message),
        actor: None,
        dedup_key: dedup_key(c),
    })
}

/// The tracking's estimated delivery: AfterShip's latest EDD first, then the custom,
/// AfterShip-predicted and carrier dates, then the legacy `expected_delivery`.
pub fn estimated_delivery(t: &Tracking) -> Option<DateTime<Utc>> {
    let window = |w: &Option<super::wire::EddWindow>| {
        w.as_ref().and_then(|w| non_empty(&w.datetime).or_else(|| non_empty(&w.datetime_max)))
    };
    let date = |d: &Option<super::wire::EddDate>| {
        d.as_ref()
            .and_then(|d| non_empty(&d.estimated_delivery_date).or_else(|| non_empty(&d.estimated_delivery_date_max)))
    };
    [
        window(&t.latest_estimated_delivery),
        window(&t.custom_estimated_delivery_date),
        date(&t.aftership_estimated_delivery_date),
        date(&t.courier_estimated_delivery_date),
        non_empty(&t.expected_delivery),
        window(&t.first_estimated_delivery),
    ]
    .into_iter()
    .flatten()
    .find_map(|s| parse_time(&s))
}

/// A snapshot from a tracking and (when read) its last checkpoint.
pub fn snapshot_from(t: &Tracking, last: Option<&LastCheckpoint>) -> TrackingSnapshot {
    let mut events: Vec<CarrierEvent> = t.checkpoints.iter().filter_map(event_from).collect();
    if let Some(e) = last.and_then(|l| l.checkpoint.as_ref()).and_then(event_from)
        && !events.iter().any(|x| x.dedup_key == e.dedup_key)
    {
        events.push(e);
    }
    events.sort_by_key(|e| e.occurred_at);
    let tag = non_empty(&t.tag).or_else(|| last.and_then(|l| non_empty(&l.tag)));
    let subtag = non_empty(&t.subtag).or_else(|| last.and_then(|l| non_empty(&l.subtag)));
    TrackingSnapshot {
        status: tag.as_deref().and_then(tag_status).map(|s| (s, subtag)),
        carrier_status: tag,
        events,
        estimated_delivery: estimated_delivery(t),
        documents: Vec::new(),
    }
}

// ---------- plan → bodies ----------

fn delivery_stop(plan: &ShipmentPlan) -> Option<&Stop> {
    plan.stops.iter().rev().find(|s| s.stop_type.delivers())
}

/// Stops with the (last) delivery stop first, then the others in route order.
fn stops_delivery_first(plan: &ShipmentPlan) -> Vec<&Stop> {
    let first = delivery_stop(plan);
    first.into_iter().chain(plan.stops.iter().filter(|s| first.is_none_or(|f| !std::ptr::eq(*s, f)))).collect()
}

fn contacts(plan: &ShipmentPlan, pick: impl Fn(&Stop) -> Option<&String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in stops_delivery_first(plan) {
        if let Some(v) = pick(s).map(|v| v.trim()).filter(|v| !v.is_empty())
            && !out.iter().any(|o| o.eq_ignore_ascii_case(v))
        {
            out.push(v.to_owned());
        }
    }
    out
}

fn promised_date(plan: &ShipmentPlan) -> Option<String> {
    delivery_stop(plan).and_then(|s| s.scheduled_at).map(|t| t.date_naive().format("%Y-%m-%d").to_string())
}

fn order_id(req: &OrderRequest<'_>) -> Option<String> {
    req.metadata.get("order_id").cloned().filter(|s| !s.trim().is_empty()).or_else(|| req.plan.reference.clone())
}

/// Emails and phone numbers, at most 3 of each (checked before the call).
fn checked_contacts(plan: &ShipmentPlan) -> Result<(Vec<String>, Vec<String>), CarrierError> {
    let emails = contacts(plan, |s| s.email.as_ref());
    let smses = contacts(plan, |s| s.phone.as_ref());
    for (name, list) in [("emails", &emails), ("phone numbers", &smses)] {
        if list.len() > MAX_CONTACTS {
            return Err(CarrierError::Rejected {
                message: format!(
                    "AfterShip accepts at most {MAX_CONTACTS} {name} per tracking; the stops carry {}",
                    list.len()
                ),
            });
        }
    }
    Ok((emails, smses))
}

pub fn create_body(req: &OrderRequest<'_>) -> Result<CreateTracking, CarrierError> {
    let number = req.tracking_number.map(str::trim).filter(|n| !n.is_empty()).ok_or_else(|| {
        CarrierError::Rejected { message: "a tracking number is required to register it at AfterShip".into() }
    })?;
    let (emails, smses) = checked_contacts(req.plan)?;
    Ok(CreateTracking {
        tracking_number: number.to_owned(),
        slug: req.plan.service.clone().filter(|s| !s.trim().is_empty()),
        title: req.plan.reference.clone(),
        order_id: order_id(req),
        order_promised_delivery_date: promised_date(req.plan),
        customer_name: delivery_stop(req.plan).and_then(|s| s.name.clone()),
        emails: (!emails.is_empty()).then_some(emails),
        smses: (!smses.is_empty()).then_some(smses),
    })
}

pub fn update_body(req: &OrderRequest<'_>) -> Result<UpdateTracking, CarrierError> {
    let (emails, smses) = checked_contacts(req.plan)?;
    Ok(UpdateTracking {
        title: req.plan.reference.clone(),
        order_id: order_id(req),
        note: req.plan.notes.clone(),
        // Always sent: `[]` clears contacts removed from the shipment (seed: update).
        emails: Some(emails),
        smses: Some(smses),
        customer_name: delivery_stop(req.plan).and_then(|s| s.name.clone()),
        language: req.metadata.get("language").cloned().filter(|s| !s.trim().is_empty()),
        order_promised_delivery_date: promised_date(req.plan),
    })
}

// ---------- predict-batch items ----------

const ITEM_FIELDS: [&str; 8] = [
    "slug",
    "service_type_name",
    "origin_address",
    "destination_address",
    "weight",
    "package_count",
    "pickup_time",
    "estimated_pickup",
];
const ADDRESS_FIELDS: [&str; 5] = ["country_region", "state", "city", "postal_code", "raw_location"];

fn is_pickup_time(s: &str) -> bool {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").is_ok() || DateTime::parse_from_rfc3339(s).is_ok()
}

fn check_address(item: &Map<String, Value>, name: &str, at: &str, errors: &mut Vec<FieldError>) {
    let field = format!("{at}.{name}");
    let a = match item.get(name) {
        Some(Value::Object(a)) => a,
        None | Some(Value::Null) => return errors.push(FieldError::new(field, "is required")),
        Some(_) => return errors.push(FieldError::new(field, "must be an object")),
    };
    for k in a.keys().filter(|k| !ADDRESS_FIELDS.contains(&k.as_str())) {
        errors.push(FieldError::new(format!("{field}.{k}"), "unknown field"));
    }
    match a.get("country_region") {
        Some(Value::String(c)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => {}
        None | Some(Value::Null) => errors
            .push(FieldError::new(format!("{field}.country_region"), "is required (ISO 3166-1 alpha-3, e.g. \"USA\")")),
        Some(_) => errors.push(FieldError::new(
            format!("{field}.country_region"),
            "must be an ISO 3166-1 alpha-3 code (three upper-case letters, e.g. \"USA\")",
        )),
    }
    for (k, v) in a.iter().filter(|(k, _)| *k != "country_region" && ADDRESS_FIELDS.contains(&k.as_str())) {
        if !(v.is_null() || v.is_string()) {
            errors.push(FieldError::new(format!("{field}.{k}"), "must be a string"));
        }
    }
}

/// PRODUCT.md `POST /v1/estimated-delivery-dates` items, checked against the seed's
/// predict-batch rules: 1-5 items; `slug`, `origin_address`, `destination_address`
/// required; addresses carry `country_region` (ISO 3166-1 alpha-3) and optionally
/// `state`, `city`, `postal_code`, `raw_location`; either `pickup_time` or
/// `estimated_pickup` is required (seed); unknown fields are refused.
pub fn validate_estimate_items(items: &[Value]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if items.is_empty() || items.len() > 5 {
        errors.push(FieldError::new("items", format!("must hold 1 to 5 items, not {}", items.len())));
    }
    for (i, item) in items.iter().enumerate() {
        let at = format!("items[{i}]");
        let Value::Object(it) = item else {
            errors.push(FieldError::new(at, "must be an object"));
            continue;
        };
        for k in it.keys().filter(|k| !ITEM_FIELDS.contains(&k.as_str())) {
            errors.push(FieldError::new(format!("{at}.{k}"), "unknown field"));
        }
        match it.get("slug") {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            None | Some(Value::Null) => errors.push(FieldError::new(format!("{at}.slug"), "is required")),
            Some(_) => errors.push(FieldError::new(format!("{at}.slug"), "must be a non-empty courier slug")),
        }
        if let Some(v) = it.get("service_type_name")
            && !(v.is_null() || v.is_string())
        {
            errors.push(FieldError::new(format!("{at}.service_type_name"), "must be a string"));
        }
        check_address(it, "origin_address", &at, &mut errors);
        check_address(it, "destination_address", &at, &mut errors);
        match it.get("weight") {
            None | Some(Value::Null) => {}
            Some(Value::Object(w)) => {
                if !w.get("value").and_then(Value::as_f64).is_some_and(|v| v > 0.0) {
                    errors.push(FieldError::new(format!("{at}.weight.value"), "must be a positive number"));
                }
                if !w.get("unit").is_some_and(Value::is_string) {
                    errors.push(FieldError::new(format!("{at}.weight.unit"), "is required (e.g. \"kg\")"));
                }
            }
            Some(_) => errors.push(FieldError::new(format!("{at}.weight"), "must be an object {unit, value}")),
        }
        if let Some(v) = it.get("package_count")
            && !(v.is_null() || v.as_u64().is_some_and(|n| n >= 1))
        {
            errors.push(FieldError::new(format!("{at}.package_count"), "must be a positive integer"));
        }
        let pickup = it.get("pickup_time").filter(|v| !v.is_null());
        let estimated = it.get("estimated_pickup").filter(|v| !v.is_null());
        if let Some(p) = pickup
            && !p.as_str().is_some_and(is_pickup_time)
        {
            errors.push(FieldError::new(
                format!("{at}.pickup_time"),
                "must be a local time \"YYYY-MM-DD HH:mm:ss\" (or RFC 3339)",
            ));
        }
        if let Some(e) = estimated
            && !e.get("order_time").and_then(Value::as_str).is_some_and(is_pickup_time)
        {
            errors.push(FieldError::new(
                format!("{at}.estimated_pickup.order_time"),
                "is required as \"YYYY-MM-DD HH:mm:ss\"",
            ));
        }
        if pickup.is_none() && estimated.is_none() {
            errors.push(FieldError::new(
                format!("{at}.pickup_time"),
                "either pickup_time or estimated_pickup is required",
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cp(v: Value) -> Checkpoint {
        serde_json::from_value(v).expect("checkpoint")
    }

    #[test]
    fn every_tag_maps_and_unknown_tags_stay_raw() {
        for (tag, s) in [
            ("Pending", Status::Pending),
            ("InfoReceived", Status::InfoReceived),
            ("InTransit", Status::InTransit),
            ("OutForDelivery", Status::OutForDelivery),
            ("AttemptFail", Status::AttemptFail),
            ("Delivered", Status::Delivered),
            ("AvailableForPickup", Status::AvailableForPickup),
            ("Exception", Status::Exception),
            ("Expired", Status::Expired),
        ] {
            assert_eq!(tag_status(tag), Some(s));
        }
        let t: Tracking = serde_json::from_value(json!({"tag": "Teleported", "subtag": "Teleported_007"})).expect("t");
        let snap = snapshot_from(&t, None);
        assert!(snap.status.is_none());
        assert_eq!(snap.carrier_status.as_deref(), Some("Teleported"));
    }

    #[test]
    fn checkpoints_become_events_with_stable_keys_and_locations() {
        let a = cp(json!({"checkpoint_time": "2026-11-22T10:00:00+05:30", "city": "Pune", "state": "MH",
            "country_iso3": "IND", "zip": "411001", "message": "Picked up", "tag": "InTransit", "subtag": "InTransit_002"}));
        let e = event_from(&a).expect("event");
        assert_eq!(e.occurred_at.to_rfc3339(), "2026-11-22T04:30:00+00:00");
        assert_eq!(e.status, Some(Status::InTransit));
        assert_eq!(e.subtag.as_deref(), Some("InTransit_002"));
        let loc = e.location.expect("location");
        assert_eq!((loc.city.as_deref(), loc.country.as_deref()), (Some("Pune"), Some("IND")));
        // The same checkpoint under the newer field name keeps its key.
        let b = cp(json!({"checkpoint_time": "2026-11-22T10:00:00+05:30", "city": "Pune", "state": "MH",
            "country_region": "IND", "zip": "411001", "message": "Picked up", "tag": "InTransit", "subtag": "InTransit_002",
            "created_at": "2026-11-22T05:00:00Z"}));
        assert_eq!(dedup_key(&a), dedup_key(&b));
        let only_location = cp(json!({"checkpoint_time": "2026-11-22T10:00:00", "location": "HUB 4", "tag": "Nope"}));
        let e = event_from(&only_location).expect("event");
        assert_eq!(e.status, None);
        assert_eq!(e.raw_code.as_deref(), Some("Nope"));
        assert_eq!(e.location.and_then(|l| l.city).as_deref(), Some("HUB 4"));
        assert!(event_from(&cp(json!({"message": "no time"}))).is_none());
    }

    #[test]
    fn estimated_delivery_prefers_the_latest_edd() {
        let t: Tracking = serde_json::from_value(json!({
            "latest_estimated_delivery": {"type": "specific", "datetime": "2026-11-25"},
            "courier_estimated_delivery_date": {"estimated_delivery_date": "2026-11-27"},
        }))
        .expect("t");
        assert_eq!(estimated_delivery(&t).map(|d| d.to_rfc3339()).as_deref(), Some("2026-11-25T00:00:00+00:00"));
        let t: Tracking = serde_json::from_value(json!({"latest_estimated_delivery": null,
            "aftership_estimated_delivery_date": {"estimated_delivery_date": "2026-11-27T12:00:00+00:00"}}))
        .expect("t");
        assert_eq!(estimated_delivery(&t).map(|d| d.to_rfc3339()).as_deref(), Some("2026-11-27T12:00:00+00:00"));
    }

    #[test]
    fn meta_codes_map_to_classes() {
        let env = |code: i64| -> Envelope {
            serde_json::from_value(json!({"meta": {"code": code, "message": "m", "type": "BadRequest"}, "data": {}}))
                .expect("env")
        };
        let kind = |status, code| classify("op", status, Some(&env(code)), None).map_err(|e| e.kind()).err();
        assert_eq!(kind(401, 401), Some("misconfigured"));
        assert_eq!(kind(404, 4004), Some("not_found"));
        for c in [4005, 4017, 4010, 4013, 4016, 4008] {
            assert_eq!(kind(400, c), Some("rejected"), "{c}");
        }
        assert_eq!(kind(429, 429), Some("transient"));
        assert_eq!(kind(500, 500), Some("transient"));
        assert_eq!(kind(503, 503), Some("transient"));
        assert_eq!(kind(200, 200), None);
        assert_eq!(classify("op", 502, None, None).map_err(|e| e.kind()).err(), Some("transient"));
        assert_eq!(classify("op", 200, None, None).map_err(|e| e.kind()).err(), Some("protocol"));
        let msg = classify("op", 400, Some(&env(4005)), None).err().map(|e| e.message()).unwrap_or_default();
        assert!(msg.contains('m') && msg.contains("4005"), "{msg}");
    }

    fn item() -> Value {
        json!({"slug": "fedex", "origin_address": {"country_region": "USA", "state": "FL"},
            "destination_address": {"country_region": "USA", "postal_code": "33101"},
            "weight": {"unit": "kg", "value": 1.5}, "package_count": 1, "pickup_time": "2026-11-23 09:00:00"})
    }

    #[test]
    fn estimate_items_follow_the_seed_rules() {
        assert!(validate_estimate_items(&[item()]).is_empty());
        assert!(!validate_estimate_items(&[]).is_empty());
        assert!(
            validate_estimate_items(&std::iter::repeat_n(item(), 6).collect::<Vec<_>>())
                .iter()
                .any(|e| e.field == "items")
        );
        let mut bad = item();
        bad["origin_address"]["country_region"] = json!("US");
        bad["destination_address"] = Value::Null;
        bad["slug"] = Value::Null;
        bad["pickup_time"] = Value::Null;
        bad["colour"] = json!("red");
        let fields: Vec<String> = validate_estimate_items(&[bad]).into_iter().map(|e| e.field).collect();
        for f in [
            "items[0].origin_address.country_region",
            "items[0].destination_address",
            "items[0].slug",
            "items[0].pickup_time",
            "items[0].colour",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} missing in {fields:?}");
        }
        let mut est = item();
        est["pickup_time"] = Value::Null;
        est["estimated_pickup"] = json!({"order_time": "2026-11-23 09:00:00"});
        assert!(validate_estimate_items(&[est]).is_empty());
    }
}
