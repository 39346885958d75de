//! A shipment as the API shows it (`GET /v1/shipments/{id}`, schema `ShipmentOut`) and
//! as every outbound event carries it, with its tracking events, history and carrier
//! exchanges.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::json_text::{self, WriteJson, key};
use super::{Channel, Location, ShipmentSinks};
use crate::domain::{BookingState, DocumentLink, Money, Parcel, ProofOfDelivery, Status, Stop};
use crate::service::Error;
use crate::store::exchanges::ExchangeRow;
use crate::store::shipments::{EventRow, HistoryRow, PlanJson, ShipmentDoc, ShipmentRow};
use crate::store::types::PgJson;

/// The booking with the carrier: for a booking carrier the order, for a tracking
/// number registered on a tracking carrier (AfterShip) the registration.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Booking {
    /// pending | booked | failed | cancelled
    #[schema(value_type = String, example = "booked")]
    pub state: BookingState,
    /// Attempts made so far.
    pub attempts: i32,
    /// The carrier's last refusal or failure; null once booked.
    #[schema(value_type = Option<BookingError>)]
    pub last_error: Option<PgJson>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub booked_at: Option<DateTime<Utc>>,
}

// The schema keeps the name the API always gave it. No doc comment: it would become
// the schema's description.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ShipmentOut)]
pub struct Shipment {
    #[schema(example = "shp_01936f0c7a2b7c3d9e8f001122334455")]
    pub id: String,
    pub reference: Option<String>,
    pub connection_id: String,
    #[schema(example = "ecourier")]
    pub carrier: String,
    /// The carrier's order number for this shipment.
    pub carrier_reference: Option<String>,
    pub tracking_number: Option<String>,
    pub service: Option<String>,
    #[schema(value_type = Vec<Stop>)]
    pub stops: PgJson,
    #[schema(value_type = Vec<Parcel>)]
    pub parcels: PgJson,
    #[schema(value_type = Option<Money>)]
    pub declared_value: Option<PgJson>,
    #[schema(value_type = Option<Money>)]
    pub cod_amount: Option<PgJson>,
    pub notes: Option<String>,
    #[schema(value_type = super::schema::Metadata)]
    pub metadata: PgJson,
    pub channel: Option<Channel>,
    /// The booking (or, for a registered tracking number, the registration) with the
    /// carrier. Null only for a shipment a carrier's push created for an unknown AWB:
    /// nothing was booked or registered through the gateway.
    pub booking: Option<Booking>,
    pub status: Status,
    #[schema(example = "InfoReceived_001")]
    pub subtag: Option<String>,
    /// The carrier's own status code, as last seen.
    pub carrier_status: Option<String>,
    /// The latest tracking event (by when it happened), as recorded when it arrived.
    #[schema(value_type = Option<LastEvent>)]
    pub last_event: Option<PgJson>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub estimated_delivery: Option<DateTime<Utc>>,
    /// What each sink (`channel`) made of this shipment; `{}` when it reports to none.
    #[schema(value_type = ShipmentSinks)]
    pub sinks: PgJson,
    /// Documents the carrier holds (eCMR's CMR). `GET /v1/shipments/{id}/documents`
    /// lists them together with the documents the gateway keeps.
    #[schema(value_type = Vec<DocumentLink>)]
    pub documents: PgJson,
    /// Who took delivery and when, as the carrier reported it, with the signature the
    /// gateway keeps (download it from the documents); null until a carrier reports one.
    #[schema(value_type = Option<ProofOfDelivery>)]
    pub proof_of_delivery: Option<PgJson>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub updated_at: DateTime<Utc>,
}

impl Shipment {
    /// A new shipment's JSON columns as this view wrote them, for its insert.
    pub fn plan_json(&self) -> PlanJson<'_> {
        PlanJson {
            stops: self.stops.get(),
            parcels: self.parcels.get(),
            declared_value: self.declared_value.as_ref().map(PgJson::get),
            cod_amount: self.cod_amount.as_ref().map(PgJson::get),
            metadata: self.metadata.get(),
        }
    }
}

impl WriteJson for Shipment {
    /// About the length of its JSON: the stored JSON's text and room for the rest (the
    /// other fields of a booked shipment take about 650 bytes).
    fn json_size_hint(&self) -> usize {
        let opt = |j: &Option<PgJson>| j.as_ref().map_or(0, |j| j.get().len());
        768 + self.stops.get().len()
            + self.parcels.get().len()
            + self.metadata.get().len()
            + self.sinks.get().len()
            + self.documents.get().len()
            + opt(&self.declared_value)
            + opt(&self.cod_amount)
            + opt(&self.last_event)
            + opt(&self.proof_of_delivery)
            + self.booking.as_ref().map_or(0, |b| opt(&b.last_error))
    }

    /// The bytes the derived `Serialize` writes through serde_json (see
    /// [`json_text`]; the test `written_as_the_derive_writes` compares them). Every field
    /// is named here, in the struct's order: a field added to the struct and not
    /// written is a compile error.
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let Shipment {
            id,
            reference,
            connection_id,
            carrier,
            carrier_reference,
            tracking_number,
            service,
            stops,
            parcels,
            declared_value,
            cod_amount,
            notes,
            metadata,
            channel,
            booking,
            status,
            subtag,
            carrier_status,
            last_event,
            estimated_delivery,
            sinks,
            documents,
            proof_of_delivery,
            created_at,
            updated_at,
        } = self;
        out.extend_from_slice(key!("{", "id"));
        json_text::str(out, id)?;
        out.extend_from_slice(key!(",", "reference"));
        json_text::opt_str(out, reference.as_deref())?;
        out.extend_from_slice(key!(",", "connection_id"));
        json_text::str(out, connection_id)?;
        out.extend_from_slice(key!(",", "carrier"));
        json_text::str(out, carrier)?;
        out.extend_from_slice(key!(",", "carrier_reference"));
        json_text::opt_str(out, carrier_reference.as_deref())?;
        out.extend_from_slice(key!(",", "tracking_number"));
        json_text::opt_str(out, tracking_number.as_deref())?;
        out.extend_from_slice(key!(",", "service"));
        json_text::opt_str(out, service.as_deref())?;
        out.extend_from_slice(key!(",", "stops"));
        json_text::raw(out, stops);
        out.extend_from_slice(key!(",", "parcels"));
        json_text::raw(out, parcels);
        out.extend_from_slice(key!(",", "declared_value"));
        json_text::opt_raw(out, declared_value.as_ref());
        out.extend_from_slice(key!(",", "cod_amount"));
        json_text::opt_raw(out, cod_amount.as_ref());
        out.extend_from_slice(key!(",", "notes"));
        json_text::opt_str(out, notes.as_deref())?;
        out.extend_from_slice(key!(",", "metadata"));
        json_text::raw(out, metadata);
        out.extend_from_slice(key!(",", "channel"));
        json_text::value(out, channel)?;
        out.extend_from_slice(key!(",", "booking"));
        match booking {
            Some(Booking { state, attempts, last_error, booked_at }) => {
                out.extend_from_slice(key!("{", "state"));
                json_text::str(out, state.as_str())?;
                out.extend_from_slice(key!(",", "attempts"));
                json_text::value(out, attempts)?;
                out.extend_from_slice(key!(",", "last_error"));
                json_text::opt_raw(out, last_error.as_ref());
                out.extend_from_slice(key!(",", "booked_at"));
                json_text::opt_time(out, booked_at.as_ref())?;
                out.push(b'}');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(key!(",", "status"));
        json_text::str(out, status.as_str())?;
        out.extend_from_slice(key!(",", "subtag"));
        json_text::opt_str(out, subtag.as_deref())?;
        out.extend_from_slice(key!(",", "carrier_status"));
        json_text::opt_str(out, carrier_status.as_deref())?;
        out.extend_from_slice(key!(",", "last_event"));
        json_text::opt_raw(out, last_event.as_ref());
        out.extend_from_slice(key!(",", "estimated_delivery"));
        json_text::opt_time(out, estimated_delivery.as_ref())?;
        out.extend_from_slice(key!(",", "sinks"));
        json_text::raw(out, sinks);
        out.extend_from_slice(key!(",", "documents"));
        json_text::raw(out, documents);
        out.extend_from_slice(key!(",", "proof_of_delivery"));
        json_text::opt_raw(out, proof_of_delivery.as_ref());
        out.extend_from_slice(key!(",", "created_at"));
        json_text::time(out, created_at)?;
        out.extend_from_slice(key!(",", "updated_at"));
        json_text::time(out, updated_at)?;
        out.push(b'}');
        Ok(())
    }
}

/// The channel as the registry reads it from the JSON the store keeps (its `Channel`
/// reads ids written as numeric strings before they had to be integers); one that does
/// not parse is an error, never dropped.
fn channel_of(id: &str, stored: Option<&str>) -> Result<Option<Channel>, Error> {
    stored
        .map(|c| {
            serde_json::from_str::<Channel>(c)
                .map_err(|e| Error::internal(anyhow::anyhow!("shipment {id}: its stored channel does not read: {e}")))
        })
        .transpose()
}

impl TryFrom<ShipmentDoc> for Shipment {
    type Error = Error;

    /// The read paths (GET one, the list; QUALITY P4): the row's fields are moved and its
    /// JSON columns shown as stored, never read into the domain's types and written out
    /// again.
    fn try_from(r: ShipmentDoc) -> Result<Self, Error> {
        Ok(Shipment {
            channel: channel_of(&r.id, r.channel.as_ref().map(PgJson::get))?,
            booking: r.booking_state.map(|state| Booking {
                state,
                attempts: r.booking_attempts,
                last_error: r.booking_last_error,
                booked_at: r.booked_at,
            }),
            status: r.status,
            id: r.id,
            reference: r.reference,
            connection_id: r.connection_id,
            carrier: r.carrier,
            carrier_reference: r.carrier_reference,
            tracking_number: r.tracking_number,
            service: r.service,
            stops: r.stops,
            parcels: r.parcels,
            declared_value: r.declared_value,
            cod_amount: r.cod_amount,
            notes: r.notes,
            metadata: r.metadata,
            subtag: r.subtag,
            carrier_status: r.carrier_status,
            last_event: r.last_event,
            estimated_delivery: r.estimated_delivery,
            sinks: r.sinks,
            documents: r.documents,
            proof_of_delivery: r.proof_of_delivery,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

impl TryFrom<ShipmentRow> for Shipment {
    type Error = Error;

    /// The workflows' answers and events: the row as they changed it, its JSON values
    /// written from the domain's types.
    fn try_from(r: ShipmentRow) -> Result<Self, Error> {
        fn raw<T: Serialize>(v: &T) -> Result<PgJson, Error> {
            PgJson::of(v).map_err(Error::internal)
        }
        fn raw_opt<T: Serialize>(v: &Option<T>) -> Result<Option<PgJson>, Error> {
            v.as_ref().map(raw).transpose()
        }
        Ok(Shipment {
            channel: channel_of(&r.id, r.channel.as_ref().map(|c| c.0.get()))?,
            booking: match r.booking_state {
                Some(state) => Some(Booking {
                    state,
                    attempts: r.booking_attempts,
                    last_error: raw_opt(&r.booking_last_error)?,
                    booked_at: r.booked_at,
                }),
                None => None,
            },
            stops: raw(&r.stops)?,
            parcels: raw(&r.parcels)?,
            declared_value: raw_opt(&r.declared_value)?,
            cod_amount: raw_opt(&r.cod_amount)?,
            metadata: raw(&r.metadata)?,
            last_event: raw_opt(&r.last_event)?,
            sinks: raw(&r.sinks)?,
            documents: raw(&r.documents)?,
            proof_of_delivery: raw_opt(&r.proof_of_delivery)?,
            status: r.status,
            id: r.id,
            reference: r.reference,
            connection_id: r.connection_id,
            carrier: r.carrier,
            carrier_reference: r.carrier_reference,
            tracking_number: r.tracking_number,
            service: r.service,
            notes: r.notes,
            subtag: r.subtag,
            carrier_status: r.carrier_status,
            estimated_delivery: r.estimated_delivery,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A shipment's latest tracking event as kept on the shipment (`last_event`).
#[derive(ToSchema)]
#[allow(dead_code)] // the schema of a JSON value the store keeps; never built in Rust
pub struct LastEvent {
    #[schema(value_type = String, format = DateTime)]
    occurred_at: DateTime<Utc>,
    /// Normalized status; null when the carrier's code has no mapping yet.
    status: Option<Status>,
    #[schema(example = "InTransit_001")]
    subtag: Option<String>,
    message: Option<String>,
    location: Option<Location>,
    /// The carrier's own code and text.
    raw_code: Option<String>,
    raw_text: Option<String>,
    /// Who did it at the carrier, when the carrier says.
    actor: Option<String>,
    /// push | poll | api
    source: Option<String>,
    dedup_key: Option<String>,
}

/// A carrier's refusal or failure of a booking attempt.
#[derive(ToSchema)]
#[allow(dead_code)] // the schema of a JSON value the store keeps; never built in Rust
pub struct BookingError {
    /// `rejected`, `conflict`, `transient`, `misconfigured`, `protocol`, ...
    #[schema(example = "rejected")]
    code: String,
    /// The carrier's message.
    message: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    at: Option<DateTime<Utc>>,
}

/// One tracking event of a shipment: a scan or status the carrier reported.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TrackingEventOut)]
pub struct TrackingEvent {
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub occurred_at: DateTime<Utc>,
    #[schema(value_type = Option<String>)]
    pub status: Option<Status>,
    pub subtag: Option<String>,
    pub message: Option<String>,
    #[schema(value_type = Option<Location>)]
    pub location: Option<Value>,
    pub raw_code: Option<String>,
    pub raw_text: Option<String>,
    /// Who did it at the carrier, when the carrier says (eCMR).
    pub actor: Option<String>,
    /// push | poll | api
    pub source: String,
    pub dedup_key: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub created_at: DateTime<Utc>,
}

impl From<EventRow> for TrackingEvent {
    fn from(r: EventRow) -> Self {
        TrackingEvent {
            id: r.id,
            occurred_at: r.occurred_at,
            status: r.status,
            subtag: r.subtag,
            message: r.message,
            location: r.location.map(|j| j.0),
            raw_code: r.raw_code,
            raw_text: r.raw_text,
            actor: r.actor,
            source: r.source,
            dedup_key: r.dedup_key,
            created_at: r.created_at,
        }
    }
}

// One entry of a shipment's audit history (schema `HistoryOut`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HistoryOut)]
pub struct HistoryEntry {
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub at: DateTime<Utc>,
    /// api_key | carrier_push | poller | system | carrier | reconcile
    pub actor_type: String,
    pub actor_id: Option<String>,
    /// `created`, `booked`, `booking_failed`, `updated`, `update_refused`, `cancelled`,
    /// `cancel_refused`, `events_added`, `status_changed`, `retracked`, `completed`,
    /// `sink_submitted`, `sink_failed`, ...
    #[schema(example = "status_changed")]
    pub action: String,
    /// What changed, by action: e.g. `status_changed`: `{from, from_subtag, to,
    /// to_subtag, carrier_status}`; `updated`: `{fields, forwarded_to_carrier}`;
    /// `events_added`: `{count, events}`; `booking_failed`: `{code, message, at}`.
    #[schema(value_type = Object)]
    pub detail: Value,
}

impl From<HistoryRow> for HistoryEntry {
    fn from(r: HistoryRow) -> Self {
        HistoryEntry {
            id: r.id,
            at: r.at,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            action: r.action,
            detail: r.detail.0,
        }
    }
}

// One request to the carrier and its answer (schema `ExchangeOut`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ExchangeOut)]
pub struct CarrierExchange {
    pub id: i64,
    pub connection_id: String,
    pub carrier: String,
    pub operation: String,
    pub method: String,
    pub url: String,
    /// Request body with secrets redacted, size-capped.
    pub request_body: Option<String>,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub duration_ms: i32,
    pub error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub created_at: DateTime<Utc>,
}

impl From<ExchangeRow> for CarrierExchange {
    fn from(r: ExchangeRow) -> Self {
        CarrierExchange {
            id: r.id,
            connection_id: r.connection_id,
            carrier: r.carrier,
            operation: r.operation,
            method: r.method,
            url: r.url,
            request_body: r.request_body,
            response_status: r.response_status,
            response_body: r.response_body,
            duration_ms: r.duration_ms,
            error: r.error,
            created_at: r.created_at,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeZone;

    use super::*;

    fn j(s: &str) -> PgJson {
        PgJson::of(&serde_json::from_str::<Value>(s).unwrap()).unwrap()
    }

    /// Every field empty that can be.
    pub(crate) fn bare() -> Shipment {
        let at = Utc.with_ymd_and_hms(2026, 12, 2, 1, 2, 3).single().unwrap();
        Shipment {
            id: "shp_01936f0c7a2b7c3d9e8f001122334455".into(),
            reference: None,
            connection_id: "con_1".into(),
            carrier: "ecomexpress".into(),
            carrier_reference: None,
            tracking_number: None,
            service: None,
            stops: j("[]"),
            parcels: j("[]"),
            declared_value: None,
            cod_amount: None,
            notes: None,
            metadata: j("{}"),
            channel: None,
            booking: None,
            status: Status::Pending,
            subtag: None,
            carrier_status: None,
            last_event: None,
            estimated_delivery: None,
            sinks: j("{}"),
            documents: j("[]"),
            proof_of_delivery: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// Every field set, with strings that need escaping and a time chrono writes.
    pub(crate) fn full() -> Shipment {
        let at =
            Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0).single().unwrap() + chrono::Duration::microseconds(123_456);
        let far = Utc.with_ymd_and_hms(12026, 1, 1, 0, 0, 0).single().unwrap();
        let channel =
            serde_json::from_str::<Channel>(r#"{"ecomdash":{"connection_id":"con_e","shipment_id":42}}"#).unwrap();
        Shipment {
            reference: Some("SO-1001 \"rush\"".into()),
            carrier_reference: Some("back\\slash".into()),
            tracking_number: Some("TRK\n1\u{1}".into()),
            service: Some("Route — Zürich 東京".into()),
            stops: j(
                r#"[{"sequence":1,"type":"pickup","name":"James \"Jim\" Madison","address":{"line1":"2251 Orange Blossom Trail"}}]"#,
            ),
            parcels: j(r#"[{"reference":"PKG-1","quantity":1,"weight":{"value":2.5,"unit":"lb"}}]"#),
            declared_value: Some(j(r#"{"amount":"10.00","currency":"USD"}"#)),
            cod_amount: Some(j(r#"{"amount":"1.50","currency":"USD"}"#)),
            notes: Some("</script>\u{7f}/".into()),
            metadata: j(r#"{"k":[true,null,1e-7]}"#),
            channel: Some(channel),
            booking: Some(Booking {
                state: BookingState::Failed,
                attempts: 3,
                last_error: Some(j(r#"{"code":"carrier_refused","message":"no"}"#)),
                booked_at: Some(at),
            }),
            status: Status::OutForDelivery,
            subtag: Some("OutForDelivery_001".into()),
            carrier_status: Some("OFD\t".into()),
            last_event: Some(j(r#"{"status":"out_for_delivery"}"#)),
            estimated_delivery: Some(far),
            sinks: j(r#"{"ecomdash":{"state":"sent"}}"#),
            documents: j(r#"[{"name":"cmr"}]"#),
            proof_of_delivery: Some(j(r#"{"signed_by":"B. Moore"}"#)),
            created_at: at,
            updated_at: far,
            ..bare()
        }
    }

    fn written(s: &impl WriteJson) -> String {
        let mut out = Vec::new();
        s.write_json(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn written_as_the_derive_writes() {
        let booked = Shipment {
            booking: Some(Booking { state: BookingState::Booked, attempts: 1, last_error: None, booked_at: None }),
            channel: Some(Channel { ecomdash: None }),
            ..bare()
        };
        for s in [bare(), full(), booked] {
            assert_eq!(written(&s), serde_json::to_string(&s).unwrap());
        }
    }
}
