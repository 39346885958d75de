//! eCMR.services wire types (docs/carriers/ecmr.md "ecmr"; seed `000_e40b7ecac6f8ee32.txt`).
//! The seed names the operations (request access token, store shipment, get shipment
//! details, get shipment overview) but publishes no schema, so the shapes here are
//! *ours*, following the CMR consignment note (consignor, consignee, place and date of
//! taking over, place of delivery, goods lines). Answers are read leniently: unknown
//! fields are ignored and optional ones may be absent or null.

use serde::{Deserialize, Serialize};

// ---------- requests ----------

/// `POST {paths.token}`: the organisation id and its API token (seed step 3).
#[derive(Debug, Serialize)]
pub struct TokenRequest<'a> {
    pub client_id: &'a str,
    pub code: &'a str,
}

/// `POST {paths.shipments}`: the shipment travels in a `shipment` wrapper.
#[derive(Debug, Serialize)]
pub struct StoreRequest {
    pub shipment: Shipment,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Shipment {
    /// Our stable key at the carrier: a repeated store with it updates (docs/carriers/ecmr.md, ours).
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consignor: Option<Party>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consignee: Option<Party>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taking_over: Option<TakingOver>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    pub goods: Vec<Goods>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Party {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    pub city: String,
    pub country: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Place {
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    pub city: String,
    pub country: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TakingOver {
    pub place: Place,
    /// RFC 3339. Absent when the pickup stop has no time: the carrier then says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Delivery {
    pub place: Place,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Goods {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marks: Option<String>,
    pub packages: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packing: Option<String>,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gross_weight_kg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_m3: Option<f64>,
}

// ---------- answers ----------

/// `{access_token, token_type:"Bearer", expires_in}`.
#[derive(Debug, Deserialize)]
pub struct TokenAnswer {
    pub access_token: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    /// Seconds; some OAuth-style servers send it as a string.
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub expires_in: Option<i64>,
}

/// Store answer: `{tracking_number, reference, status}`.
#[derive(Debug, Deserialize)]
pub struct StoreAnswer {
    pub tracking_number: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// Details answer: `{tracking_number, reference, status, history, documents}`.
#[derive(Debug, Default, Deserialize)]
pub struct Details {
    #[serde(default)]
    pub tracking_number: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub history: Vec<HistoryEntry>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub documents: Vec<Document>,
}

/// One history entry: what (`status`), when (`at`), who (`by`), and an optional note.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryEntry {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Document {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// Overview answer: `{shipments, page, per_page, total}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Overview {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub shipments: Vec<OverviewEntry>,
    #[serde(default)]
    pub page: Option<u64>,
    #[serde(default)]
    pub per_page: Option<u64>,
    #[serde(default)]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct OverviewEntry {
    #[serde(default)]
    pub tracking_number: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// Error body: `{error, field?}` (422 names the offending field).
#[derive(Debug, Default, Deserialize)]
pub struct ErrorAnswer {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
    /// OAuth-style servers put the human text here.
    #[serde(default)]
    pub error_description: Option<String>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn lenient_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_tolerate_nulls_strings_and_extra_fields() {
        let t: TokenAnswer =
            serde_json::from_str(r#"{"access_token":"a","token_type":"Bearer","expires_in":"3600","scope":"x"}"#)
                .expect("parses");
        assert_eq!(t.expires_in, Some(3600));
        let d: Details =
            serde_json::from_str(r#"{"tracking_number":"T","status":"sent","history":null}"#).expect("parses");
        assert!(d.history.is_empty() && d.documents.is_empty());
        let d: Details = serde_json::from_str(
            r#"{"history":[{"status":"created","at":"2026-01-01T00:00:00Z","by":"x","extra":1}],
                "documents":[{"type":"cmr","url":"http://x/cmr.pdf"}]}"#,
        )
        .expect("parses");
        assert_eq!(d.history[0].by.as_deref(), Some("x"));
        assert_eq!(d.documents[0].kind.as_deref(), Some("cmr"));
    }

    #[test]
    fn optional_request_fields_are_left_out() {
        let g = Goods {
            marks: None,
            packages: 2,
            packing: None,
            description: "Goods".into(),
            gross_weight_kg: None,
            volume_m3: None,
        };
        assert_eq!(serde_json::to_value(&g).expect("json"), serde_json::json!({"packages": 2, "description": "Goods"}));
    }
}
