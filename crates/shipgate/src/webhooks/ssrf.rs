//! SSRF guard for outbound webhooks (docs/quality.md security, "Outbound webhook URLs").
//!
//! A subscriber URL must reach the public Internet and nothing else. Refused, unless a
//! configured allow-list network contains the address:
//! - every entry of the IANA special-purpose address registries that is not globally
//!   reachable (RFC 6890 set the registries up; the tables are
//!   <https://www.iana.org/assignments/iana-ipv4-special-registry> and
//!   <https://www.iana.org/assignments/iana-ipv6-special-registry>), listed with their
//!   RFCs in [`V4_SPECIAL`] and [`V6_SPECIAL`], plus multicast;
//! - every IPv6 address outside 2000::/3, the only block IANA allocates for global
//!   unicast (IPv6 address space registry), except the two forms that carry an IPv4
//!   address, which are judged by that address: IPv4-mapped `::ffff:a.b.c.d` and the
//!   NAT64 well-known prefix `64:ff9b::/96` (RFC 6052);
//! - this host's own interface addresses, public ones included, directly or inside
//!   those two IPv4-carrying forms (`[::ffff:a.b.c.d]`).
//!
//! Checked at creation (literal IPs and names that resolve there) and at connect time
//! by [`GuardedResolver`], reqwest's DNS resolver for the delivery client, so a name
//! that resolves elsewhere later (DNS rebinding) cannot get through. Literal IPs never
//! reach a resolver, so the worker checks them before sending ([`Guard::check_url`]).
//! Written by hand (as svix does) because `std`'s `is_global` is unstable and no small
//! crate covers the embedded-IPv4 forms.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Refused by the guard (the error code recorded on the attempt is `ssrf_blocked`).
#[derive(Debug, thiserror::Error)]
#[error("{0} is not a public address; webhooks may not reach it")]
pub struct SsrfBlocked(pub IpAddr);

/// IPv4 networks refused: the special-purpose registry's entries that are not globally
/// reachable (or whose reachability is N/A), and multicast.
pub const V4_SPECIAL: &[(&str, &str)] = &[
    ("0.0.0.0/8", "\"this network\" (RFC 791; 0.0.0.0/32 is \"this host\", RFC 1122)"),
    ("10.0.0.0/8", "private use (RFC 1918)"),
    ("100.64.0.0/10", "shared address space, carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122)"),
    ("169.254.0.0/16", "link local (RFC 3927), with the cloud metadata service 169.254.169.254"),
    ("172.16.0.0/12", "private use (RFC 1918)"),
    // Holds 192.0.0.0/29 (DS-Lite, RFC 7335), 192.0.0.8/32 (dummy, RFC 7600) and
    // 192.0.0.170-171 (NAT64 discovery, RFC 7050). The registry marks two anycast
    // entries inside it globally reachable (192.0.0.9 PCP, 192.0.0.10 TURN); no webhook
    // receiver lives there, so the whole /24 is refused.
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.2.0/24", "documentation, TEST-NET-1 (RFC 5737)"),
    ("192.88.99.0/24", "6to4 relay anycast, deprecated (RFC 7526)"),
    ("192.168.0.0/16", "private use (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation, TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation, TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved (RFC 1112), with the limited broadcast 255.255.255.255 (RFC 919)"),
];

/// IPv6 networks refused: the special-purpose registry's entries that are not globally
/// reachable (or N/A), and the other non-unicast blocks. Most lie outside 2000::/3 and
/// are refused by that rule anyway; they are listed so the registry can be checked
/// against this table line by line.
pub const V6_SPECIAL: &[(&str, &str)] = &[
    ("::/128", "unspecified (RFC 4291)"),
    ("::1/128", "loopback (RFC 4291)"),
    ("::/96", "IPv4-compatible, deprecated (RFC 4291 2.5.5.1)"),
    ("::ffff:0:0:0/96", "IPv4-translated (RFC 2765)"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("100:0:0:1::/64", "dummy IPv6 prefix (RFC 9780)"),
    // Holds Teredo 2001::/32 (RFC 4380), benchmarking 2001:2::/48 (RFC 5180), ORCHID
    // 2001:10::/28 and ORCHIDv2 2001:20::/28 (RFC 7343). The few globally reachable
    // entries inside (PCP/TURN/DNS-SD anycast 2001:1::1-3, AMT 2001:3::/32, AS112
    // 2001:4:112::/48, DRIP 2001:30::/28) host no webhook receivers: refused too.
    ("2001::/23", "IETF protocol assignments (RFC 2928)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("2002::/16", "6to4 (RFC 3056), deprecated (RFC 7526); its IPv4 part can be anything"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "segment routing SIDs (RFC 9602)"),
    ("fc00::/7", "unique local (RFC 4193), with the metadata service fd00:ec2::254"),
    ("fe80::/10", "link-local unicast (RFC 4291)"),
    ("fec0::/10", "site-local, deprecated (RFC 3879)"),
    ("ff00::/8", "multicast (RFC 4291)"),
];

fn tables() -> &'static (Vec<Ipv4Net>, Vec<Ipv6Net>) {
    static T: OnceLock<(Vec<Ipv4Net>, Vec<Ipv6Net>)> = OnceLock::new();
    T.get_or_init(|| {
        // The tables are constants checked by the tests below; a bad entry is a bug there.
        let v4 = V4_SPECIAL.iter().filter_map(|(n, _)| n.parse().ok()).collect();
        let v6 = V6_SPECIAL.iter().filter_map(|(n, _)| n.parse().ok()).collect();
        (v4, v6)
    })
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`) and
/// NAT64 (`64:ff9b::/96`, RFC 6052).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        _ => None,
    }
}

fn v4_forbidden(ip: Ipv4Addr) -> bool {
    tables().0.iter().any(|n| n.contains(&ip))
}

fn v6_forbidden(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return v4_forbidden(v4);
    }
    // 2000::/3: global unicast, the only block allocated for it.
    (ip.segments()[0] & 0xe000) != 0x2000 || tables().1.iter().any(|n| n.contains(&ip))
}

/// Whether `ip` may be reached, given this host's own addresses `own` (without the
/// allow-list).
fn refused(ip: IpAddr, own: &[IpAddr]) -> bool {
    let is_own = |ip: IpAddr| own.contains(&ip);
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4) || is_own(ip),
        IpAddr::V6(v6) => v6_forbidden(v6) || is_own(ip) || embedded_v4(v6).is_some_and(|v4| is_own(IpAddr::V4(v4))),
    }
}

/// This host's interface addresses, re-read at most every 30 s (interfaces come and go).
fn own_addresses() -> Arc<Vec<IpAddr>> {
    static CACHE: Mutex<Option<(Instant, Arc<Vec<IpAddr>>)>> = Mutex::new(None);
    let Ok(mut c) = CACHE.lock() else { return Arc::new(interface_addresses()) };
    match &*c {
        Some((at, list)) if at.elapsed() < Duration::from_secs(30) => list.clone(),
        _ => {
            let list = Arc::new(interface_addresses());
            *c = Some((Instant::now(), list.clone()));
            list
        }
    }
}

/// Every address on this host's interfaces (getifaddrs(3)).
#[cfg(unix)]
pub fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a linked list that stays valid until the
    // freeifaddrs below; every `ifa_addr` is null or points at a sockaddr of the family
    // its `sa_family` names, so the casts read initialized memory of the right type.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            tracing::warn!("getifaddrs failed; this host's own addresses are not known to the SSRF guard");
            return out;
        }
        let mut cur = head;
        while let Some(ifa) = cur.as_ref() {
            if let Some(addr) = ifa.ifa_addr.as_ref() {
                match i32::from(addr.sa_family) {
                    libc::AF_INET => {
                        let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
}

#[cfg(not(unix))]
pub fn interface_addresses() -> Vec<IpAddr> {
    Vec::new()
}

/// The guard with its allow-list.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Arc<Vec<IpNet>>,
}

impl Guard {
    pub fn new(allow: Vec<IpNet>) -> Guard {
        Guard { allow: Arc::new(allow) }
    }

    /// Whether webhooks may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let allowed = |ip: IpAddr| self.allow.iter().any(|n| n.contains(&ip));
        if allowed(ip) {
            return true;
        }
        if let IpAddr::V6(v6) = ip
            && let Some(v4) = embedded_v4(v6)
            && allowed(IpAddr::V4(v4))
        {
            return true;
        }
        !refused(ip, &own_addresses())
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), SsrfBlocked> {
        if self.permits(ip) { Ok(()) } else { Err(SsrfBlocked(ip)) }
    }

    /// Check a URL's literal IP host (names are checked by the resolver).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), SsrfBlocked> {
        match literal_ip(url) {
            Some(ip) => self.check(ip),
            None => Ok(()),
        }
    }
}

/// The URL's host when it is an IP literal (`[::1]` included).
pub fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    url.host_str()?.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// reqwest DNS resolver that drops forbidden addresses; when none is left the
/// connection fails with [`SsrfBlocked`].
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub guard: Guard,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut blocked = None;
            let ok: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match guard.check(a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        blocked = Some(e);
                        false
                    }
                })
                .collect();
            if ok.is_empty()
                && let Some(e) = blocked
            {
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_refused(s: &str) -> bool {
        !Guard::default().permits(s.parse().expect("ip"))
    }

    #[test]
    fn the_tables_parse() {
        for (n, what) in V4_SPECIAL {
            assert!(n.parse::<Ipv4Net>().is_ok(), "{n} ({what})");
        }
        for (n, what) in V6_SPECIAL {
            assert!(n.parse::<Ipv6Net>().is_ok(), "{n} ({what})");
        }
        assert_eq!(tables().0.len(), V4_SPECIAL.len());
        assert_eq!(tables().1.len(), V6_SPECIAL.len());
    }

    /// One address inside (and one at the far end of) every special-purpose block.
    #[test]
    fn every_special_purpose_block_is_refused() {
        for (net, what) in V4_SPECIAL {
            let n: Ipv4Net = net.parse().expect("net");
            for ip in [n.network(), n.broadcast()] {
                assert!(is_refused(&ip.to_string()), "{ip} in {net} ({what}) must be refused");
                let mapped = format!("::ffff:{ip}");
                assert!(is_refused(&mapped), "{mapped} must be refused");
                let nat64 = format!("64:ff9b::{ip}");
                assert!(is_refused(&nat64), "{nat64} must be refused");
            }
        }
        for (net, what) in V6_SPECIAL {
            let n: Ipv6Net = net.parse().expect("net");
            for ip in [n.network(), n.broadcast()] {
                // ::ffff:0:0:0/96's ends are not IPv4-mapped; ::/96 holds ::1 and ::.
                assert!(is_refused(&ip.to_string()), "{ip} in {net} ({what}) must be refused");
            }
        }
    }

    #[test]
    fn the_addresses_named_in_the_issue_are_refused() {
        for ip in [
            // issue 10 "Webhook SSRF gaps"
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.88.99.1",
            "::ffff:0:7f00:1",                      // IPv4-translated 127.0.0.1
            "::ffff:0:808:808",                     // IPv4-translated, even of a public address
            "64:ff9b:1::808:808",                   // local-use translation
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
            "2001:2::1",                            // benchmarking
            "2001:20::1",                           // ORCHIDv2
            "2001:db8::1",
            "3fff::1",
            // and the ones refused before
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:808:808::",
            "4000::1", // outside 2000::/3
        ] {
            assert!(is_refused(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "93.184.215.14",
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "100.128.0.1",
            "192.0.1.255",
            "198.20.0.1",
            "192.31.196.1",    // AS112, globally reachable per the registry
            "2620:4f:8000::1", // AS112 direct delegation, globally reachable
        ] {
            assert!(!is_refused(ip), "{ip} must pass");
        }
    }

    #[test]
    fn this_hosts_own_addresses_are_refused_in_every_form() {
        // A public address is refused when it is one of ours, also inside ::ffff: and NAT64.
        let own: Vec<IpAddr> = vec!["8.8.4.4".parse().expect("ip"), "2606:4700::6810:1".parse().expect("ip")];
        for ip in ["8.8.4.4", "::ffff:8.8.4.4", "64:ff9b::808:404", "2606:4700::6810:1"] {
            assert!(refused(ip.parse().expect("ip"), &own), "{ip} is ours");
        }
        assert!(!refused("8.8.8.8".parse().expect("ip"), &own));
        // And the real interfaces of the machine running this test.
        let real = interface_addresses();
        assert!(real.iter().any(|ip| ip.is_loopback()), "getifaddrs lists loopback: {real:?}");
        for ip in real {
            assert!(!Guard::default().permits(ip), "{ip} (an interface of this host) must be refused");
            if let IpAddr::V4(v4) = ip {
                assert!(!Guard::default().permits(IpAddr::V6(v4.to_ipv6_mapped())), "[::ffff:{v4}] must be refused");
            }
        }
    }

    #[test]
    fn the_allow_list_opens_exactly_its_networks() {
        let g = Guard::new(vec!["127.0.0.1/32".parse().expect("net")]);
        assert!(g.permits("127.0.0.1".parse().expect("ip")));
        assert!(g.permits("::ffff:127.0.0.1".parse().expect("ip")));
        assert!(!g.permits("127.0.0.2".parse().expect("ip")));
        assert!(!g.permits("10.0.0.1".parse().expect("ip")));
    }
}
