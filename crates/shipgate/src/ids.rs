//! Identifiers: `<prefix>_<32 hex>` from UUIDv7, so ids sort by creation time and
//! cursor pagination on the primary key gives a stable, time-ordered list.

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Whether `s` looks like an id with this prefix (cheap check before a query).
pub fn is_id(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_prefixed_and_ordered() {
        let a = super::new_id("shp");
        let b = super::new_id("shp");
        assert!(super::is_id("shp", &a));
        assert!(!super::is_id("con", &a));
        assert!(a < b);
    }
}
