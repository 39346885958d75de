//! What the simulated e-Courier site keeps: UserGUID sessions, orders and their
//! progress, and the rules SaveOrder applies to an order that already exists.

use super::validate::{Elem, ValidOrder};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The first OrderID handed out; SiteOrderID counts from 1 beside it.
pub(crate) const FIRST_ORDER_ID: u64 = 2073;

/// Where an order is in its life, as e-Courier's Jobs and JobStops report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStage {
    /// Saved, no driver yet (OrderStatus N).
    New,
    /// A driver has the job (OrderStatus A, a Job with a Driver appears).
    Assigned,
    /// The pickup stops are done (arrive/depart times, pieces picked up).
    PickedUp,
    /// The destination stops are done, with proof of delivery.
    Delivered,
}

impl OrderStage {
    fn next(self) -> Option<Self> {
        match self {
            Self::New => Some(Self::Assigned),
            Self::Assigned => Some(Self::PickedUp),
            Self::PickedUp => Some(Self::Delivered),
            Self::Delivered => None,
        }
    }

    fn previous(self) -> Option<Self> {
        match self {
            Self::New => None,
            Self::Assigned => Some(Self::New),
            Self::PickedUp => Some(Self::Assigned),
            Self::Delivered => Some(Self::PickedUp),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderEvent {
    pub id: u64,
    pub event_type: String,
    pub at: NaiveDateTime,
    pub user_name: String,
    pub user_id: u64,
    pub note: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredOrder {
    pub order_id: u64,
    pub order_number: String,
    pub customer_code: String,
    pub customer_id: u64,
    /// OrderStatus: N, A, X, T (or I/P when set through the knob).
    pub status: String,
    /// What was ordered, without OrderNumber / OrderStatus / CustomerCode.
    pub doc: Elem,
    pub created: NaiveDateTime,
    /// The UserGUID of the session that last saved the order (the reference's
    /// GetJsonOrder example carries an `@UserGUID`).
    pub user_guid: String,
    pub stage: OrderStage,
    pub assigned_at: Option<NaiveDateTime>,
    pub picked_up_at: Option<NaiveDateTime>,
    pub delivered_at: Option<NaiveDateTime>,
    pub events: Vec<OrderEvent>,
    /// The `PodSign` text a test set (`set_pod_sign`) in place of the rendered signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_sign: Option<String>,
}

impl StoredOrder {
    /// The driver the order is dispatched to, chosen from the OrderID.
    pub(crate) fn driver_id(&self) -> u64 {
        17 + self.order_id % 3
    }

    pub(crate) fn is_open(&self) -> bool {
        !matches!(self.status.as_str(), "X" | "T") && self.stage != OrderStage::Delivered
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub account: usize,
    pub direct: bool,
    pub last_used: Instant,
}

/// The session a call was made in.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub account: usize,
    /// `{GUID}`, upper case.
    pub guid: String,
}

/// Normalises a UserGUID: braces optional, case-insensitive (what .NET's Guid parser
/// accepts); the key is the bare upper-case form.
pub(crate) fn guid_key(raw: &str) -> String {
    let trimmed = raw.trim();
    let bare = trimmed.strip_prefix('{').and_then(|s| s.strip_suffix('}')).unwrap_or(trimmed);
    bare.to_ascii_uppercase()
}

pub(crate) fn braced(key: &str) -> String {
    format!("{{{key}}}")
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub orders: BTreeMap<String, StoredOrder>,
    pub tokens: HashMap<String, Token>,
    pub next_order_id: u64,
    pub next_event_id: u64,
}

/// What a SaveOrder did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Saved {
    Created,
    Updated,
    Unchanged,
    Cancelled,
}

/// Why a SaveOrder was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// -4 "Order Not Found": a cancel of an order that does not exist.
    NotFound,
    /// -4 with this text.
    Invalid(String),
    /// HTTP 409 "Order Unable to Cancel".
    UnableToCancel,
    /// HTTP 409 "Order Unable to Modify".
    UnableToModify,
}

/// Who is saving: the account's customer and the session's user.
pub(crate) struct Saver<'a> {
    pub customer_code: &'a str,
    pub customer_id: u64,
    pub user_name: &'a str,
    pub user_id: u64,
    pub guid: &'a str,
}

impl State {
    pub(crate) fn new() -> Self {
        Self { next_order_id: FIRST_ORDER_ID, next_event_id: 1, ..Self::default() }
    }

    /// The session of a UserGUID header, renewing it. Unknown, expired or missing
    /// tokens give `None` (-5). An expired token is forgotten.
    pub(crate) fn authenticate(&mut self, header: Option<&str>, ttl: Duration, now: Instant) -> Option<Session> {
        let key = guid_key(header?);
        if key.is_empty() {
            return None;
        }
        let token = self.tokens.get_mut(&key)?;
        if now.saturating_duration_since(token.last_used) > ttl {
            self.tokens.remove(&key);
            return None;
        }
        token.last_used = now;
        Some(Session { account: token.account, guid: braced(&key) })
    }

    fn event(
        &mut self,
        event_type: &str,
        at: NaiveDateTime,
        who: (&str, u64),
        note: String,
        source: &str,
    ) -> OrderEvent {
        let id = self.next_event_id;
        self.next_event_id += 1;
        OrderEvent {
            id,
            event_type: event_type.to_owned(),
            at,
            user_name: who.0.to_owned(),
            user_id: who.1,
            note,
            source: source.to_owned(),
        }
    }

    /// SaveOrder: create, or update / cancel the order with this OrderNumber.
    ///
    /// Rules (the reference only says 409 follows "business rules set by e-Courier
    /// customer"; these are ours): a cancel (`OrderStatus` X) is allowed until the
    /// pickup is done, then 409 "Order Unable to Cancel"; cancelling a deleted order
    /// again changes nothing. Any other change is allowed until the pickup is done,
    /// then 409 "Order Unable to Modify"; a deleted order cannot be modified; a post
    /// identical to what is stored changes nothing and succeeds (a retry).
    pub(crate) fn save(&mut self, order: ValidOrder, who: &Saver, now: NaiveDateTime) -> Result<Saved, Refused> {
        let ValidOrder { doc, order_number, status } = order;
        let user = (who.user_name, who.user_id);
        let existing = order_number.as_ref().and_then(|n| self.orders.get(n));
        let Some(existing) = existing else {
            if status.as_deref() == Some("X") {
                return Err(Refused::NotFound);
            }
            let number = match order_number {
                Some(number) => number,
                None => self.free_number(),
            };
            let order_id = self.next_order_id;
            self.next_order_id += 1;
            let event = self.event("Create", now, user, "Order created via API".to_owned(), "API");
            let order = StoredOrder {
                order_id,
                order_number: number.clone(),
                customer_code: who.customer_code.to_owned(),
                customer_id: who.customer_id,
                status: if status.as_deref() == Some("T") { "T" } else { "N" }.to_owned(),
                doc,
                created: now,
                user_guid: who.guid.to_owned(),
                stage: OrderStage::New,
                assigned_at: None,
                picked_up_at: None,
                delivered_at: None,
                events: vec![event],
                pod_sign: None,
            };
            self.orders.insert(number, order);
            return Ok(Saved::Created);
        };
        if existing.customer_code != who.customer_code {
            return Err(Refused::Invalid(format!(
                "Order/OrderNumber '{}' belongs to another customer",
                existing.order_number
            )));
        }
        let number = existing.order_number.clone();
        let current = existing.status.clone();
        let picked_up = existing.stage >= OrderStage::PickedUp;
        let unchanged = existing.doc == doc;
        if status.as_deref() == Some("X") {
            if current == "X" {
                return Ok(Saved::Unchanged);
            }
            if picked_up {
                return Err(Refused::UnableToCancel);
            }
            let event = self.event("Status Change", now, user, format!("Status changed from {current} to X"), "API");
            if let Some(order) = self.orders.get_mut(&number) {
                order.status = "X".to_owned();
                order.doc = doc;
                order.user_guid = who.guid.to_owned();
                order.events.push(event);
            }
            return Ok(Saved::Cancelled);
        }
        if current == "X" {
            return Err(Refused::UnableToModify);
        }
        if status.as_deref() == Some("T") && current != "T" {
            return Err(Refused::Invalid(format!("Order/OrderStatus cannot change from {current} to T")));
        }
        if unchanged {
            return Ok(Saved::Unchanged);
        }
        if picked_up {
            return Err(Refused::UnableToModify);
        }
        let event = self.event("Modify", now, user, "Order modified via API".to_owned(), "API");
        if let Some(order) = self.orders.get_mut(&number) {
            order.doc = doc;
            order.user_guid = who.guid.to_owned();
            order.events.push(event);
        }
        Ok(Saved::Updated)
    }

    /// An OrderNumber for an order posted without one: its OrderID, as in the
    /// reference's GetJsonOrder example (`@OrderID` 2073, `@OrderNumber` 2073).
    fn free_number(&mut self) -> String {
        while self.orders.contains_key(&self.next_order_id.to_string()) {
            self.next_order_id += 1;
        }
        self.next_order_id.to_string()
    }

    /// Moves an open order one step through its life.
    pub(crate) fn advance(&mut self, number: &str, now: NaiveDateTime) -> Result<OrderStage, String> {
        let order = self.orders.get(number).ok_or_else(|| format!("no order {number}"))?;
        match order.status.as_str() {
            "X" => return Err(format!("order {number} is deleted (X)")),
            "T" => return Err(format!("order {number} is a template (T)")),
            _ => {}
        }
        let next = order.stage.next().ok_or_else(|| format!("order {number} is already delivered"))?;
        let driver = format!("D{}", order.driver_id());
        let (event_type, note, source) = match next {
            OrderStage::Assigned => {
                ("Status Change", format!("Status changed from {} to A, driver {driver}", order.status), "Dispatch")
            }
            OrderStage::PickedUp => ("Pickup", pickup_note(order), "Mobile"),
            OrderStage::Delivered | OrderStage::New => {
                ("POD", format!("Delivered, signed by {}", pod_name(order)), "Mobile")
            }
        };
        let event = self.event(event_type, now, (&driver, order.driver_id()), note, source);
        let order = self.orders.get_mut(number).ok_or_else(|| format!("no order {number}"))?;
        order.stage = next;
        match next {
            OrderStage::Assigned => {
                order.status = "A".to_owned();
                order.assigned_at = Some(now);
            }
            OrderStage::PickedUp => order.picked_up_at = Some(now),
            OrderStage::Delivered => order.delivered_at = Some(now),
            OrderStage::New => {}
        }
        order.events.push(event);
        Ok(next)
    }

    /// Moves an order one step back, as a stale replica would report it: the progress
    /// of the step disappears, the events stay.
    pub(crate) fn rewind(&mut self, number: &str) -> Result<OrderStage, String> {
        let order = self.orders.get_mut(number).ok_or_else(|| format!("no order {number}"))?;
        let previous = order.stage.previous().ok_or_else(|| format!("order {number} is new: nothing to rewind"))?;
        match order.stage {
            OrderStage::Assigned => {
                order.assigned_at = None;
                if order.status == "A" {
                    order.status = "N".to_owned();
                }
            }
            OrderStage::PickedUp => order.picked_up_at = None,
            OrderStage::Delivered => order.delivered_at = None,
            OrderStage::New => {}
        }
        order.stage = previous;
        Ok(previous)
    }

    /// Advances every open order one step (the clock's tick).
    pub(crate) fn advance_all(&mut self, now: NaiveDateTime) -> usize {
        let open: Vec<String> = self.orders.values().filter(|o| o.is_open()).map(|o| o.order_number.clone()).collect();
        open.iter().filter(|n| self.advance(n, now).is_ok()).count()
    }
}

fn pickup_note(order: &StoredOrder) -> String {
    let count = order
        .doc
        .items("Stops")
        .iter()
        .flat_map(|s| s.items("OrderStopPieces"))
        .filter(|p| p.attr("PieceAction") == Some("P"))
        .count();
    let at = order
        .doc
        .items("Stops")
        .iter()
        .find(|s| matches!(s.attr("StopType"), Some("P" | "B")))
        .and_then(|s| s.attr("Name"))
        .unwrap_or("the pickup stop");
    format!("Picked up {count} piece(s) at {at}")
}

/// Who signs for the delivery: the destination stop's contact (`See`), else its name.
pub(crate) fn pod_name(order: &StoredOrder) -> String {
    order
        .doc
        .items("Stops")
        .iter()
        .rev()
        .find(|s| matches!(s.attr("StopType"), Some("D" | "B")))
        .and_then(|s| s.attr("See").or(s.attr("Name")))
        .unwrap_or("Receiver")
        .to_owned()
}
