//! Inbound carrier pushes: Ecom Express scans (seed `003_22468744d4026f76.txt`,
//! CARRIERS.md "ecomexpress") and AfterShip webhooks (CARRIERS.md "Inbound webhooks").
//!
//! An Ecom Express scan is written in one transaction: the raw push (deduplicated on
//! connection, awb, status_update_number), the shipment (found by AWB or created), the
//! normalized tracking event, the forward-only status, history and outbound events.
//! The caller acknowledges `status:true` only after [`ingest_ecom_push`] returned Ok,
//! that is after COMMIT.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::carriers::aftership::{mapping as as_mapping, wire as as_wire};
use crate::domain::{Status, may_transition};
use crate::service::events::shipment_event;
use crate::store::connections::ConnectionRow;
use crate::store::shipments::{NewEvent, NewShipment, ShipmentRow};
use crate::store::{self, Actor};

pub const ECOM: &str = "ecomexpress";

/// Longest AWB / status_update_number / code we accept (Ecom AWBs are ~10-12 digits).
const MAX_KEY_LEN: usize = 64;
/// Longest free-text field we keep from a push.
const MAX_TEXT_LEN: usize = 1000;

/// One Ecom Express scan, parsed. All values arrive as strings (seed "Payload").
#[derive(Debug, Clone)]
pub struct EcomPush {
    pub awb: String,
    pub occurred_at: DateTime<Utc>,
    /// `child_reason_code_number` when present (it is the more precise code), else
    /// `reason_code_number` (CARRIERS.md "ecomexpress").
    pub code: String,
    /// `reason_code`, e.g. "777 - RTS - Return To Shipper".
    pub reason_text: Option<String>,
    /// `status`: the free-text remark.
    pub remark: Option<String>,
    pub location: Option<String>,
    pub city: Option<String>,
    pub employee: Option<String>,
    pub status_update_number: String,
    pub order_number: Option<String>,
    pub ref_awb: Option<String>,
}

/// Why a push was refused: the reason names the field; the echo values are the ones
/// the push sent (so Ecom can match the failure to its scan).
#[derive(Debug, Clone)]
pub struct Malformed {
    pub awb: Value,
    pub status_update_number: Value,
    pub reason: String,
}

/// `awb` and `status_update_number` exactly as pushed (for the acknowledgement echo).
pub fn echo_fields(body: &[u8]) -> (Value, Value) {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => (
            m.get("awb").cloned().unwrap_or(Value::Null),
            m.get("status_update_number").cloned().unwrap_or(Value::Null),
        ),
        _ => (Value::Null, Value::Null),
    }
}

/// India Standard Time: Ecom's `datetime` carries no offset and is local time in India
/// (CARRIERS.md "ecomexpress": "YYYY-mm-dd H:M:S", India time).
fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 30 * 60).unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
}

pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .and_then(|n| n.and_local_timezone(ist()).single())
        .map(|d| d.with_timezone(&Utc))
}

/// Parse a push body. Unknown extra fields are accepted (public receivers see
/// `received_by`, `EDD`, ...) and kept in the raw payload.
pub fn parse_push(body: &[u8]) -> Result<(EcomPush, Map<String, Value>), Malformed> {
    let (awb_echo, sun_echo) = echo_fields(body);
    let fail = |reason: String| Malformed { awb: awb_echo.clone(), status_update_number: sun_echo.clone(), reason };
    let map = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(fail("body must be a JSON object".into())),
        Err(e) => return Err(fail(format!("body is not valid JSON: {e}"))),
    };
    // Every value is a string (seed); null or "" count as absent for optional fields.
    let text = |name: &str, max: usize| -> Result<Option<String>, String> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.contains('\0') => Err(format!("{name} must not contain NUL")),
            Some(Value::String(s)) if s.chars().count() > max => Err(format!("{name} is longer than {max} characters")),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
            Some(_) => Err(format!("{name} must be a string")),
        }
    };
    let required = |name: &str| -> Result<String, String> {
        text(name, MAX_KEY_LEN)?.ok_or_else(|| format!("{name} is required"))
    };
    let parsed = (|| -> Result<EcomPush, String> {
        let awb = required("awb")?;
        let status_update_number = required("status_update_number")?;
        let datetime = required("datetime")?;
        let occurred_at =
            parse_datetime(&datetime).ok_or_else(|| format!("datetime {datetime:?} is not \"YYYY-mm-dd H:M:S\""))?;
        let code = match text("child_reason_code_number", MAX_KEY_LEN)? {
            Some(c) => c,
            None => {
                text("reason_code_number", MAX_KEY_LEN)?.ok_or_else(|| "reason_code_number is required".to_owned())?
            }
        };
        Ok(EcomPush {
            awb,
            occurred_at,
            code,
            reason_text: text("reason_code", MAX_TEXT_LEN)?,
            remark: text("status", MAX_TEXT_LEN)?,
            location: text("location", MAX_TEXT_LEN)?,
            city: text("city", MAX_TEXT_LEN)?,
            employee: text("Employee", MAX_TEXT_LEN)?,
            status_update_number,
            order_number: text("order_number", MAX_TEXT_LEN)?,
            ref_awb: text("ref_awb", MAX_TEXT_LEN)?,
        })
    })();
    match parsed {
        Ok(p) => Ok((p, map)),
        Err(reason) => Err(fail(reason)),
    }
}

/// What a stored push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Committed. `mapped` is false for a code without a mapping.
    Stored { shipment_id: String, created: bool, status_changed: bool, mapped: bool },
    /// This scan was stored before; nothing changed.
    Duplicate,
}

fn event_json(p: &EcomPush, status: Option<&str>, subtag: Option<&str>, dedup_key: &str) -> Value {
    json!({
        "occurred_at": crate::domain::time::format(&p.occurred_at), "status": status, "subtag": subtag, "message": message(p),
        "location": location(p), "raw_code": p.code, "raw_text": p.reason_text, "actor": p.employee,
        "source": "push", "dedup_key": dedup_key,
    })
}

fn message(p: &EcomPush) -> Option<String> {
    p.remark.clone().or_else(|| p.reason_text.clone())
}

fn location(p: &EcomPush) -> Option<Value> {
    (p.location.is_some() || p.city.is_some()).then(|| {
        let mut m = Map::new();
        if let Some(c) = &p.location {
            m.insert("code".into(), c.clone().into());
        }
        if let Some(c) = &p.city {
            m.insert("city".into(), c.clone().into());
        }
        m.insert("country".into(), "IN".into());
        Value::Object(m)
    })
}

/// Whether this scan is at least as new as the shipment's last event (a late scan is
/// kept in the events and history but does not become `last_event`).
fn is_latest(row: &ShipmentRow, at: DateTime<Utc>) -> bool {
    row.last_event
        .as_ref()
        .and_then(|j| j.0.get("occurred_at"))
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .is_none_or(|last| at >= last.with_timezone(&Utc))
}

/// Store one scan (see the module doc). Returns after COMMIT.
///
/// Round trips for a scan of a known shipment: BEGIN, the shipment row (locked), one
/// statement for raw push + event + status + history, the outbound events, COMMIT.
/// The mapping comes from [`MappingCache`](crate::cache::MappingCache); only a code with an "after" rule costs one
/// more query.
pub async fn ingest_ecom_push(
    state: &AppState,
    connection: &ConnectionRow,
    push: &EcomPush,
    raw: &Map<String, Value>,
) -> sqlx::Result<PushOutcome> {
    let tenant = connection.tenant_id.as_str();
    let raw = Value::Object(raw.clone());
    let mappings = state.inbound.mappings.get(&state.db, tenant, ECOM).await?;
    let mut tx = state.db.begin().await?;
    let mut found = store::shipments::get_by_tracking_for_update(&mut tx, tenant, &push.awb, &connection.id).await?;
    if found.is_none() {
        store::inbound::lock_awb(&mut tx, tenant, &push.awb).await?;
        found = store::shipments::get_by_tracking_for_update(&mut tx, tenant, &push.awb, &connection.id).await?;
    }
    let (row, created) = match found {
        Some(row) => (row, false),
        None => {
            // Unknown AWB: accepted and kept as a shipment of this connection (CARRIERS.md:
            // "the shipment may be registered later").
            let mut metadata = crate::domain::Metadata::new();
            if let Some(o) = &push.order_number {
                metadata.insert("order_number".into(), o.clone());
            }
            if let Some(r) = &push.ref_awb {
                metadata.insert("ref_awb".into(), r.clone());
            }
            let id = crate::ids::new_id("shp");
            let new = NewShipment {
                tenant_id: tenant,
                id: &id,
                reference: None,
                connection_id: &connection.id,
                carrier: ECOM,
                carrier_reference: None,
                tracking_number: Some(&push.awb),
                service: None,
                stops: &[],
                parcels: &[],
                declared_value: None,
                cod_amount: None,
                notes: None,
                metadata: &metadata,
                channel: None,
                booking_state: None,
            };
            // Postgres keeps microseconds: the event shows the same created_at as the row.
            let at = chrono::DurationRound::duration_trunc(chrono::Utc::now(), chrono::Duration::microseconds(1))
                .unwrap_or_else(|_| chrono::Utc::now());
            let event_id = crate::ids::new_id("evt");
            let created_event = shipment_event("shipment.created", &new.as_row(at), Value::Null).data;
            let row = store::shipments::insert_with_history(
                &mut tx,
                &new,
                &store::shipments::Creation {
                    actor: &Actor::CarrierPush,
                    action: "created",
                    detail: &json!({"source": "ecomexpress_push", "awb": push.awb, "status_update_number": push.status_update_number}),
                    at,
                    event: (&event_id, &created_event),
                    booking_job: None,
                },
            )
            .await?;
            (row, true)
        }
    };
    let after_codes = mappings.after_codes(&push.code);
    let seen = if after_codes.is_empty() || created {
        Vec::new()
    } else {
        store::inbound::seen_codes(&mut tx, tenant, &row.id, &after_codes).await?
    };
    let mapping = mappings.resolve(&push.code, &seen);
    let before = (Status::parse(&row.status).unwrap_or(Status::Pending), row.subtag.clone());
    let moves = mapping.as_ref().filter(|(s, t)| may_transition(before.0, before.1.as_deref(), *s, t.as_deref()));
    let dedup_key = format!("{ECOM}:{}", push.status_update_number);
    let (status_str, subtag) = (mapping.as_ref().map(|m| m.0.as_str()), mapping.as_ref().and_then(|m| m.1.as_deref()));
    let ev_json = event_json(push, status_str, subtag, &dedup_key);
    let latest = is_latest(&row, push.occurred_at);
    let mut history = vec![("events_added", json!({"count": 1, "events": [ev_json.clone()]}))];
    if let Some((s, t)) = moves {
        history.push((
            "status_changed",
            json!({"from": before.0, "from_subtag": before.1, "to": s, "to_subtag": t, "carrier_status": push.code}),
        ));
    }
    let location = location(push);
    let message = message(push);
    let event = NewEvent {
        occurred_at: push.occurred_at,
        status: status_str,
        subtag,
        message: message.as_deref(),
        location: location.as_ref(),
        raw_code: Some(&push.code),
        raw_text: push.reason_text.as_deref(),
        actor: push.employee.as_deref(),
        source: "push",
        dedup_key: &dedup_key,
    };
    let updated = store::inbound::record_push(
        &mut tx,
        &store::inbound::PushWrite {
            tenant_id: tenant,
            connection_id: &connection.id,
            awb: &push.awb,
            status_update_number: &push.status_update_number,
            shipment_id: &row.id,
            payload: &raw,
            event: &event,
            status: moves.map(|(s, t)| (s.as_str(), t.as_deref())),
            carrier_status: latest.then_some(push.code.as_str()),
            last_event: latest.then_some(&ev_json),
            history: &history,
        },
    )
    .await?;
    let Some(updated) = updated else {
        // Stored before: nothing was written (a shipment cannot have been created here,
        // since the earlier push committed it together with its raw row).
        drop(tx);
        // The first payload stays the one applied; a changed one is kept and counted
        // so ops see a carrier resending changed scans (issue 10).
        let mut conn = state.db.acquire().await?;
        if store::inbound::record_changed_repush(
            &mut conn,
            tenant,
            &connection.id,
            &push.awb,
            &push.status_update_number,
            &raw,
        )
        .await?
        {
            metrics::counter!("shipgate_inbound_changed_repushes_total", "carrier" => ECOM).increment(1);
            tracing::warn!(connection_id = %connection.id, awb = %push.awb, status_update_number = %push.status_update_number,
                "repeated status_update_number with a different payload; the first one stays applied");
        }
        return Ok(PushOutcome::Duplicate);
    };
    // shipment.created, if it was created here, was written with the row.
    let mut events = Vec::new();
    events.push(shipment_event("shipment.event_added", &updated, json!({"event": ev_json})));
    if moves.is_some() {
        events.push(shipment_event(
            "shipment.status_changed",
            &updated,
            json!({"previous_status": before.0, "previous_subtag": before.1}),
        ));
    }
    store::events::emit(&mut tx, tenant, &row.id, &events).await?;
    if mapping.is_none() {
        store::inbound::note_unmapped(&mut tx, tenant, ECOM, &push.code, push.reason_text.as_deref()).await?;
    }
    tx.commit().await?;
    if mapping.is_none() {
        metrics::counter!("shipgate_unmapped_codes_total", "carrier" => ECOM).increment(1);
    }
    Ok(PushOutcome::Stored { shipment_id: row.id, created, status_changed: moves.is_some(), mapped: mapping.is_some() })
}

/// An AfterShip webhook body (CARRIERS.md "Inbound webhooks").
#[derive(Debug, serde::Deserialize)]
pub struct AftershipWebhook {
    #[serde(default)]
    pub ts: Option<i64>,
    #[serde(default)]
    pub event: Option<String>,
    pub event_id: String,
    #[serde(default)]
    pub is_tracking_first_tag: Option<bool>,
    pub msg: as_wire::Tracking,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    Applied {
        shipment_id: String,
    },
    /// No shipment with this tracking number on the connection: the payload is kept.
    UnknownTracking,
    Duplicate,
}

/// Apply an AfterShip webhook: skip a seen event_id; apply `msg` through the AfterShip
/// mapping and `apply_snapshot` (idempotent: events deduplicated, status forward-only),
/// then record the event_id. Recording after applying means a failure in between is
/// retried by AfterShip and applied again harmlessly, never lost.
pub async fn ingest_aftership_webhook(
    state: &AppState,
    connection: &ConnectionRow,
    hook: &AftershipWebhook,
    raw: &Value,
) -> sqlx::Result<WebhookOutcome> {
    let tenant = connection.tenant_id.as_str();
    let mut conn = state.db.acquire().await?;
    if store::inbound::webhook_seen(&mut conn, tenant, &connection.id, &hook.event_id).await? {
        return Ok(WebhookOutcome::Duplicate);
    }
    let number = hook.msg.tracking_number.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let shipment = match number {
        Some(n) => store::inbound::shipment_on_connection(&mut conn, tenant, &connection.id, n).await?,
        None => None,
    };
    drop(conn);
    if let Some(id) = &shipment {
        let snap = as_mapping::snapshot_from(&hook.msg, None);
        crate::service::shipments::apply_snapshot(state, tenant, id, &snap, "push", &Actor::CarrierPush, Vec::new())
            .await?;
    }
    let mut conn = state.db.acquire().await?;
    let fresh = store::inbound::keep_webhook(
        &mut conn,
        tenant,
        &connection.id,
        &hook.event_id,
        hook.event.as_deref(),
        number,
        shipment.as_deref(),
        raw,
    )
    .await?;
    Ok(match (fresh, shipment) {
        (false, _) => WebhookOutcome::Duplicate,
        (true, Some(shipment_id)) => WebhookOutcome::Applied { shipment_id },
        (true, None) => WebhookOutcome::UnknownTracking,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_is_india_time() {
        let t = parse_datetime("2026-11-22 10:30:00").expect("parse");
        assert_eq!(t.to_rfc3339(), "2026-11-22T05:00:00+00:00");
        assert!(parse_datetime("22-11-2026 10:30").is_none());
    }

    #[test]
    fn child_code_takes_priority_and_extra_fields_are_accepted() {
        let body = br#"{"awb":"A1","datetime":"2026-11-22 10:30:00","reason_code_number":"777",
            "child_reason_code_number":"999","status_update_number":"5","EDD":"x","received_by":"me"}"#;
        let (p, raw) = parse_push(body).expect("valid");
        assert_eq!(p.code, "999");
        assert_eq!(raw["EDD"], "x");
    }

    #[test]
    fn malformed_names_the_field_and_echoes_the_keys() {
        let m = parse_push(br#"{"awb":"A1","datetime":"2026-11-22 10:30:00","status_update_number":7}"#)
            .expect_err("number is not a string");
        assert_eq!(m.reason, "status_update_number must be a string");
        assert_eq!(m.status_update_number, json!(7));
        assert_eq!(m.awb, json!("A1"));
    }
}
