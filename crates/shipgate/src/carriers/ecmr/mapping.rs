//! eCMR.services ⇄ gateway mapping (docs/carriers/ecmr.md "ecmr": shipment body, status mapping,
//! errors). Pure functions, unit-tested here.

use chrono::{DateTime, SecondsFormat, Utc};

use super::wire;
use crate::carriers::{CarrierError, CarrierEvent, DocumentLink, ListPage, Listed, TrackingSnapshot};
use crate::domain::{Address, Dimensions, LengthUnit, Parcel, ShipmentPlan, Status, Stop};

/// Where the operations live below the base URL. No public path list exists (docs/carriers/ecmr.md:
/// the paths are *ours*), so each one is overridable in the connection's `paths` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub token: String,
    pub shipments: String,
    /// Contains `{tracking_number}`.
    pub shipment: String,
}

pub const TRACKING_NUMBER_PLACEHOLDER: &str = "{tracking_number}";

impl Default for Paths {
    fn default() -> Self {
        Paths {
            token: "/api/token".into(),
            shipments: "/api/shipments".into(),
            shipment: format!("/api/shipments/{TRACKING_NUMBER_PLACEHOLDER}"),
        }
    }
}

impl Paths {
    /// The defaults with the overrides of an already validated `paths` object.
    pub fn from_setting(v: Option<&serde_json::Value>) -> Paths {
        let mut p = Paths::default();
        if let Some(map) = v.and_then(serde_json::Value::as_object) {
            let get = |k: &str| map.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
            if let Some(s) = get("token") {
                p.token = s;
            }
            if let Some(s) = get("shipments") {
                p.shipments = s;
            }
            if let Some(s) = get("shipment") {
                p.shipment = s;
            }
        }
        p
    }

    /// The details path of one shipment, the number percent-encoded as one path segment.
    pub fn shipment_of(&self, tracking_number: &str) -> String {
        self.shipment.replace(TRACKING_NUMBER_PLACEHOLDER, &encode_segment(tracking_number))
    }
}

/// RFC 3986 path-segment encoding: unreserved characters stay, every other byte is
/// `%XX`, so a tracking number can never add a segment or a query to the URL.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------- requests ----------

fn street(a: &Address) -> String {
    match &a.line2 {
        Some(l2) if !l2.trim().is_empty() => format!("{}, {}", a.line1, l2),
        _ => a.line1.clone(),
    }
}

fn place(a: &Address) -> wire::Place {
    wire::Place {
        address: street(a),
        postal_code: a.postal_code.clone(),
        city: a.city.clone(),
        country: a.country.as_str().to_owned(),
    }
}

fn party(s: &Stop) -> wire::Party {
    wire::Party {
        name: s.name.clone().or_else(|| s.company.clone()),
        address: street(&s.address),
        postal_code: s.address.postal_code.clone(),
        city: s.address.city.clone(),
        country: s.address.country.as_str().to_owned(),
    }
}

fn stop_time(s: &Stop) -> Option<String> {
    s.scheduled_at.or(s.window_start).map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

fn volume_m3(d: &Dimensions) -> f64 {
    let per_unit = match d.unit {
        LengthUnit::Cm => 0.01,
        LengthUnit::In => 0.0254,
    };
    (d.length * per_unit) * (d.width * per_unit) * (d.height * per_unit)
}

/// One goods line per parcel. A parcel's weight and dimensions describe one package
/// (docs/product.md `parcels[]`), while a CMR goods line states the line's gross weight and
/// volume, so both are multiplied by the package count (ours).
fn goods(p: &Parcel) -> wire::Goods {
    let n = f64::from(p.quantity.max(1));
    wire::Goods {
        marks: p.reference.clone(),
        packages: p.quantity,
        packing: None,
        description: p
            .description
            .clone()
            .filter(|d| !d.trim().is_empty())
            .or_else(|| p.reference.clone())
            .unwrap_or_else(|| "Goods".to_owned()),
        gross_weight_kg: p.weight.as_ref().map(|w| round_to(w.in_kg() * n, 3)),
        volume_m3: p.dimensions.as_ref().map(|d| round_to(volume_m3(d) * n, 6)),
    }
}

/// The store body from our plan: the first pickup-type stop is the consignor and the
/// place of taking over, the last delivery-type stop the consignee and the place of
/// delivery (docs/carriers/ecmr.md). A missing stop is left out rather than invented: the carrier
/// answers 422 naming the field, which reaches the client as `Rejected`.
pub fn shipment_from_plan(plan: &ShipmentPlan, order_number: &str) -> wire::Shipment {
    let pickup = plan.stops.iter().find(|s| s.stop_type.picks_up());
    let delivery = plan.stops.iter().rev().find(|s| s.stop_type.delivers());
    wire::Shipment {
        reference: plan.reference.clone().filter(|r| !r.trim().is_empty()).unwrap_or_else(|| order_number.to_owned()),
        consignor: pickup.map(party),
        consignee: delivery.map(party),
        taking_over: pickup.map(|s| wire::TakingOver { place: place(&s.address), date: stop_time(s) }),
        delivery: delivery.map(|s| wire::Delivery { place: place(&s.address), date: stop_time(s) }),
        goods: plan.parcels.iter().map(goods).collect(),
        instructions: plan.notes.clone().filter(|n| !n.trim().is_empty()),
    }
}

/// What the store body (docs/carriers/ecmr.md "Shipment body") requires that our plan may lack,
/// named by *our* field: the consignor's and consignee's `name` and the taking-over
/// `date` carry no `?` in the contract, and a CMR note must state the date of taking
/// over (CMR convention art. 6(1)(c)). Refused before any call, so the client learns
/// which of its fields to fill rather than the carrier's path for it. A missing stop is
/// left to the carrier (the API refuses such a plan before it gets here).
pub fn missing_for_store(plan: &ShipmentPlan) -> Option<String> {
    let pickup = plan.stops.iter().position(|s| s.stop_type.picks_up());
    let delivery = plan.stops.iter().rposition(|s| s.stop_type.delivers());
    let nameless = |s: &Stop| [&s.name, &s.company].iter().all(|v| v.as_deref().is_none_or(|x| x.trim().is_empty()));
    for (i, role) in [(pickup, "consignor"), (delivery, "consignee")] {
        if let Some(i) = i
            && nameless(&plan.stops[i])
        {
            return Some(format!("stops[{i}].name: eCMR.services needs the {role}'s name (name or company)"));
        }
    }
    if let Some(i) = pickup
        && stop_time(&plan.stops[i]).is_none()
    {
        return Some(format!(
            "stops[{i}].scheduled_at: eCMR.services needs the date of taking over (scheduled_at or window_start)"
        ));
    }
    None
}

// ---------- answers ----------

/// Normalized status of an eCMR status (docs/carriers/ecmr.md "Status mapping", ours). `None` for
/// a value the contract does not list: the raw value is kept and the status does not move.
pub fn map_status(raw: &str) -> Option<(Status, Option<String>)> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "created" | "sent" | "accepted" | "planned" => Some((Status::InfoReceived, None)),
        "loading" | "departed" | "in_progress" => Some((Status::InTransit, None)),
        "arrived" => Some((Status::OutForDelivery, None)),
        "unloaded" | "delivered" => Some((Status::Delivered, Some("Delivered_003".into()))),
        "cancelled" => Some((Status::Exception, Some("Exception_020".into()))),
        _ => None,
    }
}

/// A history time: RFC 3339 as our requests write them; a zone-less ISO time (the
/// contract states no format for `at`) is read as UTC rather than dropping the entry.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)).or_else(|| {
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
            .map(|n| n.and_utc())
    })
}

/// One history entry as a tracking event; `None` when it has no status or no readable
/// time (an event cannot be placed on the timeline without one).
fn event_from(h: &wire::HistoryEntry) -> Option<CarrierEvent> {
    let raw = h.status.clone().filter(|s| !s.is_empty())?;
    let at = h.at.as_deref()?;
    let occurred_at = parse_time(at)?;
    let (status, subtag) = match map_status(&raw) {
        Some((s, t)) => (Some(s), t),
        None => (None, None),
    };
    // History entries carry no id; what, when and who identify one and never change.
    let dedup_key = format!("ecmr:{raw}|{}|{}", occurred_at.to_rfc3339(), h.by.as_deref().unwrap_or(""));
    Some(CarrierEvent {
        occurred_at,
        status,
        subtag,
        message: h.note.clone().filter(|n| !n.is_empty()).or_else(|| Some(raw.clone())),
        location: None,
        raw_code: Some(raw),
        raw_text: h.note.clone(),
        actor: h.by.clone().filter(|b| !b.is_empty()),
        dedup_key,
    })
}

/// One overview page as reconciliation reads it. The next page exists while this one is
/// full and `total` (when given) is not yet reached; an entry without a tracking number
/// cannot be matched and is skipped.
pub fn list_page(o: &wire::Overview, page: u32, per_page: u32) -> ListPage {
    let items: Vec<Listed> = o
        .shipments
        .iter()
        .filter_map(|e| {
            let number = e.tracking_number.clone().filter(|n| !n.is_empty())?;
            Some(Listed {
                carrier_reference: number.clone(),
                tracking_number: Some(number),
                status: e.status.as_deref().and_then(map_status),
                carrier_status: e.status.clone(),
                slug: None,
            })
        })
        .collect();
    let seen = u64::from(page) * u64::from(per_page);
    let more = o.shipments.len() as u64 >= u64::from(per_page) && o.total.is_none_or(|t| seen < t);
    ListPage { items, next: more.then(|| (page + 1).to_string()), total: o.total }
}

pub fn snapshot_from(d: &wire::Details) -> TrackingSnapshot {
    let events = d
        .history
        .iter()
        .filter_map(|h| {
            let e = event_from(h);
            if e.is_none() {
                tracing::warn!(status = ?h.status, at = ?h.at, "eCMR history entry without status or readable time");
            }
            e
        })
        .collect();
    let documents = d
        .documents
        .iter()
        .filter_map(|doc| {
            let url = doc.url.clone().filter(|u| !u.is_empty())?;
            Some(DocumentLink { kind: doc.kind.clone().unwrap_or_else(|| "cmr".to_owned()), url })
        })
        .collect();
    TrackingSnapshot {
        status: d.status.as_deref().and_then(map_status),
        carrier_status: d.status.clone(),
        events,
        estimated_delivery: None,
        documents,
        proof: None,
    }
}

/// What an answer means for the client. `TokenRefused` is kept apart so the client can
/// exchange the API token once more and retry.
#[derive(Debug)]
pub enum Outcome {
    Ok,
    TokenRefused(String),
    Failed(CarrierError),
}

/// Which call the answer belongs to: a 404 means "no such shipment" only for details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Store,
    Details,
    Overview,
}

impl Op {
    /// The operation's name in exchanges and metrics (also the simulator's fault selector).
    pub fn name(self) -> &'static str {
        match self {
            Op::Store => "store",
            Op::Details => "details",
            Op::Overview => "overview",
        }
    }
}

fn error_text(body: &[u8]) -> (Option<String>, Option<String>) {
    let e: wire::ErrorAnswer = serde_json::from_slice(body).unwrap_or_default();
    (e.error_description.or(e.error).filter(|s| !s.is_empty()), e.field.filter(|s| !s.is_empty()))
}

/// Classify an answer to an authenticated call by HTTP status and `{error, field}` body.
pub fn classify(status: u16, body: &[u8], retry_after: Option<std::time::Duration>, op: Op) -> Outcome {
    let (error, field) = error_text(body);
    let text = |fallback: &str| error.clone().unwrap_or_else(|| fallback.to_owned());
    let failed = Outcome::Failed;
    match status {
        200..=299 => Outcome::Ok,
        401 => Outcome::TokenRefused(text("access token refused")),
        403 => failed(CarrierError::Misconfigured {
            message: format!("eCMR.services refused access (HTTP 403): {}", text("forbidden")),
        }),
        404 if op == Op::Details => failed(CarrierError::NotFound { message: text("shipment not found") }),
        404 => failed(CarrierError::Misconfigured {
            message: "eCMR.services endpoint not found (HTTP 404): check base_url and the paths setting".into(),
        }),
        409 => failed(CarrierError::Conflict { message: text("conflict") }),
        // 422 names the refused field (docs/carriers/ecmr.md): the client can fix its shipment.
        422 | 400 if field.is_some() => {
            failed(CarrierError::Rejected { message: format!("{}: {}", field.unwrap_or_default(), text("invalid")) })
        }
        422 => failed(CarrierError::Rejected { message: text("shipment refused") }),
        408 => failed(CarrierError::Transient { message: "HTTP 408 from eCMR.services".into(), retry_after: None }),
        // Without a Retry-After the exchange layer holds the connection for a second
        // (`exchange::Wire::send`): tell the caller that wait rather than none.
        429 => failed(CarrierError::Transient {
            message: "eCMR.services rate limit (HTTP 429)".into(),
            retry_after: retry_after.or(Some(std::time::Duration::from_secs(1))),
        }),
        500..=599 => {
            failed(CarrierError::Transient { message: format!("HTTP {status} from eCMR.services"), retry_after })
        }
        _ => failed(CarrierError::Protocol {
            message: format!("unexpected answer from eCMR.services: HTTP {status}: {}", text("no error text")),
        }),
    }
}

/// Classify the answer to the token exchange: a refusal means the organisation id or API
/// token is wrong or expired (the seed: API tokens have an expiry), which only a human
/// can fix.
pub fn classify_token(status: u16, body: &[u8], retry_after: Option<std::time::Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Ok,
        400 | 401 | 403 => {
            let (error, _) = error_text(body);
            Outcome::Failed(CarrierError::Misconfigured {
                message: format!(
                    "eCMR.services refused the organisation id / API token (HTTP {status}){}",
                    error.map(|e| format!(": {e}")).unwrap_or_default()
                ),
            })
        }
        404 => Outcome::Failed(CarrierError::Misconfigured {
            message: "eCMR.services token endpoint not found (HTTP 404): check base_url and paths.token".into(),
        }),
        _ => classify(status, body, retry_after, Op::Overview),
    }
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
