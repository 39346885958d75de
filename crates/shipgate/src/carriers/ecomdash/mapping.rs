//! ecomdash ⇄ gateway mapping (docs/carriers/ecomdash.md "ecomdash"): request items from our sink
//! items, HTTP answers onto [`CarrierError`] classes, and per-item verdicts onto
//! [`SinkResult`]s. Pure functions, unit-tested here.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::wire;
use crate::carriers::{CarrierError, SinkItem, SinkResult};

/// Most items per call (docs/carriers/ecomdash.md "When": up to 50 per call).
pub const MAX_BATCH: usize = 50;

/// Words that mark a per-item failure message as temporary, matched case-insensitively.
/// Ours: ecomdash documents no per-item error codes, so an item is retried only when its
/// own message says the condition will pass; any other message is a permanent failure.
pub const TRANSIENT_MARKERS: &[&str] =
    &["try again", "timeout", "timed out", "temporarily", "temporary", "busy", "deadlock", "rate limit"];

pub fn is_transient_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    TRANSIENT_MARKERS.iter().any(|k| m.contains(k))
}

/// "Try again in N seconds" (Azure API Management's 429 text) → N seconds.
pub fn try_again_in(message: &str) -> Option<Duration> {
    let m = message.to_ascii_lowercase();
    let at = m.find("try again in ")? + "try again in ".len();
    let digits: String = m[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<u64>().ok().map(Duration::from_secs)
}

fn date(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One request item. With `line_item_ids`, each line item carries the tracking number
/// too (the seed: without LineItems, ALL remaining items are taken as shipped). An id
/// that is not ecomdash's integer (stored before the API required one) makes the item
/// unsendable: `Err` says which.
pub fn tracking_info(item: &SinkItem) -> Result<wire::TrackingInfo, String> {
    let id = |name: &str, s: &str| {
        wire::wire_id(s).ok_or_else(|| format!("{name} {s:?} is not an ecomdash id (a whole number above 0); not sent"))
    };
    let shipment_id = id("ShipmentId", &item.sink_shipment_id)?;
    let carrier_id = item.carrier_id.as_deref().map(|c| id("CarrierId", c)).transpose()?;
    let estimated = item.estimated_delivery.as_ref().map(date);
    let line_items = match item.line_item_ids.as_ref().filter(|ids| !ids.is_empty()) {
        None => None,
        Some(ids) => Some(
            ids.iter()
                .map(|l| {
                    Ok(wire::LineItem {
                        line_item_id: id("LineItemId", l)?,
                        carrier_id,
                        tracking_number: Some(item.tracking_number.clone()),
                        tracking_url: item.tracking_url.clone(),
                        estimated_delivery_date: estimated.clone(),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?,
        ),
    };
    Ok(wire::TrackingInfo {
        shipment_id,
        carrier_id,
        tracking_number: Some(item.tracking_number.clone()),
        tracking_url: item.tracking_url.clone(),
        shipped_date: item.shipped_at.as_ref().map(date),
        estimated_delivery_date: estimated,
        line_items,
    })
}

/// `{"Message"}` (the seed's 403/500, ASP.NET's 415), `{"message"}` (API Management), or
/// the answer envelope's `messages` (a refused body: 400 `{"status": "Failure", ...}`).
fn error_message(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<wire::ErrorAnswer>(body).ok().and_then(|e| e.message).filter(|m| !m.is_empty()).or_else(
        || {
            serde_json::from_slice::<wire::SubmitAnswer>(body)
                .ok()
                .map(|a| a.messages.join("; "))
                .filter(|m| !m.is_empty())
        },
    )
}

/// Classify a non-200 answer.
pub fn classify_failure(status: u16, body: &[u8], retry_after: Option<Duration>) -> CarrierError {
    let message = error_message(body);
    let text = |fallback: &str| message.clone().unwrap_or_else(|| fallback.to_owned());
    match status {
        // 401: API Management refused Ocp-Apim-Subscription-Key; 403 (seed): the
        // ecd-subscription-key is unknown or its company has no current subscription.
        401 | 403 => CarrierError::Misconfigured {
            message: format!("ecomdash refused the keys ({status}): {}", text("no message")),
        },
        404 => CarrierError::Misconfigured { message: "ecomdash endpoint not found (404): check base_url".to_owned() },
        429 => CarrierError::Transient {
            message: format!("ecomdash rate limit (429): {}", text("too many requests")),
            retry_after: message.as_deref().and_then(try_again_in).or(retry_after).or(Some(Duration::from_secs(1))),
        },
        // 400/415: we sent a body the API does not accept: a gateway bug.
        400 | 415 => CarrierError::Protocol {
            message: format!("ecomdash refused the request body ({status}): {}", text("no message")),
        },
        s if s >= 500 => CarrierError::Transient {
            message: format!("ecomdash server error ({s}): {}", text("no message")),
            retry_after,
        },
        s => CarrierError::Rejected { message: format!("ecomdash answered HTTP {s}: {}", text("no message")) },
    }
}

/// Read a 200 answer into one verdict per item of the batch, in the batch's order.
/// Results are matched by position and verified by the echoed `ShipmentId`; when the
/// positions do not line up, by id (each result used once).
pub fn results_for(batch: &[SinkItem], body: &[u8]) -> Result<Vec<SinkResult>, CarrierError> {
    let protocol = |m: String| CarrierError::Protocol { message: m };
    let answer: wire::SubmitAnswer =
        serde_json::from_slice(body).map_err(|e| protocol(format!("submitTrackingInfo answer: {e}")))?;
    let Some(data) = answer.data else {
        let status = answer.status.unwrap_or_default();
        return Err(protocol(format!(
            "submitTrackingInfo answer has no data (status {status:?}: {:?})",
            answer.messages
        )));
    };
    if data.len() != batch.len() {
        return Err(protocol(format!("submitTrackingInfo answered {} results for {} items", data.len(), batch.len())));
    }
    let echoed = |i: usize| data[i].request.as_ref().and_then(|r| r.shipment_id.clone());
    let ours: Vec<Option<String>> =
        batch.iter().map(|b| wire::wire_id(&b.sink_shipment_id).map(|n| n.to_string())).collect();
    let positional = (0..batch.len()).all(|i| echoed(i).is_none() || echoed(i) == ours[i]);
    let order: Vec<usize> = if positional {
        (0..batch.len()).collect()
    } else {
        let mut used = vec![false; data.len()];
        let mut order = Vec::with_capacity(batch.len());
        for (i, id) in ours.iter().enumerate() {
            let found = (0..data.len())
                .find(|&j| !used[j] && echoed(j).is_some() && echoed(j) == *id)
                .ok_or_else(|| protocol(format!("no result for ShipmentId {}", batch[i].sink_shipment_id)))?;
            used[found] = true;
            order.push(found);
        }
        order
    };
    batch
        .iter()
        .zip(order)
        .map(|(item, j)| {
            let d = &data[j];
            let ok = d.was_successful.ok_or_else(|| {
                protocol(format!("result for ShipmentId {} has no WasSuccessful", item.sink_shipment_id))
            })?;
            let message = (!d.messages.is_empty()).then(|| d.messages.join("; "));
            let transient = !ok && message.as_deref().is_some_and(is_transient_message);
            let message = match (ok, message) {
                (false, None) => Some("ecomdash did not accept the item (no message)".to_owned()),
                (_, m) => m,
            };
            Ok(SinkResult { key: item.key.clone(), ok, transient, message })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(key: &str, id: &str) -> SinkItem {
        SinkItem {
            key: key.into(),
            sink_shipment_id: id.into(),
            carrier_id: Some("3".into()),
            tracking_number: "1Z999".into(),
            tracking_url: None,
            shipped_at: None,
            estimated_delivery: None,
            line_item_ids: None,
        }
    }

    #[test]
    fn transient_words_and_try_again() {
        assert!(is_transient_message("Database busy, please Try Again later"));
        assert!(is_transient_message("Request timeout"));
        assert!(!is_transient_message("Shipment 28 not found"));
        assert_eq!(try_again_in("Rate limit is exceeded. Try again in 7 seconds."), Some(Duration::from_secs(7)));
        assert_eq!(try_again_in("nope"), None);
    }

    #[test]
    fn line_items_carry_the_tracking_number() {
        let mut i = item("k", "28");
        i.line_item_ids = Some(vec!["5".into(), "6".into()]);
        let v = serde_json::to_value(tracking_info(&i).expect("integer ids")).expect("json");
        assert_eq!(v["ShipmentId"], json!(28));
        assert_eq!(v["CarrierId"], json!(3));
        assert_eq!(v["LineItems"][1], json!({"LineItemId": 6, "CarrierId": 3, "TrackingNumber": "1Z999"}));
    }

    #[test]
    fn failures_map_to_classes() {
        let body = br#"{"Message":"not valid"}"#;
        assert!(matches!(classify_failure(403, body, None), CarrierError::Misconfigured { .. }));
        assert!(matches!(classify_failure(500, body, None), CarrierError::Transient { .. }));
        let e = classify_failure(429, br#"{"statusCode":429,"message":"Try again in 4 seconds."}"#, None);
        assert!(matches!(e, CarrierError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(4)));
        let e = classify_failure(429, b"", Some(Duration::from_secs(9)));
        assert!(matches!(e, CarrierError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(9)));
        assert!(matches!(classify_failure(400, b"x", None), CarrierError::Protocol { .. }));
        // A refused body names what ecomdash refused (the answer envelope's messages).
        let refused = br#"{"status": "Failure", "messages": ["[0].ShipmentId must be a number."], "pagination": null, "data": null}"#;
        let e = classify_failure(400, refused, None);
        assert!(
            matches!(&e, CarrierError::Protocol { message } if message.contains("[0].ShipmentId must be a number.")),
            "{e:?}"
        );
    }

    #[test]
    fn results_are_matched_by_id_when_out_of_order() {
        let batch = [item("a", "1"), item("b", "2")];
        let body = json!({"status": "Success", "data": [
            {"Request": {"ShipmentId": 2.0}, "WasSuccessful": false, "Messages": ["Shipment not found"]},
            {"Request": {"ShipmentId": 1.0}, "WasSuccessful": true, "Messages": null}
        ]})
        .to_string();
        let r = results_for(&batch, body.as_bytes()).expect("results");
        assert!(r[0].ok && r[0].key == "a");
        assert!(!r[1].ok && !r[1].transient && r[1].message.as_deref() == Some("Shipment not found"));
        let short = json!({"status": "Success", "data": []}).to_string();
        assert!(matches!(results_for(&batch, short.as_bytes()), Err(CarrierError::Protocol { .. })));
        let wrong = json!({"data": [{"Request": {"ShipmentId": 9}, "WasSuccessful": true},
                                    {"Request": {"ShipmentId": 1}, "WasSuccessful": true}]})
        .to_string();
        assert!(matches!(results_for(&batch, wrong.as_bytes()), Err(CarrierError::Protocol { .. })));
    }
}
