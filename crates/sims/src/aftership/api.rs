//! The carrier API: one dispatcher for every `/tracking/2024-04/...` route, so that every
//! answer (unknown routes and other versions included) is AfterShip's own envelope.
//!
//! Order of judgement for each call: record it; `as-api-key` (401); rate limit (429);
//! an injected fault; the route (404); then the operation. Latency is added last.

use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Map, Value, json};

use super::limiter::{RateHeaders, unix_now_plus};
use super::render::{self, ApiError, ts};
use super::state::{RetrackRefusal, StoredTracking, looks_like_id};
use super::validate::{self, CREATE_FIELDS, UPDATE_BY_ID_FIELDS, UPDATE_BY_SLUG_FIELDS};
use super::{API_VERSION, AftershipRequest, AftershipSim, AftershipSimConfig, Inner, SimFault, predict};
use crate::common::delay;

/// Bodies larger than this are not JSON AfterShip would take.
const MAX_BODY: usize = 1 << 20;

/// How a route names its tracking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    Id(String),
    /// The legacy `/{slug}/{tracking_number}` form the 2.0.2 SDK also calls.
    Slug(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    List,
    Create,
    Get(Key),
    Update(Key),
    Delete(Key),
    Retrack(Key),
    MarkCompleted(Key),
    LastCheckpoint(Key),
    PredictBatch,
}

impl Route {
    pub fn op(&self) -> &'static str {
        match self {
            Route::List => "list",
            Route::Create => "create",
            Route::Get(_) => "get",
            Route::Update(_) => "update",
            Route::Delete(_) => "delete",
            Route::Retrack(_) => "retrack",
            Route::MarkCompleted(_) => "mark_completed",
            Route::LastCheckpoint(_) => "last_checkpoint",
            Route::PredictBatch => "predict_batch",
        }
    }
}

/// Decode `%XX` escapes in a path segment (a `/` inside a tracking number travels as
/// `%2F`, AfterShip docs "Pro Tip").
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The route of a method and path (relative to the mount point), if AfterShip 2024-04
/// has it (SDK 2.0.2 `tracking/api/*.py`).
pub(crate) fn resolve(method: &Method, path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/tracking/")?.strip_prefix(API_VERSION)?.strip_prefix('/')?;
    let segs: Vec<String> = rest.split('/').map(percent_decode).collect();
    if segs.iter().any(String::is_empty) {
        return None;
    }
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let id = |i: usize| Key::Id(s[i].to_owned());
    let by_slug = |i: usize| Key::Slug(s[i].to_owned(), s[i + 1].to_owned());
    let m = method.clone();
    Some(match (m, s.as_slice()) {
        (Method::GET, ["trackings"]) => Route::List,
        (Method::POST, ["trackings"]) => Route::Create,
        (Method::GET, ["trackings", _]) => Route::Get(id(1)),
        (Method::PUT, ["trackings", _]) => Route::Update(id(1)),
        (Method::DELETE, ["trackings", _]) => Route::Delete(id(1)),
        (Method::POST, ["trackings", _, "retrack"]) => Route::Retrack(id(1)),
        (Method::POST, ["trackings", _, "mark-as-completed"]) => Route::MarkCompleted(id(1)),
        (Method::GET, ["trackings", _, _]) => Route::Get(by_slug(1)),
        (Method::PUT, ["trackings", _, _]) => Route::Update(by_slug(1)),
        (Method::DELETE, ["trackings", _, _]) => Route::Delete(by_slug(1)),
        (Method::POST, ["trackings", _, _, "retrack"]) => Route::Retrack(by_slug(1)),
        (Method::POST, ["trackings", _, _, "mark-as-completed"]) => Route::MarkCompleted(by_slug(1)),
        (Method::GET, ["last_checkpoint", _]) => Route::LastCheckpoint(id(1)),
        (Method::GET, ["last_checkpoint", _, _]) => Route::LastCheckpoint(by_slug(1)),
        (Method::POST, ["estimated-delivery-date", "predict-batch"]) => Route::PredictBatch,
        _ => return None,
    })
}

/// An answer before headers: status and body (JSON, or raw text for an `Http` fault).
struct Answer {
    status: u16,
    body: Result<Value, String>,
    rate: RateHeaders,
}

fn error(e: &ApiError, rate: RateHeaders) -> Answer {
    Answer { status: e.http, body: Ok(e.body()), rate }
}

pub(crate) async fn serve(State(sim): State<AftershipSim>, req: Request) -> Response {
    let received = Instant::now();
    let (parts, body) = req.into_parts();
    // An unreadable or oversized body is judged as invalid JSON (4001).
    let (bytes, readable) = match to_bytes(body, MAX_BODY).await {
        Ok(b) => (b, true),
        Err(_) => (Default::default(), false),
    };
    let path = parts.uri.path().to_owned();
    let query: Vec<(String, String)> =
        parts.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let route = resolve(&parts.method, &path);
    let parsed: Result<Value, ()> = match (readable, bytes.is_empty()) {
        (false, _) => Err(()),
        (true, true) => Ok(Value::Null),
        (true, false) => serde_json::from_slice(&bytes).map_err(|_| ()),
    };
    let authorized = parts
        .headers
        .get("as-api-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|k| sim.shared.config.api_keys.iter().any(|c| c == k));

    let (answer, latency) = {
        let mut inner = sim.lock();
        let logged = AftershipRequest {
            method: parts.method.to_string(),
            op: route.as_ref().map_or("unknown", Route::op).to_owned(),
            path: path.clone(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers.keys().map(|k| k.as_str().to_owned()).collect(),
            body: parsed.clone().unwrap_or_else(|()| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        };
        sim.record(&mut inner, logged);
        let answer = judge(&sim.shared.config, &mut inner, received, authorized, route, &query, parsed);
        if answer.status == 429 {
            inner.stats.rate_limited += 1;
        }
        (answer, inner.latency)
    };
    delay(latency).await;
    respond(answer)
}

fn judge(
    config: &AftershipSimConfig,
    inner: &mut Inner,
    received: Instant,
    authorized: bool,
    route: Option<Route>,
    query: &[(String, String)],
    body: Result<Value, ()>,
) -> Answer {
    if !authorized {
        inner.stats.unauthorized += 1;
        return error(&ApiError::unauthorized(), inner.limiter.headers(received));
    }
    let admitted = inner.limiter.admit(received);
    let rate = inner.limiter.headers(received);
    if !admitted {
        inner.stats.over_limit += 1;
        return error(&ApiError::too_many_requests(), rate);
    }
    let op = route.as_ref().map_or("unknown", Route::op);
    if let Some(fault) = inner.faults.take(op) {
        return match fault {
            SimFault::Http(status, Value::String(text)) => Answer { status, body: Err(text), rate },
            SimFault::Http(status, body) => Answer { status, body: Ok(body), rate },
            SimFault::Meta { http, code, r#type, message } => error(&ApiError::new(http, code, &r#type, message), rate),
            SimFault::RateLimited(secs) => error(
                &ApiError::too_many_requests(),
                RateHeaders { remaining: 0, reset_unix: unix_now_plus(std::time::Duration::from_secs(secs)), ..rate },
            ),
            SimFault::ServerError => error(&ApiError::internal(), rate),
        };
    }
    let Some(route) = route else {
        return error(&ApiError::not_found(), rate);
    };
    let now = Utc::now();
    let result = match route {
        Route::Create => body.map_err(|()| ApiError::invalid_json()).and_then(|b| create(config, inner, &b, now)),
        Route::List => list(inner, query, now),
        Route::Get(key) => get(config, inner, &key, query, now),
        Route::Update(key) => {
            body.map_err(|()| ApiError::invalid_json()).and_then(|b| update(config, inner, &key, &b, now))
        }
        Route::Delete(key) => delete(config, inner, &key, now),
        Route::Retrack(key) => retrack(config, inner, &key, now),
        Route::MarkCompleted(key) => {
            body.map_err(|()| ApiError::invalid_json()).and_then(|b| mark_completed(config, inner, &key, &b, now))
        }
        Route::LastCheckpoint(key) => last_checkpoint(config, inner, &key, query),
        Route::PredictBatch => body
            .map_err(|()| ApiError::invalid_json())
            .and_then(|b| predict::predict_batch(&or_empty(b), &config.couriers).map(|d| (200, d))),
    };
    match result {
        Ok((status, data)) => Answer { status, body: Ok(render::ok(status, data)), rate },
        Err(e) => error(&e, rate),
    }
}

fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match answer.body {
        Ok(json) => (status, [(header::CONTENT_TYPE, "application/json")], json.to_string()).into_response(),
        Err(text) => (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from(text)).into_response(),
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-reset", answer.rate.reset_unix.to_string()),
        ("x-ratelimit-limit", answer.rate.limit.to_string()),
        ("x-ratelimit-remaining", answer.rate.remaining.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    response
}

/// An absent body is judged as `{}`, so that its missing parts get their own codes.
fn or_empty(body: Value) -> Value {
    if body.is_null() { json!({}) } else { body }
}

fn find(config: &AftershipSimConfig, inner: &Inner, key: &Key) -> Result<u64, ApiError> {
    match key {
        Key::Id(id) => {
            // 4015 "The value of id is invalid." for what cannot be an AfterShip id.
            if !looks_like_id(id) {
                return Err(ApiError::id_invalid());
            }
            inner.store.seq_of_id(id).ok_or_else(ApiError::does_not_exist)
        }
        Key::Slug(slug, number) => {
            if !validate::is_slug_shaped(slug) || !config.couriers.contains(slug) {
                return Err(ApiError::slug_invalid());
            }
            inner.store.seq_of_number(slug, number).ok_or_else(ApiError::does_not_exist)
        }
    }
}

fn tracking_data(t: &StoredTracking, now: DateTime<Utc>) -> Value {
    json!({"tracking": Value::Object(render::tracking(t, now))})
}

type Outcome = Result<(u16, Value), ApiError>;

fn create(config: &AftershipSimConfig, inner: &mut Inner, body: &Value, now: DateTime<Utc>) -> Outcome {
    let body = or_empty(body.clone());
    let t = validate::unwrap_tracking(&body)?;
    validate::check_fields(t, CREATE_FIELDS, &["tracking_number"], &config.couriers)?;
    let number = validate::tracking_number(t)?;
    let slug = match (t.get("slug").and_then(Value::as_str), t.get("slug_group").and_then(Value::as_str)) {
        // slug_group "cannot be used with slug at the same time" (SDK 2.0.2 SlugGroupV1).
        (Some(_), Some(_)) => return Err(ApiError::value_invalid("slug_group")),
        (Some(slug), None) => slug.to_owned(),
        (None, Some(group)) => {
            let prefix = group.trim_end_matches("-group");
            config.couriers.iter().find(|c| c.starts_with(prefix)).cloned().ok_or_else(|| {
                ApiError::new(
                    400,
                    4012,
                    "BadRequest",
                    "Unable to import shipment as the tracking number does not belong to a carrier in that group.",
                )
            })?
        }
        (None, None) => config.couriers.first().cloned().ok_or_else(|| {
            ApiError::new(
                400,
                4012,
                "BadRequest",
                "Unable to import shipment as we don't recognize the carrier from this tracking number.",
            )
        })?,
    };
    if inner.store.seq_of_number(&slug, &number).is_some() {
        return Err(ApiError::already_exists());
    }
    let fields: Map<String, Value> = t
        .iter()
        .filter(|(k, v)| !matches!(k.as_str(), "tracking_number" | "slug" | "slug_group") && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let seq = inner.store.next_seq();
    let tracking = StoredTracking::new(seq, number, slug, fields, now);
    let data = tracking_data(&tracking, now);
    inner.store.insert(tracking);
    Ok((201, data))
}

fn get(
    config: &AftershipSimConfig,
    inner: &Inner,
    key: &Key,
    query: &[(String, String)],
    now: DateTime<Utc>,
) -> Outcome {
    let seq = find(config, inner, key)?;
    let fields = validate::read_params(query, false)?;
    let t = inner.store.get(seq).ok_or_else(ApiError::does_not_exist)?;
    let tracking = match fields {
        Some(f) => render::tracking_selected(t, &f, now),
        None => render::tracking(t, now),
    };
    Ok((200, json!({"tracking": Value::Object(tracking)})))
}

fn update(config: &AftershipSimConfig, inner: &mut Inner, key: &Key, body: &Value, now: DateTime<Utc>) -> Outcome {
    let seq = find(config, inner, key)?;
    let body = or_empty(body.clone());
    let t = validate::unwrap_tracking(&body)?;
    let allowed = if matches!(key, Key::Slug(..)) { UPDATE_BY_SLUG_FIELDS } else { UPDATE_BY_ID_FIELDS };
    validate::check_fields(t, allowed, &[], &config.couriers)?;
    if let Some(slug) = t.get("slug").and_then(Value::as_str) {
        let number = inner.store.get(seq).map(|s| s.tracking_number.clone()).unwrap_or_default();
        match inner.store.seq_of_number(slug, &number) {
            Some(other) if other != seq => return Err(ApiError::already_exists()),
            Some(_) => {}
            None => inner.store.reslug(seq, slug),
        }
    }
    let stored = inner.store.get_mut(seq).ok_or_else(ApiError::does_not_exist)?;
    for (k, v) in t {
        match (k.as_str(), v) {
            ("slug", _) => {}
            (_, Value::Null) => {
                stored.fields.remove(k);
            }
            _ => {
                stored.fields.insert(k.clone(), v.clone());
            }
        }
    }
    stored.touch(now);
    Ok((200, tracking_data(stored, now)))
}

fn delete(config: &AftershipSimConfig, inner: &mut Inner, key: &Key, now: DateTime<Utc>) -> Outcome {
    let seq = find(config, inner, key)?;
    let t = inner.store.remove(seq).ok_or_else(ApiError::does_not_exist)?;
    Ok((200, json!({"tracking": render::partial_delete(&t, now)})))
}

fn retrack(config: &AftershipSimConfig, inner: &mut Inner, key: &Key, now: DateTime<Utc>) -> Outcome {
    let seq = find(config, inner, key)?;
    let t = inner.store.get_mut(seq).ok_or_else(ApiError::does_not_exist)?;
    t.retrack(now).map_err(|r| match r {
        RetrackRefusal::StillActive => ApiError::retrack_still_active(),
        RetrackRefusal::LimitReached => ApiError::retrack_limit(),
    })?;
    Ok((200, json!({"tracking": render::partial_update(t, now)})))
}

fn mark_completed(
    config: &AftershipSimConfig,
    inner: &mut Inner,
    key: &Key,
    body: &Value,
    now: DateTime<Utc>,
) -> Outcome {
    let seq = find(config, inner, key)?;
    let reason = validate::completion_reason(&or_empty(body.clone()))?;
    let t = inner.store.get_mut(seq).ok_or_else(ApiError::does_not_exist)?;
    t.mark_completed(&reason, now);
    Ok((200, tracking_data(t, now)))
}

fn last_checkpoint(config: &AftershipSimConfig, inner: &Inner, key: &Key, query: &[(String, String)]) -> Outcome {
    let seq = find(config, inner, key)?;
    let fields = validate::read_params(query, true)?;
    let t = inner.store.get(seq).ok_or_else(ApiError::does_not_exist)?;
    Ok((200, render::last_checkpoint(t, fields.as_deref())))
}

fn matches_keyword(t: &StoredTracking, keyword: &str) -> bool {
    let k = keyword.to_lowercase();
    let hit = |s: &str| s.to_lowercase().contains(&k);
    hit(&t.tracking_number)
        || ["title", "order_id", "customer_name"].iter().any(|f| t.field_str(f).is_some_and(hit))
        || ["emails", "smses"].iter().any(|f| {
            t.fields.get(*f).and_then(Value::as_array).is_some_and(|a| a.iter().filter_map(Value::as_str).any(hit))
        })
        || t.fields
            .get("custom_fields")
            .and_then(Value::as_object)
            .is_some_and(|o| o.values().filter_map(Value::as_str).any(hit))
}

fn list(inner: &Inner, query: &[(String, String)], now: DateTime<Utc>) -> Outcome {
    let q = validate::list_query(query)?;
    // "AfterShip only stores data of 120 days. (Defaults: 30 days ago ...)" / "(Defaults: now)"
    let created_min = q.created_at_min.map_or(now - ChronoDuration::days(30), |t| t.with_timezone(&Utc));
    let created_max = q.created_at_max.map_or(now, |t| t.with_timezone(&Utc));
    let in_list = |list: &Option<Vec<String>>, v: Option<&str>| {
        list.as_ref().is_none_or(|l| l.is_empty() || v.is_some_and(|v| l.iter().any(|x| x == v)))
    };
    let in_iso =
        |list: &Vec<String>, v: Option<&str>| list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v));
    let matching: Vec<&StoredTracking> = inner
        .store
        .iter_newest()
        .filter(|t| t.created_at >= created_min && t.created_at <= created_max)
        .filter(|t| q.updated_at_min.is_none_or(|m| t.updated_at >= m))
        .filter(|t| q.updated_at_max.is_none_or(|m| t.updated_at <= m))
        .filter(|t| q.keyword.as_deref().is_none_or(|k| matches_keyword(t, k)))
        .filter(|t| in_list(&q.tracking_numbers, Some(&t.tracking_number)))
        .filter(|t| in_list(&q.slug, Some(&t.slug)))
        .filter(|t| in_list(&q.tag, Some(&t.tag)))
        .filter(|t| in_list(&q.order_id, t.field_str("order_id")))
        .filter(|t| in_iso(&q.origin, t.field_str("origin_country_iso3")))
        .filter(|t| in_iso(&q.destination, t.field_str("destination_country_iso3")))
        .filter(|t| in_iso(&q.courier_destination_country_iso3, t.field_str("destination_country_iso3")))
        .filter(|t| {
            q.return_to_sender.as_ref().is_none_or(|l| l.is_empty() || l.contains(&(t.subtag == "Exception_011")))
        })
        .filter(|t| {
            q.shipment_tags.as_ref().is_none_or(|want| {
                t.fields
                    .get("shipment_tags")
                    .and_then(Value::as_array)
                    .is_some_and(|have| have.iter().filter_map(Value::as_str).any(|h| want.iter().any(|w| w == h)))
            })
        })
        .filter(|t| {
            q.transit_time.is_none_or(|want| {
                t.picked_up_at.is_some_and(|p| (t.delivered_at.unwrap_or(now) - p).num_days() == want)
            })
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip((q.page - 1).saturating_mul(q.limit))
        .take(q.limit)
        .map(|t| {
            Value::Object(match &q.fields {
                Some(f) => render::tracking_selected(t, f, now),
                None => render::tracking(t, now),
            })
        })
        .collect();
    let raw = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let bools = q.return_to_sender.clone().unwrap_or_default();
    // DataTrackingResponseGetMultipleV1 (SDK 2.0.2): the 2024-04 paging is page/limit/count,
    // plus the filters echoed.
    Ok((
        200,
        json!({
            "page": q.page,
            "limit": q.limit,
            "count": matching.len(),
            "keyword": q.keyword,
            "slug": raw("slug").filter(|s| !s.is_empty()),
            "origin": q.origin,
            "destination": q.destination,
            "tag": q.tag.as_ref().filter(|t| t.len() == 1).map(|t| t[0].clone()),
            "created_at_min": ts(created_min),
            "created_at_max": ts(created_max),
            "last_updated_at": null,
            "return_to_sender": bools,
            "courier_destination_country_iso3": q.courier_destination_country_iso3,
            "trackings": page,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_id_and_by_slug() {
        let p = |m: Method, path: &str| resolve(&m, path);
        assert_eq!(p(Method::POST, "/tracking/2024-04/trackings"), Some(Route::Create));
        assert_eq!(p(Method::POST, "/tracking/2024-10/trackings"), None);
        assert_eq!(p(Method::GET, "/tracking/2024-04/trackings/"), None);
        assert_eq!(
            p(Method::POST, "/tracking/2024-04/trackings/abc/retrack"),
            Some(Route::Retrack(Key::Id("abc".into())))
        );
        assert_eq!(
            p(Method::GET, "/tracking/2024-04/trackings/usps/ABCD%2F1234"),
            Some(Route::Get(Key::Slug("usps".into(), "ABCD/1234".into())))
        );
        assert_eq!(
            p(Method::POST, "/tracking/2024-04/trackings/dhl/123456/mark-as-completed"),
            Some(Route::MarkCompleted(Key::Slug("dhl".into(), "123456".into())))
        );
        assert_eq!(p(Method::PATCH, "/tracking/2024-04/trackings/abc"), None);
    }
}
