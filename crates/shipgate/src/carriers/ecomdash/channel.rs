//! Where ecomdash learns a shipment's tracking number: the shipment's
//! `channel.ecomdash` (registry `Channel`), and ecomdash's integer ids.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::carriers::{SinkItem, SinkTarget};

// docs/carriers/ecomdash.md "ecomdash"; ecomdash's Submit Tracking Info reference (seed 004) types
// ShipmentId, CarrierId and LineItemId "Integer".
/// Where ecomdash learns the tracking number of one of its shipments. The ids are
/// ecomdash's own integers (its Submit Tracking Info API types them Integer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EcomdashChannel {
    /// One of the tenant's ecomdash connections; at most 64 characters.
    #[serde(deserialize_with = "crate::domain::limits::text::<64, _>")]
    #[schema(max_length = 64)]
    pub connection_id: String,
    /// ecomdash's ShipmentId, from its `/shipments/create` answer.
    pub shipment_id: EcomdashId,
    /// ecomdash's id of the company's carrier (its `/carriers` list), so marketplaces
    /// learn which carrier shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_id: Option<EcomdashId>,
    /// The ShipmentItem ids this tracking number covers; without them ecomdash takes it
    /// for all remaining items of the shipment. At most 100.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::limits::opt_list::<100, _, _>"
    )]
    #[schema(max_items = 100)]
    pub line_item_ids: Option<Vec<EcomdashId>>,
}

/// Largest id accepted: 2^53 - 1, the largest integer every JSON reader keeps exactly.
pub const ECOMDASH_ID_MAX: u64 = (1 << 53) - 1;

// Seed 004 types the ids "Integer" (its JSON Schema: `number`, format `decimal`);
// docs/carriers/ecomdash.md: public clients see them written as decimals (`28.0`).
/// An ecomdash id, a whole number. Accepted as a JSON integer, as a decimal with a zero
/// fraction (`28.0`, as ecomdash writes ids in its answers) or as a string of such a
/// number (`"20405"`); always written as a JSON integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "serde_json::Value", into = "u64")]
#[schema(value_type = u64, example = 20405, minimum = 0, maximum = 9007199254740991_f64)]
pub struct EcomdashId(pub u64);

impl EcomdashId {
    /// The id in `s`: digits with an optional zero fraction, blanks around allowed.
    pub fn parse(s: &str) -> Option<EcomdashId> {
        let s = s.trim();
        let digits = match s.split_once('.') {
            Some((int, frac)) if frac.bytes().all(|b| b == b'0') => int,
            Some(_) => return None,
            None => s,
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok().filter(|n| *n <= ECOMDASH_ID_MAX).map(EcomdashId)
    }
}

impl TryFrom<serde_json::Value> for EcomdashId {
    type Error = String;
    fn try_from(v: serde_json::Value) -> Result<Self, String> {
        let id = match &v {
            serde_json::Value::Number(n) => EcomdashId::parse(&n.to_string()),
            serde_json::Value::String(s) => EcomdashId::parse(s),
            _ => None,
        };
        id.ok_or_else(|| format!("{v} is not an ecomdash id: expected a whole number such as 20405"))
    }
}

impl From<EcomdashId> for u64 {
    fn from(id: EcomdashId) -> u64 {
        id.0
    }
}

impl std::fmt::Display for EcomdashId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl SinkTarget for EcomdashChannel {
    fn connection_id(&self) -> &str {
        &self.connection_id
    }

    fn item(
        &self,
        key: String,
        tracking_number: String,
        shipped_at: Option<DateTime<Utc>>,
        estimated_delivery: Option<DateTime<Utc>>,
    ) -> SinkItem {
        SinkItem {
            key,
            sink_shipment_id: self.shipment_id.to_string(),
            carrier_id: self.carrier_id.map(|c| c.to_string()),
            tracking_number,
            tracking_url: None,
            shipped_at,
            estimated_delivery,
            line_item_ids: self.line_item_ids.as_ref().map(|ids| ids.iter().map(ToString::to_string).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecomdash_ids_are_whole_numbers_in_any_of_the_seed_s_spellings() {
        let ch: EcomdashChannel = serde_json::from_value(serde_json::json!({"connection_id": "con_1",
            "shipment_id": 20405, "carrier_id": 28.0, "line_item_ids": ["7", " 8 ", "9.00"]}))
        .expect("ecomdash's own integers");
        assert_eq!(ch.shipment_id, EcomdashId(20405));
        assert_eq!(ch.carrier_id, Some(EcomdashId(28)));
        assert_eq!(ch.line_item_ids, Some(vec![EcomdashId(7), EcomdashId(8), EcomdashId(9)]));
        assert_eq!(
            serde_json::to_value(&ch).expect("json"),
            serde_json::json!({"connection_id": "con_1", "shipment_id": 20405, "carrier_id": 28, "line_item_ids": [7, 8, 9]})
        );
        for bad in [
            serde_json::json!("SH-1"),
            serde_json::json!(1.5),
            serde_json::json!(-3),
            serde_json::json!(""),
            serde_json::json!(true),
            serde_json::json!(9007199254740992u64),
        ] {
            let r = serde_json::from_value::<EcomdashId>(bad.clone());
            assert!(r.is_err_and(|e| e.to_string().contains("not an ecomdash id")), "{bad}");
        }
    }
}
