//! Network escapes around the port rules and around the egress proxy:
//! socket families and protocols Landlock does not govern, a client that
//! ignores the proxy, and the proxy asked for what no rule allows.

use super::*;
use std::net::UdpSocket;

/// A profile with host rules: its own network namespace, the proxy its
/// only way out. `allow` is one `allow_hosts` entry.
fn behind_proxy(allow: &str) -> Profile {
    let mut p = ws(false);
    p.allow_hosts.push(allow.to_string());
    p
}

/// Sends `raw` to the proxy from inside and returns its status line.
fn proxy_status(c: &Case, prof: &Profile, raw: &str) -> String {
    let r = run(c, prof, &["proxy-raw", raw]);
    assert_eq!(r.code, Some(0), "the probe reached the proxy: {r:#?}");
    r.stdout.lines().next().unwrap_or("").to_string()
}

/// A TCP listener outside that must see no connection.
fn untouched() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

pub(super) fn cases() -> Vec<Escape> {
    vec![
        case(
            "egress.udp-datagram",
            "send a UDP datagram to a listener outside (with a TCP grant)",
            |c| {
                let outside = UdpSocket::bind("127.0.0.1:0").unwrap();
                outside.set_nonblocking(true).unwrap();
                let port = outside.local_addr().unwrap().port().to_string();
                refused(
                    &run(
                        c,
                        &behind_proxy("example.test:443"),
                        &["udp-send", "127.0.0.1", &port],
                    ),
                    &["EACCES"],
                );
                refused(
                    &run(c, &ws(false), &["udp-send", "127.0.0.1", &port]),
                    &["EACCES"],
                );
                let mut buf = [0u8; 64];
                assert!(outside.recv_from(&mut buf).is_err(), "a datagram arrived");
            },
        ),
        case("egress.raw-socket", "open a raw ICMP socket", |c| {
            let mut prof = ws(false);
            prof.connect_tcp.push(443);
            refused(&run(c, &prof, &["socket", "raw"]), &["EACCES"]);
        }),
        case("egress.packet-socket", "open an AF_PACKET socket", |c| {
            run(c, &ws(false), &["socket", "packet"]).killed_for("`socket`");
        }),
        case(
            "egress.vsock",
            "open an AF_VSOCK socket (to the hypervisor)",
            |c| {
                run(c, &ws(false), &["socket", "vsock"]).killed_for("`socket`");
            },
        ),
        case(
            "egress.sctp-around-tcp-rules",
            "open an SCTP stream socket under a TCP port grant (Landlock rules TCP only)",
            |c| {
                let mut prof = ws(false);
                prof.connect_tcp.push(443);
                refused(&run(c, &prof, &["socket", "sctp"]), &["EACCES"]);
                refused(&run(c, &prof, &["socket", "mptcp"]), &["EACCES"]);
            },
        ),
        case(
            "egress.bypass-proxy",
            "with host rules, connect directly to a granted port on the host",
            |c| {
                let (outside, port) = untouched();
                let mut prof = behind_proxy("example.test:443");
                prof.connect_tcp.push(port);
                refused(
                    &run(c, &prof, &["connect-addr", "127.0.0.1", &port.to_string()]),
                    &["ECONNREFUSED"],
                );
                refused(
                    &run(c, &prof, &["connect-addr", "1.1.1.1", "443"]),
                    &["ENETUNREACH", "EACCES"],
                );
                assert!(outside.accept().is_err(), "a connection reached the host");
            },
        ),
        case(
            "egress.unlisted-host",
            "CONNECT through the proxy to a host no rule allows",
            |c| {
                let prof = behind_proxy("example.test:443");
                let status = proxy_status(c, &prof, "CONNECT other.test:443 HTTP/1.1\r\n\r\n");
                assert!(status.starts_with("HTTP/1.1 403"), "{status}");
            },
        ),
        case(
            "egress.loopback-by-name",
            "reach the host's loopback through an allowed name that resolves there",
            |c| {
                let (outside, port) = untouched();
                let prof = behind_proxy(&format!("localhost:{port}"));
                let raw = format!("CONNECT localhost:{port} HTTP/1.1\r\n\r\n");
                assert!(proxy_status(c, &prof, &raw).starts_with("HTTP/1.1 403"));
                assert!(outside.accept().is_err(), "the proxy connected to loopback");
            },
        ),
        case(
            "egress.literal-ip",
            "CONNECT to a literal address under a wildcard name rule",
            |c| {
                let (outside, port) = untouched();
                let prof = behind_proxy(&format!("*:{port}"));
                let raw = format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n");
                assert!(proxy_status(c, &prof, &raw).starts_with("HTTP/1.1 403"));
                assert!(outside.accept().is_err(), "the proxy connected");
            },
        ),
        case(
            "egress.metadata",
            "fetch the cloud metadata address through the proxy",
            |c| {
                let prof = behind_proxy("*:80");
                let raw = "GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\n\r\n";
                assert!(proxy_status(c, &prof, raw).starts_with("HTTP/1.1 403"));
            },
        ),
        case(
            "egress.proxy-userinfo",
            "smuggle a host in the userinfo of an absolute URL",
            |c| {
                let prof = behind_proxy("example.test:80");
                let raw = "GET http://example.test:80@127.0.0.1:22/ HTTP/1.1\r\n\r\n";
                assert!(proxy_status(c, &prof, raw).starts_with("HTTP/1.1 400"));
            },
        ),
    ]
}
