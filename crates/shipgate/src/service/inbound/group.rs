//! Writing a group of scans with set-based statements (`store::scan_groups`): the same
//! rows as the lone scan's statements ([`super::ingest::apply_scan`]) would write one
//! scan after another, in a handful of statements whatever the group's size.
//!
//! Two ways, the first tried first ([`write`]):
//!
//! - [`unlocked`]: the group's shipments read without locks, with their row versions
//!   and the codes their "after" rules ask about (one statement, autocommit); then, in
//!   memory, scan by scan, what the lone statements compute; then one statement that
//!   locks the shipments in the group's order, checks their versions, writes every row
//!   and commits by itself. It applies when every number has its shipment and every
//!   code is mapped; a changed shipment or a scan stored meanwhile makes it fail whole.
//! - [`locked`], the careful way, in one transaction: the group's known shipments read
//!   and locked (one statement per connection, in lock order) and the unknown numbers'
//!   shipments created (each under its advisory lock, as a lone scan does); the codes
//!   the "after" rules ask about (only when a mapping has such rules); the raw pushes
//!   and their tracking events in one statement (a push key already stored, or repeated
//!   in the group, is a duplicate, and so is an event already stored), which also
//!   returns the transaction's `now()`; then the same computation in memory; then one
//!   statement for the shipments, the history and the outbound events together.
//!
//! The computation both share ([`apply`]): mapping, forward-only status, latest event,
//! history, outbound events, each built from the row as the scans before it left it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::types::Json;
use sqlx::{Connection, PgConnection};

use super::ingest::{self, Applied};
use crate::app::AppState;
use crate::cache::Mappings;
use crate::carriers::inbound::Scan;
use crate::domain::{Status, may_transition};
use crate::service::Result;
use crate::service::events::shipment_event_text;
use crate::store::connections::ConnectionRow;
use crate::store::scan_groups::{self, History, Number, Outbound, ScanRows, ShipmentState};
use crate::store::shipments::{NewEvent, ShipmentRow};
use crate::{ids, store};

/// One scan of a group.
pub(super) struct Entry<'a> {
    pub connection: &'a ConnectionRow,
    pub scan: &'a Scan,
    pub raw: &'a Value,
}

/// A scan's mapped status and subtag (None: unmapped).
type Mapped = Option<(Status, Option<String>)>;

/// Write the group (sorted in lock order by the caller); all or nothing. Returns what
/// each scan came to, in the group's order, and how long its commit took: the COMMIT
/// (careful path), or the one statement that writes and commits (unlocked path).
///
/// First without locks ([`unlocked`]: two statements, no transaction round trips);
/// where that does not apply (a new shipment, an unmapped code, a key the group repeats
/// oddly) or lost a race (a shipment changed since it was read, a scan stored
/// meanwhile), the careful way ([`locked`]).
pub(super) async fn write(
    state: &AppState,
    conn: &mut PgConnection,
    group: &[Entry<'_>],
) -> Result<(Vec<Applied>, Duration)> {
    let mut mappings = Vec::with_capacity(group.len());
    for e in group {
        mappings.push(state.inbound.mappings.get(&state.db, &e.connection.tenant_id, &e.connection.carrier).await?);
    }
    let path = match unlocked(conn, group, &mappings).await? {
        Unlocked::Written(done) => return Ok(done),
        Unlocked::NotFor => "not_for_unlocked",
        Unlocked::Raced => "raced",
    };
    metrics::counter!("shipgate_inbound_group_careful_total", "why" => path).increment(1);
    locked(conn, group, &mappings).await
}

/// How [`unlocked`] ended.
enum Unlocked {
    Written((Vec<Applied>, Duration)),
    /// The group needs the careful path (nothing was written).
    NotFor,
    /// The write lost a race (nothing was written).
    Raced,
}

/// The group written in two statements and no transaction: its shipments read without
/// locks ([`scan_groups::read_unlocked`]), the scans applied to them in memory as
/// [`locked`] does, then one statement that locks them in the group's order, checks
/// that none changed since the read, writes every row and commits
/// ([`scan_groups::write_unlocked`]). Against the careful path's BEGIN, lock, keep,
/// finish and COMMIT, that is three round trips and one statement fewer per group; it
/// applies when every tracking number already has its shipment and every code is mapped
/// (then no other statement is needed). A scan whose push key an earlier scan of the
/// group had is a duplicate, as in [`locked`].
async fn unlocked(conn: &mut PgConnection, group: &[Entry<'_>], mappings: &[Arc<Mappings>]) -> Result<Unlocked> {
    // The group's numbers, each once (the group is sorted, so repeats are adjacent).
    let mut numbers: Vec<Number<'_>> = Vec::new();
    let mut number_of = Vec::with_capacity(group.len());
    for (i, e) in group.iter().enumerate() {
        let c = e.connection;
        let same = numbers.last().is_some_and(|n: &Number<'_>| {
            n.tenant_id == c.tenant_id && n.connection_id == c.id && n.tracking_number == e.scan.tracking_number
        });
        if !same {
            numbers.push(Number {
                tenant_id: &c.tenant_id,
                connection_id: &c.id,
                tracking_number: &e.scan.tracking_number,
                after_codes: Vec::new(),
            });
        }
        let n = numbers.len() - 1;
        for code in mappings[i].after_codes(&e.scan.code) {
            if !numbers[n].after_codes.contains(&code) {
                numbers[n].after_codes.push(code);
            }
        }
        number_of.push(n);
    }
    let mut read = scan_groups::read_unlocked(conn, &numbers).await?;
    // At most one row per number (LIMIT 1), so one per number when none is missing.
    if read.len() != numbers.len() {
        return Ok(Unlocked::NotFor); // a number without a shipment: created under its advisory lock
    }
    read.sort_unstable_by_key(|r| r.number);
    let now = read[0].now;
    let mut ids: Vec<String> = Vec::with_capacity(numbers.len());
    let mut rows: HashMap<String, ShipmentRow> = HashMap::new();
    let mut versions: HashMap<String, String> = HashMap::new();
    let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
    for r in read {
        let row = r.doc.into_row().map_err(|e| crate::service::Error::Internal(e.into()))?;
        let id = row.id.clone();
        seen.entry(id.clone()).or_default().extend(r.seen);
        versions.insert(id.clone(), r.version);
        rows.entry(id.clone()).or_insert(row);
        ids.push(id);
    }
    let shipment_of: Vec<String> = number_of.iter().map(|n| ids[*n].clone()).collect();
    let mapped = resolve(group, mappings, &shipment_of, seen);
    if mapped.iter().any(Option::is_none) {
        return Ok(Unlocked::NotFor); // counted in the careful path's transaction
    }
    let prepared = Prepared::new(group, &mapped);
    // A push key the group repeats: the first is stored, the others are duplicates (as
    // the careful path's ON CONFLICT makes them). An event key repeated under another
    // push key is left to the careful path.
    let mut keys: HashSet<(&str, &str, &str)> = HashSet::new();
    let mut events: HashSet<(&str, &str)> = HashSet::new();
    let mut first = Vec::with_capacity(group.len());
    for (i, e) in group.iter().enumerate() {
        let new_key = keys.insert((e.connection.id.as_str(), e.scan.tracking_number.as_str(), e.scan.scan_id.as_str()));
        if new_key && !events.insert((shipment_of[i].as_str(), prepared.dedup[i].as_str())) {
            return Ok(Unlocked::NotFor);
        }
        first.push(new_key);
    }
    let plan = apply(group, &shipment_of, &mut rows, &mapped, &prepared, |i| first[i], now)?;
    let events = prepared.events(group);
    let scans: Vec<ScanRows<'_>> = prepared
        .scan_rows(group, &shipment_of, &events)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| first[*i])
        .map(|(_, s)| s)
        .collect();
    let states = plan.states(&rows);
    let order: Vec<&str> = states.iter().map(|s| versions[s.id].as_str()).collect();
    let writing = Instant::now();
    match scan_groups::write_unlocked(conn, &states, &order, now, &scans, &plan.history, &plan.outbound).await {
        Ok(()) => Ok(Unlocked::Written((plan.applied, writing.elapsed()))),
        // 40001: a shipment changed since the read; 23505: a scan stored meanwhile (or
        // before: a resent push); 40P01 should not happen (locks are taken in order).
        Err(sqlx::Error::Database(db)) if matches!(db.code().as_deref(), Some("40001" | "23505" | "40P01")) => {
            Ok(Unlocked::Raced)
        }
        Err(e) => Err(e.into()),
    }
}

/// The careful path: the group in one transaction, its shipments read under lock (and
/// created where new), its raw pushes and events kept with ON CONFLICT DO NOTHING, then
/// the rest written from what was stored.
async fn locked(
    conn: &mut PgConnection,
    group: &[Entry<'_>],
    mappings: &[Arc<Mappings>],
) -> Result<(Vec<Applied>, Duration)> {
    // Generic plans for this transaction's statements. Their parameters are arrays, for
    // which a custom plan always looks cheaper than the generic one (it knows the array's
    // length), so the server would plan every statement of every group again (~5 % of its
    // CPU under the P1 load, issue 13); the plans do not depend on the values (unnest
    // joined to primary-key and unique-index probes). PG 15 docs, 20.7.2
    // "plan_cache_mode"; the committers' connections have it set for their whole session
    // (`batch::committer_pool`), and SET LOCAL (in BEGIN's round trip) keeps it so should
    // this run on another connection.
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
    let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
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
            seen.entry(sid).or_default().insert(code);
        }
    }
    let mapped = resolve(group, mappings, &shipment_of, seen);
    let prepared = Prepared::new(group, &mapped);

    // The raw pushes and, for those stored now, the tracking events, in one statement.
    let events = prepared.events(group);
    let kept = scan_groups::keep_scans(&mut tx, &prepared.scan_rows(group, &shipment_of, &events)).await?;
    let now = kept.now.unwrap_or_default();
    let mut added: HashSet<(String, String)> = kept.added.into_iter().collect();

    // Stored only if its push key was new and its event too (the first scan of a
    // repeated key gets the one row added).
    let stored: Vec<bool> =
        (0..group.len()).map(|i| added.remove(&(shipment_of[i].clone(), prepared.dedup[i].clone()))).collect();
    let plan = apply(group, &shipment_of, &mut rows, &mapped, &prepared, |i| stored[i], now)?;
    for &i in &plan.unmapped {
        let e = &group[i];
        store::inbound::note_unmapped(
            &mut tx,
            &e.connection.tenant_id,
            &e.connection.carrier,
            &e.scan.code,
            e.scan.code_text.as_deref(),
        )
        .await?;
    }
    if !plan.touched.is_empty() {
        scan_groups::finish(&mut tx, &plan.states(&rows), &plan.history, &plan.outbound).await?;
    }
    let committing = Instant::now();
    tx.commit().await?;
    Ok((plan.applied, committing.elapsed()))
}

/// Each scan's status by its mapping, given the "after" codes its shipment has seen
/// (`seen`, by shipment id): the stored ones, then the group's own as they come.
fn resolve(
    group: &[Entry<'_>],
    mappings: &[Arc<Mappings>],
    shipment_of: &[String],
    mut seen: HashMap<String, HashSet<String>>,
) -> Vec<Mapped> {
    let mut mapped = Vec::with_capacity(group.len());
    for (i, e) in group.iter().enumerate() {
        let codes = seen.entry(shipment_of[i].clone()).or_default();
        let list: Vec<String> = codes.iter().cloned().collect();
        mapped.push(mappings[i].resolve(&e.scan.code, &list));
        codes.insert(e.scan.code.clone());
    }
    mapped
}

/// What every scan's rows are made of: its event's dedup key, location and columns.
struct Prepared<'a> {
    dedup: Vec<String>,
    locations: Vec<Option<Value>>,
    mapped: &'a [Mapped],
}

impl<'a> Prepared<'a> {
    fn new(group: &[Entry<'_>], mapped: &'a [Mapped]) -> Self {
        Prepared {
            dedup: group.iter().map(|e| format!("{}:{}", e.connection.carrier, e.scan.scan_id)).collect(),
            locations: group
                .iter()
                .map(|e| e.scan.location.as_ref().and_then(|l| serde_json::to_value(l).ok()))
                .collect(),
            mapped,
        }
    }

    fn events<'b>(&'b self, group: &'b [Entry<'b>]) -> Vec<NewEvent<'b>> {
        group
            .iter()
            .enumerate()
            .map(|(i, e)| NewEvent {
                occurred_at: e.scan.occurred_at,
                status: self.mapped[i].as_ref().map(|m| m.0),
                subtag: self.mapped[i].as_ref().and_then(|m| m.1.as_deref()),
                message: e.scan.message.as_deref(),
                location: self.locations[i].as_ref(),
                raw_code: Some(&e.scan.code),
                raw_text: e.scan.code_text.as_deref(),
                actor: e.scan.actor.as_deref(),
                source: "push",
                dedup_key: &self.dedup[i],
            })
            .collect()
    }

    /// Every scan's raw push and tracking event, in the group's order.
    fn scan_rows<'b>(
        &self,
        group: &'b [Entry<'b>],
        shipment_of: &'b [String],
        events: &'b [NewEvent<'b>],
    ) -> Vec<ScanRows<'b>> {
        group
            .iter()
            .zip(events)
            .enumerate()
            .map(|(i, (e, event))| ScanRows {
                tenant_id: &e.connection.tenant_id,
                connection_id: &e.connection.id,
                awb: &e.scan.tracking_number,
                status_update_number: &e.scan.scan_id,
                shipment_id: &shipment_of[i],
                payload: e.raw,
                event,
            })
            .collect()
    }
}

/// What a group writes after its raw pushes and events, computed scan by scan.
struct Plan<'a> {
    applied: Vec<Applied>,
    history: Vec<History<'a>>,
    outbound: Vec<Outbound<'a>>,
    /// The shipments written, in the group's (lock) order.
    touched: Vec<&'a str>,
    counts: HashMap<&'a str, i32>,
    moved: HashSet<&'a str>,
    /// The scans whose code had no mapping.
    unmapped: Vec<usize>,
}

impl Plan<'_> {
    fn states<'r>(&'r self, rows: &'r HashMap<String, ShipmentRow>) -> Vec<ShipmentState<'r>> {
        self.touched
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
                    events: self.counts[sid],
                    moved: self.moved.contains(sid),
                }
            })
            .collect()
    }
}

/// Scan by scan, what the lone statements would compute (mapping, forward-only status,
/// latest event, history, outbound events, each built from the row as the scans before
/// it left it), for the scans `stored` says are written; the others are duplicates.
/// `now` is the shipments' new `updated_at`.
fn apply<'a>(
    group: &'a [Entry<'a>],
    shipment_of: &'a [String],
    rows: &mut HashMap<String, ShipmentRow>,
    mapped: &[Mapped],
    prepared: &Prepared<'_>,
    stored: impl Fn(usize) -> bool,
    now: DateTime<Utc>,
) -> Result<Plan<'a>> {
    let mut plan = Plan {
        applied: Vec::with_capacity(group.len()),
        history: Vec::new(),
        outbound: Vec::new(),
        touched: Vec::new(),
        counts: HashMap::new(),
        moved: HashSet::new(),
        unmapped: Vec::new(),
    };
    for (i, e) in group.iter().enumerate() {
        let sid = shipment_of[i].as_str();
        if !stored(i) {
            plan.applied.push(Applied::Duplicate { shipment_id: sid.to_owned() });
            continue;
        }
        let row = rows.get_mut(sid).expect("every scan's shipment is read");
        let tenant = e.connection.tenant_id.as_str();
        let mapping = &mapped[i];
        let (status, subtag) = (mapping.as_ref().map(|m| m.0), mapping.as_ref().and_then(|m| m.1.as_deref()));
        let before = (row.status, row.subtag.clone());
        let moves = mapping.as_ref().filter(|(s, t)| may_transition(before.0, before.1.as_deref(), *s, t.as_deref()));
        let ev_json = ingest::event_json(e.scan, status, subtag, prepared.locations[i].as_ref(), &prepared.dedup[i]);
        let latest = ingest::is_latest(row, e.scan.occurred_at);
        plan.history.push((tenant, sid, "events_added", json!({"count": 1, "events": [ev_json.clone()]})));
        if let Some((s, t)) = moves {
            plan.history.push((
                tenant,
                sid,
                "status_changed",
                json!({"from": before.0, "from_subtag": before.1, "to": s, "to_subtag": t, "carrier_status": e.scan.code}),
            ));
            row.status = *s;
            row.subtag = t.clone();
            plan.moved.insert(sid);
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
        if !plan.touched.contains(&sid) {
            plan.touched.push(sid);
        }
        for (event_type, data) in these {
            *plan.counts.entry(sid).or_default() += 1;
            plan.outbound.push(Outbound {
                tenant_id: tenant,
                id: ids::new_id("evt"),
                shipment_id: sid,
                back: 0,
                event_type,
                data,
            });
        }
        if mapping.is_none() {
            plan.unmapped.push(i);
        }
        plan.applied.push(Applied::Stored { shipment_id: sid.to_owned(), unmapped: mapping.is_none() });
    }
    // Each outbound event's distance from its shipment's last one in the group.
    let mut left = plan.counts.clone();
    for ev in &mut plan.outbound {
        let n = left.get_mut(ev.shipment_id).expect("counted");
        *n -= 1;
        ev.back = *n;
    }
    Ok(plan)
}
