//! e-Courier wire types (the e-Courier API reference, seed 001; docs/carriers/ecourier.md "ecourier";
//! field by field in `docs/carriers/ecourier.md`).
//!
//! Requests are written the way the reference's own examples are: every scalar a
//! string, and the XML-derived "one or many" convention for repeated elements (one
//! child is an object, several are an array: `Pieces.Piece`, `Stops.Stop`,
//! `OrderStopPieces.OrderStopPiece`).
//!
//! Answers are XML-derived JSON, so they are read through [`Node`], which accepts what
//! that conversion produces and nothing more exotic: attributes with or without the `@`
//! prefix (the GetJsonOrder example writes `@OrderID`, the QuoteOrder example `Service`),
//! scalars as strings (numbers and booleans tolerated), an element with attributes and
//! text as `{"#text": ...}`, empty elements as `""` or `null`, and one child as an object
//! instead of a one-element array. Reading by hand rather than with serde derive keeps
//! an answer that carries both `@OrderNumber` and `OrderNumber` readable (derive would
//! refuse the duplicate field).

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

// ---------- requests ----------

/// Login (seed: "Example Post" `{website, username, password}`).
#[derive(Debug, Serialize)]
pub struct LoginRequest<'a> {
    pub website: &'a str,
    pub username: &'a str,
    pub password: &'a str,
}

/// RefreshGUID. The reference reads the token from the `UserGUID` header and ignores
/// the body, but its example posts `{"UserGUID": "<guid without braces>"}`; we send that
/// shape so a strict reader of the example is satisfied too.
#[derive(Debug, Serialize)]
pub struct RefreshGuidRequest<'a> {
    #[serde(rename = "UserGUID")]
    pub user_guid: &'a str,
}

/// SaveOrder / QuoteOrder body: `{"Order": {...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct OrderEnvelope {
    #[serde(rename = "Order")]
    pub order: Order,
}

/// The order as we write it. Every field the gateway sets is here, so an update or a
/// cancel can send the whole order again (SaveOrder is create-or-update of the whole
/// order, docs/carriers/ecourier.md).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Order {
    pub customer_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cod_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pieces: Option<Pieces>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stops: Option<Stops>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pieces {
    #[serde(rename = "Piece", serialize_with = "one_or_many_out")]
    pub piece: Vec<Piece>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Piece {
    pub sequence: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub pieces: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stops {
    #[serde(rename = "Stop", serialize_with = "one_or_many_out")]
    pub stop: Vec<Stop>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stop {
    pub sequence: String,
    pub stop_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub see: Option<String>,
    pub address: String,
    pub city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    pub country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    // After Phone, as in the reference's SaveOrder example (the body is written in this
    // order: contract_tests::the_order_we_save_is_written_in_the_reference_examples_key_order).
    #[serde(rename = "ScheduledDateTimeTZ", skip_serializing_if = "Option::is_none")]
    pub scheduled_date_time_tz: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_stop_pieces: Option<OrderStopPieces>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderStopPieces {
    #[serde(rename = "OrderStopPiece", serialize_with = "one_or_many_out")]
    pub order_stop_piece: Vec<OrderStopPiece>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrderStopPiece {
    pub piece_action: String,
    pub sequence: String,
}

/// The reference's convention for repeated elements: one child is written as an
/// object (QuoteOrder example `"Piece": {...}`, SaveOrder example `"OrderStopPiece":
/// {...}`), several as an array (SaveOrder example `"Stop": [...]`).
fn one_or_many_out<S: Serializer, T: Serialize>(items: &[T], s: S) -> Result<S::Ok, S::Error> {
    match items {
        [one] => one.serialize(s),
        many => many.serialize(s),
    }
}

// ---------- answers ----------

/// `{status, statusdescription}`, plus `UserGUID` on Login/RefreshGUID. The reference's
/// SaveOrder example answers `"UserGUID": "JSON Post Recieved"` where its status-code
/// section has `statusdescription`; only `status` decides.
#[derive(Debug, Deserialize)]
pub struct StatusAnswer {
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub statusdescription: Option<String>,
    #[serde(rename = "UserGUID", default, deserialize_with = "lenient_string")]
    pub user_guid: Option<String>,
}

/// A scalar as a string: strings as they are, numbers and booleans printed, null and
/// `""` as absent.
fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(scalar(&Value::deserialize(d)?))
}

fn scalar(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        // An XML element with attributes and text: Json.NET writes the text as "#text".
        Value::Object(m) => return m.get("#text").and_then(scalar),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

/// One element of an XML-derived JSON document.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a>(pub &'a Map<String, Value>);

impl<'a> Node<'a> {
    /// A scalar attribute or element: `@name` first (GetJsonOrder's attributes), then `name`.
    pub fn text(&self, name: &str) -> Option<String> {
        let at = format!("@{name}");
        self.0.get(&at).and_then(scalar).or_else(|| self.0.get(name).and_then(scalar))
    }

    /// A child element that is an object; `""`/`null` (an empty element) is absent.
    pub fn child(&self, name: &str) -> Option<Node<'a>> {
        match self.0.get(name) {
            Some(Value::Object(m)) => Some(Node(m)),
            _ => None,
        }
    }

    /// The `item` children of the `container` child (`Stops` → `Stop`), one or many.
    pub fn children(&self, container: &str, item: &str) -> Vec<Node<'a>> {
        self.child(container).map(|c| c.items(item)).unwrap_or_default()
    }

    /// The `item` children of this element, one or many.
    pub fn items(&self, item: &str) -> Vec<Node<'a>> {
        match self.0.get(item) {
            Some(Value::Object(m)) => vec![Node(m)],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_object).map(Node).collect(),
            _ => Vec::new(),
        }
    }
}

/// What the gateway reads of an order (GetJsonOrder, QuoteOrder). Absent fields are
/// `None`; the reference marks almost everything optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderOut {
    pub order_id: Option<String>,
    pub order_number: Option<String>,
    pub order_status: Option<String>,
    pub service: Option<String>,
    pub pod_name: Option<String>,
    pub pod_date_time: Option<String>,
    /// `PodSign` is present (the status mapping's evidence of a signed delivery).
    pub pod_signed: bool,
    /// `PodSign` as sent: "signature information will be returned as base64 encoded
    /// objects" (GetJsonOrder); decoded and checked by `pod::proof_from`.
    pub pod_sign: Option<String>,
    pub amount_charged: Option<String>,
    pub ready_date_time: Option<String>,
    pub due_date_time: Option<String>,
    /// `Stops.Stop`: what was ordered.
    pub stops: Vec<StopOut>,
    /// `Jobs.Job`: the work drivers do, with their progress on `JobStops.JobStop`.
    pub jobs: Vec<JobOut>,
    /// `OrderEvents.OrderEvent`.
    pub events: Vec<EventOut>,
}

/// An ordered stop (`Stops.Stop`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StopOut {
    pub sequence: Option<String>,
    pub stop_type: Option<String>,
    pub stop_id: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country: Option<String>,
}

/// One driver's unit of work (`Jobs.Job`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOut {
    pub sequence: Option<String>,
    pub job_status: Option<String>,
    pub stops: Vec<JobStopOut>,
}

/// A stop as a driver works it (`Jobs.Job.JobStops.JobStop`): where progress lives.
/// The reference lists no `Sequence` on a JobStop; one is read when present.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobStopOut {
    pub sequence: Option<String>,
    pub stop_type: Option<String>,
    pub stop_id: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub zip: Option<String>,
    pub status: Option<String>,
    pub arrive_date_time: Option<String>,
    pub depart_date_time: Option<String>,
    pub pod_name: Option<String>,
    pub pod_date_time: Option<String>,
    pub pieces: Vec<JobStopPieceOut>,
}

/// `JobStopPieces.JobStopPiece`: one piece's action at a job stop.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobStopPieceOut {
    pub sequence: Option<String>,
    pub piece_action: Option<String>,
    pub piece_action_status: Option<String>,
    pub arrive_date_time: Option<String>,
}

/// `OrderEvents.OrderEvent`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventOut {
    pub order_event_id: Option<String>,
    pub event_type: Option<String>,
    pub event_date_time: Option<String>,
    pub user_name: Option<String>,
    pub note: Option<String>,
    pub event_note: Option<String>,
}

impl OrderOut {
    /// Read `{"Order": {...}}`. Only a missing or non-object `Order` is an error.
    pub fn parse(body: &[u8]) -> Result<OrderOut, String> {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        OrderOut::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<OrderOut, String> {
        let order = v.get("Order").and_then(Value::as_object).map(Node).ok_or("no Order object")?;
        Ok(OrderOut::read(order))
    }

    pub fn read(o: Node<'_>) -> OrderOut {
        OrderOut {
            order_id: o.text("OrderID"),
            order_number: o.text("OrderNumber"),
            order_status: o.text("OrderStatus"),
            service: o.text("Service"),
            pod_name: o.text("PodName"),
            pod_date_time: o.text("PodDateTime"),
            pod_signed: o.text("PodSign").is_some(),
            pod_sign: o.text("PodSign"),
            amount_charged: o.text("AmountCharged"),
            ready_date_time: o.text("ReadyDateTime"),
            due_date_time: o.text("DueDateTime"),
            stops: o
                .children("Stops", "Stop")
                .into_iter()
                .map(|s| StopOut {
                    sequence: s.text("Sequence"),
                    stop_type: s.text("StopType"),
                    stop_id: s.text("StopID"),
                    address: s.text("Address"),
                    city: s.text("City"),
                    state: s.text("State"),
                    zip: s.text("Zip"),
                    country: s.text("Country"),
                })
                .collect(),
            jobs: o
                .children("Jobs", "Job")
                .into_iter()
                .map(|j| JobOut {
                    sequence: j.text("Sequence"),
                    job_status: j.text("JobStatus"),
                    stops: j.children("JobStops", "JobStop").into_iter().map(job_stop).collect(),
                })
                .collect(),
            events: o
                .children("OrderEvents", "OrderEvent")
                .into_iter()
                .map(|e| EventOut {
                    order_event_id: e.text("OrderEventID"),
                    event_type: e.text("EventType"),
                    event_date_time: e.text("EventDateTime"),
                    user_name: e.text("UserName"),
                    note: e.text("Note"),
                    event_note: e.text("EventNote"),
                })
                .collect(),
        }
    }
}

fn job_stop(s: Node<'_>) -> JobStopOut {
    JobStopOut {
        sequence: s.text("Sequence"),
        stop_type: s.text("StopType"),
        stop_id: s.text("StopID"),
        address: s.text("Address"),
        city: s.text("City"),
        zip: s.text("Zip"),
        status: s.text("JobStopStatus"),
        arrive_date_time: s.text("ArriveDateTime"),
        depart_date_time: s.text("DepartDateTime"),
        pod_name: s.text("PodName"),
        pod_date_time: s.text("PodDateTime"),
        pieces: s
            .children("JobStopPieces", "JobStopPiece")
            .into_iter()
            .map(|p| JobStopPieceOut {
                sequence: p.text("Sequence"),
                piece_action: p.text("PieceAction"),
                piece_action_status: p.text("PieceActionStatus"),
                arrive_date_time: p.text("ArriveDateTime"),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_xml_derived_json_in_every_form_the_convention_allows() {
        let v = serde_json::json!({"Order": {
            "@OrderID": 2073, "@OrderNumber": "SG1", "OrderNumber": "SG1", "@OrderStatus": "A",
            "PodSign": {"#text": "iVBORw0KGgo="},
            "Stops": {"Stop": {"Sequence": "1", "StopType": "P", "@StopID": "77"}},
            "Jobs": {"Job": [
                {"@Sequence": "1", "JobStops": {"JobStop": {"@StopType": "P", "@ArriveDateTime": "9/3/2020 2:43:00 AM",
                    "JobStopPieces": {"JobStopPiece": [{"@PieceAction": "P", "@PieceActionStatus": "Done"}, "junk"]}}}},
                {"Sequence": "2", "JobStops": ""}
            ]},
            "OrderEvents": {"OrderEvent": [{"@OrderEventID": "5", "@EventType": "Picked Up"}, {"EventType": "X"}]},
            "AmountCharged": "$40.00", "Pieces": "6"
        }});
        let o = OrderOut::from_value(&v).expect("parses");
        assert_eq!(o.order_id.as_deref(), Some("2073"), "a number is read as its text");
        assert_eq!(o.order_number.as_deref(), Some("SG1"), "attribute and element together are fine");
        assert!(o.pod_signed);
        assert_eq!(o.stops.len(), 1);
        assert_eq!(o.stops[0].stop_id.as_deref(), Some("77"));
        assert_eq!(o.jobs.len(), 2);
        assert!(o.jobs[1].stops.is_empty(), "an empty element is no children");
        let js = &o.jobs[0].stops[0];
        assert_eq!(js.arrive_date_time.as_deref(), Some("9/3/2020 2:43:00 AM"));
        assert_eq!(js.pieces.len(), 1, "a scalar where an element belongs is skipped");
        assert_eq!(js.pieces[0].piece_action_status.as_deref(), Some("Done"));
        assert_eq!(o.events.len(), 2);
        assert_eq!(o.events[1].event_type.as_deref(), Some("X"));

        let empty = OrderOut::from_value(&serde_json::json!({"Order": {"OrderEvents": "", "Stops": null, "Jobs": ""}}))
            .expect("parses");
        assert!(empty.events.is_empty() && empty.stops.is_empty() && empty.jobs.is_empty());
        assert!(OrderOut::from_value(&serde_json::json!({"Order": "x"})).is_err());
        assert!(OrderOut::parse(b"<html>").is_err());
    }

    #[test]
    fn one_child_is_written_as_an_object_and_several_as_an_array() {
        let link = |a: &str| OrderStopPiece { piece_action: a.into(), sequence: "1".into() };
        let one = serde_json::to_value(OrderStopPieces { order_stop_piece: vec![link("P")] }).expect("json");
        assert_eq!(one, serde_json::json!({"OrderStopPiece": {"PieceAction": "P", "Sequence": "1"}}));
        let two = serde_json::to_value(OrderStopPieces { order_stop_piece: vec![link("P"), link("D")] }).expect("json");
        assert!(two["OrderStopPiece"].is_array());
    }
}
