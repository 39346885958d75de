//! The simulator's trackings and how they move through their life.
//!
//! A tracking keeps what the client gave it (`fields`, keyed by the 2024-04 Tracking
//! model's own names) apart from what AfterShip itself decides (tag, subtag, checkpoints,
//! `active`, retrack count), so that rendering can answer every model field from one place.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How many times one tracking may be retracked: "Retrack an expired tracking. Max 3 times
/// per tracking." (seed 002, Retrack an expired tracking).
pub const MAX_RETRACKS: u32 = 3;

/// The lifecycle `advance` walks, as AfterShip reports a shipment that goes well: tag,
/// subtag, subtag message (AfterShip's Delivery Sub-statuses list), the checkpoint message,
/// and whether the checkpoint is at the origin (else at the destination).
pub(crate) const STAGES: &[Stage] = &[
    Stage { tag: "Pending", subtag: "Pending_001", subtag_message: "Pending", message: "", at_origin: true },
    Stage {
        tag: "InfoReceived",
        subtag: "InfoReceived_001",
        subtag_message: "Info Received",
        message: "Shipment information received",
        at_origin: true,
    },
    Stage {
        tag: "InTransit",
        subtag: "InTransit_001",
        subtag_message: "In Transit",
        message: "Shipment picked up and in transit",
        at_origin: true,
    },
    Stage {
        tag: "OutForDelivery",
        subtag: "OutForDelivery_001",
        subtag_message: "Out for Delivery",
        message: "Out for delivery",
        at_origin: false,
    },
    Stage {
        tag: "Delivered",
        subtag: "Delivered_001",
        subtag_message: "Delivered",
        message: "Delivered",
        at_origin: false,
    },
];

pub(crate) struct Stage {
    pub tag: &'static str,
    pub subtag: &'static str,
    pub subtag_message: &'static str,
    pub message: &'static str,
    pub at_origin: bool,
}

/// Index of `InTransit` in [`STAGES`]: the shipment is picked up from there on.
const PICKED_UP_STAGE: usize = 2;
/// Index of `Delivered`, the last stage.
const DELIVERED_STAGE: usize = 4;

/// Mark-as-completed reasons and what they set (seed 002, Mark tracking as completed).
pub(crate) fn completion(reason: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match reason {
        "DELIVERED" => Some(("Delivered", "Delivered_001", "Delivered")),
        "LOST" => Some(("Exception", "Exception_013", "Shipment lost")),
        "RETURNED_TO_SENDER" => Some(("Exception", "Exception_011", "Returned to sender")),
        _ => None,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredCheckpoint {
    pub created_at: DateTime<Utc>,
    pub checkpoint_time: DateTime<Utc>,
    pub tag: String,
    pub subtag: String,
    pub subtag_message: String,
    pub message: String,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country_iso3: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredTracking {
    /// Creation order (lists answer newest first).
    pub seq: u64,
    pub id: String,
    pub tracking_number: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub active: bool,
    pub tag: String,
    pub subtag: String,
    pub subtag_message: String,
    /// Position in [`STAGES`] (the last good-path stage reached).
    pub stage: usize,
    pub checkpoints: Vec<StoredCheckpoint>,
    pub retracks: u32,
    pub tracked_count: u32,
    /// What the client set through create/update, under the Tracking model's names.
    pub fields: Map<String, Value>,
    pub picked_up_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub expected_delivery: Option<String>,
    /// Tags under which a webhook was already pushed (for `is_tracking_first_tag`).
    #[serde(default)]
    pub webhook_tags: Vec<String>,
}

impl StoredTracking {
    pub fn new(
        seq: u64,
        tracking_number: String,
        slug: String,
        fields: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Self {
        let first = &STAGES[0];
        StoredTracking {
            seq,
            id: tracking_id(seq),
            tracking_number,
            slug,
            created_at: now,
            updated_at: now,
            active: true,
            tag: first.tag.to_owned(),
            subtag: first.subtag.to_owned(),
            subtag_message: first.subtag_message.to_owned(),
            stage: 0,
            checkpoints: Vec::new(),
            retracks: 0,
            tracked_count: 1,
            fields,
            picked_up_at: None,
            delivered_at: None,
            expected_delivery: None,
            webhook_tags: Vec::new(),
        }
    }

    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// One step along the good path, with its checkpoint. Only an active tracking moves:
    /// AfterShip stops fetching updates for an inactive one until it is retracked.
    pub fn advance(&mut self, now: DateTime<Utc>) -> Result<(), String> {
        if !self.active {
            return Err(format!("tracking {} is inactive ({}); retrack it first", self.id, self.tag));
        }
        if self.stage >= DELIVERED_STAGE {
            return Err(format!("tracking {} is already delivered", self.id));
        }
        self.stage += 1;
        let stage = &STAGES[self.stage];
        let (city, state, zip, country) = if stage.at_origin {
            ("origin_city", "origin_state", "origin_postal_code", "origin_country_iso3")
        } else {
            ("destination_city", "destination_state", "destination_postal_code", "destination_country_iso3")
        };
        let text = |k: &str| self.field_str(k).map(str::to_owned);
        self.checkpoints.push(StoredCheckpoint {
            created_at: now,
            checkpoint_time: now,
            tag: stage.tag.to_owned(),
            subtag: stage.subtag.to_owned(),
            subtag_message: stage.subtag_message.to_owned(),
            message: stage.message.to_owned(),
            city: text(city),
            state: text(state),
            zip: text(zip),
            country_iso3: text(country),
        });
        self.set_tag(stage.tag, stage.subtag, stage.subtag_message);
        if self.stage == PICKED_UP_STAGE {
            self.picked_up_at = Some(now);
            // A plain "three days after pickup" promise, as a date (the 2024-04 model
            // keeps `expected_delivery` a string).
            self.expected_delivery = Some((now + ChronoDuration::days(3)).format("%Y-%m-%d").to_string());
        }
        if self.stage == DELIVERED_STAGE {
            self.delivered_at = Some(now);
            // `active` is false once a tracking is Delivered (AfterShip Tracking model,
            // `active`: "false when tag is Delivered, Expired, or ...").
            self.active = false;
        }
        self.touch(now);
        Ok(())
    }

    /// Expired and inactive: what AfterShip reports when a tracking had no update for too
    /// long; only such an inactive tracking can be retracked.
    pub fn expire(&mut self, now: DateTime<Utc>) {
        self.set_tag("Expired", "Expired_001", "Expired");
        self.active = false;
        self.touch(now);
    }

    pub fn mark_completed(&mut self, reason: &str, now: DateTime<Utc>) -> bool {
        let Some((tag, subtag, message)) = completion(reason) else { return false };
        self.set_tag(tag, subtag, message);
        if reason == "DELIVERED" {
            self.stage = DELIVERED_STAGE;
            self.delivered_at.get_or_insert(now);
        }
        // "The tracking won't auto update until retrack it." (seed 002)
        self.active = false;
        self.touch(now);
        true
    }

    /// Retrack: only an inactive tracking, at most [`MAX_RETRACKS`] times.
    pub fn retrack(&mut self, now: DateTime<Utc>) -> Result<(), RetrackRefusal> {
        if self.active {
            return Err(RetrackRefusal::StillActive);
        }
        if self.retracks >= MAX_RETRACKS {
            return Err(RetrackRefusal::LimitReached);
        }
        self.retracks += 1;
        self.active = true;
        self.tracked_count += 1;
        self.touch(now);
        Ok(())
    }

    fn set_tag(&mut self, tag: &str, subtag: &str, message: &str) {
        tag.clone_into(&mut self.tag);
        subtag.clone_into(&mut self.subtag);
        message.clone_into(&mut self.subtag_message);
    }

    pub fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetrackRefusal {
    /// Meta 4013: "Retrack is not allowed. You can only retrack an inactive tracking."
    StillActive,
    /// Meta 4016: the retrack limit (3 per tracking) is reached.
    LimitReached,
}

/// The trackings, by creation order, id and (slug, tracking number): AfterShip keys a
/// tracking by its slug and number ("a slug, a tracking number ... forms a unique key of a
/// tracking object", AfterShip/aftership-sdk-nodejs issue #73).
#[derive(Debug, Default)]
pub(crate) struct Store {
    by_seq: BTreeMap<u64, StoredTracking>,
    by_id: HashMap<String, u64>,
    by_number: HashMap<(String, String), u64>,
    pub next_seq: u64,
}

impl Store {
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub fn insert(&mut self, t: StoredTracking) {
        self.next_seq = self.next_seq.max(t.seq);
        self.by_id.insert(t.id.clone(), t.seq);
        self.by_number.insert((t.slug.clone(), t.tracking_number.clone()), t.seq);
        self.by_seq.insert(t.seq, t);
    }

    pub fn seq_of_id(&self, id: &str) -> Option<u64> {
        self.by_id.get(id).copied()
    }

    pub fn seq_of_number(&self, slug: &str, number: &str) -> Option<u64> {
        self.by_number.get(&(slug.to_owned(), number.to_owned())).copied()
    }

    pub fn get(&self, seq: u64) -> Option<&StoredTracking> {
        self.by_seq.get(&seq)
    }

    pub fn get_mut(&mut self, seq: u64) -> Option<&mut StoredTracking> {
        self.by_seq.get_mut(&seq)
    }

    /// Move a tracking to another slug (an update may change it).
    pub fn reslug(&mut self, seq: u64, slug: &str) {
        if let Some(t) = self.by_seq.get_mut(&seq) {
            self.by_number.remove(&(t.slug.clone(), t.tracking_number.clone()));
            slug.clone_into(&mut t.slug);
            self.by_number.insert((t.slug.clone(), t.tracking_number.clone()), seq);
        }
    }

    pub fn remove(&mut self, seq: u64) -> Option<StoredTracking> {
        let t = self.by_seq.remove(&seq)?;
        self.by_id.remove(&t.id);
        self.by_number.remove(&(t.slug.clone(), t.tracking_number.clone()));
        Some(t)
    }

    /// Newest first.
    pub fn iter_newest(&self) -> impl Iterator<Item = &StoredTracking> {
        self.by_seq.values().rev()
    }

    pub fn iter(&self) -> impl Iterator<Item = &StoredTracking> {
        self.by_seq.values()
    }

    pub fn clear(&mut self) {
        *self = Store::default();
    }
}

/// A deterministic 24-character lowercase alphanumeric id, the shape of AfterShip's
/// tracking ids (e.g. `rft4xu2rs1um1lwhm8j1p02r` in the 2.0.2 SDK README).
pub(crate) fn tracking_id(seq: u64) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(24);
    let mut words = [splitmix64(seq.wrapping_mul(2)), splitmix64(seq.wrapping_mul(2) + 1)];
    for i in 0..24 {
        let w = &mut words[i / 12];
        out.push(ALPHABET[(*w % 36) as usize] as char);
        *w /= 36;
    }
    out
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether `id` has the shape of an AfterShip tracking id (see [`tracking_id`]).
pub(crate) fn looks_like_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_24_lowercase_alphanumerics_and_distinct() {
        let ids: Vec<String> = (0..1000).map(tracking_id).collect();
        assert!(ids.iter().all(|i| looks_like_id(i)));
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }

    #[test]
    fn lifecycle_walks_to_delivered_then_stops() {
        let now = Utc::now();
        let mut t = StoredTracking::new(1, "ABCD1234".into(), "ecms".into(), Map::new(), now);
        for _ in 0..4 {
            t.advance(now).unwrap();
        }
        assert_eq!((t.tag.as_str(), t.subtag.as_str(), t.active), ("Delivered", "Delivered_001", false));
        assert_eq!(t.checkpoints.len(), 4);
        assert!(t.advance(now).is_err());
    }

    #[test]
    fn retrack_only_inactive_and_at_most_three_times() {
        let now = Utc::now();
        let mut t = StoredTracking::new(1, "ABCD1234".into(), "ecms".into(), Map::new(), now);
        assert_eq!(t.retrack(now), Err(RetrackRefusal::StillActive));
        for _ in 0..3 {
            t.expire(now);
            t.retrack(now).unwrap();
        }
        t.expire(now);
        assert_eq!(t.retrack(now), Err(RetrackRefusal::LimitReached));
    }
}
