// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]
//! The proxy on real sockets with a scripted resolver: names that resolve
//! (or rebind) to internal addresses, floods, and stopping.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::proxy::{start, Context, Proxy, MAX_CONNECTIONS};
use super::rules::{parse_rule, HostRule, Rules};
use crate::audit::AuditLog;
use crate::process::{Killer, Refusals};
use crate::profile::{Divergence, Location};

/// Names the tests resolve: `metadata.test` is the cloud metadata
/// address, `rebind.test` a private one, `local.test` loopback.
fn scripted(host: &str, _port: u16) -> std::io::Result<Vec<IpAddr>> {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    match host {
        "metadata.test" => Ok(vec![ip("169.254.169.254")]),
        "rebind.test" => Ok(vec![ip("10.1.2.3"), ip("::ffff:192.168.0.1")]),
        "local.test" => Ok(vec![ip("127.0.0.1")]),
        _ => Err(std::io::Error::other("no such name")),
    }
}

struct Fixture {
    proxy: Option<Proxy>,
    addr: std::net::SocketAddr,
    audit: tempfile::TempDir,
    upstream: u16,
    victim: std::process::Child,
}

impl Fixture {
    /// A proxy with `allow` rules (`{up}` is the upstream echo server's
    /// port), whose refusals would kill a `sleep` process.
    fn new(allow: &[&str], max_denials: u32) -> Fixture {
        let up = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = up.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for c in up.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut c = c;
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = c.read(&mut buf) {
                        if n == 0 || c.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let origin = || Location::whole_file(Path::new("t.toml"));
        let rules: Vec<HostRule> = allow
            .iter()
            .map(|r| parse_rule(&r.replace("{up}", &upstream.to_string()), origin()).unwrap())
            .collect();
        let audit = tempfile::tempdir().unwrap();
        let log = Arc::new(AuditLog::open(audit.path().join("a.jsonl")).unwrap());
        let victim = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = i32::try_from(victim.id()).unwrap();
        let pidfd = crate::sys::process::pidfd_open(pid).unwrap();
        let killer = Arc::new(Killer::new(&pidfd).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let ctx = Context {
            rules: Rules::new(&rules, &[], "network"),
            audit: log,
            session: "s".into(),
            profile: "p".into(),
            tool: None,
            refusals: Refusals {
                count: Arc::new(AtomicU32::new(0)),
                divergence: Divergence {
                    max_denials,
                    ..Divergence::default()
                },
                killer,
            },
            resolve: scripted,
            loud: false,
            inject: None,
        };
        Fixture {
            proxy: Some(start(listener, ctx).unwrap()),
            addr,
            audit,
            upstream,
            victim,
        }
    }

    /// Sends `head` and returns the status line of the answer and the
    /// stream (positioned after the answer's head).
    fn ask(&self, head: &str) -> (String, TcpStream) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        while !got.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).unwrap_or(0) == 0 {
                break;
            }
            got.push(b[0]);
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        (text.lines().next().unwrap_or("").to_string(), s)
    }

    fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.audit.path().join("a.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(p) = self.proxy.take() {
            p.stop(Duration::from_secs(1));
        }
        let _ = self.victim.kill();
        let _ = self.victim.wait();
    }
}

#[test]
fn names_resolving_to_metadata_or_private_addresses_are_refused() {
    let f = Fixture::new(&["*.test:80", "local.test:{up}"], 10);
    let (status, _) = f.ask("CONNECT metadata.test:80 HTTP/1.1\r\n\r\n");
    assert!(status.starts_with("HTTP/1.1 403"), "{status}");
    let (status, _) = f.ask("GET http://rebind.test/ HTTP/1.1\r\n\r\n");
    assert!(status.starts_with("HTTP/1.1 403"), "{status}");
    // An allowed name that resolves to loopback, without `via`.
    let (status, _) = f.ask(&format!(
        "CONNECT local.test:{} HTTP/1.1\r\n\r\n",
        f.upstream
    ));
    assert!(status.starts_with("HTTP/1.1 403"), "{status}");
    let (status, _) = f.ask("CONNECT nowhere.test:80 HTTP/1.1\r\n\r\n");
    assert!(status.starts_with("HTTP/1.1 502"), "{status}");
    let recs = f.records();
    let reasons: Vec<&str> = recs.iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].contains("cloud metadata"), "{reasons:?}");
    assert!(
        reasons[1].contains("10.1.2.3") && reasons[1].contains("private"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("loopback"), "{reasons:?}");
    assert!(reasons[3].contains("cannot resolve"), "{reasons:?}");
}

#[test]
fn a_rule_that_names_the_address_lets_the_tunnel_through() {
    let f = Fixture::new(&["local.test:{up} via 127.0.0.1"], 10);
    let (status, mut s) = f.ask(&format!(
        "CONNECT local.test:{} HTTP/1.1\r\n\r\n",
        f.upstream
    ));
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    s.write_all(b"ping through the tunnel").unwrap();
    let mut back = [0u8; 23];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping through the tunnel");
    drop(s);
    assert!(wait(|| f.records().len() == 2));
    let end = &f.records()[1];
    assert_eq!(end["kind"], "connect_end");
    assert_eq!(end["bytes_up"], 23);
    assert_eq!(end["bytes_down"], 23);
}

#[test]
fn a_flood_of_silent_connections_is_capped_and_real_ones_still_pass() {
    let f = Fixture::new(&["local.test:{up} via 127.0.0.1"], 10);
    // Fill every slot with clients that never send a head.
    let silent: Vec<TcpStream> = (0..MAX_CONNECTIONS + 20)
        .map(|_| TcpStream::connect(f.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Past the cap the proxy answers at once instead of queueing.
    let (status, _) = f.ask("CONNECT local.test:1 HTTP/1.1\r\n\r\n");
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    drop(silent);
    assert!(wait(|| {
        let (status, _) = f.ask(&format!(
            "CONNECT local.test:{} HTTP/1.1\r\n\r\n",
            f.upstream
        ));
        status.starts_with("HTTP/1.1 200")
    }));
}

#[test]
fn stop_cuts_live_tunnels_and_records_their_end() {
    let mut f = Fixture::new(&["local.test:{up} via 127.0.0.1"], 10);
    let (status, mut s) = f.ask(&format!(
        "CONNECT local.test:{} HTTP/1.1\r\n\r\n",
        f.upstream
    ));
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    f.proxy.take().unwrap().stop(Duration::from_secs(5));
    // The echo upstream never closes: the tunnel ends, and its end is
    // recorded by the time stop returns, only because stop cut it.
    assert_eq!(f.records().last().unwrap()["kind"], "connect_end");
    let mut b = [0u8; 1];
    assert_eq!(s.read(&mut b).unwrap_or(0), 0, "the tunnel is closed");
    // And nothing is accepted any more.
    let late = TcpStream::connect(f.addr);
    if let Ok(mut late) = late {
        late.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = late.write_all(b"CONNECT local.test:1 HTTP/1.1\r\n\r\n");
        assert_eq!(late.read(&mut b).unwrap_or(0), 0);
    }
}

#[test]
fn refusals_past_max_denials_kill_and_are_not_answered() {
    let mut f = Fixture::new(&["local.test:{up} via 127.0.0.1"], 1);
    let (status, _) = f.ask("CONNECT elsewhere.test:443 HTTP/1.1\r\n\r\n");
    assert!(status.starts_with("HTTP/1.1 403"), "{status}");
    let (status, _) = f.ask("CONNECT elsewhere.test:443 HTTP/1.1\r\n\r\n");
    assert_eq!(status, "", "the killing refusal gets no answer");
    let recs = f.records();
    assert_eq!(recs[1]["decision"], "kill");
    let status = f.victim.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
}

fn wait(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
