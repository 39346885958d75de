//! The set-based statements of a group commit of inbound scans
//! (`service::inbound::group`): each writes the rows of every scan of the group in one
//! statement, in the group's order, so a group of N scans costs a handful of
//! statements instead of N times the lone scan's. The caller holds the shipments' row
//! locks in its transaction.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Row as _};

use super::Actor;
use super::shipments::{DOC_COLUMNS, ShipmentDoc};

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

/// The columns of a group's raw pushes and tracking events, one array per column, in
/// the group's order (the statements' `unnest` parameters).
struct ScanColumns<'a> {
    tenants: Vec<&'a str>,
    connections: Vec<&'a str>,
    awbs: Vec<&'a str>,
    numbers: Vec<&'a str>,
    shipments: Vec<&'a str>,
    payloads: Vec<&'a Value>,
    at: Vec<DateTime<Utc>>,
    status: Vec<Option<&'a str>>,
    subtag: Vec<Option<&'a str>>,
    message: Vec<Option<&'a str>>,
    location: Vec<&'a Value>,
    raw_code: Vec<Option<&'a str>>,
    raw_text: Vec<Option<&'a str>>,
    source: Vec<&'a str>,
    dedup: Vec<&'a str>,
    actor: Vec<Option<&'a str>>,
}

impl<'a> ScanColumns<'a> {
    fn new(scans: &[ScanRows<'a>]) -> Self {
        ScanColumns {
            tenants: scans.iter().map(|x| x.tenant_id).collect(),
            connections: scans.iter().map(|x| x.connection_id).collect(),
            awbs: scans.iter().map(|x| x.awb).collect(),
            numbers: scans.iter().map(|x| x.status_update_number).collect(),
            shipments: scans.iter().map(|x| x.shipment_id).collect(),
            payloads: scans.iter().map(|x| x.payload).collect(),
            at: scans.iter().map(|x| x.event.occurred_at).collect(),
            status: scans.iter().map(|x| x.event.status.map(|s| s.as_str())).collect(),
            subtag: scans.iter().map(|x| x.event.subtag).collect(),
            message: scans.iter().map(|x| x.event.message).collect(),
            location: scans.iter().map(|x| x.event.location.unwrap_or(&Value::Null)).collect(),
            raw_code: scans.iter().map(|x| x.event.raw_code).collect(),
            raw_text: scans.iter().map(|x| x.event.raw_text).collect(),
            source: scans.iter().map(|x| x.event.source).collect(),
            dedup: scans.iter().map(|x| x.event.dedup_key).collect(),
            actor: scans.iter().map(|x| x.event.actor).collect(),
        }
    }
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
    let c = ScanColumns::new(scans);
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
        &c.tenants as &[&str],
        &c.connections as &[&str],
        &c.awbs as &[&str],
        &c.numbers as &[&str],
        &c.shipments as &[&str],
        &c.payloads as &[&Value],
        &c.at,
        &c.status as &[Option<&str>],
        &c.subtag as &[Option<&str>],
        &c.message as &[Option<&str>],
        &c.location as &[&Value],
        &c.raw_code as &[Option<&str>],
        &c.raw_text as &[Option<&str>],
        &c.source as &[&str],
        &c.dedup as &[&str],
        &c.actor as &[Option<&str>],
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

/// One history row of a group: tenant, shipment, action, detail.
pub type History<'a> = (&'a str, &'a str, &'static str, Value);

/// The columns of a group's last writes (shipments, history, outbound events), one
/// array per column (the statements' `unnest` parameters).
struct FinishColumns<'a> {
    tenants: Vec<&'a str>,
    ids: Vec<&'a str>,
    status: Vec<&'a str>,
    subtag: Vec<Option<&'a str>>,
    carrier_status: Vec<Option<&'a str>>,
    last_event: Vec<Value>,
    events: Vec<i32>,
    moved: Vec<bool>,
    actor_type: &'static str,
    actor_id: Option<&'a str>,
    h_tenants: Vec<&'a str>,
    h_shipments: Vec<&'a str>,
    h_actions: Vec<&'a str>,
    h_details: Vec<&'a Value>,
    o_tenants: Vec<&'a str>,
    o_ids: Vec<&'a str>,
    o_shipments: Vec<&'a str>,
    o_back: Vec<i32>,
    o_types: Vec<&'a str>,
    o_data: Vec<&'a str>,
}

impl<'a> FinishColumns<'a> {
    fn new(s: &[ShipmentState<'a>], history: &'a [History<'a>], ev: &'a [Outbound<'a>]) -> Self {
        let (actor_type, actor_id) = Actor::CarrierPush.parts();
        FinishColumns {
            tenants: s.iter().map(|x| x.tenant_id).collect(),
            ids: s.iter().map(|x| x.id).collect(),
            status: s.iter().map(|x| x.status).collect(),
            subtag: s.iter().map(|x| x.subtag).collect(),
            carrier_status: s.iter().map(|x| x.carrier_status).collect(),
            last_event: s.iter().map(|x| x.last_event.cloned().unwrap_or(Value::Null)).collect(),
            events: s.iter().map(|x| x.events).collect(),
            moved: s.iter().map(|x| x.moved).collect(),
            actor_type,
            actor_id,
            h_tenants: history.iter().map(|r| r.0).collect(),
            h_shipments: history.iter().map(|r| r.1).collect(),
            h_actions: history.iter().map(|r| r.2).collect(),
            h_details: history.iter().map(|r| &r.3).collect(),
            o_tenants: ev.iter().map(|x| x.tenant_id).collect(),
            o_ids: ev.iter().map(|x| x.id.as_str()).collect(),
            o_shipments: ev.iter().map(|x| x.shipment_id).collect(),
            o_back: ev.iter().map(|x| x.back).collect(),
            o_types: ev.iter().map(|x| x.event_type).collect(),
            o_data: ev.iter().map(|x| x.data.as_str()).collect(),
        }
    }
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
    history: &[History<'_>],
    ev: &[Outbound<'_>],
) -> sqlx::Result<()> {
    let c = FinishColumns::new(s, history, ev);
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
        &c.tenants as &[&str],
        &c.ids as &[&str],
        &c.status as &[&str],
        &c.subtag as &[Option<&str>],
        &c.carrier_status as &[Option<&str>],
        &c.last_event,
        &c.events as &[i32],
        c.actor_type,
        c.actor_id,
        &c.h_tenants as &[&str],
        &c.h_shipments as &[&str],
        &c.h_actions as &[&str],
        &c.h_details as &[&Value],
        &c.o_tenants as &[&str],
        &c.o_ids as &[&str],
        &c.o_shipments as &[&str],
        &c.o_back as &[i32],
        &c.o_types as &[&str],
        &c.o_data as &[&str],
        &c.moved as &[bool],
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// One tracking number a group writes to, for [`read_unlocked`]: the connection's (or
/// the tenant's) shipment with that number, as the careful path finds it.
pub struct Number<'a> {
    pub tenant_id: &'a str,
    pub connection_id: &'a str,
    pub tracking_number: &'a str,
    /// The codes its scans' "after" rules ask about.
    pub after_codes: Vec<&'a str>,
}

/// A shipment as [`read_unlocked`] found it: the row, its version (`xmin`, the
/// transaction that wrote this version of it), the "after" codes it already has events
/// with, and the read's `now()`.
pub struct Unlocked {
    /// Index into the numbers asked for.
    pub number: usize,
    pub doc: ShipmentDoc,
    pub version: String,
    pub seen: Vec<String>,
    pub now: DateTime<Utc>,
}

impl<'r> FromRow<'r, PgRow> for Unlocked {
    /// The shipment's columns first ([`ShipmentDoc`]'s positions), then the rest.
    fn from_row(r: &'r PgRow) -> sqlx::Result<Self> {
        let n = ShipmentDoc::COLUMNS;
        let k: i64 = r.try_get(n + 1)?;
        Ok(Unlocked {
            doc: ShipmentDoc::from_row(r)?,
            version: r.try_get(n)?,
            number: usize::try_from(k - 1).map_err(|e| sqlx::Error::Decode(e.into()))?,
            seen: r.try_get(n + 2)?,
            now: r.try_get(n + 3)?,
        })
    }
}

/// The statement of [`read_unlocked`] (runtime-built: the shipment's columns come from
/// [`DOC_COLUMNS`], as the list's do).
static READ_UNLOCKED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {DOC_COLUMNS}, version, n.k, z.seen, now()
         FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS n(t, c, number, k)
         CROSS JOIN LATERAL (SELECT *, xmin::text AS version FROM shipments
                             WHERE tenant_id = n.t AND tracking_number = n.number
                             ORDER BY (connection_id = n.c) DESC, id LIMIT 1) s
         CROSS JOIN LATERAL (
             SELECT ARRAY(SELECT a.code
                          FROM unnest($4::int8[], $5::text[]) AS a(k, code)
                          CROSS JOIN LATERAL (SELECT 1 FROM tracking_events e
                                              WHERE e.tenant_id = s.tenant_id AND e.shipment_id = s.id
                                                AND e.raw_code = a.code
                                              LIMIT 1) AS hit
                          WHERE a.k = n.k) AS seen) z"
    )
});

/// The group's shipments, without locks, in one statement (autocommit: no transaction
/// round trips): each number's shipment as [`lock_by_tracking_numbers`] would find it,
/// with its version and the "after" codes it has seen (probed as [`seen_codes`] does).
/// A number with no shipment is missing from the answer.
///
/// [`lock_by_tracking_numbers`]: super::shipments::lock_by_tracking_numbers
pub async fn read_unlocked(conn: &mut PgConnection, numbers: &[Number<'_>]) -> sqlx::Result<Vec<Unlocked>> {
    let mut asked_k: Vec<i64> = Vec::new();
    let mut asked: Vec<&str> = Vec::new();
    for (i, n) in numbers.iter().enumerate() {
        for code in &n.after_codes {
            asked_k.push(i as i64 + 1);
            asked.push(code);
        }
    }
    sqlx::query_as::<_, Unlocked>(sqlx::AssertSqlSafe(READ_UNLOCKED.as_str()))
        .bind(numbers.iter().map(|n| n.tenant_id).collect::<Vec<_>>())
        .bind(numbers.iter().map(|n| n.connection_id).collect::<Vec<_>>())
        .bind(numbers.iter().map(|n| n.tracking_number).collect::<Vec<_>>())
        .bind(asked_k)
        .bind(asked)
        .fetch_all(conn)
        .await
}

/// Everything a group writes, in one statement that commits by itself, for shipments
/// read by [`read_unlocked`]; `versions` are the versions read, in `s`'s order, and `now`
/// the read's `now()` (the shipments' `updated_at`, as the caller wrote it into the
/// outbound events).
///
/// First the shipments are locked in `s`'s order (the group's lock order, as
/// [`lock_by_tracking_numbers`] takes them) and each version compared with the one
/// read: if any shipment changed (or is gone), `shipgate_unchanged` raises
/// serialization_failure (SQLSTATE 40001) and nothing is written. Every write waits for
/// that check (each joins `ok`), so no lock is taken out of order. Then what [`finish`]
/// writes, and the raw pushes and tracking events as [`keep_scans`] does but with no
/// ON CONFLICT: a push or event already stored raises unique_violation (23505), again
/// with nothing written. Either error means "write the group the careful way".
///
/// [`lock_by_tracking_numbers`]: super::shipments::lock_by_tracking_numbers
pub async fn write_unlocked(
    conn: &mut PgConnection,
    s: &[ShipmentState<'_>],
    versions: &[&str],
    now: DateTime<Utc>,
    scans: &[ScanRows<'_>],
    history: &[History<'_>],
    ev: &[Outbound<'_>],
) -> sqlx::Result<()> {
    let f = FinishColumns::new(s, history, ev);
    let c = ScanColumns::new(scans);
    sqlx::query!(
        r#"WITH x AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::int4[],
                                  $8::bool[], $9::text[]) WITH ORDINALITY AS x(t, id, st, sub, cs, le, n, mv, ver, ord)),
           l AS (
             SELECT s.xmin::text = x.ver AS same
             FROM x CROSS JOIN LATERAL (SELECT xmin FROM shipments WHERE tenant_id = x.t AND id = x.id FOR UPDATE) s),
           ok AS (SELECT shipgate_unchanged(count(*) FILTER (WHERE same) = cardinality($1::text[])) AS ok FROM l),
           kept AS (
             UPDATE shipments s SET carrier_status = x.cs, last_event = NULLIF(x.le, 'null'::jsonb),
                    event_seq = s.event_seq + x.n, updated_at = $10
             FROM x, ok WHERE ok.ok AND NOT x.mv AND s.tenant_id = x.t AND s.id = x.id
             RETURNING s.tenant_id, s.id, s.event_seq),
           moved AS (
             UPDATE shipments s SET status = x.st, subtag = x.sub, carrier_status = x.cs,
                    last_event = NULLIF(x.le, 'null'::jsonb), event_seq = s.event_seq + x.n, updated_at = $10
             FROM x, ok WHERE ok.ok AND x.mv AND s.tenant_id = x.t AND s.id = x.id
             RETURNING s.tenant_id, s.id, s.event_seq),
           u AS (SELECT * FROM kept UNION ALL SELECT * FROM moved),
           p AS (
             INSERT INTO inbound_pushes (tenant_id, connection_id, awb, status_update_number, shipment_id, payload)
             SELECT t, c, a, n, sh, pl
             FROM unnest($11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::jsonb[])
                  WITH ORDINALITY AS y(t, c, a, n, sh, pl, ord), ok
             WHERE ok.ok
             ORDER BY ord),
           e AS (
             INSERT INTO tracking_events (tenant_id, shipment_id, occurred_at, status, subtag, message, location,
                                          raw_code, raw_text, source, dedup_key, actor)
             SELECT y.t, y.sh, y.at, y.st, y.sub, y.msg, NULLIF(y.loc, 'null'::jsonb), y.rc, y.rt, y.src, y.dk, y.act
             FROM unnest($11::text[], $15::text[], $17::timestamptz[], $18::text[], $19::text[], $20::text[],
                         $21::jsonb[], $22::text[], $23::text[], $24::text[], $25::text[], $26::text[])
                  WITH ORDINALITY AS y(t, sh, at, st, sub, msg, loc, rc, rt, src, dk, act, ord), ok
             WHERE ok.ok
             ORDER BY y.ord),
           h AS (
             INSERT INTO shipment_history (tenant_id, shipment_id, actor_type, actor_id, action, detail)
             SELECT t, sh, $27, $28, a, d
             FROM unnest($29::text[], $30::text[], $31::text[], $32::jsonb[]) WITH ORDINALITY AS y(t, sh, a, d, ord), ok
             WHERE ok.ok
             ORDER BY ord)
           INSERT INTO events (tenant_id, id, shipment_id, shipment_seq, type, data)
           SELECT z.t, z.id, z.s, u.event_seq - z.back, z.ty, z.d::jsonb
           FROM unnest($33::text[], $34::text[], $35::text[], $36::int4[], $37::text[], $38::text[])
                WITH ORDINALITY AS z(t, id, s, back, ty, d, ord)
           JOIN u ON u.tenant_id = z.t AND u.id = z.s
           ORDER BY z.ord"#,
        &f.tenants as &[&str],
        &f.ids as &[&str],
        &f.status as &[&str],
        &f.subtag as &[Option<&str>],
        &f.carrier_status as &[Option<&str>],
        &f.last_event,
        &f.events as &[i32],
        &f.moved as &[bool],
        versions as &[&str],
        now,
        &c.tenants as &[&str],
        &c.connections as &[&str],
        &c.awbs as &[&str],
        &c.numbers as &[&str],
        &c.shipments as &[&str],
        &c.payloads as &[&Value],
        &c.at,
        &c.status as &[Option<&str>],
        &c.subtag as &[Option<&str>],
        &c.message as &[Option<&str>],
        &c.location as &[&Value],
        &c.raw_code as &[Option<&str>],
        &c.raw_text as &[Option<&str>],
        &c.source as &[&str],
        &c.dedup as &[&str],
        &c.actor as &[Option<&str>],
        f.actor_type,
        f.actor_id,
        &f.h_tenants as &[&str],
        &f.h_shipments as &[&str],
        &f.h_actions as &[&str],
        &f.h_details as &[&Value],
        &f.o_tenants as &[&str],
        &f.o_ids as &[&str],
        &f.o_shipments as &[&str],
        &f.o_back as &[i32],
        &f.o_types as &[&str],
        &f.o_data as &[&str],
    )
    .execute(conn)
    .await?;
    Ok(())
}
