//! e-Courier wire types (seed 001, CARRIERS.md "ecourier"). Requests: every scalar is
//! a string. Answers are XML-derived JSON, so the readers here accept what that
//! produces: attributes with an `@` prefix, a single child as an object instead of a
//! one-element array, numbers and booleans as strings, empty containers as `""`.

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------- requests ----------

#[derive(Debug, Serialize)]
pub struct LoginRequest<'a> {
    pub website: &'a str,
    pub username: &'a str,
    pub password: &'a str,
}

#[derive(Debug, Serialize)]
pub struct OrderEnvelope {
    #[serde(rename = "Order")]
    pub order: Order,
}

#[derive(Debug, Default, Serialize)]
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

#[derive(Debug, Serialize)]
pub struct Pieces {
    #[serde(rename = "Piece")]
    pub piece: Vec<Piece>,
}

#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
pub struct Stops {
    #[serde(rename = "Stop")]
    pub stop: Vec<Stop>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stop {
    pub sequence: String,
    pub stop_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_date_time: Option<String>,
    #[serde(rename = "ScheduledDateTimeTZ", skip_serializing_if = "Option::is_none")]
    pub scheduled_date_time_tz: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub address: String,
    pub city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    pub country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_stop_pieces: Option<OrderStopPieces>,
}

#[derive(Debug, Serialize)]
pub struct OrderStopPieces {
    #[serde(rename = "OrderStopPiece")]
    pub order_stop_piece: Vec<OrderStopPiece>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrderStopPiece {
    pub piece_action: String,
    pub sequence: String,
}

// ---------- answers ----------

/// `{status, statusdescription}`, plus `UserGUID` on Login/RefreshGUID. The seed's
/// SaveOrder example answers `"UserGUID": "JSON Post Recieved"` where CARRIERS.md has
/// `statusdescription`; only `status` decides.
#[derive(Debug, Deserialize)]
pub struct StatusAnswer {
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub statusdescription: Option<String>,
    #[serde(rename = "UserGUID", default, deserialize_with = "lenient_string")]
    pub user_guid: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OrderAnswer {
    #[serde(rename = "Order")]
    pub order: OrderOut,
}

#[derive(Debug, Default, Deserialize)]
pub struct OrderOut {
    #[serde(rename = "@OrderID", alias = "OrderID", default, deserialize_with = "lenient_string")]
    pub order_id: Option<String>,
    #[serde(rename = "@OrderNumber", alias = "OrderNumber", default, deserialize_with = "lenient_string")]
    pub order_number: Option<String>,
    #[serde(rename = "@OrderStatus", alias = "OrderStatus", default, deserialize_with = "lenient_string")]
    pub order_status: Option<String>,
    #[serde(rename = "Service", alias = "@Service", default, deserialize_with = "lenient_string")]
    pub service: Option<String>,
    #[serde(rename = "PodName", alias = "@PodName", default, deserialize_with = "lenient_string")]
    pub pod_name: Option<String>,
    #[serde(rename = "PodDateTime", alias = "@PodDateTime", default, deserialize_with = "lenient_string")]
    pub pod_date_time: Option<String>,
    #[serde(rename = "AmountCharged", alias = "@AmountCharged", default, deserialize_with = "lenient_string")]
    pub amount_charged: Option<String>,
    #[serde(rename = "ReadyDateTime", alias = "@ReadyDateTime", default, deserialize_with = "lenient_string")]
    pub ready_date_time: Option<String>,
    #[serde(rename = "DueDateTime", alias = "@DueDateTime", default, deserialize_with = "lenient_string")]
    pub due_date_time: Option<String>,
    #[serde(rename = "Stops", default, deserialize_with = "container")]
    pub stops: Option<StopsOut>,
    #[serde(rename = "OrderEvents", default, deserialize_with = "container")]
    pub order_events: Option<EventsOut>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StopsOut {
    #[serde(rename = "Stop", default, deserialize_with = "one_or_many")]
    pub stop: Vec<StopOut>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StopOut {
    #[serde(rename = "Sequence", alias = "@Sequence", default, deserialize_with = "lenient_string")]
    pub sequence: Option<String>,
    #[serde(rename = "StopType", alias = "@StopType", default, deserialize_with = "lenient_string")]
    pub stop_type: Option<String>,
    #[serde(rename = "City", alias = "@City", default, deserialize_with = "lenient_string")]
    pub city: Option<String>,
    #[serde(rename = "State", alias = "@State", default, deserialize_with = "lenient_string")]
    pub state: Option<String>,
    #[serde(rename = "Country", alias = "@Country", default, deserialize_with = "lenient_string")]
    pub country: Option<String>,
    #[serde(rename = "ArriveDateTime", alias = "@ArriveDateTime", default, deserialize_with = "lenient_string")]
    pub arrive_date_time: Option<String>,
    #[serde(rename = "DepartDateTime", alias = "@DepartDateTime", default, deserialize_with = "lenient_string")]
    pub depart_date_time: Option<String>,
    #[serde(rename = "PodName", alias = "@PodName", default, deserialize_with = "lenient_string")]
    pub pod_name: Option<String>,
    #[serde(rename = "PodDateTime", alias = "@PodDateTime", default, deserialize_with = "lenient_string")]
    pub pod_date_time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct EventsOut {
    #[serde(rename = "OrderEvent", default, deserialize_with = "one_or_many")]
    pub order_event: Vec<EventOut>,
}

#[derive(Debug, Default, Deserialize)]
pub struct EventOut {
    #[serde(rename = "@OrderEventID", alias = "OrderEventID", default, deserialize_with = "lenient_string")]
    pub order_event_id: Option<String>,
    #[serde(rename = "@EventType", alias = "EventType", default, deserialize_with = "lenient_string")]
    pub event_type: Option<String>,
    #[serde(rename = "@EventDateTime", alias = "EventDateTime", default, deserialize_with = "lenient_string")]
    pub event_date_time: Option<String>,
    #[serde(rename = "@Note", alias = "Note", default, deserialize_with = "lenient_string")]
    pub note: Option<String>,
    #[serde(rename = "@EventNote", alias = "EventNote", default, deserialize_with = "lenient_string")]
    pub event_note: Option<String>,
}

/// A scalar as a string: strings as they are, numbers and booleans printed, null and
/// `""` as absent.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

/// An element that may be absent, null, `""` (empty in XML) or an object.
fn container<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    match Value::deserialize(d)? {
        v @ Value::Object(_) => serde_json::from_value(v).map(Some).map_err(serde::de::Error::custom),
        _ => Ok(None),
    }
}

/// XML-derived "one or many": a single child is an object, several are an array.
fn one_or_many<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter(Value::is_object)
            .map(|v| serde_json::from_value(v).map_err(serde::de::Error::custom))
            .collect(),
        v @ Value::Object(_) => serde_json::from_value(v).map(|t| vec![t]).map_err(serde::de::Error::custom),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_xml_derived_json() {
        let v = serde_json::json!({"Order": {
            "@OrderID": 2073, "@OrderNumber": "SG1", "@OrderStatus": "A",
            "Stops": {"Stop": {"Sequence": "1", "StopType": "P", "DepartDateTime": "9/3/2020 2:43:00 AM"}},
            "OrderEvents": {"OrderEvent": [{"@OrderEventID": "5", "@EventType": "Picked Up"}, {"EventType": "X"}]},
            "AmountCharged": "$40.00"
        }});
        let o: OrderAnswer = serde_json::from_value(v).expect("parses");
        assert_eq!(o.order.order_id.as_deref(), Some("2073"));
        assert_eq!(o.order.stops.as_ref().map(|s| s.stop.len()), Some(1));
        let ev = o.order.order_events.expect("events").order_event;
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].event_type.as_deref(), Some("X"));
        let empty: OrderAnswer =
            serde_json::from_value(serde_json::json!({"Order": {"OrderEvents": "", "Stops": null}})).expect("parses");
        assert!(empty.order.order_events.is_none() && empty.order.stops.is_none());
    }
}
