//! The shipments API's request and list types. The booking body's plan (route, goods
//! and their texts) is the domain's `ShipmentPlan` / `PlanPatch`, read flat beside the
//! body's own fields (`http::flat`), so the fields are declared once for booking,
//! registering, quoting and updating.

use serde::de::{Deserializer, MapAccess};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::domain::{Metadata, PlanPatch, ShipmentPlan};
use crate::http::flat::{self, OptText, OwnFields, Text};
use crate::http::page;
use crate::service::shipments::{CreateShipment, ShipmentChanges};
use crate::service::views::json_text::{self, WriteJson, key};
use crate::service::views::schema::Metadata as MetadataSchema;
use crate::service::views::{CarrierExchange, Channel, CompleteReason, HistoryEntry, Shipment, TrackingEvent};

page!(ShipmentPage, Shipment, "shipments, newest first");

impl WriteJson for ShipmentPage {
    fn json_size_hint(&self) -> usize {
        self.data.iter().map(Shipment::json_size_hint).sum::<usize>() + 128
    }

    /// The bytes its derived `Serialize` writes (tested below).
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let ShipmentPage { data, next_cursor } = self;
        out.extend_from_slice(key!("{", "data"));
        out.push(b'[');
        for (i, s) in data.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            s.write_json(out)?;
        }
        out.push(b']');
        out.extend_from_slice(key!(",", "next_cursor"));
        json_text::opt_str(out, next_cursor.as_deref())?;
        out.push(b'}');
        Ok(())
    }
}

/// Book a shipment, register a tracking number, or quote: the plan and these fields.
#[derive(Debug)]
pub struct ShipmentIn {
    pub fields: BookingFields,
    pub plan: ShipmentPlan,
}

// A booking body's own fields, beside the plan, documented here: the schema of
// `ShipmentIn` is these and the plan's (`flat::schema`); `BookingReader` reads them.
// No doc comment: it would become the schema's description.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "connection_id": "con_01936f0c7a2b7c3d9e8f001122334455",
    "reference": "SO-1001",
    "service": "Route",
    "stops": [
        {"sequence": 1, "type": "pickup", "name": "James Madison",
         "address": {"line1": "2251 Orange Blossom Trail", "city": "Orlando", "state": "FL", "postal_code": "32804", "country": "US"},
         "phone": "3015551212", "scheduled_at": "2026-11-23T06:00:00-05:00"},
        {"sequence": 2, "type": "delivery", "name": "Bryan Moore",
         "address": {"line1": "2253 Orange Blossom Trail", "city": "Orlando", "state": "FL", "postal_code": "32804", "country": "US"},
         "scheduled_at": "2026-11-23T17:00:00-05:00"}
    ],
    "parcels": [{"reference": "test1234barcode", "quantity": 1, "weight": {"value": 2.5, "unit": "lb"}}],
    "metadata": {"erp_order": "4711"}
}))]
pub struct BookingFields {
    /// The connection (`con_...`) whose carrier books it; at most 64 characters.
    #[schema(max_length = 64)]
    pub connection_id: String,
    /// Register an existing tracking number instead of booking (tracking carriers); at
    /// most 100 characters.
    #[schema(max_length = 100)]
    pub tracking_number: Option<String>,
    #[serde(default)]
    #[schema(value_type = MetadataSchema)]
    pub metadata: Metadata,
    pub channel: Option<Channel>,
}

/// Reads [`BookingFields`] as their keys come, with their limits.
#[derive(Default)]
struct BookingReader {
    connection_id: Option<Text<64>>,
    tracking_number: Option<OptText<100>>,
    metadata: Option<Metadata>,
    channel: Option<Option<Channel>>,
}

impl OwnFields for BookingReader {
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "connection_id" => flat::once(&mut self.connection_id, "connection_id", map)?,
            "tracking_number" => flat::once(&mut self.tracking_number, "tracking_number", map)?,
            "metadata" => flat::once(&mut self.metadata, "metadata", map)?,
            "channel" => flat::once(&mut self.channel, "channel", map)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl<'de> Deserialize<'de> for ShipmentIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (own, plan) = flat::deserialize::<D, BookingReader, ShipmentPlan>(d)?;
        let fields = BookingFields {
            connection_id: flat::required(own.connection_id, "connection_id")?.0,
            tracking_number: own.tracking_number.and_then(|t| t.0),
            metadata: own.metadata.unwrap_or_default(),
            channel: own.channel.flatten(),
        };
        Ok(ShipmentIn { fields, plan })
    }
}

impl PartialSchema for ShipmentIn {
    fn schema() -> RefOr<Schema> {
        // Which connection and which number first, then the plan, then the rest.
        flat::schema(BookingFields::schema(), ShipmentPlan::schema(), 2)
    }
}

impl ToSchema for ShipmentIn {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        BookingFields::schemas(schemas);
        ShipmentPlan::schemas(schemas);
    }
}

impl From<ShipmentIn> for CreateShipment {
    fn from(b: ShipmentIn) -> Self {
        let BookingFields { connection_id, tracking_number, metadata, channel } = b.fields;
        CreateShipment { connection_id, tracking_number, plan: b.plan, metadata, channel }
    }
}

/// Change a shipment: the plan's changes and these fields; absent fields are unchanged,
/// `null` clears, a value replaces.
#[derive(Debug)]
pub struct ShipmentPatch {
    pub fields: PatchFields,
    pub plan: PlanPatch,
}

// A patch's own fields, beside the plan's changes (no doc comment: it would become the
// schema's description).
#[derive(Debug, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchFields {
    /// Replaces all metadata.
    #[schema(value_type = Option<MetadataSchema>)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    #[schema(value_type = Option<Channel>)]
    pub channel: Option<Option<Channel>>,
}

#[derive(Default)]
struct PatchReader {
    metadata: Option<Option<Metadata>>,
    channel: Option<Option<Channel>>,
}

impl OwnFields for PatchReader {
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "metadata" => flat::once(&mut self.metadata, "metadata", map)?,
            "channel" => flat::once(&mut self.channel, "channel", map)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl<'de> Deserialize<'de> for ShipmentPatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (own, plan) = flat::deserialize::<D, PatchReader, PlanPatch>(d)?;
        // `metadata: null` is as if absent; `channel: null` clears the channel.
        Ok(ShipmentPatch { fields: PatchFields { metadata: own.metadata.flatten(), channel: own.channel }, plan })
    }
}

impl PartialSchema for ShipmentPatch {
    fn schema() -> RefOr<Schema> {
        flat::schema(PatchFields::schema(), PlanPatch::schema(), 0)
    }
}

impl ToSchema for ShipmentPatch {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        PatchFields::schemas(schemas);
        PlanPatch::schemas(schemas);
    }
}

impl From<ShipmentPatch> for ShipmentChanges {
    fn from(p: ShipmentPatch) -> Self {
        ShipmentChanges { plan: p.plan, metadata: p.fields.metadata, channel: p.fields.channel }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Normalized status, e.g. `in_transit`.
    pub status: Option<String>,
    pub carrier: Option<String>,
    pub connection_id: Option<String>,
    pub reference: Option<String>,
    pub tracking_number: Option<String>,
    /// RFC 3339.
    pub created_after: Option<String>,
    /// RFC 3339.
    pub created_before: Option<String>,
    /// Page size, 1-100 (default 20).
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteIn {
    pub reason: CompleteReason,
}

/// A shipment's tracking events, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackingEventList {
    pub data: Vec<TrackingEvent>,
}

/// A shipment's history entries, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryList {
    pub data: Vec<HistoryEntry>,
}

/// A shipment's carrier exchanges, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeList {
    pub data: Vec<CarrierExchange>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::views::shipment::tests::{bare, full};

    #[test]
    fn a_page_is_written_as_the_derive_writes() {
        let pages = [
            ShipmentPage { data: vec![], next_cursor: None },
            ShipmentPage { data: vec![bare()], next_cursor: Some("c2hwXzE".into()) },
            ShipmentPage { data: vec![full(), bare(), full()], next_cursor: None },
        ];
        for page in pages {
            let mut out = Vec::new();
            page.write_json(&mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&page).unwrap());
        }
    }
}
