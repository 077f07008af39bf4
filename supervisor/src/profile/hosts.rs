//! The host rule language of `allow_hosts` / `deny_hosts` (and a
//! secret's `hosts`): entries parsed, matched against a target, and
//! compared for delegation. Pure; the egress proxy decides with them
//! (`egress::rules`).
//!
//! An entry is `HOST:PORT`, optionally followed by `via ADDR[,ADDR...]`:
//! - HOST: `api.github.com` (exactly that name), `*.pythonhosted.org`
//!   (any name below it, not the name itself), `*` (any name), or an
//!   address or block (`10.1.2.3`, `10.0.0.0/8`, `[::1]`, `[fd00::/8]`).
//!   A name pattern never matches a literal IP, and an address never
//!   matches a name: a literal IP is only reached when a rule names it.
//! - PORT: `443` or `*`.
//! - `via`: internal addresses (loopback, private, link-local...) that
//!   this name may resolve to. Without it a name that resolves only to
//!   internal addresses is refused, so DNS cannot turn an allowed name
//!   into a way into the host or its network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Location;

/// The egress proxy's port on the sandbox's own loopback, where a profile
/// with host rules reaches the world. Inside its network namespace
/// nothing else listens, so a fixed port is safe; a profile may not
/// `bind_tcp` it.
pub const PROXY_PORT: u16 = 3128;

/// Longest host name (RFC 1035: 253 characters without the final dot).
pub const MAX_NAME: usize = 253;

/// The host part of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any name (never a literal IP).
    AnyName,
    /// `example.com`, lower-case.
    Name(String),
    /// `*.example.com`: stored as `.example.com`.
    Below(String),
    /// An address or block.
    Block(Cidr),
}

/// The port part of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPattern {
    Any,
    Is(u16),
}

/// One `allow_hosts` or `deny_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    /// As written, for records and messages.
    pub text: String,
    pub host: HostPattern,
    pub port: PortPattern,
    /// Internal addresses the name may resolve to.
    pub via: Vec<Cidr>,
    pub origin: Location,
}

/// Parses one entry; the error says what is wrong and how to write it.
pub fn parse_rule(text: &str, origin: Location) -> Result<HostRule, String> {
    let mut words = text.split_whitespace();
    let target = words.next().ok_or_else(|| {
        "an empty host rule; write `HOST:PORT`, e.g. `api.github.com:443`".to_string()
    })?;
    let mut via = Vec::new();
    match words.next() {
        None => {}
        Some("via") => {
            let rest: Vec<&str> = words.collect();
            let list = rest.join(" ");
            for a in list.split([',', ' ']).filter(|a| !a.is_empty()) {
                via.push(Cidr::parse(a).map_err(|e| format!("after `via`: {e}"))?);
            }
            if via.is_empty() {
                return Err(format!(
                    "`{text}`: `via` must be followed by the addresses the name may resolve to, e.g. `via 10.0.0.5`"
                ));
            }
        }
        Some(other) => {
            return Err(format!(
                "`{text}`: unexpected `{other}`; write `HOST:PORT` or `HOST:PORT via ADDR`"
            ))
        }
    }
    let (host, port) = split_host_port(target).ok_or_else(|| {
        format!("`{target}` needs a port: write `{target}:443`, or `{target}:*` for any port")
    })?;
    let port = if port == "*" {
        PortPattern::Any
    } else {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => PortPattern::Is(p),
            _ => {
                return Err(format!(
                    "`{target}`: the port must be 1-65535 or `*`, got `{port}`"
                ))
            }
        }
    };
    let host = host_pattern(host).map_err(|e| format!("`{target}`: {e}"))?;
    if matches!(host, HostPattern::Block(_)) && !via.is_empty() {
        return Err(format!(
            "`{text}`: `via` only applies to a host name; an address rule already names its address"
        ));
    }
    Ok(HostRule {
        text: text.split_whitespace().collect::<Vec<_>>().join(" "),
        host,
        port,
        via,
        origin,
    })
}

/// `host:port`, `[v6]:port`, `10.0.0.0/8:443`, `[fd00::/8]:443`.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = s.rsplit_once(':')?;
    // An unbracketed IPv6 address has more colons: its port is ambiguous.
    (!host.contains(':')).then_some((host, port))
}

fn host_pattern(host: &str) -> Result<HostPattern, String> {
    if host == "*" {
        return Ok(HostPattern::AnyName);
    }
    if host.contains('/') || host.parse::<IpAddr>().is_ok() {
        return Cidr::parse(host).map(HostPattern::Block);
    }
    if let Some(below) = host.strip_prefix("*.") {
        let name = normal_name(below)?;
        return Ok(HostPattern::Below(format!(".{name}")));
    }
    if host.contains('*') {
        return Err("`*` may only stand alone or as the first label (`*.example.com`)".into());
    }
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "`{host}` is neither an IPv4 address nor a host name"
        ));
    }
    normal_name(host).map(HostPattern::Name)
}

/// A host name, lower-case, without a final dot; letters, digits, `-` and
/// `_` in labels of 1-63 characters.
pub fn normal_name(name: &str) -> Result<String, String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("a host name must be 1-{MAX_NAME} characters"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("`{name}` has an empty or over-long (63+) label"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "`{name}`: host names are letters, digits, `-` and `_` (IDNs in their xn-- form)"
            ));
        }
    }
    Ok(name)
}

/// What a connection asks for: a name, or a literal address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Name(String),
    Ip(IpAddr),
}

impl Target {
    /// From the host of a CONNECT or a URL (brackets already removed).
    pub fn parse(host: &str) -> Result<Target, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Target::Ip(canonical(ip)));
        }
        normal_name(host).map(Target::Name)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(n) => f.write_str(n),
            Target::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl HostRule {
    /// Whether this rule speaks of `target` on `port`.
    pub fn matches(&self, target: &Target, port: u16) -> bool {
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Is(p) => p == port,
        };
        port_ok
            && match (&self.host, target) {
                (HostPattern::AnyName, Target::Name(_)) => true,
                (HostPattern::Name(n), Target::Name(t)) => n == t,
                (HostPattern::Below(suffix), Target::Name(t)) => {
                    t.len() > suffix.len() && t.ends_with(suffix.as_str())
                }
                (HostPattern::Block(b), Target::Ip(ip)) => b.contains(*ip),
                _ => false,
            }
    }

    /// Whether this rule names `ip` itself (an address rule, or `via`).
    pub fn names(&self, ip: IpAddr) -> bool {
        match &self.host {
            HostPattern::Block(b) => b.contains(ip),
            _ => self.via.iter().any(|v| v.contains(ip)),
        }
    }

    /// A deny rule that blocks an address whatever name led to it.
    pub fn blocks_address(&self, ip: IpAddr, port: u16) -> bool {
        matches!(self.host, HostPattern::Block(_)) && self.matches(&Target::Ip(ip), port)
    }
}

/// An address block, `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `1.2.3.4`, `10.0.0.0/8`, `::1` or `fd00::/8` (brackets
    /// around an IPv6 address are accepted). Host bits must be zero, so a
    /// typo like `10.0.0.1/8` is caught instead of silently widened.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0-{max}"))?,
        };
        let cidr = Cidr {
            addr: canonical(addr),
            prefix,
        };
        if cidr.network() != cidr.addr {
            return Err(format!(
                "`{text}` has bits set past its /{prefix} prefix; write `{}/{prefix}`",
                cidr.network()
            ));
        }
        Ok(cidr)
    }

    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(self.prefix))),
        }
    }

    /// Whether `ip` lies in this block (IPv4-mapped IPv6 addresses count
    /// as their IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

pub(crate) fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

pub(crate) fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Whether every connection `inner` allows is allowed by `outer` (for
/// delegation: a sub-agent's rule must lie within one of its parent's).
/// Conservative: `via` addresses must lie within `outer`'s (or within
/// the block `outer` names).
pub fn rule_within(inner: &HostRule, outer: &HostRule) -> bool {
    let port = match (inner.port, outer.port) {
        (_, PortPattern::Any) => true,
        (PortPattern::Is(a), PortPattern::Is(b)) => a == b,
        (PortPattern::Any, PortPattern::Is(_)) => false,
    };
    let host = match (&inner.host, &outer.host) {
        (HostPattern::Block(a), HostPattern::Block(b)) => block_within(a, b),
        (HostPattern::Block(_), _) | (_, HostPattern::Block(_)) => false,
        (_, HostPattern::AnyName) => true,
        (HostPattern::AnyName, _) => false,
        (HostPattern::Name(a), HostPattern::Name(b)) => a == b,
        (HostPattern::Name(a), HostPattern::Below(s)) => {
            a.len() > s.len() && a.ends_with(s.as_str())
        }
        (HostPattern::Below(a), HostPattern::Below(s)) => a.ends_with(s.as_str()),
        (HostPattern::Below(_), HostPattern::Name(_)) => false,
    };
    let via = inner
        .via
        .iter()
        .all(|v| outer.via.iter().any(|o| block_within(v, o)));
    port && host && via
}

/// Whether block `a` lies within block `b`.
fn block_within(a: &Cidr, b: &Cidr) -> bool {
    a.addr.is_ipv4() == b.addr.is_ipv4() && a.prefix >= b.prefix && b.contains(a.addr)
}

/// Whether a rule allows only TCP ports in `ports` (for a sub-agent with
/// host rules under a parent with port rules only).
pub fn rule_ports_within(rule: &HostRule, ports: &[u16]) -> bool {
    matches!(rule.port, PortPattern::Is(p) if ports.contains(&p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn rule(text: &str) -> HostRule {
        parse_rule(text, Location::whole_file(Path::new("t.toml")))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn entries_parse() {
        assert_eq!(
            rule("api.github.com:443").host,
            HostPattern::Name("api.github.com".into())
        );
        assert_eq!(
            rule("API.GitHub.com.:443").host,
            HostPattern::Name("api.github.com".into())
        );
        assert_eq!(
            rule("*.pythonhosted.org:443").host,
            HostPattern::Below(".pythonhosted.org".into())
        );
        assert_eq!(rule("*:443").host, HostPattern::AnyName);
        assert_eq!(rule("example.com:*").port, PortPattern::Any);
        assert!(matches!(rule("10.0.0.0/8:443").host, HostPattern::Block(_)));
        assert!(matches!(rule("[::1]:8080").host, HostPattern::Block(_)));
        assert!(matches!(rule("[fd00::/8]:*").host, HostPattern::Block(_)));
        let r = rule("svc.internal:8080  via 10.0.0.5, 10.0.1.0/24");
        assert_eq!(r.via.len(), 2);
        assert_eq!(r.text, "svc.internal:8080 via 10.0.0.5, 10.0.1.0/24");
    }

    #[test]
    fn bad_entries_say_why() {
        let origin = || Location::whole_file(Path::new("t.toml"));
        for (text, says) in [
            ("api.github.com", "needs a port"),
            ("api.github.com:0", "1-65535"),
            ("api.github.com:https", "1-65535"),
            ("api.*.com:443", "first label"),
            ("ex ample.com:443", "unexpected"),
            ("a..b:443", "empty"),
            ("a/b.com:443", "not an IP"),
            ("caf\u{e9}.com:443", "letters, digits"),
            ("1.2.3:443", "neither"),
            ("::1:443", "needs a port"),
            ("10.0.0.1:443 via 127.0.0.1", "only applies to a host name"),
            ("svc:80 via", "must be followed"),
            ("svc:80 via localhost", "not an IP"),
            ("", "empty host rule"),
        ] {
            let e = parse_rule(text, origin()).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn rule_inclusion_for_delegation() {
        let w = |a: &str, b: &str| rule_within(&rule(a), &rule(b));
        assert!(w("api.github.com:443", "api.github.com:443"));
        assert!(w("api.github.com:443", "api.github.com:*"));
        assert!(w("api.github.com:443", "*.github.com:443"));
        assert!(w("a.b.github.com:443", "*.github.com:443"));
        assert!(w("*.b.github.com:443", "*.github.com:443"));
        assert!(w("*.github.com:443", "*:443"));
        assert!(w("10.1.2.0/24:22", "10.0.0.0/8:22"));
        assert!(w("svc:80 via 10.0.0.5", "svc:80 via 10.0.0.0/24"));
        assert!(!w("api.github.com:*", "api.github.com:443"));
        assert!(!w("github.com:443", "*.github.com:443"));
        assert!(!w("*.github.com:443", "*.b.github.com:443"));
        assert!(!w("*:443", "*.github.com:443"));
        assert!(!w("10.0.0.0/8:22", "10.1.0.0/16:22"));
        assert!(
            !w("10.0.0.1:22", "*:22"),
            "a name rule never covers an address"
        );
        assert!(!w("svc:80 via 10.0.0.5", "svc:80"), "via widens");
        assert!(!w("svc:80 via 127.0.0.1", "svc:80 via 10.0.0.0/8"));
        assert!(rule_ports_within(&rule("a.test:443"), &[443]));
        assert!(!rule_ports_within(&rule("a.test:*"), &[443]));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn a_rule() -> impl Strategy<Value = String> {
            let host = prop::sample::select(vec![
                "*",
                "*.test",
                "*.a.test",
                "a.test",
                "b.a.test",
                "c.test",
                "10.0.0.0/8",
                "10.1.0.0/16",
                "10.1.2.3",
                "127.0.0.1",
                "[::1]",
            ]);
            let port = prop::sample::select(vec!["80", "443", "*"]);
            let via = prop::sample::select(vec![
                "",
                " via 10.0.0.0/8",
                " via 10.1.2.3",
                " via 127.0.0.1",
            ]);
            (host, port, via).prop_map(|(h, p, v)| {
                let v = if h.starts_with(|c: char| c.is_ascii_digit() || c == '[') {
                    ""
                } else {
                    v
                };
                format!("{h}:{p}{v}")
            })
        }

        proptest! {
            // Most pairs are not within each other: many cases, so that
            // hundreds are.
            #![proptest_config(ProptestConfig::with_cases(4000))]

            /// A rule accepted as within another never reaches a target,
            /// port or internal address the other does not.
            #[test]
            fn within_never_widens(inner in a_rule(), outer in a_rule()) {
                let (i, o) = (rule(&inner), rule(&outer));
                if !rule_within(&i, &o) {
                    return Ok(());
                }
                let targets = ["a.test", "b.a.test", "x.b.a.test", "c.test", "other.example",
                    "10.1.2.3", "10.200.0.1", "127.0.0.1", "::1"];
                for t in targets {
                    let t = Target::parse(t).unwrap();
                    for port in [80u16, 443, 8080] {
                        if i.matches(&t, port) {
                            prop_assert!(o.matches(&t, port), "{inner} reaches {t}:{port}, {outer} does not");
                        }
                    }
                }
                for ip in ["10.1.2.3", "10.9.9.9", "127.0.0.1"] {
                    let ip: IpAddr = ip.parse().unwrap();
                    if i.names(ip) {
                        prop_assert!(o.names(ip), "{inner} names {ip}, {outer} does not");
                    }
                }
            }
        }
    }
}
