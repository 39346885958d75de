//! SSRF guard for outbound webhooks (QUALITY.md security, "Outbound webhook URLs").
//!
//! A subscriber URL must not reach our own network: private (RFC 1918, ULA),
//! loopback, link-local, CGNAT, unspecified, multicast and reserved addresses, the
//! cloud metadata services (169.254.169.254, fd00:ec2::254 — covered by link-local and
//! ULA) and the same addresses hidden in IPv4-mapped, -compatible, NAT64 and 6to4
//! IPv6 forms are refused, unless a configured allow-list network contains them.
//! Checked at creation (literal IPs and names that resolve there) and at connect time
//! by [`GuardedResolver`], reqwest's DNS resolver for the delivery client, so a name
//! that resolves elsewhere later (DNS rebinding) cannot get through. Literal IPs never
//! reach a resolver, so the worker checks them before sending ([`check_url`]).
//! Written by hand (as svix does) because `std`'s `is_global` is unstable and no small
//! crate covers the embedded-IPv4 forms.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Refused by the guard (the error code recorded on the attempt is `ssrf_blocked`).
#[derive(Debug, thiserror::Error)]
#[error("{0} is not a public address; webhooks may not reach it")]
pub struct SsrfBlocked(pub IpAddr);

fn v4_forbidden(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0 // 0.0.0.0/8 "this network"
        || ip.is_loopback()
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local() // 169.254/16, includes 169.254.169.254 (metadata)
        || (a == 100 && (64..128).contains(&b)) // 100.64/10 CGNAT (RFC 6598)
        || (a == 192 && b == 0 && c == 0) // 192.0.0/24 IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // 198.18/15 benchmarking
        || ip.is_multicast() // 224/4
        || a >= 240 // 240/4 reserved + broadcast
}

fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (deprecated compatible)
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(tail),
        // 64:ff9b::/96 NAT64
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        // 2002::/16 6to4: the IPv4 address is bits 16-48
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)),
        _ => None,
    }
}

fn v6_forbidden(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    if let Some(v4) = embedded_v4(ip) {
        return v4_forbidden(v4);
    }
    (first & 0xfe00) == 0xfc00 // fc00::/7 ULA, includes fd00:ec2::254 (metadata)
        || (first & 0xffc0) == 0xfe80 // fe80::/10 link-local
        || (first & 0xffc0) == 0xfec0 // fec0::/10 deprecated site-local
        || (first & 0xff00) == 0xff00 // ff00::/8 multicast
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // 2001:db8::/32 documentation
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
        match ip {
            IpAddr::V4(v4) => !v4_forbidden(v4),
            IpAddr::V6(v6) => !v6_forbidden(v6),
        }
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

    fn refused(s: &str) -> bool {
        !Guard::default().permits(s.parse().expect("ip"))
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
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
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in ["93.184.215.14", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "100.128.0.1"] {
            assert!(!refused(ip), "{ip} must pass");
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
