//! e-Courier ⇄ gateway mapping (CARRIERS.md "ecourier": Order body, Errors, Status
//! mapping). Pure functions, unit-tested here.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone as _, Utc};

use super::wire;
use crate::carriers::{CarrierError, CarrierEvent, Location, Quote, TrackingSnapshot};
use crate::domain::{CurrencyCode, DecimalAmount, Money, ShipmentPlan, Status, StopType, Weight};

/// Connection settings this adapter reads.
#[derive(Debug, Clone)]
pub struct Settings {
    pub customer_code: String,
    /// Offset of the e-Courier site's local time, used to read its zone-less times.
    pub utc_offset: FixedOffset,
    /// Unit the site expects piece weights in.
    pub weight_in_kg: bool,
    pub default_service: Option<String>,
}

// ---------- requests ----------

/// e-Courier's date format, seed example `11/13/2019 6:00:00 AM`.
pub fn format_datetime(t: &DateTime<FixedOffset>) -> String {
    t.format("%-m/%-d/%Y %-I:%M:%S %p").to_string()
}

/// `ScheduledDateTimeTZ` (seed example "EST"). e-Courier documents no list, so (ours)
/// the US zone names for the offsets they are unambiguous for, else `UTC±hh:mm`.
pub fn tz_label(offset: &FixedOffset) -> String {
    match offset.local_minus_utc() / 60 {
        0 => "UTC".into(),
        -300 => "EST".into(),
        -360 => "CST".into(),
        -420 => "MST".into(),
        -480 => "PST".into(),
        -240 => "EDT".into(),
        m => format!("UTC{}{:02}:{:02}", if m < 0 { '-' } else { '+' }, m.abs() / 60, m.abs() % 60),
    }
}

fn fmt_num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn weight_str(w: &Weight, in_kg: bool) -> String {
    fmt_num(if in_kg { w.in_kg() } else { w.in_lb() })
}

/// Build the SaveOrder/QuoteOrder body from our plan.
pub fn order_from_plan(plan: &ShipmentPlan, order_number: Option<&str>, settings: &Settings) -> wire::Order {
    let pieces: Vec<wire::Piece> = plan
        .parcels
        .iter()
        .enumerate()
        .map(|(i, p)| wire::Piece {
            sequence: (i + 1).to_string(),
            reference: p.reference.clone(),
            pieces: p.quantity.to_string(),
            weight: p.weight.as_ref().map(|w| weight_str(w, settings.weight_in_kg)),
            description: p.description.clone(),
        })
        .collect();
    let stops = plan
        .stops
        .iter()
        .map(|s| {
            let mut links = Vec::new();
            for (i, p) in plan.parcels.iter().enumerate() {
                if s.stop_type.picks_up() && plan.pickup_stop_of(p) == Some(s.sequence) {
                    links.push(wire::OrderStopPiece { piece_action: "P".into(), sequence: (i + 1).to_string() });
                }
                if s.stop_type.delivers() && plan.delivery_stop_of(p) == Some(s.sequence) {
                    links.push(wire::OrderStopPiece { piece_action: "D".into(), sequence: (i + 1).to_string() });
                }
            }
            let address = match &s.address.line2 {
                Some(l2) if !l2.is_empty() => format!("{}, {}", s.address.line1, l2),
                _ => s.address.line1.clone(),
            };
            let when = s.scheduled_at.or(s.window_start);
            wire::Stop {
                sequence: s.sequence.to_string(),
                stop_type: match s.stop_type {
                    StopType::Pickup => "P",
                    StopType::Delivery => "D",
                    StopType::Both => "B",
                }
                .into(),
                scheduled_date_time: when.as_ref().map(format_datetime),
                scheduled_date_time_tz: when.as_ref().map(|t| tz_label(t.offset())),
                early_date_time: s.window_start.as_ref().map(format_datetime),
                late_date_time: s.window_end.as_ref().map(format_datetime),
                name: s.name.clone().or_else(|| s.company.clone()),
                address,
                city: s.address.city.clone(),
                state: s.address.state.clone(),
                zip: s.address.postal_code.clone(),
                country: s.address.country.as_str().to_owned(),
                phone: s.phone.clone(),
                note: s.notes.clone(),
                order_stop_pieces: (!links.is_empty()).then_some(wire::OrderStopPieces { order_stop_piece: links }),
            }
        })
        .collect();
    wire::Order {
        customer_code: settings.customer_code.clone(),
        order_number: order_number.map(str::to_owned),
        order_status: None,
        service: plan.service.clone().or_else(|| settings.default_service.clone()),
        notes: plan.notes.clone(),
        description: plan.parcels.iter().find_map(|p| p.description.clone()),
        other_reference: plan.reference.clone(),
        declared_value: plan.declared_value.as_ref().map(|m| m.amount.as_str().to_owned()),
        cod_amount: plan.cod_amount.as_ref().map(|m| m.amount.as_str().to_owned()),
        pieces: (!pieces.is_empty()).then_some(wire::Pieces { piece: pieces }),
        stops: Some(wire::Stops { stop: stops }),
    }
}

// ---------- answers ----------

/// Classify an answer by HTTP status and e-Courier status code (seed "Response Status
/// Codes"; CARRIERS.md table). `Ok(())` only for HTTP 200 with `status:"0"`.
/// `TokenRefused` is kept apart so the client can log in again once.
#[derive(Debug)]
pub enum Outcome {
    Ok,
    TokenRefused(String),
    Failed(CarrierError),
}

pub fn classify(http_status: u16, answer: Option<&wire::StatusAnswer>, not_found_means_absent: bool) -> Outcome {
    let code = answer.and_then(|a| a.status.as_deref()).unwrap_or("");
    let text = answer.and_then(|a| a.statusdescription.clone()).unwrap_or_default();
    let msg = |fallback: &str| if text.is_empty() { fallback.to_owned() } else { text.clone() };
    if http_status == 409 {
        return Outcome::Failed(CarrierError::Conflict { message: msg("Order Unable to Modify") });
    }
    match (http_status, code) {
        (200, "0") => Outcome::Ok,
        // e-Courier itself answers errors with HTTP 500 (seed); 502-504 come from a
        // proxy or load balancer in front of it, whatever their body says.
        (502..=504, _) => Outcome::Failed(CarrierError::Transient {
            message: format!("HTTP {http_status} from e-Courier's front end"),
            retry_after: None,
        }),
        (_, "-1") => Outcome::Failed(CarrierError::Transient {
            message: msg("An undefined error has occurred"),
            retry_after: None,
        }),
        (_, "-2") => Outcome::Failed(CarrierError::Protocol {
            message: format!("e-Courier could not parse our request: {}", msg("Unable to parse JSON")),
        }),
        (_, "-3") => Outcome::Failed(CarrierError::Transient {
            message: msg("Unable to Connect to Database"),
            retry_after: None,
        }),
        (_, "-4") if not_found_means_absent && text.to_ascii_lowercase().contains("not found") => {
            Outcome::Failed(CarrierError::NotFound { message: msg("Order Not Found") })
        }
        (_, "-4") => Outcome::Failed(CarrierError::Rejected { message: msg("action not performed") }),
        (_, "-5") => Outcome::TokenRefused(msg("No UserGUID Received")),
        (_, "-6") => Outcome::Failed(CarrierError::Misconfigured {
            message: msg("No config file found for this UserGUID/customer"),
        }),
        (s, _) if s >= 500 => {
            Outcome::Failed(CarrierError::Transient { message: format!("HTTP {s} from e-Courier"), retry_after: None })
        }
        (404, _) => Outcome::Failed(CarrierError::Misconfigured {
            message: "e-Courier endpoint not found (HTTP 404): check the connection's base_url".into(),
        }),
        (s, c) => {
            Outcome::Failed(CarrierError::Protocol { message: format!("unexpected answer: HTTP {s}, status {c:?}") })
        }
    }
}

/// Zone-less e-Courier times in the formats seen in the seed: `9/3/2020 2:43:00 AM`,
/// `12/05/2020 09:00`, `12/05/20 11:00`, plus ISO as a courtesy.
pub fn parse_datetime(s: &str, offset: &FixedOffset) -> Option<DateTime<Utc>> {
    const FORMATS: [&str; 6] = [
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %I:%M %p",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ];
    // chrono's %Y happily reads "20" as the year 20, so a two-digit year picks the %y formats.
    const SHORT_YEAR: [&str; 4] = ["%m/%d/%y %I:%M:%S %p", "%m/%d/%y %I:%M %p", "%m/%d/%y %H:%M:%S", "%m/%d/%y %H:%M"];
    let s = s.trim();
    let two_digit_year =
        s.split(' ').next().and_then(|d| d.rsplit('/').next()).is_some_and(|y| y.len() == 2 && s.contains('/'));
    let formats: &[&str] = if two_digit_year { &SHORT_YEAR } else { &FORMATS };
    formats
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .and_then(|n| offset.from_local_datetime(&n).single())
        .map(|t| t.with_timezone(&Utc))
}

/// `"$40.00"` → 40.00 USD. Other currency signs are not documented; they are kept
/// out rather than guessed.
pub fn parse_money(s: &str) -> Option<Money> {
    let amount = s.trim().strip_prefix('$')?.replace(',', "");
    Some(Money {
        amount: DecimalAmount::try_from(amount).ok()?,
        currency: CurrencyCode::try_from("USD".to_owned()).ok()?,
    })
}

pub fn quote_from(order: &wire::OrderOut, offset: &FixedOffset) -> Quote {
    Quote {
        amount: order.amount_charged.as_deref().and_then(parse_money),
        service: order.service.clone(),
        ready_at: order.ready_date_time.as_deref().and_then(|s| parse_datetime(s, offset)),
        due_at: order.due_date_time.as_deref().and_then(|s| parse_datetime(s, offset)),
        ready_at_raw: order.ready_date_time.clone(),
        due_at_raw: order.due_date_time.clone(),
    }
}

/// Normalized status of an order (CARRIERS.md "Status mapping"). `None`: no mapping
/// (template `T`, undocumented `I`/`P`, unknown codes): the raw code is kept and the
/// status does not move.
pub fn order_status(order: &wire::OrderOut) -> Option<(Status, Option<String>)> {
    let code = order.order_status.as_deref().unwrap_or("");
    if code == "X" {
        return Some((Status::Exception, Some("Exception_020".into())));
    }
    if !matches!(code, "N" | "A") {
        return None;
    }
    let stops = order.stops.as_ref().map(|s| s.stop.as_slice()).unwrap_or(&[]);
    let kind = |s: &wire::StopOut| s.stop_type.as_deref().unwrap_or("").to_ascii_uppercase();
    let delivered = stops
        .iter()
        .filter(|s| matches!(kind(s).as_str(), "D" | "B"))
        .any(|s| s.pod_name.is_some() || s.pod_date_time.is_some())
        || order.pod_name.is_some()
        || order.pod_date_time.is_some();
    if delivered {
        let signed = order.pod_name.is_some() || stops.iter().any(|s| s.pod_name.is_some());
        return Some((Status::Delivered, Some(if signed { "Delivered_003" } else { "Delivered_001" }.into())));
    }
    let picked_up = stops
        .iter()
        .filter(|s| matches!(kind(s).as_str(), "P" | "B"))
        .any(|s| s.depart_date_time.is_some() || s.arrive_date_time.is_some());
    if picked_up {
        return Some((Status::InTransit, Some("InTransit_002".into())));
    }
    Some(match code {
        "A" => (Status::InfoReceived, Some("InfoReceived_001".into())),
        _ => (Status::InfoReceived, None),
    })
}

/// e-Courier event types we know (the seed names milestones "Pickup, POD, Status
/// change"; the rest are the simulator's and common e-Courier wording). An unknown
/// type is kept raw with no status.
fn event_status(event_type: &str) -> Option<(Status, Option<&'static str>)> {
    match event_type.trim().to_ascii_lowercase().as_str() {
        "created" | "new" | "order created" => Some((Status::InfoReceived, None)),
        "assigned" | "dispatched" | "driver assigned" => Some((Status::InfoReceived, Some("InfoReceived_001"))),
        "picked up" | "pickup" | "picked-up" | "departed" => Some((Status::InTransit, Some("InTransit_002"))),
        "arrived" => Some((Status::InTransit, None)),
        "delivered" | "pod" => Some((Status::Delivered, Some("Delivered_001"))),
        "cancelled" | "canceled" | "deleted" => Some((Status::Exception, Some("Exception_020"))),
        _ => None,
    }
}

pub fn snapshot_from(order: &wire::OrderOut, offset: &FixedOffset) -> TrackingSnapshot {
    let delivery_stop = order
        .stops
        .as_ref()
        .and_then(|s| s.stop.iter().rev().find(|s| matches!(s.stop_type.as_deref(), Some("D" | "B"))));
    let events = order
        .order_events
        .as_ref()
        .map(|e| e.order_event.as_slice())
        .unwrap_or(&[])
        .iter()
        .filter_map(|e| {
            let kind = e.event_type.clone()?;
            let occurred_at = e.event_date_time.as_deref().and_then(|s| parse_datetime(s, offset))?;
            let (status, subtag) = match event_status(&kind) {
                Some((s, t)) => (Some(s), t.map(str::to_owned)),
                None => (None, None),
            };
            let location = if status == Some(Status::Delivered) {
                delivery_stop.map(|s| Location {
                    code: None,
                    city: s.city.clone(),
                    state: s.state.clone(),
                    country: s.country.clone(),
                })
            } else {
                None
            };
            let dedup_key = match &e.order_event_id {
                Some(id) => format!("ecourier:{id}"),
                None => format!("ecourier:{}|{}", kind, e.event_date_time.as_deref().unwrap_or("")),
            };
            Some(CarrierEvent {
                occurred_at,
                status,
                subtag,
                message: e.note.clone().or_else(|| e.event_note.clone()).or_else(|| Some(kind.clone())),
                location,
                raw_code: Some(kind),
                raw_text: e.event_note.clone().or_else(|| e.note.clone()),
                actor: None,
                dedup_key,
            })
        })
        .collect();
    TrackingSnapshot {
        status: order_status(order),
        carrier_status: order.order_status.clone(),
        events,
        estimated_delivery: None,
        documents: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carriers::ecourier::wire::{OrderAnswer, StatusAnswer};

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).expect("offset")
    }

    fn order(v: serde_json::Value) -> wire::OrderOut {
        serde_json::from_value::<OrderAnswer>(serde_json::json!({"Order": v})).expect("order").order
    }

    #[test]
    fn every_seed_status_code_has_its_class() {
        let a = |s: &str, d: &str| StatusAnswer {
            status: Some(s.into()),
            statusdescription: Some(d.into()),
            user_guid: None,
        };
        assert!(matches!(classify(200, Some(&a("0", "JSON Post Received")), false), Outcome::Ok));
        let kind = |http, s: &str, d: &str, nf| match classify(http, Some(&a(s, d)), nf) {
            Outcome::Failed(e) => e.kind(),
            Outcome::TokenRefused(_) => "token",
            Outcome::Ok => "ok",
        };
        assert_eq!(kind(500, "-1", "An undefined error has occurred", false), "transient");
        assert_eq!(kind(500, "-2", "Unable to parse JSON", false), "protocol");
        assert_eq!(kind(500, "-3", "Unable to Connect to Database", false), "transient");
        assert_eq!(kind(500, "-4", "Order Not Found", false), "rejected");
        assert_eq!(kind(500, "-4", "Order Not Found", true), "not_found");
        assert_eq!(kind(500, "-5", "No UserGUID Received", false), "token");
        assert_eq!(kind(500, "-6", "No config file found", false), "misconfigured");
        assert_eq!(kind(409, "", "Order Unable to Cancel", false), "conflict");
        assert!(matches!(classify(502, None, false), Outcome::Failed(CarrierError::Transient { .. })));
        assert_eq!(kind(503, "-4", "Service Unavailable", false), "transient");
        assert_eq!(kind(500, "-4", "Invalid Service", false), "rejected");
        assert!(matches!(classify(200, Some(&a("", "")), false), Outcome::Failed(CarrierError::Protocol { .. })));
    }

    #[test]
    fn dates_and_money_parse_in_the_seed_formats() {
        let t = parse_datetime("9/3/2020 2:43:00 AM", &utc()).expect("date");
        assert_eq!(t.to_rfc3339(), "2020-09-03T02:43:00+00:00");
        assert_eq!(parse_datetime("12/05/20 11:00", &utc()).expect("date").to_rfc3339(), "2020-12-05T11:00:00+00:00");
        assert!(parse_datetime("12/05/2020 09:00", &utc()).is_some());
        let est = FixedOffset::west_opt(5 * 3600).expect("offset");
        assert_eq!(
            parse_datetime("11/13/2019 6:00:00 AM", &est).expect("date").to_rfc3339(),
            "2019-11-13T11:00:00+00:00"
        );
        let m = parse_money("$1,040.00").expect("money");
        assert_eq!((m.amount.as_str(), m.currency.as_str()), ("1040.00", "USD"));
        assert!(parse_money("40.00 EUR").is_none());
        let scheduled = DateTime::parse_from_rfc3339("2019-11-13T18:00:00-05:00").expect("time");
        assert_eq!(format_datetime(&scheduled), "11/13/2019 6:00:00 PM");
        assert_eq!(tz_label(scheduled.offset()), "EST");
    }

    #[test]
    fn order_state_maps_onto_our_statuses() {
        let n = order(serde_json::json!({"@OrderStatus": "N"}));
        assert_eq!(order_status(&n), Some((Status::InfoReceived, None)));
        let a = order(serde_json::json!({"@OrderStatus": "A"}));
        assert_eq!(order_status(&a), Some((Status::InfoReceived, Some("InfoReceived_001".into()))));
        let picked = order(serde_json::json!({"@OrderStatus": "A", "Stops": {"Stop": [
            {"StopType": "P", "DepartDateTime": "9/3/2020 2:43:00 AM"}, {"StopType": "D"}]}}));
        assert_eq!(order_status(&picked).map(|s| s.0), Some(Status::InTransit));
        let delivered = order(serde_json::json!({"@OrderStatus": "A", "Stops": {"Stop": [
            {"StopType": "P", "DepartDateTime": "9/3/2020 2:43:00 AM"}, {"StopType": "D", "PodName": "J. DOE"}]}}));
        assert_eq!(order_status(&delivered), Some((Status::Delivered, Some("Delivered_003".into()))));
        assert_eq!(
            order_status(&order(serde_json::json!({"@OrderStatus": "X"}))).map(|s| s.0),
            Some(Status::Exception)
        );
        for raw in ["T", "I", "P", "?"] {
            assert_eq!(order_status(&order(serde_json::json!({"@OrderStatus": raw}))), None, "{raw}");
        }
    }

    #[test]
    fn events_become_tracking_events_with_stable_keys() {
        let o = order(serde_json::json!({"@OrderStatus": "A", "OrderEvents": {"OrderEvent": [
            {"@OrderEventID": "7", "@EventType": "Picked Up", "@EventDateTime": "9/3/2020 2:43:00 AM"},
            {"@EventType": "Weird Thing", "@EventDateTime": "9/3/2020 3:00:00 AM"}]}}));
        let snap = snapshot_from(&o, &utc());
        assert_eq!(snap.events.len(), 2);
        assert_eq!(snap.events[0].dedup_key, "ecourier:7");
        assert_eq!(snap.events[0].status, Some(Status::InTransit));
        assert_eq!(snap.events[1].status, None);
        assert_eq!(snap.events[1].raw_code.as_deref(), Some("Weird Thing"));
    }
}
