//! Writing a group of scans in one transaction with set-based statements
//! (`store::scan_groups`): the same rows as the lone scan's statements
//! ([`super::ingest::apply_scan`]) would write one scan after another, in a handful of
//! statements whatever the group's size.
//!
//! Order of work: the group's known shipments read and locked (one statement per
//! connection, in lock order) and the unknown numbers' shipments created (each under
//! its advisory lock, as a lone scan does); the codes the "after" rules ask about (only
//! when a mapping has such rules); the raw pushes and their tracking events in one
//! statement (a push key already stored, or repeated in the group, is a duplicate, and
//! so is an event already stored), which also returns the transaction's `now()`; then,
//! scan by scan in the group's order, in memory, what the lone statements compute
//! (mapping, forward-only status, latest event, history, outbound events, each built
//! from the row as the scans before it left it); then one statement for the shipments,
//! the history and the outbound events together.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::types::Json;
use sqlx::{Connection, PgConnection};

use super::ingest::{self, Applied};
use crate::app::AppState;
use crate::carriers::inbound::Scan;
use crate::domain::may_transition;
use crate::service::Result;
use crate::service::events::shipment_event_text;
use crate::store::connections::ConnectionRow;
use crate::store::scan_groups::{self, Outbound, ScanRows, ShipmentState};
use crate::store::shipments::{NewEvent, ShipmentRow};
use crate::{ids, store};

/// One scan of a group.
pub(super) struct Entry<'a> {
    pub connection: &'a ConnectionRow,
    pub scan: &'a Scan,
    pub raw: &'a Value,
}

/// Write the group (sorted in lock order by the caller) in one transaction; all or
/// nothing. Returns what each scan came to, in the group's order, and how long its
/// COMMIT took (the durable flush; the rest of the time is the statements').
pub(super) async fn write(
    state: &AppState,
    conn: &mut PgConnection,
    group: &[Entry<'_>],
) -> Result<(Vec<Applied>, Duration)> {
    let mut mappings = Vec::with_capacity(group.len());
    for e in group {
        mappings.push(state.inbound.mappings.get(&state.db, &e.connection.tenant_id, &e.connection.carrier).await?);
    }
    // Generic plans for this transaction's statements. Their parameters are arrays, for
    // which a custom plan always looks cheaper than the generic one (it knows the array's
    // length), so the server would plan every statement of every group again (~5 % of its
    // CPU under the P1 load, issue 13); the plans do not depend on the values (unnest
    // joined to primary-key and unique-index probes). PG 15 docs, 20.7.2
    // "plan_cache_mode"; SET LOCAL ends with the transaction (and goes in BEGIN's round
    // trip), so the pooled connection keeps the server's default for everything else.
    // Not `store::begin`: the group's connection is the committer's own (`Warm`), and only
    // the committer task runs this, which no request can cancel (a push waits for its
    // answer on a channel); the task ends only with the process.
    #[allow(clippy::disallowed_methods)]
    let mut tx = conn.begin_with("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan").await?;

    // The shipments: known ones locked in one statement per connection, then new ones.
    let mut shipment_of: Vec<String> = Vec::with_capacity(group.len());
    let mut rows: HashMap<String, ShipmentRow> = HashMap::new();
    let mut created: HashSet<String> = HashSet::new();
    let mut known: HashMap<(&str, &str), String> = HashMap::new();
    for connection in group.chunk_by(|a, b| a.connection.id == b.connection.id) {
        let c = connection[0].connection;
        let mut numbers: Vec<&str> = connection.iter().map(|e| e.scan.tracking_number.as_str()).collect();
        numbers.dedup();
        for row in store::shipments::lock_by_tracking_numbers(&mut tx, &c.tenant_id, &numbers, &c.id).await? {
            if let Some(n) = numbers.iter().copied().find(|n| Some(*n) == row.tracking_number.as_deref()) {
                known.insert((c.id.as_str(), n), row.id.clone());
            }
            rows.insert(row.id.clone(), row);
        }
    }
    for e in group {
        let key = (e.connection.id.as_str(), e.scan.tracking_number.as_str());
        let id = match known.get(&key) {
            Some(id) => id.clone(),
            None => {
                let (row, new) = ingest::shipment_for(&mut tx, e.connection, e.scan, None).await?;
                if new {
                    created.insert(row.id.clone());
                }
                known.insert(key, row.id.clone());
                rows.insert(row.id.clone(), row.clone());
                row.id
            }
        };
        shipment_of.push(id);
    }

    // Codes the "after" rules ask about: stored ones now, the group's own as they come.
    // (Asked for every scan: a duplicate's answer is not used.)
    let mut seen: HashMap<&str, HashSet<String>> = HashMap::new();
    let asks: Vec<(usize, Vec<&str>)> = group
        .iter()
        .enumerate()
        .map(|(i, e)| (i, mappings[i].after_codes(&e.scan.code)))
        .filter(|(i, codes)| !codes.is_empty() && !created.contains(&shipment_of[*i]))
        .collect();
    if !asks.is_empty() {
        let tenants: Vec<&str> = asks.iter().map(|(i, _)| group[*i].connection.tenant_id.as_str()).collect();
        let ships: Vec<&str> = asks.iter().map(|(i, _)| shipment_of[*i].as_str()).collect();
        let mut codes: Vec<&str> = asks.iter().flat_map(|(_, c)| c.iter().copied()).collect();
        codes.sort_unstable();
        codes.dedup();
        for (sid, code) in scan_groups::seen_codes(&mut tx, &tenants, &ships, &codes).await? {
            if let Some(s) = shipment_of.iter().find(|s| **s == sid) {
                seen.entry(s.as_str()).or_default().insert(code);
            }
        }
    }
    let mut mapped = Vec::with_capacity(group.len());
    for (i, e) in group.iter().enumerate() {
        let codes = seen.entry(shipment_of[i].as_str()).or_default();
        let list: Vec<String> = codes.iter().cloned().collect();
        mapped.push(mappings[i].resolve(&e.scan.code, &list));
        codes.insert(e.scan.code.clone());
    }

    // The raw pushes and, for those stored now, the tracking events, in one statement.
    let dedup: Vec<String> = group.iter().map(|e| format!("{}:{}", e.connection.carrier, e.scan.scan_id)).collect();
    let locations: Vec<Option<Value>> =
        group.iter().map(|e| e.scan.location.as_ref().and_then(|l| serde_json::to_value(l).ok())).collect();
    let events: Vec<NewEvent<'_>> = group
        .iter()
        .enumerate()
        .map(|(i, e)| NewEvent {
            occurred_at: e.scan.occurred_at,
            status: mapped[i].as_ref().map(|m| m.0),
            subtag: mapped[i].as_ref().and_then(|m| m.1.as_deref()),
            message: e.scan.message.as_deref(),
            location: locations[i].as_ref(),
            raw_code: Some(&e.scan.code),
            raw_text: e.scan.code_text.as_deref(),
            actor: e.scan.actor.as_deref(),
            source: "push",
            dedup_key: &dedup[i],
        })
        .collect();
    let scans: Vec<ScanRows<'_>> = group
        .iter()
        .enumerate()
        .map(|(i, e)| ScanRows {
            tenant_id: &e.connection.tenant_id,
            connection_id: &e.connection.id,
            awb: &e.scan.tracking_number,
            status_update_number: &e.scan.scan_id,
            shipment_id: &shipment_of[i],
            payload: e.raw,
            event: &events[i],
        })
        .collect();
    let kept = scan_groups::keep_scans(&mut tx, &scans).await?;
    let now = kept.now.unwrap_or_default();
    let mut added: HashSet<(String, String)> = kept.added.into_iter().collect();

    // Scan by scan, what the lone statements would compute.
    let mut applied = Vec::with_capacity(group.len());
    let mut history: Vec<(&str, &str, &str, Value)> = Vec::new();
    let mut outbound: Vec<Outbound<'_>> = Vec::new();
    let mut touched: Vec<&str> = Vec::new();
    let mut counts: HashMap<&str, i32> = HashMap::new();
    let mut moved: HashSet<&str> = HashSet::new();
    for (i, e) in group.iter().enumerate() {
        let sid = shipment_of[i].as_str();
        // Stored only if its push key was new and its event too (the first scan of a
        // repeated key gets the one row added).
        if !added.remove(&(sid.to_owned(), dedup[i].clone())) {
            applied.push(Applied::Duplicate { shipment_id: sid.to_owned() });
            continue;
        }
        let row = rows.get_mut(sid).expect("every scan's shipment is read");
        let tenant = e.connection.tenant_id.as_str();
        let mapping = &mapped[i];
        let (status, subtag) = (mapping.as_ref().map(|m| m.0), mapping.as_ref().and_then(|m| m.1.as_deref()));
        let before = (row.status, row.subtag.clone());
        let moves = mapping.as_ref().filter(|(s, t)| may_transition(before.0, before.1.as_deref(), *s, t.as_deref()));
        let ev_json = ingest::event_json(e.scan, status, subtag, locations[i].as_ref(), &dedup[i]);
        let latest = ingest::is_latest(row, e.scan.occurred_at);
        history.push((tenant, sid, "events_added", json!({"count": 1, "events": [ev_json.clone()]})));
        if let Some((s, t)) = moves {
            history.push((
                tenant,
                sid,
                "status_changed",
                json!({"from": before.0, "from_subtag": before.1, "to": s, "to_subtag": t, "carrier_status": e.scan.code}),
            ));
            row.status = *s;
            row.subtag = t.clone();
            moved.insert(sid);
        }
        if latest {
            row.carrier_status = Some(e.scan.code.clone());
            row.last_event = Some(Json(ev_json.clone()));
        }
        row.updated_at = now;
        let mut these = vec![("shipment.event_added", shipment_event_text(row, &[("event", &ev_json)])?)];
        if moves.is_some() {
            let (from, from_subtag) = (json!(before.0), json!(before.1));
            these.push((
                "shipment.status_changed",
                shipment_event_text(row, &[("previous_status", &from), ("previous_subtag", &from_subtag)])?,
            ));
        }
        if !touched.contains(&sid) {
            touched.push(sid);
        }
        for (event_type, data) in these {
            *counts.entry(sid).or_default() += 1;
            outbound.push(Outbound {
                tenant_id: tenant,
                id: ids::new_id("evt"),
                shipment_id: sid,
                back: 0,
                event_type,
                data,
            });
        }
        if mapping.is_none() {
            store::inbound::note_unmapped(
                &mut tx,
                tenant,
                &e.connection.carrier,
                &e.scan.code,
                e.scan.code_text.as_deref(),
            )
            .await?;
        }
        applied.push(Applied::Stored { shipment_id: sid.to_owned(), unmapped: mapping.is_none() });
    }
    // Each outbound event's distance from its shipment's last one in the group.
    let mut left = counts.clone();
    for ev in &mut outbound {
        let n = left.get_mut(ev.shipment_id).expect("counted");
        *n -= 1;
        ev.back = *n;
    }

    if !touched.is_empty() {
        let states: Vec<ShipmentState<'_>> = touched
            .iter()
            .map(|sid| {
                let row = &rows[*sid];
                ShipmentState {
                    tenant_id: &row.tenant_id,
                    id: &row.id,
                    status: row.status.as_str(),
                    subtag: row.subtag.as_deref(),
                    carrier_status: row.carrier_status.as_deref(),
                    last_event: row.last_event.as_ref().map(|j| &j.0),
                    events: counts[sid],
                    moved: moved.contains(sid),
                }
            })
            .collect();
        scan_groups::finish(&mut tx, &states, &history, &outbound).await?;
    }
    let committing = Instant::now();
    tx.commit().await?;
    Ok((applied, committing.elapsed()))
}
