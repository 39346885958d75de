//! The simulator's memory: access tokens, shipments per organisation, the fault queue, the
//! request log and counters. Shipments live in one creation-ordered `Vec` per organisation,
//! so an overview page is a slice (cheap for 10,000 shipments) and never shifts.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{EcmrStats, RecordedRequest, SimFault};

/// The shipment statuses of docs/carriers/ecmr.md's `ecmr` section, in the order a transport goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Sent,
    Accepted,
    Planned,
    Loading,
    Departed,
    InProgress,
    Arrived,
    Unloaded,
    Delivered,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Sent => "sent",
            Status::Accepted => "accepted",
            Status::Planned => "planned",
            Status::Loading => "loading",
            Status::Departed => "departed",
            Status::InProgress => "in_progress",
            Status::Arrived => "arrived",
            Status::Unloaded => "unloaded",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
        }
    }

    /// The next status of the normal life, with who moves it there and what they did.
    fn next(self) -> Option<(Status, &'static str, &'static str)> {
        Some(match self {
            Status::Created => (Status::Sent, "consignor", "eCMR sent to the carrier"),
            Status::Sent => (Status::Accepted, "carrier", "Transport order accepted"),
            Status::Accepted => (Status::Planned, "carrier planner", "Trip planned"),
            Status::Planned => (Status::Loading, "driver", "Loading at the taking-over place"),
            Status::Loading => (Status::Departed, "driver", "Departed, CMR signed by the consignor"),
            Status::Departed => (Status::InProgress, "driver", "On the road"),
            Status::InProgress => (Status::Arrived, "driver", "Arrived at the place of delivery"),
            Status::Arrived => (Status::Unloaded, "consignee", "Goods unloaded"),
            Status::Unloaded => (Status::Delivered, "consignee", "Goods received, CMR signed by the consignee"),
            Status::Delivered | Status::Cancelled => return None,
        })
    }

    /// A store by reference may still change the shipment (nothing was loaded yet).
    pub(crate) fn editable(self) -> bool {
        matches!(self, Status::Created | Status::Sent | Status::Accepted | Status::Planned)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct HistoryEntry {
    pub status: Status,
    pub at: DateTime<Utc>,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl HistoryEntry {
    pub fn render(&self) -> Value {
        let mut m = Map::new();
        m.insert("status".into(), json!(self.status.as_str()));
        m.insert("at".into(), json!(rfc3339(self.at)));
        m.insert("by".into(), json!(self.by));
        if let Some(note) = &self.note {
            m.insert("note".into(), json!(note));
        }
        Value::Object(m)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Shipment {
    pub seq: u64,
    pub tracking_number: String,
    pub reference: String,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The `shipment` object as the client stored it (validated).
    pub data: Map<String, Value>,
    pub history: Vec<HistoryEntry>,
}

impl Shipment {
    /// The overview's line for this shipment.
    pub fn summary(&self) -> Value {
        json!({
            "tracking_number": self.tracking_number,
            "reference": self.reference,
            "status": self.status.as_str(),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }

    pub fn inspect(&self, org: &str) -> Value {
        json!({
            "organization_id": org,
            "tracking_number": self.tracking_number,
            "reference": self.reference,
            "status": self.status.as_str(),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "shipment": self.data,
            "history": self.history.iter().map(HistoryEntry::render).collect::<Vec<_>>(),
        })
    }

    fn push_history(&mut self, status: Status, by: &str, note: Option<String>) {
        let now = Utc::now();
        // History times never go backwards, even if the wall clock does.
        let at = self.history.last().map_or(now, |h| h.at.max(now));
        self.status = status;
        self.updated_at = at;
        self.history.push(HistoryEntry { status, at, by: by.to_owned(), note });
    }
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Default)]
pub(crate) struct OrgShipments {
    pub list: Vec<Shipment>,
    by_reference: HashMap<String, usize>,
}

pub(crate) struct AccessToken {
    pub organization_id: String,
    pub expires_at: Instant,
}

pub(crate) enum Stored {
    Created(String),
    Updated(String, Status),
}

pub(crate) struct State {
    pub tokens: HashMap<String, AccessToken>,
    token_seq: u64,
    token_salt: u64,
    orgs: HashMap<String, OrgShipments>,
    /// tracking number → (organisation, position in its list)
    index: HashMap<String, (String, usize)>,
    next_seq: u64,
    pub faults: crate::common::Faults<SimFault>,
    pub requests: VecDeque<RecordedRequest>,
    pub stats: EcmrStats,
}

impl State {
    pub fn new() -> Self {
        let salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        State {
            tokens: HashMap::new(),
            token_seq: 0,
            token_salt: salt ^ (std::process::id() as u64).rotate_left(32),
            orgs: HashMap::new(),
            index: HashMap::new(),
            next_seq: 1,
            faults: crate::common::Faults::default(),
            requests: VecDeque::new(),
            stats: EcmrStats::default(),
        }
    }

    /// The next fault queued for `op`, if any.
    pub fn take_fault(&mut self, op: &str) -> Option<SimFault> {
        let fault = self.faults.take(op)?;
        self.stats.faults_injected += 1;
        Some(fault)
    }

    pub fn issue_token(&mut self, organization_id: &str, expires_at: Instant) -> String {
        self.token_seq += 1;
        let a = splitmix64(self.token_seq ^ self.token_salt);
        let b = splitmix64(a ^ self.token_seq.rotate_left(17));
        let token = format!("{a:016x}{b:016x}");
        if self.tokens.len() >= 10_000 {
            let now = Instant::now();
            self.tokens.retain(|_, t| t.expires_at > now);
        }
        self.tokens.insert(token.clone(), AccessToken { organization_id: organization_id.to_owned(), expires_at });
        token
    }

    pub fn shipment_count(&self) -> usize {
        self.index.len()
    }

    pub fn get(&self, tracking_number: &str) -> Option<(&str, &Shipment)> {
        let (org, pos) = self.index.get(tracking_number)?;
        Some((org.as_str(), &self.orgs.get(org)?.list[*pos]))
    }

    fn get_mut(&mut self, tracking_number: &str) -> Option<(String, &mut Shipment)> {
        let (org, pos) = self.index.get(tracking_number)?.clone();
        let list = &mut self.orgs.get_mut(&org)?.list;
        Some((org, &mut list[pos]))
    }

    pub fn by_reference(&self, org: &str, reference: &str) -> Option<&Shipment> {
        let o = self.orgs.get(org)?;
        o.by_reference.get(reference).map(|&i| &o.list[i])
    }

    /// A page of the organisation's shipments (1-based `page`) and their total.
    pub fn page(&self, org: &str, page: u64, per_page: u64) -> (Vec<Value>, usize) {
        let Some(o) = self.orgs.get(org) else { return (Vec::new(), 0) };
        let start = (page - 1).saturating_mul(per_page).min(o.list.len() as u64) as usize;
        let end = (start + per_page as usize).min(o.list.len());
        (o.list[start..end].iter().map(Shipment::summary).collect(), o.list.len())
    }

    /// Creates the shipment, or updates the one with the same reference (docs/carriers/ecmr.md, *ours*).
    pub fn store(&mut self, org: &str, reference: String, data: Map<String, Value>) -> Result<Stored, Status> {
        let o = self.orgs.entry(org.to_owned()).or_default();
        if let Some(&pos) = o.by_reference.get(&reference) {
            let s = &mut o.list[pos];
            if !s.status.editable() {
                return Err(s.status);
            }
            s.data = data;
            s.updated_at = Utc::now().max(s.updated_at);
            return Ok(Stored::Updated(s.tracking_number.clone(), s.status));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let tracking_number = format!("ECMR{seq:010}");
        let now = Utc::now();
        let mut s = Shipment {
            seq,
            tracking_number: tracking_number.clone(),
            reference: reference.clone(),
            status: Status::Created,
            created_at: now,
            updated_at: now,
            data,
            history: Vec::new(),
        };
        s.push_history(Status::Created, &format!("{org} (API)"), Some("Shipment stored via the API".into()));
        o.by_reference.insert(reference, o.list.len());
        self.index.insert(tracking_number.clone(), (org.to_owned(), o.list.len()));
        o.list.push(s);
        Ok(Stored::Created(tracking_number))
    }

    /// Stores `count` shipments for `org` at once, each as the API would (references
    /// `prefix-1` … `prefix-count`, a minimal CMR body), for tests and benchmarks at scale.
    pub fn seed(&mut self, org: &str, prefix: &str, count: usize) -> Vec<String> {
        let mut numbers = Vec::with_capacity(count);
        for i in 1..=count {
            let mut data = Map::new();
            data.insert("reference".into(), Value::String(format!("{prefix}-{i}")));
            if let Ok(Stored::Created(n)) = self.store(org, format!("{prefix}-{i}"), data) {
                numbers.push(n);
            }
        }
        numbers
    }

    /// Removes a shipment as if the organisation's administrator deleted it in the web
    /// application: it is gone from the overview and its details answer 404. Later
    /// shipments move up one place in the overview.
    pub fn delete(&mut self, tracking_number: &str) -> Result<(), String> {
        let (org, pos) =
            self.index.remove(tracking_number).ok_or_else(|| format!("unknown tracking number {tracking_number}"))?;
        let o = self.orgs.get_mut(&org).ok_or("organisation vanished")?;
        let removed = o.list.remove(pos);
        o.by_reference.remove(&removed.reference);
        for (i, s) in o.list.iter().enumerate().skip(pos) {
            o.by_reference.insert(s.reference.clone(), i);
            self.index.insert(s.tracking_number.clone(), (org.clone(), i));
        }
        Ok(())
    }

    pub fn advance(&mut self, tracking_number: &str) -> Result<Status, String> {
        let (_, s) =
            self.get_mut(tracking_number).ok_or_else(|| format!("unknown tracking number {tracking_number}"))?;
        let (next, by, note) = s
            .status
            .next()
            .ok_or_else(|| format!("shipment {tracking_number} is {}: no next status", s.status.as_str()))?;
        s.push_history(next, by, Some(note.to_owned()));
        Ok(next)
    }

    pub fn cancel(&mut self, tracking_number: &str) -> Result<(), String> {
        let (org, s) =
            self.get_mut(tracking_number).ok_or_else(|| format!("unknown tracking number {tracking_number}"))?;
        if matches!(s.status, Status::Delivered | Status::Cancelled) {
            return Err(format!("shipment {tracking_number} is {}: it cannot be cancelled", s.status.as_str()));
        }
        s.push_history(Status::Cancelled, &org, Some("Shipment cancelled".into()));
        Ok(())
    }

    pub fn export(&self) -> Value {
        let mut all: Vec<(&str, &Shipment)> =
            self.orgs.iter().flat_map(|(org, o)| o.list.iter().map(move |s| (org.as_str(), s))).collect();
        all.sort_by_key(|(_, s)| s.seq);
        let shipments: Vec<Value> = all
            .into_iter()
            .map(|(org, s)| {
                let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("organization_id".into(), json!(org));
                }
                v
            })
            .collect();
        json!({"version": 1, "next_seq": self.next_seq, "shipments": shipments})
    }

    /// Builds the shipment part of a state from an `export()` value, checking it is whole.
    pub fn import(value: &Value) -> Result<State, String> {
        if value.get("version").and_then(Value::as_u64) != Some(1) {
            return Err("state.version must be 1".into());
        }
        let list = value.get("shipments").and_then(Value::as_array).ok_or("state.shipments must be an array")?;
        let mut st = State::new();
        let mut max_seq = 0;
        for (i, item) in list.iter().enumerate() {
            let org = item
                .get("organization_id")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("state.shipments[{i}].organization_id is required"))?
                .to_owned();
            let s: Shipment = serde_json::from_value(item.clone()).map_err(|e| format!("state.shipments[{i}]: {e}"))?;
            if st.index.contains_key(&s.tracking_number) {
                return Err(format!("state.shipments[{i}]: duplicate tracking number {}", s.tracking_number));
            }
            let o = st.orgs.entry(org.clone()).or_default();
            if o.by_reference.contains_key(&s.reference) {
                return Err(format!("state.shipments[{i}]: duplicate reference {} for {org}", s.reference));
            }
            max_seq = max_seq.max(s.seq);
            o.by_reference.insert(s.reference.clone(), o.list.len());
            st.index.insert(s.tracking_number.clone(), (org, o.list.len()));
            o.list.push(s);
        }
        for o in st.orgs.values() {
            if o.list.windows(2).any(|w| w[0].seq >= w[1].seq) {
                return Err("state.shipments must be in creation order (seq ascending)".into());
            }
        }
        let next = value.get("next_seq").and_then(Value::as_u64).unwrap_or(1);
        st.next_seq = next.max(max_seq + 1);
        Ok(st)
    }

    pub fn replace_shipments(&mut self, other: State) {
        self.orgs = other.orgs;
        self.index = other.index;
        self.next_seq = other.next_seq;
        self.tokens.clear();
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
