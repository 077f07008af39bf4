//! What a sandbox's connects and addressed sends may reach, decided by the
//! supervisor for each one (`process::mediate` makes the call itself,
//! with its own copy of the address; this module only decides, pure).
//!
//! - TCP: the ports the profile grants (what Landlock's port rules say).
//! - UDP: name resolution only: port 53 of the host's name servers.
//! - Unix sockets by path: the profile's `unix` list, the sandbox's own
//!   write grants (sockets it made itself), and the session's broker;
//!   never a denied path. Abstract names are refused (Landlock scopes
//!   them, but a connect the supervisor makes would not be scoped).
//! - Netlink (routing lookups only, by the socket filter): as asked.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// A socket address, as bytes of a `sockaddr_*` read from the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// AF_UNSPEC: dissolve a datagram association.
    Unspec,
    Inet(SocketAddr),
    /// A pathname, as written (relative to the caller's cwd, or absolute).
    UnixPath(Vec<u8>),
    UnixAbstract(Vec<u8>),
    /// An unnamed Unix address (autobind).
    UnixUnnamed,
    Netlink,
    /// Another family (the socket filter refuses creating those).
    Other(u16),
}

const SUN_PATH: usize = 108;

/// Parses a `sockaddr` of `bytes.len()` bytes (as the caller passed it).
pub fn parse_sockaddr(b: &[u8]) -> Result<Addr, &'static str> {
    let family = b
        .get(..2)
        .map(|f| u16::from_ne_bytes([f[0], f[1]]))
        .ok_or("address shorter than its family")?;
    let at = |lo: usize, hi: usize| b.get(lo..hi).ok_or("address too short for its family");
    #[allow(clippy::cast_possible_truncation)] // the families are small constants
    let (unspec, unix, inet, inet6, netlink) = (
        libc::AF_UNSPEC as u16,
        libc::AF_UNIX as u16,
        libc::AF_INET as u16,
        libc::AF_INET6 as u16,
        libc::AF_NETLINK as u16,
    );
    Ok(match family {
        f if f == unspec => Addr::Unspec,
        f if f == inet => {
            let port = u16::from_be_bytes(at(2, 4)?.try_into().map_err(|_| "short port")?);
            let ip: [u8; 4] = at(4, 8)?.try_into().map_err(|_| "short address")?;
            Addr::Inet(SocketAddr::new(IpAddr::from(ip), port))
        }
        f if f == inet6 => {
            let port = u16::from_be_bytes(at(2, 4)?.try_into().map_err(|_| "short port")?);
            let ip: [u8; 16] = at(8, 24)?.try_into().map_err(|_| "short address")?;
            Addr::Inet(SocketAddr::new(IpAddr::from(ip), port))
        }
        f if f == unix => {
            let path = b.get(2..).unwrap_or(&[]);
            if path.len() > SUN_PATH {
                return Err("Unix socket path longer than sun_path");
            }
            match path.first() {
                None => Addr::UnixUnnamed,
                Some(0) => Addr::UnixAbstract(path[1..].to_vec()),
                Some(_) => {
                    let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                    Addr::UnixPath(path[..end].to_vec())
                }
            }
        }
        f if f == netlink => Addr::Netlink,
        other => Addr::Other(other),
    })
}

/// The supervisor's decision on one connect or addressed send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetVerdict {
    /// Make the call as asked (with the supervisor's copy of the address).
    Perform,
    /// A connect to the session's broker: hand the broker a connection
    /// made for the caller (`broker::handoff`).
    Broker,
    /// Fail it with this errno; `why` is for the log.
    Refuse { errno: i32, why: String },
    /// A socket no sandbox has any business with (the session's approval
    /// control socket: reaching it is trying to answer its own request):
    /// divergence.
    Diverge { why: String },
}

fn refuse(errno: i32, why: impl Into<String>) -> NetVerdict {
    NetVerdict::Refuse {
        errno,
        why: why.into(),
    }
}

/// What one sandbox may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPolicy {
    /// TCP ports (any host), as the profile grants them.
    pub tcp: Vec<u16>,
    /// Whether UDP sockets exist at all (the socket filter decides).
    pub udp: bool,
    /// Name servers: UDP goes to port 53 of these only.
    pub dns: Vec<IpAddr>,
    /// Canonical socket paths or trees the sandbox may reach.
    pub unix: Vec<PathBuf>,
    /// Canonical paths that stay unreachable inside those (denied).
    pub unix_denied: Vec<PathBuf>,
    /// The session's broker socket (canonical).
    pub broker: Option<PathBuf>,
    /// Sockets whose connect is divergence (the approval control socket).
    pub divergent: Vec<PathBuf>,
}

impl NetPolicy {
    /// The policy of a sandbox with these grants (`values` expanded), the
    /// host's name servers, and `broker` (its session's socket).
    pub fn for_sandbox(
        network: &crate::profile::Network,
        fs: &crate::profile::Filesystem,
        values: &crate::profile::Placeholders,
        broker: Option<PathBuf>,
        dns: Vec<IpAddr>,
    ) -> NetPolicy {
        let canonical = |r: &crate::profile::PathRule| {
            let p = r.path.expand(values);
            std::fs::canonicalize(&p).unwrap_or(p)
        };
        let host_rules = network.has_host_rules();
        let mut tcp = network.connect_tcp.clone();
        if host_rules && !tcp.contains(&crate::profile::hosts::PROXY_PORT) {
            tcp.push(crate::profile::hosts::PROXY_PORT);
        }
        NetPolicy {
            udp: !network.connect_tcp.is_empty() && !host_rules,
            tcp,
            dns,
            unix: network
                .unix
                .iter()
                .chain(&fs.write)
                .map(canonical)
                .collect(),
            unix_denied: fs.deny.iter().map(canonical).collect(),
            broker,
            divergent: Vec::new(),
        }
    }
}

impl NetPolicy {
    /// Decides a connect (or addressed send) of a socket of `domain` and
    /// `kind` to `addr`. `unix_target` is the canonical file a pathname
    /// address names, as the caller sees it (None: it does not resolve).
    pub fn decide(
        &self,
        domain: i32,
        kind: i32,
        addr: &Addr,
        unix_target: Option<&Path>,
    ) -> NetVerdict {
        let stream = kind == libc::SOCK_STREAM;
        match (domain, addr) {
            (_, Addr::Unspec) => NetVerdict::Perform,
            (libc::AF_INET | libc::AF_INET6, Addr::Inet(sa)) if stream => {
                if self.tcp.contains(&sa.port()) {
                    NetVerdict::Perform
                } else {
                    refuse(
                        libc::EACCES,
                        format!("TCP to {sa}: port {} is not granted", sa.port()),
                    )
                }
            }
            (libc::AF_INET | libc::AF_INET6, Addr::Inet(sa)) if kind == libc::SOCK_DGRAM => {
                let ip = crate::egress::address::canonical(sa.ip());
                if self.udp && sa.port() == 53 && self.dns.contains(&ip) {
                    NetVerdict::Perform
                } else {
                    refuse(
                        libc::EACCES,
                        format!("UDP to {sa}: only name resolution (port 53 of the host's name servers) is open"),
                    )
                }
            }
            (libc::AF_UNIX, Addr::UnixPath(p)) => {
                let shown = String::from_utf8_lossy(p).into_owned();
                let Some(target) = unix_target else {
                    return refuse(
                        libc::ENOENT,
                        format!("Unix socket `{shown}` does not exist"),
                    );
                };
                if self.broker.as_deref() == Some(target) {
                    return NetVerdict::Broker;
                }
                if self.divergent.iter().any(|d| d == target) {
                    return NetVerdict::Diverge {
                        why: format!(
                            "connected to the operator control socket {} (an attempt to answer its own approval request)",
                            target.display()
                        ),
                    };
                }
                if self.unix_denied.iter().any(|d| target.starts_with(d)) {
                    return refuse(
                        libc::EACCES,
                        format!("Unix socket {} is denied", target.display()),
                    );
                }
                if self.unix.iter().any(|u| target.starts_with(u)) {
                    NetVerdict::Perform
                } else {
                    refuse(
                        libc::EACCES,
                        format!("Unix socket {} is not in [network] unix", target.display()),
                    )
                }
            }
            // EPERM: what Landlock's abstract-socket scope answers, so
            // a program sees the same error either way.
            (libc::AF_UNIX, Addr::UnixAbstract(name)) => refuse(
                libc::EPERM,
                format!(
                    "abstract Unix socket `@{}`: connecting to abstract sockets is refused",
                    String::from_utf8_lossy(name)
                ),
            ),
            (libc::AF_UNIX, Addr::UnixUnnamed) => refuse(libc::EINVAL, "an unnamed Unix address"),
            (libc::AF_NETLINK, Addr::Netlink) => NetVerdict::Perform,
            (d, a) => refuse(
                libc::EAFNOSUPPORT,
                format!("a socket of family {d} addressed as {a:?}"),
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // address families fit u16
#[path = "netpolicy_tests.rs"]
mod tests;
