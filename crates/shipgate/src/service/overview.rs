//! What the console's Overview and Webhooks pages read (docs/console.md "Overview"):
//! shipments by status over the last days, what needs a look (exceptions, bookings
//! pending or failed, unmapped codes, failing webhook deliveries, dead jobs), and per
//! connection a health line from the exchange log and this instance's breaker.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::app::AppState;
use crate::carriers::{self, BreakerState};
use crate::domain::Status;
use crate::service::views::{Connection, InboundPush, InboundRefusal, Job, Shipment, Unmapped, WebhookDelivery};
use crate::service::{Caller, PageRequest, Result, connections, jobs, shipments, status_mappings};
use crate::store;

/// How many items each "needs a look" list shows.
const LIST: i64 = 8;
/// Counts stop here ("1000+").
pub const COUNT_CAP: i64 = 1000;

/// How long the chart's counts are reused per tenant on an instance: a fortnight of
/// shipments is counted by reading every one of them (at 1M shipments a year, ~38k index
/// entries, 15-25 ms), and a chart up to a minute old serves an overview as well.
const DAY_COUNTS_TTL: std::time::Duration = std::time::Duration::from_secs(60);

type DayCounts = HashMap<String, (Instant, DateTime<Utc>, Vec<DayStatus>)>;

fn day_counts() -> &'static Mutex<DayCounts> {
    static CACHE: OnceLock<Mutex<DayCounts>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Shipments created since `since` by day and status, from the cache when fresh.
async fn status_by_day(state: &AppState, tenant: &str, since: DateTime<Utc>) -> Result<Vec<DayStatus>> {
    if let Ok(cache) = day_counts().lock()
        && let Some((at, cached_since, rows)) = cache.get(tenant)
        && at.elapsed() < DAY_COUNTS_TTL
        && *cached_since == since
    {
        return Ok(rows.clone());
    }
    let mut conn = state.db.acquire().await?;
    let rows: Vec<DayStatus> = store::overview::status_by_day(&mut conn, tenant, since)
        .await?
        .into_iter()
        .map(|r| DayStatus { day: r.day, status: r.status, count: r.n })
        .collect();
    if let Ok(mut cache) = day_counts().lock() {
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(tenant.to_owned(), (Instant::now(), since, rows.clone()));
    }
    Ok(rows)
}

/// Shipments created on one UTC day with one current status.
#[derive(Debug, Clone)]
pub struct DayStatus {
    pub day: NaiveDate,
    pub status: String,
    pub count: i64,
}

/// A connection's health over the last hour.
#[derive(Debug)]
pub struct Health {
    pub connection: Connection,
    /// `closed`, `open`, `half_open`, or `unknown` (its client cannot be built).
    pub breaker: &'static str,
    pub calls: i64,
    pub errors: i64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The connection's rate limit as calls per hour, when it has one.
    pub limit_per_hour: Option<u64>,
    /// Calls per 5 minutes over the hour, oldest first.
    pub buckets: Vec<i64>,
}

#[derive(Debug)]
pub struct Overview {
    pub since: DateTime<Utc>,
    /// Up to a minute old (see [`DAY_COUNTS_TTL`]).
    pub by_day: Vec<DayStatus>,
    /// Shipments in `exception`, counted up to [`COUNT_CAP`], and the newest few.
    pub exceptions: i64,
    pub exception_list: Vec<Shipment>,
    pub bookings: Vec<Shipment>,
    pub unmapped: Vec<Unmapped>,
    pub failing_deliveries: Vec<WebhookDelivery>,
    pub dead_jobs: Vec<Job>,
    pub health: Vec<Health>,
}

pub async fn overview(state: &AppState, caller: &Caller, days: i64) -> Result<Overview> {
    let tenant = caller.tenant_id.as_str();
    let today = Utc::now().date_naive();
    let since = (today - Duration::days(days - 1)).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let by_day = status_by_day(state, tenant, since).await?;
    let mut conn = state.db.acquire().await?;
    let exceptions = store::overview::count_status(&mut conn, tenant, Status::Exception.as_str(), COUNT_CAP).await?;
    let booking_ids = store::overview::booking_attention(&mut conn, tenant, LIST).await?;
    let delivery_ids = store::overview::failing_deliveries(&mut conn, tenant, LIST).await?;
    drop(conn);
    let filter = shipments::ListFilter { status: Some(Status::Exception), ..Default::default() };
    let exception_list =
        shipments::list(state, caller, &filter, &PageRequest { limit: LIST, after: None }).await?.items;
    let mut bookings = Vec::with_capacity(booking_ids.len());
    for id in &booking_ids {
        bookings.push(shipments::get(state, caller, id).await?);
    }
    let mut failing_deliveries = Vec::with_capacity(delivery_ids.len());
    for id in &delivery_ids {
        failing_deliveries.push(delivery(state, caller, id).await?);
    }
    let mut unmapped = status_mappings::unmapped(state, caller, None).await?;
    unmapped.sort_by_key(|u| std::cmp::Reverse(u.count));
    unmapped.truncate(LIST as usize);
    let dead_jobs = jobs::list(state, caller, Some("dead"), &PageRequest { limit: LIST, after: None }).await?.items;
    let health = health(state, caller).await?;
    Ok(Overview {
        since,
        by_day,
        exceptions,
        exception_list,
        bookings,
        unmapped,
        failing_deliveries,
        dead_jobs,
        health,
    })
}

/// One of the tenant's deliveries with its attempts.
pub async fn delivery(state: &AppState, caller: &Caller, id: &str) -> Result<WebhookDelivery> {
    let tenant = caller.tenant_id.as_str();
    let mut conn = state.db.acquire().await?;
    let row = store::webhooks::get_delivery(&mut conn, tenant, id)
        .await?
        .ok_or(crate::service::Error::NotFound("webhook delivery"))?;
    let attempts = store::webhooks::attempts_of(&mut conn, tenant, std::slice::from_ref(&row.id)).await?;
    Ok(WebhookDelivery::new(row, attempts))
}

/// Every connection's health line (at most the first 100 connections).
pub async fn health(state: &AppState, caller: &Caller) -> Result<Vec<Health>> {
    let tenant = caller.tenant_id.as_str();
    let since = Utc::now() - Duration::hours(1);
    let list = connections::list(state, caller, &PageRequest { limit: 100, after: None }).await?.items;
    let mut conn = state.db.acquire().await?;
    let mut calls: HashMap<String, store::overview::ConnectionCalls> =
        store::overview::connection_calls(&mut conn, tenant, since)
            .await?
            .into_iter()
            .map(|c| (c.connection_id.clone(), c))
            .collect();
    let mut buckets: HashMap<String, Vec<i64>> = HashMap::new();
    for b in store::overview::call_buckets(&mut conn, tenant, since).await? {
        if let Ok(i) = usize::try_from(b.bucket)
            && i < 12
        {
            buckets.entry(b.connection_id).or_insert_with(|| vec![0; 12])[i] += b.calls;
        }
    }
    drop(conn);
    let mut out = Vec::with_capacity(list.len());
    for c in list {
        let row = state.connection(tenant, &c.id).await?;
        let breaker = row.as_ref().and_then(|r| state.client(r).ok()).and_then(|client| client.breaker()).map_or(
            "unknown",
            |b| match b {
                BreakerState::Closed => "closed",
                BreakerState::Open => "open",
                BreakerState::HalfOpen => "half_open",
            },
        );
        let limit_per_hour = row
            .as_ref()
            .and_then(|r| carriers::limits_for(&r.carrier, &r.settings.0).rate_per_second)
            .map(|per_second| u64::from(per_second) * 3600);
        let k = calls.remove(&c.id);
        out.push(Health {
            breaker,
            calls: k.as_ref().map_or(0, |k| k.calls),
            errors: k.as_ref().map_or(0, |k| k.errors),
            p50_ms: k.as_ref().and_then(|k| k.p50_ms),
            p99_ms: k.as_ref().and_then(|k| k.p99_ms),
            limit_per_hour,
            buckets: buckets.remove(&c.id).unwrap_or_else(|| vec![0; 12]),
            connection: c,
        });
    }
    Ok(out)
}

/// Per webhook endpoint, its deliveries of the last 24 hours: (succeeded, failed, pending).
pub async fn endpoint_stats(state: &AppState, caller: &Caller) -> Result<HashMap<String, (i64, i64, i64)>> {
    let mut conn = state.db.acquire().await?;
    let since = Utc::now() - Duration::hours(24);
    Ok(store::overview::endpoint_stats(&mut conn, &caller.tenant_id, since)
        .await?
        .into_iter()
        .map(|s| (s.endpoint_id, (s.succeeded, s.failed, s.pending)))
        .collect())
}

/// A pushing connection's latest pushes and refusals (the Inbound page).
#[derive(Debug)]
pub struct InboundLog {
    pub connection: Connection,
    pub pushes: Vec<InboundPush>,
    pub refusals: Vec<InboundRefusal>,
}

/// Every connection of a carrier that pushes, with its latest pushes and refusals.
pub async fn inbound(state: &AppState, caller: &Caller, limit: i64) -> Result<Vec<InboundLog>> {
    let pushing: Vec<&'static str> = crate::service::inbound::receivers().iter().map(|r| r.slug()).collect();
    let list = connections::list(state, caller, &PageRequest { limit: 100, after: None }).await?.items;
    let mut out = Vec::new();
    let mut conn = state.db.acquire().await?;
    for c in list.into_iter().filter(|c| pushing.contains(&c.carrier.as_str())) {
        let pushes = store::inbound_log::latest_pushes(&mut conn, &caller.tenant_id, &c.id, limit).await?;
        let refusals = store::inbound_log::latest_refusals(&mut conn, &caller.tenant_id, &c.id, limit).await?;
        let (pushes, refusals) =
            (pushes.into_iter().map(Into::into).collect(), refusals.into_iter().map(Into::into).collect());
        out.push(InboundLog { connection: c, pushes, refusals });
    }
    Ok(out)
}
