//! The gateway's own vocabulary. Nothing here knows HTTP, SQL or any carrier.

pub mod limits;
pub mod shipment;
pub mod status;
pub mod time;

pub use shipment::*;
pub use status::*;
