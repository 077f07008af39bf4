//! Egress on the real kernel, with real clients (curl, Python's urllib):
//! sockets beyond what a profile needs are refused, and with host rules
//! the only way out is cordon's proxy, which decides each connection.
#![allow(clippy::unwrap_used)] // test code

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A local HTTP server outside every sandbox. It records the head of each
/// request it gets and answers `hello-from-upstream`.
struct Upstream {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&heads);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    let mut conn = conn;
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match conn.read(&mut b) {
                            Ok(1) => head.push(b[0]),
                            _ => break,
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let body = "hello-from-upstream\n";
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Upstream { port, heads }
    }

    fn requests(&self) -> usize {
        self.heads.lock().unwrap().len()
    }
}

/// A profile for real clients: the system's programs and libraries, dash,
/// curl and python3, and no network unless the test adds it.
fn client_profile() -> Profile {
    let mut p = Profile::base();
    p.read = vec![
        "/usr".into(),
        "/etc".into(),
        "/lib".into(),
        "/lib64".into(),
        "/dev/urandom".into(),
    ];
    p.exec = vec![
        probe().display().to_string(),
        "/usr/bin".into(),
        "/usr/lib".into(),
        "/lib".into(),
        "/lib64".into(),
        "/usr/lib64".into(),
    ];
    p
}

/// The records of kind `kind` in the case's audit log.
fn records(c: &Case, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(c.audit_path())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["kind"] == kind)
        .collect()
}

fn need_clients() {
    for tool in ["/usr/bin/curl", "/usr/bin/python3"] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: .ci/run installs it (apt-get install curl python3)"
        );
    }
}

#[test]
fn udp_raw_packet_and_vsock_sockets_fail_and_nothing_arrives_outside() {
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let c = Case::new();
    let none = Profile::base();
    let mut hosts = Profile::base();
    hosts.allow_hosts.push("example.test:443".into());
    for p in [&none, &hosts] {
        c.run(p, &["udp-send", "127.0.0.1", &port])
            .failed_with(&["EACCES"]);
        c.run(p, &["socket", "udp6"]).failed_with(&["EACCES"]);
        c.run(p, &["socket", "raw"]).failed_with(&["EACCES"]);
        c.run(p, &["socket", "raw6"]).failed_with(&["EACCES"]);
        c.run(p, &["socket", "sctp"]).failed_with(&["EACCES"]);
        c.run(p, &["socket", "mptcp"]).failed_with(&["EACCES"]);
        c.run(p, &["socket", "netlink-audit"])
            .failed_with(&["EACCES"]);
        // Families no profile can grant are divergence.
        c.run(p, &["socket", "packet"]).killed_for("socket");
        c.run(p, &["socket", "vsock"]).killed_for("socket");
    }
    // A TCP grant is a grant of TCP, not of other stream protocols.
    let mut tcp = Profile::base();
    tcp.connect_tcp.push(443);
    c.run(&tcp, &["socket", "sctp"]).failed_with(&["EACCES"]);
    c.run(&tcp, &["socket", "mptcp"]).failed_with(&["EACCES"]);
    let mut buf = [0u8; 64];
    assert!(
        listener.recv_from(&mut buf).is_err(),
        "a datagram reached the listener outside"
    );
}

#[test]
fn with_host_rules_a_granted_port_no_longer_reaches_the_host() {
    let outside = TcpListener::bind("127.0.0.1:0").unwrap();
    outside.set_nonblocking(true).unwrap();
    let port = outside.local_addr().unwrap().port();
    let c = Case::new();
    let mut p = Profile::base();
    p.connect_tcp.push(port);
    // Without host rules the port rule reaches the host's listener...
    c.run(&p, &["connect-addr", "127.0.0.1", &port.to_string()])
        .ok();
    assert!(outside.accept().is_ok());
    // ...with them the sandbox has its own loopback, and no route out.
    p.allow_hosts.push("example.test:443".into());
    c.run(&p, &["connect-addr", "127.0.0.1", &port.to_string()])
        .failed_with(&["ECONNREFUSED"]);
    c.run(&p, &["connect-addr", "1.1.1.1", &port.to_string()])
        .failed_with(&["ENETUNREACH", "EACCES"]);
    assert!(outside.accept().is_err(), "a connection reached the host");
}

#[test]
fn an_allowed_name_reaches_a_local_server_through_the_proxy_with_curl_and_urllib() {
    need_clients();
    let up = Upstream::start();
    let c = Case::new();
    let mut p = client_profile();
    p.allow_hosts
        .push(format!("localhost:{} via 127.0.0.1", up.port));
    let url = format!("http://localhost:{}/x?y=1", up.port);
    let script = format!(
        "curl -sS -m 10 {url}; curl -sS -m 10 --proxytunnel {url}; \
         python3 -c 'import urllib.request as u; print(u.urlopen(\"{url}\").read().decode().strip())'; \
         curl -sS -m 10 --noproxy '*' {url}; echo direct=$?"
    );
    let r = c.shell(&p, &script);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert_eq!(
        r.stdout.matches("hello-from-upstream").count(),
        3,
        "plain HTTP, a CONNECT tunnel and urllib each get through: {r:#?}"
    );
    // A client that ignores the proxy variables has no network at all.
    assert!(r.stdout.contains("direct=7"), "{r:#?}");
    assert_eq!(up.requests(), 3);
    let heads = up.heads.lock().unwrap().clone();
    assert!(
        heads
            .iter()
            .all(|h| h.starts_with("GET /x?y=1 HTTP/1.1\r\n")),
        "requests arrive in origin form: {heads:#?}"
    );
    // Every connection is recorded: the decision, then bytes and duration.
    let (allowed, refused): (Vec<_>, Vec<_>) = records(&c, "connect")
        .into_iter()
        .partition(|r| r["decision"] == "allow");
    assert_eq!(allowed.len(), 3, "{allowed:#?}");
    // The client that went around the proxy was refused by the
    // supervisor's connect mediation, and that is on record too.
    assert!(!refused.is_empty(), "{refused:#?}");
    for rec in &refused {
        assert_eq!(rec["decision"], "deny", "{rec}");
        assert!(rec["pid"].is_u64(), "{rec}");
    }
    for rec in &allowed {
        assert_eq!(rec["decision"], "allow");
        assert_eq!(rec["host"], "localhost");
        assert_eq!(rec["rule"], "network.allow_hosts[0]");
    }
    let ends = records(&c, "connect_end");
    assert_eq!(ends.len(), 3, "{ends:#?}");
    for rec in &ends {
        assert_eq!(rec["address"], "127.0.0.1");
        assert!(rec["bytes_down"].as_u64().unwrap() > 20, "{rec}");
        assert!(rec["bytes_up"].as_u64().unwrap() > 20, "{rec}");
        assert!(rec["duration_ms"].is_u64());
    }
    let verify = cordon_cmd()
        .args(["audit", "verify"])
        .arg(c.audit_path())
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
}

#[test]
fn internal_addresses_and_literal_ips_need_a_rule_that_names_them() {
    need_clients();
    let up = Upstream::start();
    let c = Case::new();
    let mut p = client_profile();
    // The name is allowed, but it resolves to loopback and the rule does
    // not say `via 127.0.0.1`.
    p.allow_hosts.push(format!("localhost:{}", up.port));
    p.allow_hosts.push("*:80".into());
    p.extra.push_str("\n[divergence]\nmax_denials = 10\n");
    let script = format!(
        "curl -sS -m 10 -o /dev/null -w '%{{http_code}}\\n' http://localhost:{port}/; \
         curl -sS -m 10 -o /dev/null -w '%{{http_code}}\\n' http://127.0.0.1:{port}/; \
         curl -sS -m 10 -p http://127.0.0.1:{port}/; echo tunnel=$?; \
         curl -sS -m 10 -o /dev/null -w '%{{http_code}}\\n' http://169.254.169.254/latest/meta-data/; \
         curl -sS -m 10 -o /dev/null -w '%{{http_code}}\\n' http://[::1]:{port}/",
        port = up.port
    );
    let r = c.shell(&p, &script);
    assert_eq!(r.code, Some(0), "{r:#?}");
    let codes: Vec<&str> = r.stdout.lines().filter(|l| l.len() == 3).collect();
    assert_eq!(codes, ["403", "403", "403", "403"], "{r:#?}");
    assert!(r.stdout.contains("tunnel=56"), "CONNECT is refused: {r:#?}");
    assert_eq!(up.requests(), 0, "nothing reached the server");
    let refused = records(&c, "connect");
    assert_eq!(refused.len(), 5, "{refused:#?}");
    assert!(refused.iter().all(|r| r["decision"] == "deny"));
    let reasons: Vec<String> = refused
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reasons[0].contains("loopback") && reasons[0].contains("via 127.0.0.1"),
        "{reasons:#?}"
    );
    assert!(reasons[1].contains("literal address"), "{reasons:#?}");
    assert!(reasons[2].contains("literal address"), "{reasons:#?}");
    assert!(reasons[3].contains("169.254.169.254"), "{reasons:#?}");
    assert!(reasons[4].contains("::1"), "{reasons:#?}");
    // Naming the address lets the same literal through.
    let mut p = client_profile();
    p.allow_hosts.push(format!("127.0.0.1:{}", up.port));
    let r = c.shell(
        &p,
        &format!("curl -sS -m 10 -p http://127.0.0.1:{}/", up.port),
    );
    assert!(r.stdout.contains("hello-from-upstream"), "{r:#?}");
}

#[test]
fn deny_hosts_beats_allow_hosts_and_refusals_count_toward_max_denials() {
    need_clients();
    let up = Upstream::start();
    let c = Case::new();
    let mut p = client_profile();
    p.allow_hosts.push(format!("*:{} via 127.0.0.1", up.port));
    p.deny_hosts.push(format!("localhost:{}", up.port));
    p.extra.push_str("\n[divergence]\nmax_denials = 2\n");
    let once = format!(
        "curl -sS -m 10 -o /dev/null -w '%{{http_code}}\\n' http://localhost:{}/",
        up.port
    );
    let r = c.shell(&p, &format!("{once}; {once}; {once}; echo survived"));
    assert_eq!(r.code, Some(86), "the third refusal kills: {r:#?}");
    assert_eq!(r.stdout.matches("403").count(), 2, "{r:#?}");
    assert!(!r.stdout.contains("survived"), "{r:#?}");
    assert!(r.stderr.contains("over max_denials = 2"), "{r:#?}");
    assert_eq!(up.requests(), 0);
    let refused = records(&c, "connect");
    assert_eq!(refused[0]["rule"], "network.deny_hosts[0]", "{refused:#?}");
    assert_eq!(refused.last().unwrap()["decision"], "kill", "{refused:#?}");
}

#[test]
fn forged_and_oversized_requests_get_an_error_and_a_record() {
    let up = Upstream::start();
    let c = Case::new();
    let mut p = client_profile();
    p.allow_hosts
        .push(format!("localhost:{} via 127.0.0.1", up.port));
    p.extra.push_str("\n[divergence]\nmax_denials = 10\n");
    // Raw requests over /dev/tcp are not in dash; the probe speaks them.
    let big = "a".repeat(20_000);
    let cases = [
        format!("GET / HTTP/1.1\r\nHost: localhost:{}\r\n\r\n", up.port),
        format!("GET http://user@localhost:{}/ HTTP/1.1\r\n\r\n", up.port),
        format!("CONNECT localhost:{} HTTP/9.9\r\n\r\n", up.port),
        format!(
            "GET http://localhost:{}/ HTTP/1.1\r\nX: {big}\r\n\r\n",
            up.port
        ),
        "CONNECT evil.test:443 HTTP/1.1\r\nBad Header\r\n\r\n".to_string(),
    ];
    for raw in &cases {
        let r = c.run(&p, &["proxy-raw", raw]);
        assert_eq!(r.code, Some(0), "{r:#?}");
        assert!(
            r.stdout.starts_with("HTTP/1.1 400") || r.stdout.starts_with("HTTP/1.1 431"),
            "{raw:?}: {r:#?}"
        );
    }
    assert_eq!(up.requests(), 0);
    assert_eq!(records(&c, "connect").len(), cases.len());
}

#[test]
fn a_slow_client_does_not_stall_other_connections() {
    need_clients();
    let up = Upstream::start();
    let c = Case::new();
    let mut p = client_profile();
    p.allow_hosts
        .push(format!("localhost:{} via 127.0.0.1", up.port));
    // Ten connections that send half a head and stall, then a real request.
    let r = c.shell(
        &p,
        &format!(
            "i=0; while [ $i -lt 10 ]; do {probe} proxy-stall 8 & i=$((i+1)); done; \
             sleep 0.3; curl -sS -m 5 http://localhost:{port}/; echo rc=$?",
            probe = probe().display(),
            port = up.port
        ),
    );
    assert!(r.stdout.contains("hello-from-upstream\nrc=0"), "{r:#?}");
}

#[test]
fn a_tools_own_host_rules_govern_its_connections_and_are_recorded_with_it() {
    need_clients();
    let up = Upstream::start();
    let c = Case::new();
    let mut p = client_profile();
    // The tool is curl outside the agent's exec grants, made a program of
    // its own (bytes appended): an exact copy of the agent's own curl
    // would be the same program, reachable without the broker (refused).
    let curl = c.dir.path().join("curl");
    let mut bytes = std::fs::read("/usr/bin/curl").unwrap();
    bytes.extend_from_slice(b"\0cordon: curl as a tool\n");
    std::fs::write(&curl, bytes).unwrap();
    std::fs::set_permissions(&curl, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p.extra = format!(
        r#"
[tools.fetch]
path = "{curl}"
allow = [["-fsS", "-m", "10", "*"]]

[tools.fetch.sandbox]
allow_hosts = ["localhost:{port} via 127.0.0.1"]
"#,
        port = up.port,
        curl = curl.display()
    );
    let r = c.shell(
        &p,
        &format!(
            "fetch -fsS -m 10 http://localhost:{port}/; echo rc=$?; \
             fetch -fsS -m 10 http://127.0.0.1:{port}/; echo rc=$?; \
             curl -sS -m 5 http://localhost:{port}/; echo agent=$?",
            port = up.port
        ),
    );
    assert!(r.stdout.contains("hello-from-upstream\nrc=0"), "{r:#?}");
    // The tool's second call names an address its rule does not.
    assert!(r.stdout.contains("rc=22"), "{r:#?}");
    // The agent itself has no network.
    assert!(
        r.stdout.contains("agent=7") || r.stdout.contains("agent=5"),
        "{r:#?}"
    );
    assert_eq!(up.requests(), 1);
    let conns = records(&c, "connect");
    assert_eq!(conns.len(), 2, "{conns:#?}");
    assert!(conns
        .iter()
        .all(|r| r["tool"] == "fetch" && r["call"].is_u64()));
    assert_eq!(conns[0]["rule"], "tools.fetch.sandbox.allow_hosts[0]");
    assert_eq!(conns[1]["decision"], "deny");
}

/// `[divergence] tolerated_hosts`: a CLI's telemetry host is refused as
/// the host rules say (403, recorded), said once, and not counted toward
/// max_denials; any other refusal still is.
#[test]
fn tolerated_hosts_are_refused_and_recorded_but_not_counted() {
    need_clients();
    let up = Upstream::start();
    let c = Case::new();
    let mut p = client_profile();
    p.allow_hosts
        .push(format!("localhost:{} via 127.0.0.1", up.port));
    p.extra
        .push_str("\n[divergence]\nmax_denials = 2\ntolerated_hosts = [\"telemetry.invalid:*\"]\n");
    let get = |host: &str| {
        format!(
            "curl -sS -m 10 -o /dev/null -w '%{{http_code}}\\n' http://{host}:{}/",
            up.port
        )
    };
    let tolerated = get("telemetry.invalid");
    let other = get("other.invalid");
    let r = c.shell(
        &p,
        &format!(
            "{tolerated}; {tolerated}; {tolerated}; {tolerated}; echo tolerated-done; {other}; {other}; {other}; echo survived"
        ),
    );
    assert!(
        r.stdout.contains("tolerated-done"),
        "four tolerated refusals are not a kill: {r:#?}"
    );
    assert_eq!(r.code, Some(86), "the third counted refusal kills: {r:#?}");
    assert_eq!(r.stdout.matches("403").count(), 6, "{r:#?}");
    assert_eq!(
        r.stderr
            .matches("tolerated by divergence.tolerated_hosts[0]: not counted")
            .count(),
        1,
        "said once: {r:#?}"
    );
    let refused = records(&c, "connect");
    let tolerated: Vec<_> = refused
        .iter()
        .filter(|r| r["host"] == "telemetry.invalid")
        .collect();
    assert_eq!(tolerated.len(), 4, "{refused:#?}");
    assert!(
        tolerated.iter().all(|r| r["decision"] == "deny"),
        "{refused:#?}"
    );
    assert_eq!(refused.last().unwrap()["decision"], "kill", "{refused:#?}");
    assert_eq!(up.requests(), 0);
}
