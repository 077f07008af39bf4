//! The TLS-terminating, injecting path of the egress proxy side by side
//! with a plain CONNECT tunnel, in one run, in-process: the same rustls
//! client, the same local TLS server (`tests/inject_support`), the same
//! proxy. "tunnel" is a CONNECT to a host no secret names (TLS end to end,
//! the proxy copies bytes); "inject" is a CONNECT to a host whose secret
//! the proxy swaps in (TLS terminated on both sides, every request parsed,
//! rewritten and recorded, every response masked and re-chunked).
//!
//! - per request: sequential small GETs on one kept-alive connection;
//! - per connection: CONNECT, both handshakes, one GET, to the last byte;
//! - throughput: one large download through each.
//!
//! Run: `bench/inject.sh` (or `cargo bench -p cordon --bench inject`).

#![allow(clippy::unwrap_used)] // a benchmark fails by panicking

#[path = "../tests/inject_support/mod.rs"]
mod inject_support;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use inject_support::{proxied, Proxied, Tunnel, Upstream};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A tunnel to other.test: the client trusts the real server's CA.
fn plain(p: &Proxied, up: &Upstream) -> Tunnel {
    let (status, tcp) = p.connect("other.test", up.port);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(up.ca_der.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("other.test").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).unwrap();
    }
    Tunnel {
        s: std::io::BufReader::new(s),
    }
}

struct Path<'a> {
    name: &'static str,
    host: &'static str,
    auth: Option<String>,
    open: Box<dyn Fn() -> Tunnel + 'a>,
}

fn quantiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(v[v.len() * 9 / 10]))
}

fn main() {
    let requests = env("REQUESTS", 2000);
    let connections = env("CONNECTIONS", 300);
    let mib = env("MIB", 512);
    let up = Upstream::start(
        &["api.test", "git.test", "other.test"],
        inject_support::default_handler,
    );
    let p = proxied(&up, 1_000_000);
    let ph = p.placeholder("API_KEY");
    let port = up.port;
    let paths = [
        Path {
            name: "tunnel (uninspected)",
            host: "other.test",
            auth: Some(format!("Bearer {ph}")),
            open: Box::new(|| plain(&p, &up)),
        },
        Path {
            name: "inject (TLS terminated)",
            host: "api.test",
            auth: Some(format!("Bearer {ph}")),
            open: Box::new(|| p.tls_client("api.test", port, &[b"http/1.1"]).unwrap()),
        },
    ];
    println!("== inject: {requests} kept-alive requests, {connections} fresh connections, a {mib} MiB download ({} cores)", std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!(
        "{:<26} {:>12} {:>10} {:>14} {:>10} {:>12}",
        "path", "request p50", "p90", "connection p50", "p90", "download"
    );
    for path in &paths {
        let auth = path.auth.as_deref();
        // Warm up: the leaf certificate, the connection.
        let mut t = (path.open)();
        for _ in 0..50 {
            assert_eq!(t.get(path.host, port, "/small", auth).unwrap().status, 200);
        }
        let per_request: Vec<Duration> = (0..requests)
            .map(|_| {
                let at = Instant::now();
                let a = t.get(path.host, port, "/small", auth).unwrap();
                assert_eq!(a.status, 200);
                at.elapsed()
            })
            .collect();
        let per_connection: Vec<Duration> = (0..connections)
            .map(|_| {
                let at = Instant::now();
                let mut t = (path.open)();
                assert_eq!(t.get(path.host, port, "/small", auth).unwrap().status, 200);
                at.elapsed()
            })
            .collect();
        let mut t = (path.open)();
        let bytes = mib * 1024 * 1024;
        let at = Instant::now();
        let auth_line = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        t.send(format!("GET /bytes/{bytes} HTTP/1.1\r\nHost: {}:{port}\r\n{auth_line}Connection: close\r\n\r\n", path.host).as_bytes());
        // To the body's last byte (the server keeps the connection open).
        let head = cordon::egress::h1::read_head(&mut t.s, 64 * 1024)
            .unwrap()
            .unwrap();
        let resp = cordon::egress::h1::parse_response(&head).unwrap();
        let mut body = cordon::egress::h1::Body::new(resp.framing("GET").unwrap());
        let mut got = 0usize;
        while let Some(piece) = body.next(&mut t.s).unwrap() {
            got += piece.len();
        }
        let secs = at.elapsed().as_secs_f64();
        assert!(got >= bytes, "{got} of {bytes} bytes");
        let _ = t.s.get_mut().flush();
        let (rq50, rq90) = quantiles(per_request);
        let (c50, c90) = quantiles(per_connection);
        println!(
            "{:<26} {:>9.3} ms {:>7.3} ms {:>11.3} ms {:>7.3} ms {:>7.2} GB/s",
            path.name,
            rq50,
            rq90,
            c50,
            c90,
            bytes as f64 / secs / 1e9
        );
    }
    let injected = p
        .records()
        .iter()
        .filter(|r| r["kind"] == "inject" && r["decision"] == "allow")
        .count();
    println!(
        "inject records: {injected} (expected {})",
        50 + requests + connections + 1
    );
}
