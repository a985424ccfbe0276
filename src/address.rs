//! Which network addresses traffic started for a skill may reach: not this
//! machine or its neighbours. Loopback, private (RFC 1918, unique local),
//! link-local, shared (CGNAT), unspecified, broadcast and multicast addresses
//! name services a skill was never granted, and are refused unless the person
//! configuring boternity wrote that address literally.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` points inward: at this machine, its local networks, or a
/// group of hosts rather than one.
pub fn is_inward(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_inward_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_inward_v4(v4),
            None => is_inward_v6(v6),
        },
    }
}

fn is_inward_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        // 100.64.0.0/10: shared address space (carrier-grade NAT).
        || (a == 100 && (b & 0xc0) == 64)
}

fn is_inward_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // fc00::/7: unique local.
        || (first & 0xfe00) == 0xfc00
        // fe80::/10: link-local; fec0::/10: site-local (deprecated).
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_private_and_link_local_addresses_point_inward() {
        for inward in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = inward.parse().unwrap();
            assert!(is_inward(ip), "{inward} not counted as inward");
        }
        for outward in [
            "1.1.1.1",
            "151.101.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = outward.parse().unwrap();
            assert!(!is_inward(ip), "{outward} counted as inward");
        }
    }
}
