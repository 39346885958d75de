//! The set-based statements of a group commit of inbound scans
//! (`service::inbound::group`): each writes the rows of every scan of the group in one
//! statement, in the group's order, so a group of N scans costs a handful of
//! statements instead of N times the lone scan's. The caller holds the shipments' row
//! locks in its transaction.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use super::Actor;

/// Which of `codes` each shipment already has events with: (shipment id, code) pairs
/// (also the lone scan's lookup, as a group of one).
/// One probe of `tracking_events_code_idx` per (shipment, code), stopped at the first
/// hit, so the cost does not grow with the shipments' histories. The LATERAL ... LIMIT 1
/// keeps it a nested loop of probes: written as a join or EXISTS, the planner may
/// instead hash the whole table (seen on a 200k-event database: 320 ms against 0.5 ms).
pub async fn seen_codes(
    conn: &mut PgConnection,
    tenant_ids: &[&str],
    shipment_ids: &[&str],
    codes: &[&str],
) -> sqlx::Result<Vec<(String, String)>> {
    let rows = sqlx::query!(
        r#"SELECT DISTINCT x.s AS "shipment_id!", c.code AS "code!"
           FROM unnest($1::text[], $2::text[]) AS x(t, s)
           CROSS JOIN unnest($3::text[]) AS c(code)
           CROSS JOIN LATERAL (SELECT 1 FROM tracking_events e
                               WHERE e.tenant_id = x.t AND e.shipment_id = x.s AND e.raw_code = c.code
                               LIMIT 1) AS hit"#,
        tenant_ids as &[&str],
        shipment_ids as &[&str],
        codes as &[&str],
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.shipment_id, r.code)).collect())
}

/// One scan to keep: its raw push and the tracking event it carries.
pub struct ScanRows<'a> {
    pub tenant_id: &'a str,
    pub connection_id: &'a str,
    pub awb: &'a str,
    pub status_update_number: &'a str,
    pub shipment_id: &'a str,
    pub payload: &'a Value,
    pub event: &'a super::shipments::NewEvent<'a>,
}

/// What [`keep_scans`] stored: the (shipment id, dedup key) of every tracking event
/// added, and the transaction's `now()` (what `updated_at = now()` writes in it; none
/// when nothing was added).
pub struct Kept {
    pub added: Vec<(String, String)>,
    pub now: Option<DateTime<Utc>>,
}

/// Keep the group's raw pushes and add the tracking events of those stored now, in one
/// statement. A push key (connection, awb, scan id) already stored is a duplicate, and
/// so is a key repeated in the group after its first (the first wins, as the first of
/// two concurrent pushes would): its event is not added. An event whose (tenant,
/// shipment, dedup key) is already stored is not added either. Rows go in in the
/// group's order.
pub async fn keep_scans(conn: &mut PgConnection, scans: &[ScanRows<'_>]) -> sqlx::Result<Kept> {
    let tenants: Vec<&str> = scans.iter().map(|x| x.tenant_id).collect();
    let connections: Vec<&str> = scans.iter().map(|x| x.connection_id).collect();
    let awbs: Vec<&str> = scans.iter().map(|x| x.awb).collect();
    let numbers: Vec<&str> = scans.iter().map(|x| x.status_update_number).collect();
    let shipments: Vec<&str> = scans.iter().map(|x| x.shipment_id).collect();
    let payloads: Vec<&Value> = scans.iter().map(|x| x.payload).collect();
    let at: Vec<DateTime<Utc>> = scans.iter().map(|x| x.event.occurred_at).collect();
    let status: Vec<Option<&str>> = scans.iter().map(|x| x.event.status.map(|s| s.as_str())).collect();
    let subtag: Vec<Option<&str>> = scans.iter().map(|x| x.event.subtag).collect();
    let message: Vec<Option<&str>> = scans.iter().map(|x| x.event.message).collect();
    let location: Vec<&Value> = scans.iter().map(|x| x.event.location.unwrap_or(&Value::Null)).collect();
    let raw_code: Vec<Option<&str>> = scans.iter().map(|x| x.event.raw_code).collect();
    let raw_text: Vec<Option<&str>> = scans.iter().map(|x| x.event.raw_text).collect();
    let source: Vec<&str> = scans.iter().map(|x| x.event.source).collect();
    let dedup: Vec<&str> = scans.iter().map(|x| x.event.dedup_key).collect();
    let actor: Vec<Option<&str>> = scans.iter().map(|x| x.event.actor).collect();
    let rows = sqlx::query!(
        r#"WITH p AS (
             INSERT INTO inbound_pushes (tenant_id, connection_id, awb, status_update_number, shipment_id, payload)
             SELECT t, c, a, n, sh, pl
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
                  WITH ORDINALITY AS x(t, c, a, n, sh, pl, ord)
             ORDER BY ord
             ON CONFLICT DO NOTHING
             RETURNING connection_id, awb, status_update_number)
           INSERT INTO tracking_events (tenant_id, shipment_id, occurred_at, status, subtag, message, location, raw_code,
                                        raw_text, source, dedup_key, actor)
           SELECT y.t, y.sh, y.at, y.st, y.sub, y.msg, NULLIF(y.loc, 'null'::jsonb), y.rc, y.rt, y.src, y.dk, y.act
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $7::timestamptz[], $8::text[],
                       $9::text[], $10::text[], $11::jsonb[], $12::text[], $13::text[], $14::text[], $15::text[],
                       $16::text[])
                WITH ORDINALITY AS y(t, c, a, n, sh, at, st, sub, msg, loc, rc, rt, src, dk, act, ord)
           WHERE EXISTS (SELECT 1 FROM p
                         WHERE p.connection_id = y.c AND p.awb = y.a AND p.status_update_number = y.n)
           ORDER BY y.ord
           ON CONFLICT DO NOTHING
           RETURNING shipment_id, dedup_key, now() AS "now!""#,
        &tenants as &[&str],
        &connections as &[&str],
        &awbs as &[&str],
        &numbers as &[&str],
        &shipments as &[&str],
        &payloads as &[&Value],
        &at,
        &status as &[Option<&str>],
        &subtag as &[Option<&str>],
        &message as &[Option<&str>],
        &location as &[&Value],
        &raw_code as &[Option<&str>],
        &raw_text as &[Option<&str>],
        &source as &[&str],
        &dedup as &[&str],
        &actor as &[Option<&str>],
    )
    .fetch_all(conn)
    .await?;
    let now = rows.first().map(|r| r.now);
    Ok(Kept { added: rows.into_iter().map(|r| (r.shipment_id, r.dedup_key)).collect(), now })
}

/// A shipment's state after the group's scans: written as it is (the caller holds the
/// row lock and computed it from the locked row), its event counter moved by `events`.
pub struct ShipmentState<'a> {
    pub tenant_id: &'a str,
    pub id: &'a str,
    pub status: &'a str,
    pub subtag: Option<&'a str>,
    pub carrier_status: Option<&'a str>,
    pub last_event: Option<&'a Value>,
    pub events: i32,
    /// Whether the group moved its status (or subtag). Only such a row has `status` and
    /// `subtag` in its UPDATE: naming them fires the tracking-schedule trigger
    /// (`BEFORE UPDATE OF status, subtag, …`, migration 20261122000010: "fire if at least
    /// one of the listed columns is mentioned as a target of the UPDATE command", PG 15
    /// docs, CREATE TRIGGER), a PL/pgSQL call per row that can change nothing when
    /// neither moved.
    pub moved: bool,
}

/// One outbound event: `back` = how many of its shipment's events of the group come
/// after it (the last gets the shipment's counter as the update leaves it). `data` is
/// the event's JSON text, serialized once by the caller.
pub struct Outbound<'a> {
    pub tenant_id: &'a str,
    pub id: String,
    pub shipment_id: &'a str,
    pub back: i32,
    pub event_type: &'static str,
    pub data: String,
}

/// The group's last writes in one statement: the shipments' new state (the rows whose
/// status moved and the others in two updates of disjoint rows, see
/// [`ShipmentState::moved`]), the history
/// rows (tenant, shipment, action, detail) in order, and the outbound events numbered
/// from the counters the update returns (a statement's sub-statements share one
/// snapshot, so the numbers come from the update's RETURNING, not from re-reading the
/// shipments).
pub async fn finish(
    conn: &mut PgConnection,
    s: &[ShipmentState<'_>],
    history: &[(&str, &str, &str, Value)],
    ev: &[Outbound<'_>],
) -> sqlx::Result<()> {
    let (actor_type, actor_id) = Actor::CarrierPush.parts();
    let last_event: Vec<Value> = s.iter().map(|x| x.last_event.cloned().unwrap_or(Value::Null)).collect();
    let details: Vec<&Value> = history.iter().map(|r| &r.3).collect();
    sqlx::query!(
        r#"WITH x AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::int4[],
                                  $20::bool[]) AS x(t, id, st, sub, cs, le, n, mv)),
           kept AS (
             UPDATE shipments s SET carrier_status = x.cs, last_event = NULLIF(x.le, 'null'::jsonb),
                    event_seq = s.event_seq + x.n, updated_at = now()
             FROM x WHERE NOT x.mv AND s.tenant_id = x.t AND s.id = x.id
             RETURNING s.tenant_id, s.id, s.event_seq),
           moved AS (
             UPDATE shipments s SET status = x.st, subtag = x.sub, carrier_status = x.cs,
                    last_event = NULLIF(x.le, 'null'::jsonb), event_seq = s.event_seq + x.n, updated_at = now()
             FROM x WHERE x.mv AND s.tenant_id = x.t AND s.id = x.id
             RETURNING s.tenant_id, s.id, s.event_seq),
           u AS (SELECT * FROM kept UNION ALL SELECT * FROM moved),
           h AS (
             INSERT INTO shipment_history (tenant_id, shipment_id, actor_type, actor_id, action, detail)
             SELECT t, sh, $8, $9, a, d
             FROM unnest($10::text[], $11::text[], $12::text[], $13::jsonb[]) WITH ORDINALITY AS y(t, sh, a, d, ord)
             ORDER BY ord)
           INSERT INTO events (tenant_id, id, shipment_id, shipment_seq, type, data)
           SELECT z.t, z.id, z.s, u.event_seq - z.back, z.ty, z.d::jsonb
           FROM unnest($14::text[], $15::text[], $16::text[], $17::int4[], $18::text[], $19::text[])
                WITH ORDINALITY AS z(t, id, s, back, ty, d, ord)
           JOIN u ON u.tenant_id = z.t AND u.id = z.s
           ORDER BY z.ord"#,
        &s.iter().map(|x| x.tenant_id).collect::<Vec<_>>() as &[&str],
        &s.iter().map(|x| x.id).collect::<Vec<_>>() as &[&str],
        &s.iter().map(|x| x.status).collect::<Vec<_>>() as &[&str],
        &s.iter().map(|x| x.subtag).collect::<Vec<_>>() as &[Option<&str>],
        &s.iter().map(|x| x.carrier_status).collect::<Vec<_>>() as &[Option<&str>],
        &last_event,
        &s.iter().map(|x| x.events).collect::<Vec<_>>() as &[i32],
        actor_type,
        actor_id,
        &history.iter().map(|r| r.0).collect::<Vec<_>>() as &[&str],
        &history.iter().map(|r| r.1).collect::<Vec<_>>() as &[&str],
        &history.iter().map(|r| r.2).collect::<Vec<_>>() as &[&str],
        &details as &[&Value],
        &ev.iter().map(|x| x.tenant_id).collect::<Vec<_>>() as &[&str],
        &ev.iter().map(|x| x.id.as_str()).collect::<Vec<_>>() as &[&str],
        &ev.iter().map(|x| x.shipment_id).collect::<Vec<_>>() as &[&str],
        &ev.iter().map(|x| x.back).collect::<Vec<_>>() as &[i32],
        &ev.iter().map(|x| x.event_type).collect::<Vec<_>>() as &[&str],
        &ev.iter().map(|x| x.data.as_str()).collect::<Vec<_>>() as &[&str],
        &s.iter().map(|x| x.moved).collect::<Vec<_>>() as &[bool],
    )
    .execute(conn)
    .await?;
    Ok(())
}
