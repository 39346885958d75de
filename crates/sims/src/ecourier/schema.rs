//! The Order object model of the e-Courier API reference (seed 001, "Field
//! Definitions"), as tables the validator walks: which attributes each element has,
//! their types, which are required, which "May not be set via API", and which child
//! elements it holds.
//!
//! Every scalar of the model is an XML attribute (the reference's XSD "defines all the
//! attributes for the entire order schema"; GetJsonOrder shows them as `@OrderID`...),
//! and every collection is a container element holding items (`Stops.Stop`,
//! `Pieces.Piece`, ...).

/// The type the reference gives a field. Values always travel as JSON strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Str,
    Int,
    Double,
    Bool,
    Date,
    DateTime,
    OneOf(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    Optional,
    Required,
    /// "May not be set via API" (or only ever assigned by e-Courier).
    System,
    /// `use="prohibited"` in the reference (OrderNotify's NotifyDateTime).
    Prohibited,
}

#[derive(Debug)]
pub(crate) struct Attr {
    pub name: &'static str,
    pub ty: Ty,
    pub use_: Use,
}

#[derive(Debug)]
pub(crate) enum Shape {
    /// A container element holding one or many `item` elements: `Stops: {Stop: ...}`.
    List { item: &'static str },
    /// One element: `Customer: {...}`.
    Single,
}

#[derive(Debug)]
pub(crate) struct Child {
    pub name: &'static str,
    pub shape: Shape,
    pub schema: &'static Schema,
    /// Elements that only e-Courier writes (Jobs, OrderEvents).
    pub system_only: bool,
}

#[derive(Debug)]
pub(crate) struct Schema {
    pub attrs: &'static [Attr],
    pub children: &'static [Child],
}

impl Schema {
    pub(crate) fn attr(&self, name: &str) -> Option<&'static Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }

    pub(crate) fn child(&self, name: &str) -> Option<&'static Child> {
        self.children.iter().find(|c| c.name == name)
    }
}

const fn a(name: &'static str, ty: Ty) -> Attr {
    Attr { name, ty, use_: Use::Optional }
}

const fn req(name: &'static str, ty: Ty) -> Attr {
    Attr { name, ty, use_: Use::Required }
}

const fn sys(name: &'static str, ty: Ty) -> Attr {
    Attr { name, ty, use_: Use::System }
}

use Ty::{Bool, Date, DateTime, Double, Int, OneOf, Str};

/// OrderStatus values: "N" New, "A" Assigned, "I", "P", "X" Deleted, "T" Template.
pub(crate) const ORDER_STATUSES: &[&str] = &["N", "A", "I", "P", "X", "T"];

pub(crate) static ORDER: Schema = Schema {
    attrs: &[
        // "May not be set via API" in the reference.
        sys("OrderID", Int),
        sys("SiteID", Int),
        sys("SiteCode", Str),
        sys("TransferID", Int),
        // Shown on the reference's GetJsonOrder example, assigned by e-Courier.
        sys("SiteOrderID", Int),
        sys("UserGUID", Str),
        // The reference's "Order Attributes" list.
        a("OrderNumber", Str),
        a("OrderStatus", OneOf(ORDER_STATUSES)),
        a("OrderAlias", Str),
        a("CustomerID", Int),
        a("Notes", Str),
        a("CustomerCode", Str),
        a("CreateDate", Date),
        a("CreateUserID", Int),
        a("OrderDate", Date),
        a("Service", Str),
        a("VehicleTypeID", Int),
        a("VehicleType", Str),
        a("Pieces", Double),
        a("Weight", Double),
        a("PodRequired", Bool),
        a("PodSendType", Int),
        a("AmountQuote", Double),
        a("Caller", Str),
        a("CallerPhone", Str),
        a("AmountCharged", Double),
        a("AmountReceived", Double),
        a("QualityFlag", Bool),
        a("AutoVerify", Bool),
        a("UserName", Str),
        a("PackageType", Str),
        a("CarrierTypeID", Int),
        a("PriorityGroup", Str),
        a("TotalMiles", Double),
        a("HolidayNameID", Int),
        a("IncludeHolidayNameID", Int),
        a("DueTimeHolidayNameID", Int),
        a("FeeMisc1", Bool),
        a("FeeMisc2", Bool),
        a("FeeMisc3", Bool),
        a("FeeMisc4", Bool),
        a("Description", Str),
        a("OtherReference", Str),
        a("InvoiceReference", Str),
        a("Auth", Str),
        a("PodName", Str),
        a("PodDateTime", DateTime),
        a("PodSign", Str),
        a("CodAmount", Double),
        a("DeclaredValue", Double),
        // Not in the list but on the reference's own QuoteOrder answer, so the order
        // model has them.
        a("CallerEmail", Str),
        a("TaskID", Int),
        a("CompleteOrder", Str),
        a("ReadyDateTime", DateTime),
        a("DueDateTime", DateTime),
        a("DriverCode", Str),
    ],
    children: &[
        Child { name: "Stops", shape: Shape::List { item: "Stop" }, schema: &STOP, system_only: false },
        Child { name: "Pieces", shape: Shape::List { item: "Piece" }, schema: &PIECE, system_only: false },
        Child { name: "OrderFees", shape: Shape::List { item: "OrderFee" }, schema: &ORDER_FEE, system_only: false },
        Child {
            name: "OrderNotifiers",
            shape: Shape::List { item: "OrderNotify" },
            schema: &ORDER_NOTIFY,
            system_only: false,
        },
        Child { name: "Customer", shape: Shape::Single, schema: &CUSTOMER, system_only: false },
        // Jobs are "generated" by e-Courier; OrderEvent fields "May only be set in
        // e-Courier System".
        Child { name: "Jobs", shape: Shape::List { item: "Job" }, schema: &EMPTY, system_only: true },
        Child { name: "OrderEvents", shape: Shape::List { item: "OrderEvent" }, schema: &EMPTY, system_only: true },
    ],
};

static EMPTY: Schema = Schema { attrs: &[], children: &[] };

pub(crate) const STOP_TYPES: &[&str] = &["P", "D", "B"];

pub(crate) static STOP: Schema = Schema {
    attrs: &[
        req("Sequence", Int),
        // Optional in the reference, but without it a stop is neither the pickup nor
        // the destination every order must have.
        req("StopType", OneOf(STOP_TYPES)),
        a("ScheduledDateTime", DateTime),
        a("EarlyDateTime", DateTime),
        a("LateDateTime", DateTime),
        a("TimeOfServiceCode", Str),
        a("Zone", Str),
        a("DispatchZone", Str),
        a("Name", Str),
        a("Address", Str),
        a("City", Str),
        a("State", Str),
        a("Zip", Str),
        a("Country", Str),
        a("Phone", Str),
        a("See", Str),
        a("Room", Str),
        a("Note", Str),
        a("CustomerShipToCode", Str),
        a("LocationTypeID", Int),
        a("DispatchGroupID", Int),
        a("StopMiles", Double),
        a("ZLatitude", Double),
        a("ZLongitude", Double),
        a("Latitude", Double),
        a("Longitude", Double),
        a("StopID", Int),
        a("AVSQuality", Int),
        a("ScheduledDateTimeTZ", Str),
        a("Pieces", Int),
        a("Weight", Int),
        a("Service", Str),
        a("Description", Str),
        a("ContractNumber", Str),
        a("RouteNumber", Str),
        a("Frequency", Str),
        a("DriverPay", Double),
        a("AmountCharged", Double),
        a("StopClassID", Int),
        a("DriverCode", Str),
    ],
    children: &[Child {
        name: "OrderStopPieces",
        shape: Shape::List { item: "OrderStopPiece" },
        schema: &ORDER_STOP_PIECE,
        system_only: false,
    }],
};

/// "The OrderStopPiece consists of a PieceAction and Sequence element. PieceAction may
/// be "P" for Pickup, or "D" for destination."
pub(crate) static ORDER_STOP_PIECE: Schema =
    Schema { attrs: &[req("Sequence", Int), req("PieceAction", OneOf(&["P", "D"]))], children: &[] };

/// "Piece attributes include a piece reference, weight, height, width, quantity, and
/// description", plus the Sequence OrderStopPieces refer to (the reference's example
/// spells quantity `Pieces`). The reference names no length.
pub(crate) static PIECE: Schema = Schema {
    attrs: &[
        req("Sequence", Int),
        a("Reference", Str),
        a("Pieces", Int),
        a("Weight", Double),
        a("Height", Double),
        a("Width", Double),
        a("Description", Str),
        sys("PieceID", Int),
    ],
    children: &[],
};

pub(crate) static ORDER_FEE: Schema = Schema {
    attrs: &[
        req("Sequence", Int),
        req("SubSequence", Int),
        req("FeeAmount", Double),
        req("FeeValue", Str),
        a("OverrideFlag", Bool),
        a("Notes", Str),
        a("FeeTitle", Str),
        a("FeeCode", Str),
    ],
    children: &[],
};

/// OrderNotifyID's "Possible Values" in the reference.
const NOTIFY_IDS: &[&str] = &["-1", "-2", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"];

pub(crate) static ORDER_NOTIFY: Schema = Schema {
    attrs: &[
        req("Sequence", Int),
        req("OrderNotifyID", OneOf(NOTIFY_IDS)),
        req("NotifyEmail", Str),
        Attr { name: "NotifyDateTime", ty: DateTime, use_: Use::Prohibited },
        a("FromEmail", Str),
        req("Subject", Str),
        req("StyleSheetID", Int),
        a("CustomerNotifyID", Int),
    ],
    children: &[],
};

pub(crate) static CUSTOMER: Schema = Schema {
    attrs: &[
        req("CustomerID", Int),
        req("CustomerCode", Str),
        req("Name", Str),
        req("Address", Str),
        req("City", Str),
        req("State", Str),
        req("Zip", Str),
        a("Country", Str),
        req("Phone", Str),
        a("See", Str),
        req("PState", Str),
        a("PCountry", Str),
        a("Notes", Str),
        a("Service", Str),
        a("VehicleTypeID", Int),
        a("CreatedDate", Date),
        a("ReferencePrompt", Str),
        req("SiteID", Int),
        req("CustomerTypeID", Int),
        a("SiteCode", Str),
        a("OkCreditStatus", Int),
    ],
    children: &[],
};

/// The JobStop attributes of the reference that repeat what was ordered at a stop;
/// a JobStop copies them from its order stop.
pub(crate) const JOB_STOP_COPIED: &[&str] = &[
    "StopType",
    "ScheduledDateTime",
    "EarlyDateTime",
    "LateDateTime",
    "TimeOfServiceCode",
    "Zone",
    "DispatchZone",
    "Name",
    "Address",
    "City",
    "State",
    "Zip",
    "LocationTypeID",
    "ZLatitude",
    "ZLongitude",
    "Latitude",
    "Longitude",
    "Country",
    "Room",
    "Note",
    "Phone",
    "See",
    "CustomerShipToCode",
    "Service",
    "Description",
    "ContractNumber",
    "RouteNumber",
    "Frequency",
    "StopClassID",
];
