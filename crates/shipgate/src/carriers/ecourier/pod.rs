//! e-Courier's proof of delivery (docs/carriers/ecourier.md "Proof of delivery").
//!
//! Where the reference puts it (seed 001, "Order Attributes" and "JobStops"): the order
//! carries `PodName`, `PodDateTime` and `PodSign`; a JobStop carries `PodName` and
//! `PodDateTime` (no signature). GetJsonOrder's description says "signature information
//! will be returned as base64 encoded objects": `PodSign` is the signature, base64.
//! The reference names no image format, so the bytes are stored under the type their
//! content shows (checked by `domain::document::check`); a `data:<type>;base64,` URI,
//! which signature pads commonly produce, declares its type (ours).

use base64::Engine as _;
use chrono::{DateTime, Datelike as _, FixedOffset, Utc};

use super::mapping::parse_datetime;
use super::wire::{JobStopOut, OrderOut};
use crate::domain::{Attachment, ProofReport, Status};

/// The proof of a delivered order: the order's own POD first, else the latest POD of a
/// destination JobStop (a JobStop's `StopType` `D` or `B`); the signature is the order's
/// `PodSign`. None while the order is not delivered (a POD at one of two destinations
/// is progress, not proof of the delivery) or when it carries no POD at all.
pub fn proof_from(order: &OrderOut, offset: &FixedOffset, status: Option<Status>) -> Option<ProofReport> {
    if status != Some(Status::Delivered) {
        return None;
    }
    let at_of = |s: &Option<String>| real_time(s.as_deref(), offset);
    let stop_pod = order
        .jobs
        .iter()
        .flat_map(|j| &j.stops)
        .filter(|js| delivers(js) && (js.pod_name.is_some() || at_of(&js.pod_date_time).is_some()))
        .max_by_key(|js| at_of(&js.pod_date_time));
    let name = order.pod_name.clone().or_else(|| stop_pod.and_then(|js| js.pod_name.clone()));
    let at = at_of(&order.pod_date_time).or_else(|| stop_pod.and_then(|js| at_of(&js.pod_date_time)));
    let signature = order.pod_sign.as_deref().and_then(attachment);
    if name.is_none() && at.is_none() && signature.is_none() {
        return None;
    }
    Some(ProofReport { name, at, signature })
}

fn delivers(js: &JobStopOut) -> bool {
    js.stop_type.as_deref().map(str::trim).is_some_and(|t| t.eq_ignore_ascii_case("D") || t.eq_ignore_ascii_case("B"))
}

/// A time that is really there: XML serializers write `1/1/0001 12:00:00 AM` and the
/// like for "not yet" (docs/carriers/ecourier.md "Status words").
fn real_time(s: Option<&str>, offset: &FixedOffset) -> Option<DateTime<Utc>> {
    s.and_then(|t| parse_datetime(t, offset)).filter(|t| t.year() >= 1990)
}

/// `PodSign`'s bytes: plain base64 (the reference), or a base64 `data:` URI that states
/// its media type. Line breaks inside the base64 are allowed; anything that does not
/// decode is no signature (logged, never stored).
pub fn attachment(text: &str) -> Option<Attachment> {
    let text = text.trim();
    let (declared_type, data) = match text.strip_prefix("data:").and_then(|rest| rest.split_once(',')) {
        Some((meta, data)) => {
            let Some(media) = meta.strip_suffix(";base64") else {
                tracing::warn!("e-Courier PodSign is a data URI that is not base64; not stored");
                return None;
            };
            (Some(media.to_owned()).filter(|m| !m.is_empty()), data)
        }
        None => (None, text),
    };
    let clean: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engines = [&base64::engine::general_purpose::STANDARD, &base64::engine::general_purpose::URL_SAFE];
    match engines.iter().find_map(|e| e.decode(&clean).ok()) {
        Some(bytes) if !bytes.is_empty() => Some(Attachment { declared_type, bytes }),
        _ => {
            tracing::warn!(chars = clean.len(), "e-Courier PodSign is not base64; not stored");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order(v: serde_json::Value) -> OrderOut {
        OrderOut::from_value(&json!({ "Order": v })).expect("order")
    }

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).expect("utc")
    }

    #[test]
    fn the_orders_pod_and_its_base64_signature_are_the_proof() {
        let o = order(json!({"@OrderStatus": "A", "@PodName": "J. DOE", "@PodDateTime": "9/3/2020 3:20:00 AM",
            "@PodSign": "aGVs\nbG8="}));
        let p = proof_from(&o, &utc(), Some(Status::Delivered)).expect("proof");
        assert_eq!(p.name.as_deref(), Some("J. DOE"));
        assert_eq!(p.at.map(|t| t.to_rfc3339()), Some("2020-09-03T03:20:00+00:00".to_owned()));
        assert_eq!(p.signature, Some(Attachment { declared_type: None, bytes: b"hello".to_vec() }));
        // Not delivered: no proof.
        assert_eq!(proof_from(&o, &utc(), Some(Status::InTransit)), None);
    }

    #[test]
    fn a_destination_jobstops_pod_stands_in_for_the_orders() {
        let o = order(json!({"@OrderStatus": "A", "@PodDateTime": "1/1/0001 12:00:00 AM",
            "Jobs": {"Job": {"JobStops": {"JobStop": [
                {"@StopType": "P", "@PodName": "DOCK 4", "@PodDateTime": "9/3/2020 1:00:00 AM"},
                {"@StopType": "D", "@PodName": "B. MOORE", "@PodDateTime": "9/3/2020 4:00:00 AM"}]}}}}));
        let p = proof_from(&o, &utc(), Some(Status::Delivered)).expect("proof");
        assert_eq!(p.name.as_deref(), Some("B. MOORE"));
        assert_eq!(p.at.map(|t| t.to_rfc3339()), Some("2020-09-03T04:00:00+00:00".to_owned()));
        assert_eq!(p.signature, None);
    }

    #[test]
    fn a_data_uri_declares_its_type_and_garbage_is_no_signature() {
        assert_eq!(
            attachment("data:image/png;base64,aGVsbG8="),
            Some(Attachment { declared_type: Some("image/png".into()), bytes: b"hello".to_vec() })
        );
        assert_eq!(attachment("data:image/png,hello"), None);
        assert_eq!(attachment("not base64 at all!"), None);
        // URL-safe base64 is read too.
        assert_eq!(attachment("aGVsbG8_").map(|a| a.bytes), Some(b"hello?".to_vec()));
    }
}
