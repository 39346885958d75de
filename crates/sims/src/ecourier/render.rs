//! The answers' shapes: GetJsonOrder's XML-derived order and QuoteOrder's quote.
//!
//! GetJsonOrder (seed 001): `{"Order":{"@UserGUID", "@OrderID", "@SiteID",
//! "@SiteCode", "@SiteOrderID", "@OrderNumber", "@OrderStatus", "@CustomerID",
//! "@CreateDate", ...}}`: attributes carry `@`, every value is a string, dates read
//! `9/3/2020 2:43:00 AM`, a single child is an object and several an array. The
//! reference's example is truncated after `@CreateDate`; the rest follows the same
//! convention for every element of the model: scalars are `@` attributes, collections
//! are containers (`Stops.Stop`, `Pieces.Piece`, `Jobs.Job.JobStops.JobStop`,
//! `JobStopPieces.JobStopPiece`, `OrderEvents.OrderEvent`). Progress lives where the
//! reference's field definitions put it: on the Job's JobStops and JobStopPieces, and
//! the order's PodName / PodDateTime / PodSign; `Stops.Stop` shows only what was ordered.
//!
//! QuoteOrder: shaped like the reference's example answer (no `@`, `"$40.00"`).

use super::schema::{self, Schema, Shape};
use super::signature::pod_sign;
use super::state::{FIRST_ORDER_ID, OrderEvent, OrderStage, StoredOrder, pod_name};
use super::validate::{Elem, ValidOrder, parse_datetime, parse_int};
use chrono::{Duration, NaiveDateTime, Timelike};
use serde_json::{Map, Value, json};

/// e-Courier's date format on GetJsonOrder: `9/3/2020 2:43:00 AM`.
pub(crate) fn ec_datetime(at: NaiveDateTime) -> String {
    at.format("%-m/%-d/%Y %-I:%M:%S %p").to_string()
}

fn ec_date(at: NaiveDateTime) -> String {
    at.format("%-m/%-d/%Y").to_string()
}

/// A container: none → absent, one → the object, several → an array.
fn container(item: &str, mut items: Vec<Value>) -> Option<Value> {
    match items.len() {
        0 => None,
        1 => Some(json!({ item: items.remove(0) })),
        _ => Some(json!({ item: items })),
    }
}

fn put(map: &mut Map<String, Value>, key: &str, value: impl Into<String>) {
    map.insert(key.to_owned(), Value::String(value.into()));
}

/// An element as stored, with its attributes prefixed by `prefix` (`"@"` on
/// GetJsonOrder, `""` on the quote) and its child containers per the schema.
fn elem_json(elem: &Elem, schema: &Schema, prefix: &str) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in &elem.attrs {
        put(&mut map, &format!("{prefix}{name}"), value.clone());
    }
    for child in schema.children {
        let items = elem.items(child.name);
        let value = match child.shape {
            Shape::Single => items.first().map(|e| Value::Object(elem_json(e, child.schema, prefix))),
            Shape::List { item } => {
                container(item, items.iter().map(|e| Value::Object(elem_json(e, child.schema, prefix))).collect())
            }
        };
        if let Some(value) = value {
            map.insert(child.name.to_owned(), value);
        }
    }
    map
}

fn stop_id(order: &StoredOrder, index: usize, stop: &Elem) -> String {
    stop.attr("StopID").map_or_else(|| (order.order_id * 100 + index as u64 + 1).to_string(), str::to_owned)
}

fn piece_id(order: &StoredOrder, sequence: &str) -> Option<String> {
    let seq = parse_int(sequence)?;
    let index = order.doc.items("Pieces").iter().position(|p| p.attr("Sequence").and_then(parse_int) == Some(seq))?;
    Some((order.order_id * 100 + index as u64 + 1).to_string())
}

/// What GetJsonOrder answers for `order`.
pub(crate) fn order_json(order: &StoredOrder) -> Value {
    let mut o = Map::new();
    for (name, value) in &order.doc.attrs {
        put(&mut o, &format!("@{name}"), value.clone());
    }
    put(&mut o, "@UserGUID", order.user_guid.clone());
    put(&mut o, "@OrderID", order.order_id.to_string());
    put(&mut o, "@SiteID", "1");
    put(&mut o, "@SiteCode", "Corporate");
    put(&mut o, "@SiteOrderID", (order.order_id.saturating_sub(FIRST_ORDER_ID) + 1).to_string());
    put(&mut o, "@OrderNumber", order.order_number.clone());
    put(&mut o, "@OrderStatus", order.status.clone());
    put(&mut o, "@CustomerID", order.customer_id.to_string());
    put(&mut o, "@CustomerCode", order.customer_code.clone());
    put(&mut o, "@CreateDate", ec_datetime(order.created));
    if let (OrderStage::Delivered, Some(at)) = (order.stage, order.delivered_at) {
        let signer = pod_name(order);
        put(&mut o, "@PodName", signer.clone());
        put(&mut o, "@PodDateTime", ec_datetime(at));
        let sign = order.pod_sign.clone().unwrap_or_else(|| pod_sign(&signer));
        put(&mut o, "@PodSign", sign);
    }
    let stops: Vec<Value> = order
        .doc
        .items("Stops")
        .iter()
        .enumerate()
        .map(|(i, stop)| {
            let mut map = elem_json(stop, &schema::STOP, "@");
            put(&mut map, "@StopID", stop_id(order, i, stop));
            Value::Object(map)
        })
        .collect();
    if let Some(stops) = container("Stop", stops) {
        o.insert("Stops".to_owned(), stops);
    }
    let pieces: Vec<Value> = order
        .doc
        .items("Pieces")
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let mut map = elem_json(piece, &schema::PIECE, "@");
            put(&mut map, "@PieceID", (order.order_id * 100 + i as u64 + 1).to_string());
            Value::Object(map)
        })
        .collect();
    if let Some(pieces) = container("Piece", pieces) {
        o.insert("Pieces".to_owned(), pieces);
    }
    let rest =
        elem_json(&Elem { attrs: Default::default(), children: order.doc.children.clone() }, &schema::ORDER, "@");
    for (key, value) in rest {
        if !matches!(key.as_str(), "Stops" | "Pieces") {
            o.insert(key, value);
        }
    }
    if order.stage >= OrderStage::Assigned {
        o.insert("Jobs".to_owned(), json!({ "Job": job_json(order) }));
    }
    if let Some(events) = container("OrderEvent", order.events.iter().map(event_json).collect()) {
        o.insert("OrderEvents".to_owned(), events);
    }
    json!({ "Order": o })
}

fn event_json(event: &OrderEvent) -> Value {
    json!({
        "@OrderEventID": event.id.to_string(),
        "@EventType": event.event_type,
        "@EventDateTime": ec_datetime(event.at),
        "@UserName": event.user_name,
        "@UserID": event.user_id.to_string(),
        "@Note": event.note,
        "@EventSource": event.source,
    })
}

/// The one Job of a dispatched order: its driver and a JobStop per order stop.
fn job_json(order: &StoredOrder) -> Value {
    let driver_code = format!("D{}", order.driver_id());
    let mut job = Map::new();
    put(&mut job, "@Sequence", "1");
    put(&mut job, "@JobID", order.order_id.to_string());
    put(&mut job, "@JobNumber", format!("{}-1", order.order_number));
    put(&mut job, "@JobStatus", if order.stage == OrderStage::Delivered { "C" } else { "A" });
    if let Some(at) = order.assigned_at {
        put(&mut job, "@JobDate", ec_date(at));
    }
    put(&mut job, "@SiteID", "1");
    put(&mut job, "@Service", order.doc.attr("Service").unwrap_or("Regular"));
    put(&mut job, "@RouteNumber", "0");
    job.insert(
        "Drivers".to_owned(),
        json!({ "Driver": {
            "@Sequence": "1",
            "@DriverID": order.driver_id().to_string(),
            "@DriverCode": driver_code,
        }}),
    );
    let job_stops: Vec<Value> = order
        .doc
        .items("Stops")
        .iter()
        .enumerate()
        .map(|(i, stop)| job_stop_json(order, i, stop, &driver_code))
        .collect();
    if let Some(stops) = container("JobStop", job_stops) {
        job.insert("JobStops".to_owned(), stops);
    }
    Value::Object(job)
}

/// When a stop's own work was done: pickup stops (P, and B for its arrival) at the
/// pickup step, destination stops at delivery.
fn stop_done_at(order: &StoredOrder, stop_type: &str) -> Option<NaiveDateTime> {
    match stop_type {
        "D" => order.delivered_at.filter(|_| order.stage >= OrderStage::Delivered),
        _ => order.picked_up_at.filter(|_| order.stage >= OrderStage::PickedUp),
    }
}

fn piece_done_at(order: &StoredOrder, action: &str) -> Option<NaiveDateTime> {
    stop_done_at(order, if action == "D" { "D" } else { "P" })
}

fn job_stop_json(order: &StoredOrder, index: usize, stop: &Elem, driver_code: &str) -> Value {
    let mut js = Map::new();
    for name in schema::JOB_STOP_COPIED {
        if let Some(value) = stop.attr(name) {
            put(&mut js, &format!("@{name}"), value);
        }
    }
    put(&mut js, "@StopID", stop_id(order, index, stop));
    put(&mut js, "@DriverCode", driver_code);
    let stop_type = stop.attr("StopType").unwrap_or("P");
    if let Some(done) = stop_done_at(order, stop_type) {
        // One moment for arrival and departure: a step's times never precede the
        // step before it, however quickly a test advances the order.
        put(&mut js, "@ArriveDateTime", ec_datetime(done));
        put(&mut js, "@DepartDateTime", ec_datetime(done));
        put(&mut js, "@JobStopStatus", "C");
    }
    if matches!(stop_type, "D" | "B")
        && let (OrderStage::Delivered, Some(at)) = (order.stage, order.delivered_at)
    {
        put(&mut js, "@PodName", pod_name(order));
        put(&mut js, "@PodDateTime", ec_datetime(at));
    }
    let pieces: Vec<Value> = stop
        .items("OrderStopPieces")
        .iter()
        .enumerate()
        .map(|(j, osp)| {
            let sequence = osp.attr("Sequence").unwrap_or("0");
            let action = osp.attr("PieceAction").unwrap_or("P");
            let mut p = Map::new();
            put(&mut p, "@Sequence", sequence);
            put(&mut p, "@JobStopPieceID", (order.order_id * 10_000 + index as u64 * 100 + j as u64 + 1).to_string());
            if let Some(id) = piece_id(order, sequence) {
                put(&mut p, "@PieceID", id);
            }
            put(&mut p, "@PieceAction", action);
            if let Some(done) = piece_done_at(order, action) {
                put(&mut p, "@PieceActionStatus", "C");
                put(&mut p, "@ArriveDateTime", ec_datetime(done));
            }
            Value::Object(p)
        })
        .collect();
    if let Some(pieces) = container("JobStopPiece", pieces) {
        js.insert("JobStopPieces".to_owned(), pieces);
    }
    Value::Object(js)
}

/// The quote's price: $40.00 for the first piece, $5.00 for each further one (ours;
/// the reference's example quotes one piece at "$40.00").
fn quote_cents(doc: &Elem) -> u64 {
    let pieces = doc.items("Pieces");
    let count: u64 = if pieces.is_empty() {
        doc.attr("Pieces").and_then(|p| p.parse::<f64>().ok()).map_or(1, |p| p.ceil().max(1.0) as u64)
    } else {
        pieces.iter().map(|p| p.attr("Pieces").and_then(parse_int).map_or(1, |n| n.max(0) as u64)).sum::<u64>().max(1)
    };
    4_000 + 500 * (count - 1)
}

/// What QuoteOrder answers: the reference's example fields in its order, values from
/// the posted order where it has them.
pub(crate) fn quote_json(order: &ValidOrder, customer_id: u64, now: NaiveDateTime) -> Value {
    let doc = &order.doc;
    let stops = doc.items("Stops");
    let when = |stop: Option<&Elem>, names: [&str; 2]| {
        stop.and_then(|s| names.iter().find_map(|n| s.attr(n))).and_then(parse_datetime)
    };
    let pickup = stops.iter().find(|s| matches!(s.attr("StopType"), Some("P" | "B")));
    let destination = stops.iter().rev().find(|s| matches!(s.attr("StopType"), Some("D" | "B")));
    let ready = when(pickup, ["ScheduledDateTime", "EarlyDateTime"]).unwrap_or_else(|| next_quarter_hour(now));
    let due = when(destination, ["ScheduledDateTime", "LateDateTime"]).unwrap_or(ready + Duration::hours(2));
    let cents = quote_cents(doc);
    let text = |name: &str| doc.attr(name).unwrap_or("").to_owned();
    let mut q = Map::new();
    put(&mut q, "CustomerID", customer_id.to_string());
    put(&mut q, "Service", text("Service"));
    put(&mut q, "Caller", doc.attr("Caller").unwrap_or("ECAPI"));
    put(&mut q, "CallerPhone", text("CallerPhone"));
    put(&mut q, "Notes", text("Notes"));
    put(&mut q, "CallerEmail", text("CallerEmail"));
    put(&mut q, "TaskID", "1");
    put(&mut q, "CompleteOrder", "1");
    put(&mut q, "Description", text("Description"));
    // The example writes ReadyDateTime with a four-digit year and DueDateTime with two.
    put(&mut q, "ReadyDateTime", ready.format("%m/%d/%Y %H:%M").to_string());
    put(&mut q, "DueDateTime", due.format("%m/%d/%y %H:%M").to_string());
    put(&mut q, "AmountCharged", format!("${}.{:02}", cents / 100, cents % 100));
    put(&mut q, "DriverCode", text("DriverCode"));
    let plain = |container_name: &str, item: &str, schema: &Schema| {
        container(item, doc.items(container_name).iter().map(|e| Value::Object(elem_json(e, schema, ""))).collect())
    };
    if let Some(pieces) = plain("Pieces", "Piece", &schema::PIECE) {
        q.insert("Pieces".to_owned(), pieces);
    }
    if let Some(stops) = plain("Stops", "Stop", &schema::STOP) {
        q.insert("Stops".to_owned(), stops);
    }
    json!({ "Order": q })
}

fn next_quarter_hour(now: NaiveDateTime) -> NaiveDateTime {
    let base = now.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(now);
    let past = i64::from(base.minute() % 15);
    base + Duration::minutes(15 - past)
}
