//! Which IP addresses are internal: the ranges a proxy must not reach on a
//! name's behalf unless a rule names them (loopback, private networks,
//! link-local and the cloud metadata address among them).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use crate::profile::hosts::{canonical, Cidr};
use crate::profile::hosts::{mask128, mask32};

/// The IPv4 internal ranges, most specific first (the metadata address
/// before link-local), with the name a refusal gives.
const V4_INTERNAL: &[(u32, u8, &str)] = &[
    (0xa9fe_a9fe, 32, "the cloud metadata address"),
    (0x0000_0000, 8, "the unspecified/this-network range"),
    (0x0a00_0000, 8, "a private range (10.0.0.0/8)"),
    (
        0x6440_0000,
        10,
        "the carrier-grade NAT range (100.64.0.0/10)",
    ),
    (0x7f00_0000, 8, "loopback"),
    (0xa9fe_0000, 16, "link-local (169.254.0.0/16)"),
    (0xac10_0000, 12, "a private range (172.16.0.0/12)"),
    (0xc000_0000, 24, "the IETF protocol range (192.0.0.0/24)"),
    (0xc000_0200, 24, "a documentation range"),
    (0xc0a8_0000, 16, "a private range (192.168.0.0/16)"),
    (0xc612_0000, 15, "the benchmarking range (198.18.0.0/15)"),
    (0xc633_6400, 24, "a documentation range"),
    (0xcb00_7100, 24, "a documentation range"),
    (0xe000_0000, 4, "multicast"),
    (0xf000_0000, 4, "a reserved range (240.0.0.0/4, broadcast)"),
];

/// Why `ip` is internal, or `None` for a public address.
pub fn internal_kind(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let n = u32::from(ip);
    V4_INTERNAL
        .iter()
        .find(|(net, prefix, _)| n & mask32(*prefix) == *net)
        .map(|(_, _, why)| *why)
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let n = u128::from(ip);
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some("the unspecified address");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // Addresses that carry an IPv4 address are as internal as it is.
    if n >> 32 == 0 {
        return Some("an IPv4-compatible address (deprecated)");
    }
    let octets = ip.octets();
    if n >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        // NAT64: the last four bytes.
        let v4 = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
        return v4_kind(v4);
    }
    if seg[0] == 0x2002 {
        // 6to4: bytes 2-5.
        let v4 = Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]);
        return v4_kind(v4);
    }
    let blocks: [(u128, u8, &str); 6] = [
        (0xfc00 << 112, 7, "a unique-local range (fc00::/7)"),
        (0xfe80 << 112, 10, "link-local (fe80::/10)"),
        (0xfec0 << 112, 10, "a site-local range (fec0::/10)"),
        (0xff00 << 112, 8, "multicast"),
        (0x2001_0db8 << 96, 32, "a documentation range"),
        (0x0100 << 112, 64, "the discard range (100::/64)"),
    ];
    blocks
        .iter()
        .find(|(net, prefix, _)| n & mask128(*prefix) == *net)
        .map(|(_, _, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_named() {
        for (addr, why) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "metadata"),
            ("169.254.0.7", "link-local"),
            ("100.64.0.1", "carrier-grade"),
            ("0.0.0.0", "unspecified"),
            ("255.255.255.255", "broadcast"),
            ("224.0.0.1", "multicast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "metadata"),
            ("fd00:ec2::254", "unique-local"),
            ("fe80::1", "link-local"),
            ("64:ff9b::a9fe:a9fe", "metadata"),
            ("2002:7f00:1::", "loopback"),
            ("ff02::1", "multicast"),
        ] {
            let kind = internal_kind(ip(addr));
            assert!(
                kind.is_some_and(|k| k.contains(why)),
                "{addr}: {kind:?}, expected {why}"
            );
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for addr in [
            "1.1.1.1",
            "140.82.112.3",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "169.253.255.255",
            "2606:4700::1111",
            "64:ff9b::101:101",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(internal_kind(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn blocks_parse_and_contain() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.255.1.2")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.0.0.1")));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6 = Cidr::parse("[fd00::]/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert_eq!(Cidr::parse("::1").unwrap().to_string(), "::1");
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
    }

    #[test]
    fn bad_blocks_are_explained() {
        for (text, says) in [
            ("10.0.0.1/8", "bits set past"),
            ("10.0.0.0/33", "0-32"),
            ("fd00::/129", "0-128"),
            ("example.com", "not an IP"),
            ("10.0.0.0/x", "prefix"),
        ] {
            let e = Cidr::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
