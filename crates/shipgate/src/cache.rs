//! What one instance keeps in memory for the request path, held by `AppState`: verified
//! API keys and the failed-authentication throttle (used by `service::auth`), inbound
//! push verifiers, their throttle and the status-mapping tables (used by
//! `service::inbound`). Every entry expires within seconds and all of it is safe to
//! lose (docs/architecture.md rule 12): a restart only forgets it.
//!
//! Defined here, below `app.rs`, so that the state does not import the layers that use
//! it (issue 11: no import circle through `app.rs`).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use sqlx::PgPool;

use crate::domain::Status;
use crate::store;
use crate::store::connections::ConnectionRow;

/// How long a verified API key is reused; revocation on this instance evicts it at
/// once, on other instances within this time.
pub const KEY_TTL: Duration = Duration::from_secs(5);
/// Failed API-key authentications allowed per client address and window.
pub const KEY_FAILURE_LIMIT: u32 = 20;
pub const KEY_FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Most client addresses tracked at once (a few MB at most; see [`FailureThrottle`]).
const KEY_FAILURE_ENTRIES: usize = 50_000;

/// How long an inbound verifier is reused; a change on this instance evicts it at once
/// (`AppState::forget_connection`), on other instances within this time.
const VERIFIER_TTL: Duration = Duration::from_secs(5);
/// Failed inbound credential checks allowed per (connection, client address) and window.
pub const INBOUND_FAILURE_LIMIT: u32 = 10;
pub const INBOUND_FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Most (connection, address) pairs tracked at once: ~100 bytes each, so a few MB at
/// most however many addresses an attacker has.
const INBOUND_FAILURE_ENTRIES: usize = 50_000;

/// How long a tenant's merged mapping table is reused; `PUT /v1/status-mappings` on
/// this instance evicts it at once, other instances pick a change up within this time
/// (like the API-key and connection caches: safe to lose, docs/architecture.md rule 12).
const MAPPING_TTL: Duration = Duration::from_secs(5);

/// Counts failed authentications per key (a client address, or a connection and
/// address) in fixed windows, bounded in count: every entry goes away when its window
/// ends (the whole table is dropped then, so its memory with it), and at most
/// `max_entries` keys are tracked; a key that finds the table full is simply not
/// counted (it is answered 401, never blocked) rather than evicting someone. Keys hold
/// only validated data (addresses, ids of existing connections), never raw request
/// text. Safe to lose (docs/architecture.md rule 12): a restart only forgets counts.
pub struct FailureThrottle<K> {
    limit: u32,
    window: Duration,
    max_entries: usize,
    inner: Mutex<(Instant, HashMap<K, u32>)>,
}

impl<K: Hash + Eq> FailureThrottle<K> {
    pub fn new(limit: u32, window: Duration, max_entries: usize) -> Self {
        FailureThrottle { limit, window, max_entries, inner: Mutex::new((Instant::now(), HashMap::new())) }
    }

    /// The table, emptied first when its window has ended.
    fn current(&self) -> Option<std::sync::MutexGuard<'_, (Instant, HashMap<K, u32>)>> {
        let mut g = self.inner.lock().ok()?;
        if g.0.elapsed() >= self.window {
            // A new map, not `clear()`: the old one's memory is released.
            *g = (Instant::now(), HashMap::new());
        }
        Some(g)
    }

    /// Count one failure. Returns the seconds to wait when this key is now past the
    /// limit (answer 429 with this `Retry-After`), None when it may simply be refused.
    pub fn fail(&self, key: K) -> Option<u64> {
        let mut g = self.current()?;
        let left = self.window.saturating_sub(g.0.elapsed()).as_secs().max(1);
        let full = g.1.len() >= self.max_entries;
        let n = match g.1.get_mut(&key) {
            Some(n) => {
                *n = n.saturating_add(1);
                *n
            }
            None if full => {
                metrics::counter!("shipgate_auth_throttle_full_total").increment(1);
                return None;
            }
            None => {
                g.1.insert(key, 1);
                1
            }
        };
        (n > self.limit).then_some(left)
    }

    /// How many keys are tracked now (tests, the abuse run).
    pub fn tracked(&self) -> usize {
        self.current().map_or(0, |g| g.1.len())
    }

    /// Drop the table if its window ended (housekeeping; access does it too).
    pub fn sweep(&self) {
        drop(self.current());
    }
}

/// The address failures are counted under: IPv4 as is (IPv4-mapped IPv6 unwrapped),
/// IPv6 by its /64, the smallest prefix a single subscriber gets (RFC 6177), so one
/// client cannot spread its failures over 2^64 addresses.
pub fn throttle_bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// A key whose secret a request just proved.
#[derive(Debug, Clone)]
pub struct VerifiedKey {
    pub env: String,
    /// SHA-256 of the secret.
    pub secret_hash: [u8; 32],
    pub tenant_id: String,
}

/// Verified API keys (bounded: only ids whose secret was just proven are kept) and the
/// failed-authentication throttle.
pub struct KeyCache {
    keys: Mutex<HashMap<String, (Instant, VerifiedKey)>>,
    pub failures: FailureThrottle<IpAddr>,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            keys: Mutex::new(HashMap::new()),
            failures: FailureThrottle::new(KEY_FAILURE_LIMIT, KEY_FAILURE_WINDOW, KEY_FAILURE_ENTRIES),
        }
    }
}

impl KeyCache {
    /// The key with this id, if verified within [`KEY_TTL`].
    pub fn fresh(&self, key_id: &str) -> Option<VerifiedKey> {
        let m = self.keys.lock().ok()?;
        let (at, key) = m.get(key_id)?;
        (at.elapsed() < KEY_TTL).then(|| key.clone())
    }

    pub fn remember(&self, key_id: &str, key: VerifiedKey) {
        if let Ok(mut m) = self.keys.lock() {
            if m.len() > 10_000 {
                m.clear();
            }
            m.insert(key_id.to_owned(), (Instant::now(), key));
        }
    }

    pub fn evict(&self, key_id: &str) {
        if let Ok(mut m) = self.keys.lock() {
            m.remove(key_id);
        }
    }
}

/// What an inbound connection accepts, derived once from its row and decrypted
/// credentials.
pub struct Verifier {
    pub row: ConnectionRow,
    /// SHA-256 of the Basic-Auth user and password (carriers with `InboundAuth::Basic`).
    pub basic: Option<([u8; 32], [u8; 32])>,
    /// The HMAC secret (carriers with `InboundAuth::HmacSha256`).
    pub hmac_secret: Option<SecretString>,
}

/// Inbound push verifiers, failed-check counts and status-mapping tables.
pub struct InboundCache {
    verifiers: Mutex<HashMap<String, (Instant, Arc<Verifier>)>>,
    /// Failures per (existing connection id, client address bucket).
    pub failures: FailureThrottle<(String, IpAddr)>,
    /// Status mapping tables per tenant and carrier.
    pub mappings: MappingCache,
}

impl Default for InboundCache {
    fn default() -> Self {
        InboundCache {
            verifiers: Mutex::new(HashMap::new()),
            failures: FailureThrottle::new(INBOUND_FAILURE_LIMIT, INBOUND_FAILURE_WINDOW, INBOUND_FAILURE_ENTRIES),
            mappings: Default::default(),
        }
    }
}

impl InboundCache {
    /// The connection's verifier, if built within the last few seconds.
    pub fn fresh(&self, connection_id: &str) -> Option<Arc<Verifier>> {
        let m = self.verifiers.lock().ok()?;
        let (at, v) = m.get(connection_id)?;
        (at.elapsed() < VERIFIER_TTL).then(|| v.clone())
    }

    pub fn remember(&self, connection_id: &str, v: Arc<Verifier>) {
        if let Ok(mut m) = self.verifiers.lock() {
            if m.len() > 10_000 {
                m.clear();
            }
            m.insert(connection_id.to_owned(), (Instant::now(), v));
        }
    }

    pub fn evict(&self, connection_id: &str) {
        if let Ok(mut m) = self.verifiers.lock() {
            m.remove(connection_id);
        }
    }

    /// Count a failed check against an existing connection: the seconds to wait when
    /// this (connection, address) is now past the limit.
    pub fn note_failure(&self, connection_id: &str, ip: IpAddr) -> Option<u64> {
        let secs = self.failures.fail((connection_id.to_owned(), throttle_bucket(ip)));
        if secs.is_some() {
            metrics::counter!("shipgate_auth_throttled_total", "kind" => "inbound").increment(1);
        }
        secs
    }
}

/// One mapping row: (after_code, status, subtag); after_code "" applies always.
type MappingEntry = (String, Option<Status>, Option<String>);

/// One tenant's mapping table for one carrier (defaults merged with overrides).
#[derive(Debug, Default)]
pub struct Mappings {
    by_code: HashMap<String, Vec<MappingEntry>>,
}

impl Mappings {
    pub fn from_rows(rows: Vec<store::inbound::MappingRow>) -> Mappings {
        let mut by_code: HashMap<String, Vec<_>> = HashMap::new();
        for r in rows {
            by_code.entry(r.code).or_default().push((r.after_code, Some(r.tag), r.subtag));
        }
        Mappings { by_code }
    }

    /// The codes that rows for `code` depend on having been seen before.
    pub fn after_codes(&self, code: &str) -> Vec<&str> {
        self.by_code
            .get(code)
            .map(|rows| rows.iter().map(|r| r.0.as_str()).filter(|a| !a.is_empty()).collect())
            .unwrap_or_default()
    }

    /// The status for `code`, given the after-codes the shipment has seen: a matching
    /// "after" row wins over the plain row. None when unmapped (or mapped to a tag
    /// this version does not know, which is kept raw the same way).
    pub fn resolve(&self, code: &str, seen: &[String]) -> Option<(Status, Option<String>)> {
        let rows = self.by_code.get(code)?;
        let pick = rows
            .iter()
            .find(|r| !r.0.is_empty() && seen.contains(&r.0))
            .or_else(|| rows.iter().find(|r| r.0.is_empty()))?;
        Some((pick.1?, pick.2.clone()))
    }
}

type CachedMappings = (Instant, Arc<Mappings>);

/// Merged mapping tables per (tenant, carrier).
#[derive(Default)]
pub struct MappingCache(Mutex<HashMap<(String, String), CachedMappings>>);

impl MappingCache {
    pub async fn get(&self, db: &PgPool, tenant: &str, carrier: &str) -> sqlx::Result<Arc<Mappings>> {
        let key = (tenant.to_owned(), carrier.to_owned());
        if let Ok(m) = self.0.lock()
            && let Some((at, v)) = m.get(&key)
            && at.elapsed() < MAPPING_TTL
        {
            return Ok(v.clone());
        }
        let mut conn = db.acquire().await?;
        let rows = store::inbound::list_mappings(&mut conn, tenant, Some(carrier)).await?;
        let v = Arc::new(Mappings::from_rows(rows));
        if let Ok(mut m) = self.0.lock() {
            if m.len() > 10_000 {
                m.clear();
            }
            m.insert(key, (Instant::now(), v.clone()));
        }
        Ok(v)
    }

    pub fn evict_tenant(&self, tenant: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.retain(|(t, _), _| t != tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_counts_per_key_blocks_past_the_limit_and_stays_bounded() {
        let t = FailureThrottle::new(3, Duration::from_secs(60), 100);
        for _ in 0..3 {
            assert_eq!(t.fail("a"), None);
        }
        let secs = t.fail("a").expect("past the limit");
        assert!((1..=60).contains(&secs), "{secs}");
        assert_eq!(t.fail("b"), None, "another key has its own count");
        let t = FailureThrottle::new(0, Duration::from_secs(60), 10);
        for i in 0..1000 {
            t.fail(i);
        }
        assert_eq!(t.tracked(), 10, "never more than max_entries");
    }

    #[test]
    fn throttle_entries_end_with_their_window() {
        let t = FailureThrottle::new(1, Duration::from_millis(50), 100);
        t.fail("a");
        t.fail("a");
        assert_eq!(t.tracked(), 1);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.tracked(), 0);
        assert_eq!(t.fail("a"), None, "a new window starts from zero");
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a = throttle_bucket("2001:db8:1:2:aaaa::1".parse().expect("ip"));
        let b = throttle_bucket("2001:db8:1:2:bbbb::2".parse().expect("ip"));
        assert_eq!(a, b);
        assert_ne!(a, throttle_bucket("2001:db8:1:3::1".parse().expect("ip")));
        assert_eq!(throttle_bucket("::ffff:1.2.3.4".parse().expect("ip")), "1.2.3.4".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn inbound_failures_block_after_the_limit_per_connection_and_address() {
        let c = InboundCache::default();
        let ip: IpAddr = "1.2.3.4".parse().expect("ip");
        for _ in 0..INBOUND_FAILURE_LIMIT {
            assert_eq!(c.note_failure("con_x", ip), None);
        }
        assert!(c.note_failure("con_x", ip).is_some());
        assert_eq!(c.note_failure("con_x", "5.6.7.8".parse().expect("ip")), None);
        assert_eq!(c.note_failure("con_y", ip), None);
    }

    fn row(code: &str, after: &str, tag: &str, subtag: &str) -> store::inbound::MappingRow {
        store::inbound::MappingRow {
            carrier: "any".into(),
            code: code.into(),
            after_code: after.into(),
            tag: Status::parse(tag).expect("a status"),
            subtag: Some(subtag.into()),
            description: String::new(),
            source: "default".into(),
            updated_at: None,
        }
    }

    #[test]
    fn an_after_rule_wins_only_when_its_code_was_seen() {
        let m = Mappings::from_rows(vec![
            row("999", "", "delivered", "Delivered_001"),
            row("999", "777", "exception", "Exception_011"),
        ]);
        assert_eq!(m.after_codes("999"), ["777"]);
        assert_eq!(m.resolve("999", &[]), Some((Status::Delivered, Some("Delivered_001".into()))));
        assert_eq!(m.resolve("999", &["777".into()]), Some((Status::Exception, Some("Exception_011".into()))));
        assert_eq!(m.resolve("4242", &[]), None);
    }
}
