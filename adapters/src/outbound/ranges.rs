//! Which IP addresses an outbound request may reach, by range alone.
//!
//! Everything that is not globally routable is refused, in every spelling: IPv4-mapped
//! (`::ffff:127.0.0.1`) and the IPv6 forms that embed an IPv4 address (NAT64, 6to4) are
//! judged by the address they embed. Private ranges are a class of their own, so an admin
//! can open them (`FETCH_ALLOW_PRIVATE`) without opening loopback or link-local.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// What a destination address is, as far as the outbound policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Globally routable: fetched.
    Public,
    /// A private network (RFC 1918, CGNAT, unique-local …): fetched only when private
    /// destinations are allowed.
    Private(&'static str),
    /// Never fetched unless the allow-list names it: loopback, link-local, unspecified,
    /// multicast, broadcast, reserved and other special-purpose ranges.
    Forbidden(&'static str),
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(segments: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

/// IPv4 ranges that are not public (IANA special-purpose registry), most specific first
/// where they overlap.
const V4: &[(Ipv4Net, AddressClass)] = &[
    (v4(0, 0, 0, 0, 8), AddressClass::Forbidden("unspecified")),
    (v4(127, 0, 0, 0, 8), AddressClass::Forbidden("loopback")),
    // Cloud metadata services (169.254.169.254) live here.
    (
        v4(169, 254, 0, 0, 16),
        AddressClass::Forbidden("link-local"),
    ),
    (
        v4(192, 0, 0, 0, 24),
        AddressClass::Forbidden("special-purpose"),
    ),
    (
        v4(192, 0, 2, 0, 24),
        AddressClass::Forbidden("documentation"),
    ),
    (
        v4(198, 51, 100, 0, 24),
        AddressClass::Forbidden("documentation"),
    ),
    (
        v4(203, 0, 113, 0, 24),
        AddressClass::Forbidden("documentation"),
    ),
    (
        v4(192, 88, 99, 0, 24),
        AddressClass::Forbidden("special-purpose"),
    ),
    (v4(224, 0, 0, 0, 4), AddressClass::Forbidden("multicast")),
    // Includes the broadcast address 255.255.255.255.
    (v4(240, 0, 0, 0, 4), AddressClass::Forbidden("reserved")),
    (v4(10, 0, 0, 0, 8), AddressClass::Private("private")),
    (v4(172, 16, 0, 0, 12), AddressClass::Private("private")),
    (v4(192, 168, 0, 0, 16), AddressClass::Private("private")),
    (
        v4(100, 64, 0, 0, 10),
        AddressClass::Private("shared (CGNAT)"),
    ),
    // Benchmarking by the registry, but fake-IP proxies resolve every name into it: a
    // local network, not the internet.
    (v4(198, 18, 0, 0, 15), AddressClass::Private("benchmarking")),
];

/// IPv6 ranges that are not public, besides those embedding an IPv4 address.
const V6: &[(Ipv6Net, AddressClass)] = &[
    // `::` and `::1` and the deprecated IPv4-compatible `::a.b.c.d`.
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        AddressClass::Forbidden("unspecified, loopback or IPv4-compatible"),
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        AddressClass::Forbidden("discard-only"),
    ),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        AddressClass::Forbidden("Teredo"),
    ),
    (
        v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48),
        AddressClass::Forbidden("benchmarking"),
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        AddressClass::Forbidden("documentation"),
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        AddressClass::Forbidden("documentation"),
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        AddressClass::Forbidden("link-local"),
    ),
    (
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        AddressClass::Forbidden("multicast"),
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        AddressClass::Private("unique-local"),
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        AddressClass::Private("site-local"),
    ),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        AddressClass::Private("local-use NAT64"),
    ),
];

/// The class of `ip`, in whatever form it was written or resolved.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip.to_canonical() {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => match embedded_v4(ip) {
            Some(inner) => classify_v4(inner),
            None => V6
                .iter()
                .find(|(net, _)| net.contains(&ip))
                .map_or(AddressClass::Public, |(_, class)| *class),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    V4.iter()
        .find(|(net, _)| net.contains(&ip))
        .map_or(AddressClass::Public, |(_, class)| *class)
}

/// The IPv4 address carried by a NAT64 (`64:ff9b::/96`), IPv4-translated
/// (`::ffff:0:a.b.c.d`) or 6to4 (`2002:aabb:ccdd::/48`) address: a gateway or relay
/// would deliver to it, so it is judged instead of the wrapper.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    const NAT64: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
    const TRANSLATED: Ipv6Net = v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96);
    const SIX_TO_FOUR: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);
    let s = ip.segments();
    let join = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if NAT64.contains(&ip) || TRANSLATED.contains(&ip) {
        Some(join(s[6], s[7]))
    } else if SIX_TO_FOUR.contains(&ip) {
        Some(join(s[1], s[2]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    fn forbidden(s: &str) -> bool {
        matches!(class(s), AddressClass::Forbidden(_))
    }

    fn private(s: &str) -> bool {
        matches!(class(s), AddressClass::Private(_))
    }

    #[test]
    fn loopback_unspecified_and_link_local_are_forbidden_in_every_form() {
        for ip in [
            "127.0.0.1",
            "127.255.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "169.254.169.254",
            "169.254.0.1",
            "::1",
            "::",
            "fe80::1",
            "febf::1",
            // IPv4-mapped, IPv4-compatible, NAT64, IPv4-translated and 6to4 wrappers
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "::ffff:0:7f00:1",
            "2002:7f00:1::1",
        ] {
            assert!(forbidden(ip), "{ip}: {:?}", class(ip));
        }
    }

    #[test]
    fn multicast_broadcast_reserved_and_documentation_are_forbidden() {
        for ip in [
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.170",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "ff02::1",
            "ff05::2",
            "2001:db8::1",
            "2001:0:4136:e378::1",
            "100::1",
            "::ffff:224.0.0.1",
            "::ffff:255.255.255.255",
        ] {
            assert!(forbidden(ip), "{ip}: {:?}", class(ip));
        }
    }

    #[test]
    fn private_ranges_are_their_own_class() {
        for ip in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.10",
            "100.64.0.1",
            "100.127.255.254",
            "198.18.0.1",
            "fc00::1",
            "fd12:3456::1",
            "fd00:ec2::254",
            "::ffff:10.1.2.3",
            "::ffff:192.168.0.1",
            "64:ff9b::a01:203",
            "2002:c0a8:101::1",
        ] {
            assert!(private(ip), "{ip}: {:?}", class(ip));
        }
    }

    #[test]
    fn public_addresses_and_range_edges_are_public() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "11.0.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(class(ip), AddressClass::Public, "{ip}");
        }
    }
}
