//! What a booking is made of: the route and its goods ([`ShipmentPlan`]), the part
//! every booking body shares (`ShipmentIn` for booking and quoting), declared here once
//! with its fields' limits and documentation; the change a `ShipmentPatch` makes to it
//! ([`PlanPatch`]); and the rules that span its fields ([`check_plan`]).
//!
//! The request bodies read these fields flat, beside their own (`http::flat`), so the
//! JSON and the OpenAPI schemas stay the ones the API always had.

use serde::Deserialize;
use utoipa::ToSchema;

use super::FieldError;
use super::shipment::{Money, Parcel, Stop};

/// What a carrier needs to book or quote: the route and its goods.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentPlan {
    /// Your reference, unique per tenant when given; 1-100 characters.
    #[serde(default, deserialize_with = "super::limits::opt_text::<100, _>")]
    #[schema(min_length = 1, max_length = 100)]
    pub reference: Option<String>,
    /// The carrier's service level (e-Courier service, AfterShip courier slug); at most
    /// 100 characters.
    #[serde(default, deserialize_with = "super::limits::opt_text::<100, _>")]
    #[schema(max_length = 100)]
    pub service: Option<String>,
    /// The route, at most 50 stops.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub stops: Vec<Stop>,
    /// The goods, at most 100 parcel lines.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub parcels: Vec<Parcel>,
    pub declared_value: Option<Money>,
    pub cod_amount: Option<Money>,
    /// At most 2000 characters.
    #[serde(default, deserialize_with = "super::limits::opt_text::<2000, _>")]
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

impl ShipmentPlan {
    /// The stop a parcel is picked up at: its own, else the first pickup stop.
    pub fn pickup_stop_of(&self, parcel: &Parcel) -> Option<u32> {
        parcel.pickup_stop.or_else(|| self.stops.iter().find(|s| s.stop_type.picks_up()).map(|s| s.sequence))
    }
    /// The stop a parcel is delivered at: its own, else the last delivery stop.
    pub fn delivery_stop_of(&self, parcel: &Parcel) -> Option<u32> {
        parcel.delivery_stop.or_else(|| self.stops.iter().rev().find(|s| s.stop_type.delivers()).map(|s| s.sequence))
    }
}

/// A change to a plan: each field absent (unchanged), `null` (cleared) or a value
/// (replaced). The `ShipmentPatch` body reads it flat.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanPatch {
    /// 1-100 characters; null clears it.
    #[serde(default, deserialize_with = "super::limits::patch_text::<100, _>")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub reference: Option<Option<String>>,
    /// At most 100 characters; null clears it.
    #[serde(default, deserialize_with = "super::limits::patch_text::<100, _>")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub service: Option<Option<String>>,
    /// Replaces the route; at most 50 stops.
    #[schema(max_items = 50)]
    pub stops: Option<Vec<Stop>>,
    /// Replaces the goods; at most 100 parcel lines.
    #[schema(max_items = 100)]
    pub parcels: Option<Vec<Parcel>>,
    #[serde(default, deserialize_with = "super::limits::patch")]
    #[schema(value_type = Option<Money>)]
    pub declared_value: Option<Option<Money>>,
    #[serde(default, deserialize_with = "super::limits::patch")]
    #[schema(value_type = Option<Money>)]
    pub cod_amount: Option<Option<Money>>,
    /// At most 2000 characters; null clears it.
    #[serde(default, deserialize_with = "super::limits::patch_text::<2000, _>")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub notes: Option<Option<String>>,
}

impl PlanPatch {
    /// Apply the change to `plan`; the names of the fields it set, in field order.
    pub fn apply(self, plan: &mut ShipmentPlan) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let PlanPatch { reference, service, stops, parcels, declared_value, cod_amount, notes } = self;
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(v) = $field {
                    plan.$field = v;
                    changed.push(stringify!($field));
                }
            )*};
        }
        set!(reference, service, stops, parcels, declared_value, cod_amount, notes);
        changed
    }
}

/// Most stops and parcel lines a shipment takes.
pub const MAX_STOPS: usize = 50;
pub const MAX_PARCELS: usize = 100;

/// Rules that span fields: what a booking needs to make sense at any carrier.
pub fn check_plan(plan: &ShipmentPlan) -> Vec<FieldError> {
    let mut errors = Vec::new();
    // The published `maxItems` of the fields above.
    if plan.stops.len() > MAX_STOPS {
        errors.push(FieldError::new("stops", format!("at most {MAX_STOPS} stops")));
    }
    if plan.parcels.len() > MAX_PARCELS {
        errors.push(FieldError::new("parcels", format!("at most {MAX_PARCELS} parcel lines")));
    }
    if plan.stops.is_empty() {
        errors.push(FieldError::new("stops", "at least a pickup and a delivery stop are required"));
    } else {
        if !plan.stops.iter().any(|s| s.stop_type.picks_up()) {
            errors.push(FieldError::new("stops", "no stop of type pickup or both"));
        }
        if !plan.stops.iter().any(|s| s.stop_type.delivers()) {
            errors.push(FieldError::new("stops", "no stop of type delivery or both"));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, s) in plan.stops.iter().enumerate() {
        if s.sequence == 0 {
            errors.push(FieldError::new(format!("stops[{i}].sequence"), "must be at least 1"));
        }
        if !seen.insert(s.sequence) {
            errors.push(FieldError::new(
                format!("stops[{i}].sequence"),
                format!("sequence {} appears twice", s.sequence),
            ));
        }
        if s.address.line1.trim().is_empty() {
            errors.push(FieldError::new(format!("stops[{i}].address.line1"), "must not be empty"));
        }
        if s.address.city.trim().is_empty() {
            errors.push(FieldError::new(format!("stops[{i}].address.city"), "must not be empty"));
        }
        for (name, t) in
            [("scheduled_at", s.scheduled_at), ("window_start", s.window_start), ("window_end", s.window_end)]
        {
            if t.is_some_and(|t| !super::time::in_range(&t)) {
                errors.push(FieldError::new(format!("stops[{i}].{name}"), super::time::RANGE_MESSAGE));
            }
        }
        if let (Some(a), Some(b)) = (s.window_start, s.window_end)
            && b < a
        {
            errors.push(FieldError::new(format!("stops[{i}].window_end"), "is before window_start"));
        }
    }
    for (i, p) in plan.parcels.iter().enumerate() {
        if p.quantity == 0 {
            errors.push(FieldError::new(format!("parcels[{i}].quantity"), "must be at least 1"));
        }
        if let Some(w) = &p.weight
            && !(w.value.is_finite() && w.value > 0.0)
        {
            errors.push(FieldError::new(format!("parcels[{i}].weight.value"), "must be a positive number"));
        }
        if let Some(d) = &p.dimensions
            && ![d.length, d.width, d.height].iter().all(|v| v.is_finite() && *v > 0.0)
        {
            errors
                .push(FieldError::new(format!("parcels[{i}].dimensions"), "length, width and height must be positive"));
        }
        for (field, seq, want_pickup) in
            [("pickup_stop", p.pickup_stop, true), ("delivery_stop", p.delivery_stop, false)]
        {
            if let Some(seq) = seq {
                match plan.stops.iter().find(|s| s.sequence == seq) {
                    None => errors
                        .push(FieldError::new(format!("parcels[{i}].{field}"), format!("no stop with sequence {seq}"))),
                    Some(s) if want_pickup && !s.stop_type.picks_up() => errors.push(FieldError::new(
                        format!("parcels[{i}].{field}"),
                        format!("stop {seq} is not a pickup stop"),
                    )),
                    Some(s) if !want_pickup && !s.stop_type.delivers() => errors.push(FieldError::new(
                        format!("parcels[{i}].{field}"),
                        format!("stop {seq} is not a delivery stop"),
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::super::shipment::StopType;
    use super::*;

    fn stop(seq: u32, t: StopType) -> Stop {
        serde_json::from_value(serde_json::json!({
            "sequence": seq, "type": t, "address": {"line1": "1 Main St", "city": "Orlando", "country": "US"}
        }))
        .expect("stop")
    }

    #[test]
    fn a_plan_needs_pickup_and_delivery_and_valid_references() {
        let mut plan = ShipmentPlan {
            reference: None,
            service: None,
            stops: vec![stop(1, StopType::Pickup), stop(2, StopType::Delivery)],
            parcels: vec![],
            declared_value: None,
            cod_amount: None,
            notes: None,
        };
        assert!(check_plan(&plan).is_empty());
        plan.parcels.push(Parcel {
            reference: None,
            quantity: 1,
            weight: None,
            dimensions: None,
            description: None,
            pickup_stop: Some(2),
            delivery_stop: Some(9),
        });
        let errs = check_plan(&plan);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].field, "parcels[0].pickup_stop");
        plan.stops.pop();
        plan.parcels.clear();
        assert_eq!(check_plan(&plan)[0].message, "no stop of type delivery or both");
    }

    #[test]
    fn a_patch_sets_clears_or_keeps_each_field_and_names_what_it_set() {
        let mut plan = ShipmentPlan {
            reference: Some("SO-1".into()),
            service: Some("Route".into()),
            stops: vec![stop(1, StopType::Pickup), stop(2, StopType::Delivery)],
            parcels: vec![],
            declared_value: None,
            cod_amount: None,
            notes: Some("ring twice".into()),
        };
        let patch: PlanPatch =
            serde_json::from_value(serde_json::json!({"notes": null, "service": "Express"})).expect("patch");
        assert_eq!(patch.apply(&mut plan), vec!["service", "notes"]);
        assert_eq!(plan.reference.as_deref(), Some("SO-1"), "absent: unchanged");
        assert_eq!(plan.service.as_deref(), Some("Express"), "a value: replaced");
        assert_eq!(plan.notes, None, "null: cleared");
        assert_eq!(plan.stops.len(), 2);
    }
}
