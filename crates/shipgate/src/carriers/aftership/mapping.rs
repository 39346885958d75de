//! AfterShip ↔ gateway mapping: meta codes to error classes, tags to statuses,
//! checkpoints to events, plans to create/update bodies, and the predict-batch item
//! rules (seed 002, docs/carriers/aftership.md "aftership", docs/product.md).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::wire::sdk_2024_04::{
    ADDRESS_FIELDS, ESTIMATE_FIELDS, ESTIMATED_PICKUP_FIELDS, PROCESSING_TIME_FIELDS, WEIGHT_FIELDS,
};
use super::wire::{Checkpoint, CreateTracking, Envelope, LastCheckpoint, Tracking, TrackingList, UpdateTracking};
use crate::carriers::{
    CarrierError, CarrierEvent, CompleteReason, ListPage, Listed, Location, OrderRequest, TrackingSnapshot,
};
use crate::domain::{FieldError, ShipmentPlan, Status, Stop};

/// AfterShip accepts up to 3 emails and 3 phone numbers per tracking (seed: update).
pub const MAX_CONTACTS: usize = 3;

/// Public meta codes (aftership-tracking-sdk 2.0.2 `response.py` `_error_meta_code_mapping`
/// and its README "Error List", API 2024-04).
pub mod meta {
    pub const INVALID_JSON: i64 = 4001;
    pub const ALREADY_EXISTS: i64 = 4003;
    pub const DOES_NOT_EXIST: i64 = 4004;
    pub const INVALID_NUMBER: i64 = 4005;
    pub const INVALID_VALUE: i64 = 4008;
    pub const VALUE_REQUIRED: i64 = 4009;
    pub const INVALID_SLUG: i64 = 4010;
    /// `INACTIVE_RETRACK_NOT_ALLOWED`: "Retrack is not allowed. You can only retrack an
    /// inactive tracking." The tracking is still active (not expired or completed).
    pub const RETRACK_STILL_ACTIVE: i64 = 4013;
    /// `RETRACK_ONCE_ALLOWED`: the tracking was retracked as often as allowed (the seed:
    /// "Max 3 times per tracking").
    pub const RETRACK_LIMIT: i64 = 4016;
    pub const INVALID_NUMBER_FORMAT: i64 = 4017;
    pub const BAD_KEY: i64 = 401;
    pub const FORBIDDEN: i64 = 403;
    pub const NOT_FOUND: i64 = 404;
    pub const TOO_MANY_REQUESTS: i64 = 429;
}

/// AfterShip tag → our status (docs/product.md: statuses are AfterShip's tags, snake_case).
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
        // The two retrack refusals get our own explanation: the codes alone are easily
        // confused (and were, until the SDK's error list was read).
        Some(c @ (meta::RETRACK_STILL_ACTIVE | meta::RETRACK_LIMIT)) => {
            let ours = if c == meta::RETRACK_STILL_ACTIVE {
                "only an inactive (expired or completed) tracking can be retracked; this one is still active"
            } else {
                "this tracking was already retracked as often as AfterShip allows (the retrack limit is reached)"
            };
            let theirs = text.as_deref().map(|t| format!(": {t}")).unwrap_or_default();
            Err(CarrierError::Rejected { message: format!("{operation}: {ours} (AfterShip meta {c}{theirs})") })
        }
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
    for part in
        [&c.checkpoint_time, &c.tag, &c.subtag, &c.message, &c.location, &c.city, &c.state, &c.zip, &c.country_iso3]
    {
        h.update(part.as_deref().unwrap_or_default().trim().as_bytes());
        h.update([0x1f]);
    }
    format!("aftership:{}", &hex::encode(h.finalize())[..32])
}

pub fn event_from(c: &Checkpoint) -> Option<CarrierEvent> {
    let occurred_at =
        c.checkpoint_time.as_deref().and_then(parse_time).or_else(|| c.created_at.as_deref().and_then(parse_time))?;
    let country = non_empty(&c.country_iso3);
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

/// The tracking's estimated delivery, from the 2024-04 tracking model (SDK
/// models/tracking.py): `latest_estimated_delivery` first (AfterShip's current EDD,
/// whatever its source), then the merchant's `custom_estimated_delivery_date`,
/// AfterShip's prediction `aftership_estimated_delivery_date`, the carrier's
/// `expected_delivery`, and last the `first_estimated_delivery` ever given. A window
/// without a single date counts by its latest end.
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
        non_empty(&t.expected_delivery),
        window(&t.first_estimated_delivery),
    ]
    .into_iter()
    .flatten()
    .find_map(|s| parse_time(&s))
}

/// One page of the tracking list as reconciliation reads it: the next page exists while
/// this one is full and `count` (when given) is not yet reached; a tracking without an
/// id cannot be matched and is skipped.
pub fn list_page(list: &TrackingList, page: u64, limit: u64) -> ListPage {
    let items = list
        .trackings
        .iter()
        .filter_map(|t| {
            let id = t.id.clone().filter(|i| !i.is_empty())?;
            let tag = non_empty(&t.tag);
            Some(Listed {
                carrier_reference: id,
                tracking_number: t.tracking_number.clone(),
                status: tag.as_deref().and_then(tag_status).map(|s| (s, non_empty(&t.subtag))),
                carrier_status: tag,
                slug: t.slug.clone(),
            })
        })
        .collect();
    let more = list.trackings.len() as u64 >= limit && list.count.is_none_or(|c| page * limit < c);
    ListPage { items, next: more.then(|| (page + 1).to_string()), total: list.count }
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
        proof: None,
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

/// The recipient's language for AfterShip's notifications (seed: update `language`, an
/// ISO 639-1 code), from the shipment's `metadata.language`.
fn language(req: &OrderRequest<'_>) -> Option<String> {
    req.metadata.get("language").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
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
        language: language(req),
        note: req.plan.notes.clone().filter(|s| !s.trim().is_empty()),
    })
}

pub fn update_body(req: &OrderRequest<'_>) -> Result<UpdateTracking, CarrierError> {
    let (emails, smses) = checked_contacts(req.plan)?;
    Ok(UpdateTracking {
        title: req.plan.reference.clone(),
        order_id: order_id(req),
        // Always sent: `""` clears a note removed from the shipment (seed: update "note").
        note: Some(req.plan.notes.clone().unwrap_or_default()),
        // Always sent: `[]` clears contacts removed from the shipment (seed: update).
        emails: Some(emails),
        smses: Some(smses),
        customer_name: delivery_stop(req.plan).and_then(|s| s.name.clone()),
        language: language(req),
        order_promised_delivery_date: promised_date(req.plan),
    })
}

// ---------- predict-batch items ----------

/// AfterShip's local time format for `pickup_time` and `estimated_pickup.order_time`
/// ("YYYY-MM-DD HH:mm:ss", in the origin's time zone; AfterShip's predict-batch
/// reference and the SDK README example `"order_time": "2021-07-01 15:04:05"`).
fn is_local_time(s: &str) -> bool {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").is_ok()
}

fn unknown_fields(obj: &Map<String, Value>, allowed: &[&str], at: &str, errors: &mut Vec<FieldError>) {
    for k in obj.keys().filter(|k| !allowed.contains(&k.as_str())) {
        let message = if k == "country_region" {
            "unknown field: `country_region` is API 2025-01; API 2024-04 names it `country` (ISO 3166-1 alpha-3)"
        } else {
            "unknown field"
        };
        errors.push(FieldError::new(format!("{at}.{k}"), message));
    }
}

/// The object at `at`, or an error: `required` ones must be present and non-null.
fn object_at<'a>(
    item: &'a Map<String, Value>,
    name: &str,
    at: &str,
    required: bool,
    errors: &mut Vec<FieldError>,
) -> Option<&'a Map<String, Value>> {
    match item.get(name) {
        Some(Value::Object(o)) => Some(o),
        None | Some(Value::Null) => {
            if required {
                errors.push(FieldError::new(format!("{at}.{name}"), "is required"));
            }
            None
        }
        Some(_) => {
            errors.push(FieldError::new(format!("{at}.{name}"), "must be an object"));
            None
        }
    }
}

fn optional_string(obj: &Map<String, Value>, name: &str, at: &str, errors: &mut Vec<FieldError>) {
    if let Some(v) = obj.get(name)
        && !(v.is_null() || v.is_string())
    {
        errors.push(FieldError::new(format!("{at}.{name}"), "must be a string"));
    }
}

/// `origin_address` / `destination_address` (SDK `OriginAddressEstimatedDeliveryDateRequest`):
/// `country` ISO 3166-1 alpha-3, required (AfterShip needs the country to predict);
/// `state`, `city`, `postal_code`, `raw_location` optional strings.
fn check_address(item: &Map<String, Value>, name: &str, at: &str, errors: &mut Vec<FieldError>) {
    let Some(a) = object_at(item, name, at, true, errors) else { return };
    let field = format!("{at}.{name}");
    unknown_fields(a, &ADDRESS_FIELDS, &field, errors);
    match a.get("country") {
        Some(Value::String(c)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => {}
        None | Some(Value::Null) => {
            errors.push(FieldError::new(format!("{field}.country"), "is required (ISO 3166-1 alpha-3, e.g. \"USA\")"))
        }
        Some(_) => errors.push(FieldError::new(
            format!("{field}.country"),
            "must be an ISO 3166-1 alpha-3 code (three upper-case letters, e.g. \"USA\")",
        )),
    }
    for k in ["state", "city", "postal_code", "raw_location"] {
        optional_string(a, k, &field, errors);
    }
}

/// `estimated_pickup` (SDK `EstimatedPickupEstimatedDeliveryDateRequest`): `order_time`
/// required; `order_cutoff_time` "HH:mm:ss"; `business_days` weekdays 1 (Monday) to 7;
/// `order_processing_time` `{unit, value}` with a whole, non-negative value.
fn check_estimated_pickup(e: &Map<String, Value>, at: &str, errors: &mut Vec<FieldError>) {
    let field = format!("{at}.estimated_pickup");
    unknown_fields(e, &ESTIMATED_PICKUP_FIELDS, &field, errors);
    if !e.get("order_time").and_then(Value::as_str).is_some_and(is_local_time) {
        errors.push(FieldError::new(format!("{field}.order_time"), "is required as \"YYYY-MM-DD HH:mm:ss\""));
    }
    if let Some(v) = e.get("order_cutoff_time").filter(|v| !v.is_null())
        && v.as_str().is_none_or(|s| chrono::NaiveTime::parse_from_str(s, "%H:%M:%S").is_err())
    {
        errors.push(FieldError::new(format!("{field}.order_cutoff_time"), "must be a time \"HH:mm:ss\""));
    }
    match e.get("business_days") {
        None | Some(Value::Null) => {}
        Some(Value::Array(days))
            if !days.is_empty()
                && days.len() <= 7
                && days.iter().all(|d| d.as_u64().is_some_and(|n| (1..=7).contains(&n))) => {}
        Some(_) => errors.push(FieldError::new(
            format!("{field}.business_days"),
            "must be a list of weekdays, 1 (Monday) to 7 (Sunday)",
        )),
    }
    match e.get("order_processing_time") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) => {
            let at = format!("{field}.order_processing_time");
            unknown_fields(p, &PROCESSING_TIME_FIELDS, &at, errors);
            optional_string(p, "unit", &at, errors);
            if let Some(v) = p.get("value").filter(|v| !v.is_null())
                && v.as_u64().is_none()
            {
                errors.push(FieldError::new(format!("{at}.value"), "must be a whole number of days, 0 or more"));
            }
        }
        Some(_) => errors.push(FieldError::new(format!("{field}.order_processing_time"), "must be an object")),
    }
}

/// docs/product.md `POST /v1/estimated-delivery-dates` items, checked against the 2024-04
/// predict-batch contract (seed "Batch predict the estimated delivery date", SDK
/// `EstimatedDeliveryDateRequest`) before anything is sent: 1-5 items; `slug`,
/// `origin_address`, `destination_address` required; either `pickup_time` or
/// `estimated_pickup` (seed); fields the 2024-04 model does not define are refused.
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
        unknown_fields(it, &ESTIMATE_FIELDS, &at, &mut errors);
        match it.get("slug") {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            None | Some(Value::Null) => errors.push(FieldError::new(format!("{at}.slug"), "is required")),
            Some(_) => errors.push(FieldError::new(format!("{at}.slug"), "must be a non-empty courier slug")),
        }
        optional_string(it, "service_type_name", &at, &mut errors);
        check_address(it, "origin_address", &at, &mut errors);
        check_address(it, "destination_address", &at, &mut errors);
        if let Some(w) = object_at(it, "weight", &at, false, &mut errors) {
            let field = format!("{at}.weight");
            unknown_fields(w, &WEIGHT_FIELDS, &field, &mut errors);
            if !w.get("value").and_then(Value::as_f64).is_some_and(|v| v > 0.0) {
                errors.push(FieldError::new(format!("{field}.value"), "must be a positive number"));
            }
            if !w.get("unit").is_some_and(Value::is_string) {
                errors.push(FieldError::new(format!("{field}.unit"), "is required (e.g. \"kg\")"));
            }
        }
        if let Some(v) = it.get("package_count")
            && !(v.is_null() || v.as_u64().is_some_and(|n| n >= 1))
        {
            errors.push(FieldError::new(format!("{at}.package_count"), "must be a positive integer"));
        }
        let pickup = it.get("pickup_time").filter(|v| !v.is_null());
        if let Some(p) = pickup
            && !p.as_str().is_some_and(is_local_time)
        {
            errors.push(FieldError::new(
                format!("{at}.pickup_time"),
                "must be the local pickup time \"YYYY-MM-DD HH:mm:ss\"",
            ));
        }
        let estimated = object_at(it, "estimated_pickup", &at, false, &mut errors);
        if let Some(e) = estimated {
            check_estimated_pickup(e, &at, &mut errors);
        }
        if pickup.is_none() && it.get("estimated_pickup").is_none_or(Value::is_null) {
            errors.push(FieldError::new(
                format!("{at}.pickup_time"),
                "either pickup_time or estimated_pickup is required",
            ));
        }
    }
    errors
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
