//! Addresses parsed from their bytes, and every kind of decision.

use super::*;

fn inet(s: &str) -> Vec<u8> {
    let sa: SocketAddr = s.parse().unwrap();
    let mut b = vec![0u8; 28];
    match sa {
        SocketAddr::V4(a) => {
            b[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.ip().octets());
            b.truncate(16);
        }
        SocketAddr::V6(a) => {
            b[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[8..24].copy_from_slice(&a.ip().octets());
        }
    }
    b
}

fn unix(path: &[u8]) -> Vec<u8> {
    let mut b = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    b.extend_from_slice(path);
    b
}

fn policy() -> NetPolicy {
    NetPolicy {
        tcp: vec![443],
        udp: true,
        dns: vec!["10.0.0.2".parse().unwrap()],
        unix: vec!["/run/user/1000/agent.sock".into(), "/w/ws".into()],
        unix_denied: vec!["/w/ws/.private".into()],
        broker: Some("/dev/shm/cordon-x/broker.sock".into()),
        divergent: vec!["/run/cordon/approvals/s.sock".into()],
    }
}

#[test]
fn addresses_parse_from_their_bytes() {
    assert_eq!(
        parse_sockaddr(&inet("1.2.3.4:443")).unwrap(),
        Addr::Inet("1.2.3.4:443".parse().unwrap())
    );
    assert_eq!(
        parse_sockaddr(&inet("[::1]:53")).unwrap(),
        Addr::Inet("[::1]:53".parse().unwrap())
    );
    assert_eq!(
        parse_sockaddr(&unix(b"/run/x.sock\0junk")).unwrap(),
        Addr::UnixPath(b"/run/x.sock".to_vec())
    );
    assert_eq!(
        parse_sockaddr(&unix(b"\0abstract")).unwrap(),
        Addr::UnixAbstract(b"abstract".to_vec())
    );
    assert_eq!(parse_sockaddr(&unix(b"")).unwrap(), Addr::UnixUnnamed);
    assert!(parse_sockaddr(&[2]).is_err());
    assert!(parse_sockaddr(&inet("1.2.3.4:1")[..6]).is_err());
    assert!(parse_sockaddr(&unix(&[b'a'; 200])).is_err());
}

#[test]
fn tcp_by_port_udp_to_the_resolver_only() {
    let p = policy();
    let d = |dom, kind, a: &str| p.decide(dom, kind, &parse_sockaddr(&inet(a)).unwrap(), None);
    assert_eq!(
        d(libc::AF_INET, libc::SOCK_STREAM, "1.2.3.4:443"),
        NetVerdict::Perform
    );
    assert!(matches!(
        d(libc::AF_INET, libc::SOCK_STREAM, "1.2.3.4:22"),
        NetVerdict::Refuse { .. }
    ));
    assert_eq!(
        d(libc::AF_INET, libc::SOCK_DGRAM, "10.0.0.2:53"),
        NetVerdict::Perform
    );
    // The resolver as an IPv4-mapped IPv6 address is the resolver.
    assert_eq!(
        d(libc::AF_INET6, libc::SOCK_DGRAM, "[::ffff:10.0.0.2]:53"),
        NetVerdict::Perform
    );
    for a in ["10.0.0.2:5353", "8.8.8.8:53", "1.2.3.4:443"] {
        assert!(
            matches!(d(libc::AF_INET, libc::SOCK_DGRAM, a), NetVerdict::Refuse { errno, .. } if errno == libc::EACCES),
            "{a}"
        );
    }
    let no_udp = NetPolicy {
        udp: false,
        ..policy()
    };
    assert!(matches!(
        no_udp.decide(
            libc::AF_INET,
            libc::SOCK_DGRAM,
            &parse_sockaddr(&inet("10.0.0.2:53")).unwrap(),
            None
        ),
        NetVerdict::Refuse { .. }
    ));
}

#[test]
fn unix_sockets_by_their_resolved_target() {
    let p = policy();
    let d = |target: Option<&str>| {
        p.decide(
            libc::AF_UNIX,
            libc::SOCK_STREAM,
            &Addr::UnixPath(b"whatever-was-written".to_vec()),
            target.map(Path::new),
        )
    };
    assert_eq!(d(Some("/run/user/1000/agent.sock")), NetVerdict::Perform);
    assert_eq!(d(Some("/w/ws/tmp/mine.sock")), NetVerdict::Perform);
    assert_eq!(d(Some("/dev/shm/cordon-x/broker.sock")), NetVerdict::Broker);
    assert!(matches!(
        d(Some("/run/cordon/approvals/s.sock")),
        NetVerdict::Diverge { .. }
    ));
    for refused in [
        "/run/docker.sock",
        "/w/ws/.private/x.sock",
        "/run/user/1000/agent.sockx",
    ] {
        assert!(
            matches!(d(Some(refused)), NetVerdict::Refuse { .. }),
            "{refused}"
        );
    }
    assert!(matches!(d(None), NetVerdict::Refuse { errno, .. } if errno == libc::ENOENT));
    assert!(matches!(
        p.decide(
            libc::AF_UNIX,
            libc::SOCK_STREAM,
            &Addr::UnixAbstract(b"x".to_vec()),
            None
        ),
        NetVerdict::Refuse { .. }
    ));
    // An address of another family than its socket is refused.
    assert!(matches!(
        p.decide(
            libc::AF_UNIX,
            libc::SOCK_STREAM,
            &parse_sockaddr(&inet("1.2.3.4:443")).unwrap(),
            None
        ),
        NetVerdict::Refuse { .. }
    ));
}
