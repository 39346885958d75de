//! Normalized status: AfterShip's tag set as snake_case (seed 002 and docs/product.md
//! "Status"), plus the carrier's subtag verbatim. Status only moves forward.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    InfoReceived,
    InTransit,
    OutForDelivery,
    AttemptFail,
    Delivered,
    AvailableForPickup,
    Exception,
    Expired,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Pending,
        Status::InfoReceived,
        Status::InTransit,
        Status::OutForDelivery,
        Status::AttemptFail,
        Status::Delivered,
        Status::AvailableForPickup,
        Status::Exception,
        Status::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::InfoReceived => "info_received",
            Status::InTransit => "in_transit",
            Status::OutForDelivery => "out_for_delivery",
            Status::AttemptFail => "attempt_fail",
            Status::Delivered => "delivered",
            Status::AvailableForPickup => "available_for_pickup",
            Status::Exception => "exception",
            Status::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Progress rank. The last mile (out for delivery, a failed attempt, waiting at a
    /// pickup point, a non-final exception) shares one rank: a shipment legitimately
    /// goes back and forth between those. Terminal states outrank everything.
    fn rank(self) -> u8 {
        match self {
            Status::Pending => 0,
            Status::InfoReceived => 1,
            Status::InTransit => 2,
            Status::OutForDelivery | Status::AttemptFail | Status::AvailableForPickup | Status::Exception => 3,
            Status::Delivered | Status::Expired => 4,
        }
    }
}

/// Where a shipment's booking (or, for a registered tracking number, its registration)
/// with the carrier stands (docs/product.md "Booking semantics"). A shipment a carrier's push
/// created for an unknown AWB has none: nothing was booked through the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingState {
    /// Not yet accepted: the first attempt is running, or the carrier was down or slow
    /// and a job books it later.
    Pending,
    Booked,
    /// Refused by the carrier, or given up: nothing to track.
    Failed,
    Cancelled,
}

impl BookingState {
    pub const ALL: [BookingState; 4] =
        [BookingState::Pending, BookingState::Booked, BookingState::Failed, BookingState::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            BookingState::Pending => "pending",
            BookingState::Booked => "booked",
            BookingState::Failed => "failed",
            BookingState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<BookingState> {
        BookingState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// Subtags that make an exception final: returned to sender, lost, cancelled
/// (AfterShip subtags Exception_011, Exception_013; Exception_020 is our
/// "cancelled" per docs/carriers/ecourier.md e-Courier `X`).
const TERMINAL_EXCEPTION_SUBTAGS: [&str; 3] = ["Exception_011", "Exception_013", "Exception_020"];

/// Whether a shipment in this state is finished: no more polling, no more changes
/// from carrier events (docs/product.md: delivered, expired, exception with a
/// returned/lost subtag).
pub fn is_terminal(status: Status, subtag: Option<&str>) -> bool {
    match status {
        Status::Delivered | Status::Expired => true,
        Status::Exception => subtag.is_some_and(|s| TERMINAL_EXCEPTION_SUBTAGS.contains(&s)),
        _ => false,
    }
}

/// Whether moving from `current` to `next` is progress (or a sideways move within the
/// last mile). Late or duplicate events never move a shipment backwards, and nothing
/// moves a terminal shipment.
pub fn may_transition(current: Status, current_subtag: Option<&str>, next: Status, next_subtag: Option<&str>) -> bool {
    if is_terminal(current, current_subtag) {
        return false;
    }
    if current == next {
        return current_subtag != next_subtag && next_subtag.is_some();
    }
    next.rank() >= current.rank()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_moves_forward_only() {
        assert!(may_transition(Status::Pending, None, Status::InTransit, None));
        assert!(!may_transition(Status::InTransit, None, Status::InfoReceived, None));
        assert!(!may_transition(Status::Delivered, Some("Delivered_001"), Status::InTransit, None));
        assert!(!may_transition(Status::Delivered, None, Status::Exception, Some("Exception_013")));
    }

    #[test]
    fn the_last_mile_moves_sideways() {
        assert!(may_transition(Status::OutForDelivery, None, Status::AttemptFail, Some("AttemptFail_002")));
        assert!(may_transition(Status::AttemptFail, None, Status::OutForDelivery, None));
        assert!(may_transition(Status::Exception, Some("Exception_010"), Status::Exception, Some("Exception_011")));
        assert!(!may_transition(Status::Exception, Some("Exception_011"), Status::Delivered, None));
    }

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).expect("json"), serde_json::json!(s.as_str()));
        }
        for b in BookingState::ALL {
            assert_eq!(BookingState::parse(b.as_str()), Some(b));
            assert_eq!(serde_json::to_value(b).expect("json"), serde_json::json!(b.as_str()));
        }
        assert_eq!(Status::parse("Pending"), None);
        assert_eq!(BookingState::parse("done"), None);
    }
}
