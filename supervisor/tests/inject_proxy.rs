//! The TLS-terminating proxy in-process, against a local TLS server that
//! records what it receives: what is injected where, and every way a
//! sandboxed client might try to get a value sent elsewhere or shown to
//! it. Each test greps what the real host received, what the client
//! received and the audit log.

#![allow(clippy::unwrap_used)] // test helpers fail by panicking

mod inject_support;

use std::io::{Read, Write};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use inject_support::{proxied, proxied_with, Proxied, Upstream, API_VALUE, GIT_VALUE};

fn upstream() -> Upstream {
    Upstream::start(
        &["api.test", "git.test", "other.test"],
        inject_support::default_handler,
    )
}

/// Nothing that reached the client, or the log, holds a value.
fn assert_unseen(p: &Proxied, client_saw: &str) {
    for v in [API_VALUE, GIT_VALUE] {
        assert!(!client_saw.contains(v), "the client saw {v}: {client_saw}");
        assert!(!p.audit_text().contains(v), "the audit log holds {v}");
        let b64 = STANDARD.encode(format!("x-access-token:{v}"));
        assert!(!client_saw.contains(&b64), "the client saw {v} in base64");
    }
}

fn inject_records(p: &Proxied) -> Vec<serde_json::Value> {
    p.records()
        .into_iter()
        .filter(|r| r["kind"] == "inject")
        .collect()
}

#[test]
fn a_bearer_placeholder_is_swapped_only_in_its_header_and_an_echo_is_masked() {
    let up = upstream();
    let p = proxied(&up, 10);
    let ph = p.placeholder("API_KEY");
    let mut t = p.tls_client("api.test", up.port, &[b"http/1.1"]).unwrap();
    let a = t
        .get("api.test", up.port, "/echo", Some(&format!("Bearer {ph}")))
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0]
            .head
            .contains(&format!("Authorization: Bearer {API_VALUE}\r\n")),
        "{}",
        seen[0].head
    );
    assert!(!seen[0].head.contains(&ph));
    assert!(seen[0].head.contains("Accept-Encoding: identity\r\n"));
    assert_eq!(
        seen[0].alpn.as_deref(),
        Some(&b"http/1.1"[..]),
        "the proxy never takes h2 upstream"
    );
    // The host echoed the header; the client gets it masked.
    assert!(
        a.text()
            .contains("Authorization: Bearer [cordon: redacted]"),
        "{}",
        a.text()
    );
    assert_unseen(&p, &a.text());
    let recs = inject_records(&p);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(recs[0]["decision"], "allow");
    assert_eq!(recs[0]["secrets"], serde_json::json!(["API_KEY"]));
    assert_eq!(recs[0]["detail"], "GET /echo HTTP/1.1");
    assert_eq!(recs[0]["host"], "api.test");
}

#[test]
fn every_kept_alive_and_pipelined_request_is_rewritten_and_a_second_host_refused() {
    let up = upstream();
    let p = proxied(&up, 10);
    let (ph, port) = (p.placeholder("API_KEY"), up.port);
    let mut t = p.tls_client("api.test", port, &[b"http/1.1"]).unwrap();
    let one = |path: &str, host: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nauthorization: BEARER {ph}\r\n\r\n")
    };
    // Three requests in one write; the third names another host.
    let pipelined = [
        one("/1", "api.test"),
        one("/2", "api.test"),
        one("/3", "other.test"),
    ]
    .concat();
    t.send(pipelined.as_bytes());
    let a1 = t.read().unwrap();
    let a2 = t.read().unwrap();
    let a3 = t.read().unwrap();
    assert_eq!(
        (a1.status, a2.status, a3.status),
        (200, 200, 403),
        "{}",
        a3.text()
    );
    assert!(a3.text().contains("Host `other.test:"), "{}", a3.text());
    assert!(t.read().is_none(), "the connection closes after a refusal");
    let seen = up.seen();
    assert_eq!(seen.len(), 2, "the refused request never left: {seen:#?}");
    for s in &seen {
        assert!(
            s.head
                .contains(&format!("authorization: Bearer {API_VALUE}\r\n")),
            "{}",
            s.head
        );
    }
    assert_unseen(&p, &format!("{}{}{}", a1.text(), a2.text(), a3.text()));
    let recs = inject_records(&p);
    let decisions: Vec<&str> = recs
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["allow", "allow", "deny"]);
}

#[test]
fn a_placeholder_toward_a_host_that_is_not_its_own_is_refused_and_counted() {
    let up = upstream();
    let p = proxied(&up, 10);
    let git = p.placeholder("GIT_TOKEN");
    let basic = format!("Basic {}", STANDARD.encode(format!("x-access-token:{git}")));
    // GIT_TOKEN's placeholder sent to api.test, which terminates TLS for
    // API_KEY: refused before anything is sent.
    let mut t = p.tls_client("api.test", up.port, &[b"http/1.1"]).unwrap();
    let a = t.get("api.test", up.port, "/echo", Some(&basic)).unwrap();
    assert_eq!(a.status, 403);
    assert!(
        a.text()
            .contains("the placeholder of secret `GIT_TOKEN` was sent toward api.test"),
        "{}",
        a.text()
    );
    assert!(up.seen().is_empty());
    // In a plain-HTTP request to another host: refused too.
    let mut s = std::net::TcpStream::connect(p.addr).unwrap();
    s.write_all(
        format!(
            "GET http://other.test:{}/ HTTP/1.1\r\nAuthorization: {basic}\r\n\r\n",
            up.port
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 403") && answer.contains("plain-HTTP request"),
        "{answer}"
    );
    let recs = inject_records(&p);
    assert_eq!(recs.len(), 2);
    assert!(
        recs.iter()
            .all(|r| r["decision"] == "deny" && r["secrets"] == serde_json::json!(["GIT_TOKEN"])),
        "{recs:#?}"
    );
    assert_unseen(&p, &format!("{}{answer}", a.text()));
}

#[test]
fn a_host_no_secret_names_stays_an_uninspected_tunnel() {
    let up = upstream();
    let p = proxied(&up, 10);
    let ph = p.placeholder("API_KEY");
    // The client must trust the real host's certificate: the proxy is
    // not in the middle, so only the placeholder (worth nothing) arrives.
    let (status, tcp) = p.connect("other.test", up.port);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(up.ca_der.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("other.test").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    s.write_all(format!("GET /echo HTTP/1.1\r\nHost: other.test\r\nAuthorization: Bearer {ph}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0]
            .head
            .contains(&format!("Authorization: Bearer {ph}")),
        "{}",
        seen[0].head
    );
    assert_unseen(&p, &String::from_utf8_lossy(&got));
    assert!(inject_records(&p).is_empty());
}

#[test]
fn a_redirect_to_another_host_never_carries_the_value() {
    let up = upstream();
    let p = proxied(&up, 10);
    let ph = p.placeholder("API_KEY");
    let mut t = p.tls_client("api.test", up.port, &[b"http/1.1"]).unwrap();
    let a = t
        .get(
            "api.test",
            up.port,
            "/redirect",
            Some(&format!("Bearer {ph}")),
        )
        .unwrap();
    assert_eq!(a.status, 302);
    assert!(
        a.head
            .contains(&format!("Location: https://other.test:{}/echo", up.port)),
        "{}",
        a.head
    );
    // A client that follows and resends its credential to other.test,
    // in the same tunnel (refused: Host) or in a new one (uninspected).
    let b = t
        .get(
            "other.test",
            up.port,
            "/echo",
            Some(&format!("Bearer {ph}")),
        )
        .unwrap();
    assert_eq!(b.status, 403);
    let (status, _) = p.connect("other.test", up.port);
    assert!(status.starts_with("HTTP/1.1 200"));
    for s in up.seen() {
        if !s.head.contains("Host: api.test") {
            assert!(!s.head.contains(API_VALUE), "{}", s.head);
        }
    }
    assert_unseen(&p, &format!("{}{}", a.text(), b.text()));
}

#[test]
fn http2_is_never_spoken_and_its_preface_is_refused() {
    let up = upstream();
    let p = proxied(&up, 10);
    // Offering only h2: the handshake fails (no application protocol).
    assert!(p.tls_client("api.test", up.port, &[b"h2"]).is_err());
    assert!(eventually(|| !inject_records(&p).is_empty()));
    let recs = inject_records(&p);
    let reason = recs[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("TLS with the client") && reason.contains("any known protocol"),
        "{reason}"
    );
    // Offering both: HTTP/1.1 is chosen.
    let mut t = p
        .tls_client("api.test", up.port, &[b"h2", b"http/1.1"])
        .unwrap();
    assert_eq!(t.s.get_ref().conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    // Prior knowledge: the HTTP/2 preface is refused.
    t.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    let a = t.read().unwrap();
    assert_eq!(a.status, 400);
    assert!(a.text().contains("HTTP/2 is not spoken"), "{}", a.text());
    // And the preface in the clear inside the tunnel is not TLS.
    let (status, mut s) = p.connect("api.test", up.port);
    assert!(status.starts_with("HTTP/1.1 200"));
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("HTTP/1.1 200"));
    assert!(up.seen().is_empty());
    assert!(
        eventually(|| inject_records(&p).len() == 3),
        "{:#?}",
        inject_records(&p)
    );
}

#[test]
fn oversized_heads_split_placeholders_and_odd_casing() {
    let up = upstream();
    let p = proxied(&up, 10);
    let (ph, port) = (p.placeholder("API_KEY"), up.port);
    let mut t = p.tls_client("api.test", port, &[b"http/1.1"]).unwrap();
    let big = "a".repeat(20 * 1024);
    t.send(format!("GET / HTTP/1.1\r\nHost: api.test:{port}\r\nX-Big: {big}\r\n\r\n").as_bytes());
    let a = t.read().unwrap();
    assert_eq!(a.status, 431, "{}", a.text());
    // A placeholder split over two headers is two harmless strings.
    let (first, second) = ph.split_at(ph.len() / 2);
    let mut t = p.tls_client("api.test", port, &[b"http/1.1"]).unwrap();
    t.send(format!("GET /echo HTTP/1.1\r\nHost: api.test:{port}\r\nAuthorization: Bearer {first}\r\nAuthorization: {second}\r\n\r\n").as_bytes());
    let a = t.read().unwrap();
    assert_eq!(a.status, 200);
    // Any casing of the header name is the header.
    t.send(
        format!(
            "GET /echo HTTP/1.1\r\nHost: api.test:{port}\r\naUtHoRiZaTiOn: bearer {ph}\r\n\r\n"
        )
        .as_bytes(),
    );
    let b = t.read().unwrap();
    assert_eq!(b.status, 200);
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert!(!seen[0].head.contains(API_VALUE), "{}", seen[0].head);
    assert!(
        seen[1]
            .head
            .contains(&format!("aUtHoRiZaTiOn: Bearer {API_VALUE}")),
        "{}",
        seen[1].head
    );
    assert_unseen(&p, &format!("{}{}", a.text(), b.text()));
}

#[test]
fn basic_auth_and_request_bodies_are_relayed_exactly() {
    let up = upstream();
    let p = proxied(&up, 10);
    let (git, port) = (p.placeholder("GIT_TOKEN"), up.port);
    let basic = STANDARD.encode(format!("x-access-token:{git}"));
    let mut t = p.tls_client("git.test", port, &[b"http/1.1"]).unwrap();
    t.send(format!("POST /repo.git/git-receive-pack HTTP/1.1\r\nHost: git.test:{port}\r\nAuthorization: Basic {basic}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").as_bytes());
    let a = t.read().unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    t.send(format!("PUT /x HTTP/1.1\r\nHost: git.test:{port}\r\nAuthorization: Basic {basic}\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n").as_bytes());
    let cont = t.read().unwrap();
    assert_eq!(cont.status, 100, "the proxy answers Expect itself");
    t.send(b"body");
    let b = t.read().unwrap();
    assert_eq!(b.status, 200);
    let seen = up.seen();
    assert_eq!(seen[0].body, b"hello world");
    assert_eq!(seen[1].body, b"body");
    let want = format!(
        "Authorization: Basic {}\r\n",
        STANDARD.encode(format!("x-access-token:{GIT_VALUE}"))
    );
    assert!(seen.iter().all(|s| s.head.contains(&want)), "{seen:#?}");
    assert!(!seen[1].head.to_ascii_lowercase().contains("expect"));
    assert_unseen(&p, &format!("{}{}", a.text(), b.text()));
}

#[test]
fn streamed_responses_arrive_whole_and_revoked_secrets_stop() {
    let up = upstream();
    let p = proxied(&up, 10);
    let (ph, port) = (p.placeholder("API_KEY"), up.port);
    let mut t = p.tls_client("api.test", port, &[b"http/1.1"]).unwrap();
    let a = t
        .get("api.test", port, "/stream", Some(&format!("Bearer {ph}")))
        .unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&a.body),
        "data: event 0\n\ndata: event 1\n\ndata: event 2\n\n"
    );
    assert!(p.injector.revoke("API_KEY"));
    let b = t
        .get("api.test", port, "/echo", Some(&format!("Bearer {ph}")))
        .unwrap();
    assert_eq!(b.status, 403);
    assert!(
        b.text().contains("secret `API_KEY` was revoked"),
        "{}",
        b.text()
    );
    assert_eq!(up.seen().len(), 1);
    // Not the sandbox's doing: not counted toward max_denials.
    assert!(p.victim_alive());
}

#[test]
fn an_upstream_whose_certificate_does_not_verify_is_refused_and_recorded() {
    let up = upstream();
    let stranger = rcgen::generate_simple_self_signed(vec!["root.test".into()]).unwrap();
    let p = proxied_with(&up, &stranger.cert.pem(), 1);
    let (status, _) = p.connect("api.test", up.port);
    assert!(status.starts_with("HTTP/1.1 502"), "{status}");
    let recs = inject_records(&p);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    let reason = recs[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("TLS with api.test:") && reason.to_lowercase().contains("certificate"),
        "{reason}"
    );
    assert!(up.seen().is_empty());
    assert!(
        p.victim_alive(),
        "a bad upstream is not the sandbox's refusal"
    );
}

#[test]
fn the_sni_must_name_the_tunnels_host() {
    let up = upstream();
    let p = proxied(&up, 10);
    // CONNECT to api.test, TLS for git.test: the client refuses the
    // api.test certificate, or the proxy refuses the name; either way no
    // request gets through.
    let (status, tcp) = p.connect("api.test", up.port);
    assert!(status.starts_with("HTTP/1.1 200"));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(p.tls.ca_der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("git.test").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    assert!(s
        .write_all(b"GET / HTTP/1.1\r\nHost: git.test\r\n\r\n")
        .and_then(|()| s.flush())
        .and_then(|()| {
            let mut b = [0u8; 1];
            s.read(&mut b).map(|_| ())
        })
        .is_err());
    assert!(up.seen().is_empty());
}

#[test]
fn refusals_past_max_denials_kill_and_are_not_answered() {
    let up = upstream();
    let mut p = proxied(&up, 1);
    let git = p.placeholder("GIT_TOKEN");
    let basic = format!("Basic {}", STANDARD.encode(format!("x-access-token:{git}")));
    let mut t = p.tls_client("api.test", up.port, &[b"http/1.1"]).unwrap();
    assert_eq!(
        t.get("api.test", up.port, "/", Some(&basic))
            .unwrap()
            .status,
        403
    );
    let mut t = p.tls_client("api.test", up.port, &[b"http/1.1"]).unwrap();
    assert!(
        t.get("api.test", up.port, "/", Some(&basic)).is_none(),
        "the killing refusal gets no answer"
    );
    let status = p.victim.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    let recs = inject_records(&p);
    assert_eq!(recs.last().unwrap()["decision"], "kill");
}

/// Waits (at most 10 s) for `cond`: records are written by the proxy's
/// thread, after the client has its answer.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

trait Alive {
    fn victim_alive(&self) -> bool;
}

impl Alive for Proxied {
    fn victim_alive(&self) -> bool {
        std::fs::metadata(format!("/proc/{}", self.victim.id())).is_ok()
            && !std::fs::read_to_string(format!("/proc/{}/stat", self.victim.id()))
                .unwrap_or_default()
                .contains(") Z ")
    }
}

#[test]
fn stop_cuts_an_intercepted_connection_and_records_its_end() {
    let up = upstream();
    let mut p = proxied(&up, 10);
    let ph = p.placeholder("API_KEY");
    let mut t = p.tls_client("api.test", up.port, &[b"http/1.1"]).unwrap();
    assert_eq!(
        t.get("api.test", up.port, "/", Some(&format!("Bearer {ph}")))
            .unwrap()
            .status,
        200
    );
    // The client keeps the connection open; the proxy waits for its next
    // request (for up to 120 s) until stop cuts it.
    p.proxy
        .take()
        .unwrap()
        .stop(std::time::Duration::from_secs(5));
    let last = p.records().last().cloned().unwrap();
    assert_eq!(last["kind"], "connect_end", "{last}");
    assert_eq!(last["host"], "api.test");
    assert!(t.read().is_none(), "the connection is closed");
}

#[test]
fn a_host_that_drops_a_kept_alive_connection_makes_the_client_retry_not_fail() {
    let up = upstream();
    let p = proxied(&up, 10);
    let auth = format!("Bearer {}", p.placeholder("API_KEY"));
    let mut t = p.tls_client("api.test", up.port, &[b"http/1.1"]).unwrap();
    assert_eq!(
        t.get("api.test", up.port, "/close-after", Some(&auth))
            .unwrap()
            .status,
        200
    );
    // The host has closed its side. Whether its close reaches the proxy
    // before the next request (then the request is not sent) or after
    // (then the host's silence ends it), the client sees its connection
    // close unanswered, as it would with the host itself.
    assert!(eventually(|| up
        .ended
        .load(std::sync::atomic::Ordering::SeqCst)
        == 1));
    let again = t.get("api.test", up.port, "/", Some(&auth));
    assert!(
        again.is_none(),
        "closed, not answered: {again:?} {:?}",
        up.seen()
    );
    assert_eq!(
        up.seen().len(),
        1,
        "the second request was not sent on a dead connection"
    );
    let mut fresh = p.tls_client("api.test", up.port, &[b"http/1.1"]).unwrap();
    assert_eq!(
        fresh
            .get("api.test", up.port, "/", Some(&auth))
            .unwrap()
            .status,
        200
    );
}
