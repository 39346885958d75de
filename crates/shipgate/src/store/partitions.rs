//! The monthly partitions of the append-only tables (migration 20261130000040): a
//! table's partitions with their bounds, creating a month, dropping one, and what the
//! default partition holds. Which months to create and drop is the retention policy's
//! (`service::retention`).
//!
//! DDL takes no bind parameters, so those statements are formatted here, only from the
//! fixed tables in [`TABLES`] and bounds this module computes from a date: nothing a
//! client sends reaches them.

use chrono::{DateTime, Datelike as _, TimeZone as _, Utc};
use sqlx::PgConnection;

/// What a table is partitioned by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// An id column `<prefix>_<32 hex of a UUIDv7>`: its first 12 hex digits are the
    /// creation time in Unix milliseconds (src/ids.rs), so a range of ids is a range of time.
    Id { column: &'static str, prefix: &'static str },
    /// A timestamptz column.
    Time { column: &'static str },
}

/// A partitioned table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub key: Key,
}

pub const EVENTS: Table = Table { name: "events", key: Key::Id { column: "id", prefix: "evt" } };
pub const WEBHOOK_ATTEMPTS: Table =
    Table { name: "webhook_attempts", key: Key::Id { column: "delivery_id", prefix: "whd" } };
pub const TRACKING_EVENTS: Table =
    Table { name: "tracking_events", key: Key::Id { column: "shipment_id", prefix: "shp" } };
pub const INBOUND_PUSHES: Table =
    Table { name: "inbound_pushes", key: Key::Id { column: "shipment_id", prefix: "shp" } };
pub const CARRIER_EXCHANGES: Table = Table { name: "carrier_exchanges", key: Key::Time { column: "created_at" } };

/// Every partitioned table.
pub const TABLES: [Table; 5] = [EVENTS, WEBHOOK_ATTEMPTS, TRACKING_EVENTS, INBOUND_PUSHES, CARRIER_EXCHANGES];

impl Table {
    /// The name of the default partition, which takes rows no month covers.
    pub fn default_partition(&self) -> String {
        format!("{}_default", self.name)
    }

    /// The name of the month starting at `month` (`<table>_pYYYYMM`).
    pub fn month_partition(&self, month: DateTime<Utc>) -> String {
        format!("{}_p{:04}{:02}", self.name, month.year(), month.month())
    }

    /// The key value at which time `at` begins: `<prefix>_<12 hex of ms>` for an id, the
    /// instant itself (RFC 3339) for a timestamptz.
    pub fn bound(&self, at: DateTime<Utc>) -> String {
        match self.key {
            Key::Id { prefix, .. } => format!("{prefix}_{:012x}", at.timestamp_millis().max(0)),
            Key::Time { .. } => at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    fn key_column(&self) -> &'static str {
        match self.key {
            Key::Id { column, .. } | Key::Time { column } => column,
        }
    }
}

/// The first instant of the month (UTC) that holds `at`.
pub fn month_start(at: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0).single().unwrap_or(at)
}

/// The first instant of the month `n` months after the month of `month`.
pub fn add_months(month: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    let m0 = month.year() * 12 + month.month0() as i32 + n as i32;
    Utc.with_ymd_and_hms(m0.div_euclid(12), m0.rem_euclid(12) as u32 + 1, 1, 0, 0, 0).single().unwrap_or(month)
}

/// One partition of a table, as the catalog describes it.
#[derive(Debug, Clone)]
pub struct Partition {
    pub name: String,
    pub is_default: bool,
    /// The range's bounds as written in the catalog (`FROM (lower) TO (upper)`); None for
    /// the default partition or an unbounded side.
    pub lower: Option<String>,
    pub upper: Option<String>,
    /// The time the upper bound stands for: every row of the partition is older.
    pub upper_at: Option<DateTime<Utc>>,
}

/// A table's partitions (none when the table is not partitioned).
pub async fn list(conn: &mut PgConnection, table: &Table) -> sqlx::Result<Vec<Partition>> {
    // The bounds come back as pg_get_expr renders them: FOR VALUES FROM ('a') TO ('b'),
    // or DEFAULT. A timestamptz bound carries its UTC offset, so the cast reads it back
    // whatever the session's time zone; an id bound's time is its first 12 hex digits.
    sqlx::query_as!(
        Partition,
        r#"WITH p AS (
               SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = to_regclass($1)
           ), b AS (
               SELECT name, bound = 'DEFAULT' AS is_default,
                      substring(bound FROM $re$FROM \('([^']*)'\)$re$) AS lower,
                      substring(bound FROM $re$TO \('([^']*)'\)$re$) AS upper
               FROM p
           )
           SELECT name AS "name!", is_default AS "is_default!", lower, upper,
                  CASE WHEN upper ~ '^[a-z]+_[0-9a-f]{12}'
                           THEN to_timestamp(('x' || substring(upper FROM '_([0-9a-f]{12})'))::bit(48)::bigint / 1000.0)
                       WHEN upper ~ '^\d{4}-\d\d-\d\d[ T][0-9:.]+([+-]\d\d(:?\d\d)?|Z)$'
                           THEN upper::timestamptz
                  END AS upper_at
           FROM b ORDER BY name"#,
        table.name
    )
    .fetch_all(conn)
    .await
}

/// Serialize partition maintenance of one table across instances until the caller's
/// transaction ends.
pub async fn lock(conn: &mut PgConnection, table: &Table) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended('shipgate:partitions:' || $1, 0))", table.name)
        .fetch_one(conn)
        .await?;
    Ok(())
}

/// Give up on a table lock after `ms` for the rest of the caller's transaction: creating
/// or dropping a partition takes an ACCESS EXCLUSIVE lock on the parent table (PG 15 docs
/// 5.11.2.2 "Partition Maintenance"), and a DDL statement waiting for it would hold up
/// every query queued behind it.
pub async fn set_lock_timeout(conn: &mut PgConnection, ms: u32) -> sqlx::Result<()> {
    sqlx::query!("SELECT set_config('lock_timeout', $1, true)", format!("{ms}ms")).fetch_one(conn).await?;
    Ok(())
}

/// Create the partition for the month starting at `month` (see [`month_start`]).
/// Postgres refuses it when the default partition holds rows of that month.
pub async fn create_month(conn: &mut PgConnection, table: &Table, month: DateTime<Utc>) -> sqlx::Result<String> {
    let name = table.month_partition(month);
    let (lower, upper) = (table.bound(month), table.bound(add_months(month, 1)));
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS \"{name}\" PARTITION OF \"{}\" FOR VALUES FROM ('{lower}') TO ('{upper}')",
        table.name
    );
    sqlx::query(sqlx::AssertSqlSafe(ddl)).execute(conn).await?;
    Ok(name)
}

/// Drop one partition of `table` (its rows go with it, at once).
pub async fn drop_partition(conn: &mut PgConnection, table: &Table, name: &str) -> sqlx::Result<()> {
    // Only a name read from the catalog as this table's partition gets here; it is
    // checked again so that no other text is ever formatted into DDL.
    let ours =
        name.starts_with(table.name) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ours || name == table.default_partition() {
        return Err(sqlx::Error::Protocol(format!("{name:?} is not a month partition of {}", table.name)));
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE \"{name}\""))).execute(conn).await?;
    Ok(())
}

/// Rows the default partition holds, counted up to `cap`: all of them, and those whose
/// key is older than `cutoff` (past the table's retention).
pub async fn default_rows(
    conn: &mut PgConnection,
    table: &Table,
    cutoff: DateTime<Utc>,
    cap: i64,
) -> sqlx::Result<(i64, i64)> {
    let (default, column) = (table.default_partition(), table.key_column());
    let cast = match table.key {
        Key::Id { .. } => "text",
        Key::Time { .. } => "timestamptz",
    };
    let sql = format!(
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM \"{default}\" LIMIT $2) a),
                (SELECT count(*) FROM (SELECT 1 FROM \"{default}\" WHERE \"{column}\" < $1::{cast} LIMIT $2) b)"
    );
    sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql)).bind(table.bound(cutoff)).bind(cap).fetch_one(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn months_are_utc_calendar_months() {
        assert_eq!(month_start(at("2026-11-30T23:59:59.999Z")), at("2026-11-01T00:00:00Z"));
        assert_eq!(add_months(at("2026-11-01T00:00:00Z"), 1), at("2026-12-01T00:00:00Z"));
        assert_eq!(add_months(at("2026-11-01T00:00:00Z"), 2), at("2027-01-01T00:00:00Z"));
        assert_eq!(add_months(at("2026-12-01T00:00:00Z"), 13), at("2028-01-01T00:00:00Z"));
        assert_eq!(EVENTS.month_partition(at("2027-01-01T00:00:00Z")), "events_p202701");
    }

    #[test]
    fn an_id_bound_orders_ids_by_their_time() {
        let month = at("2026-12-01T00:00:00Z");
        let bound = TRACKING_EVENTS.bound(month);
        assert_eq!(bound, format!("shp_{:012x}", month.timestamp_millis()));
        // An id made in the last millisecond before the month sorts below its bound (byte
        // order, as COLLATE "C" compares), one made at its first millisecond at or above.
        let before = format!("shp_{:012x}{}", month.timestamp_millis() - 1, "f".repeat(20));
        let first = format!("shp_{:012x}{}", month.timestamp_millis(), "0".repeat(20));
        assert!(before.as_bytes() < bound.as_bytes() && bound.as_bytes() <= first.as_bytes());
        // Real ids: their 12 first hex digits are the time they were made.
        let id = crate::ids::new_id("shp");
        let ms = i64::from_str_radix(&id[4..16], 16).expect("hex");
        assert!((Utc::now().timestamp_millis() - ms).abs() < 5_000, "{id}");
        assert_eq!(CARRIER_EXCHANGES.bound(month), "2026-12-01T00:00:00Z");
    }
}
