//! Shared by the injection tests: a local TLS "real host" that records
//! every request it receives, a TLS client that speaks through the proxy,
//! and the proxy itself, started in-process with a session CA and an
//! injector.
//!
//! Names: `api.test`, `git.test` and `other.test` all resolve to
//! 127.0.0.1 (a scripted resolver), and the host rules name that address
//! with `via`, as a profile would for an internal service.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part

use std::io::{BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cordon::audit::AuditLog;
use cordon::egress::h1::{self, Body, Framing};
use cordon::egress::proxy::{start, Context, Proxy};
use cordon::egress::rules::Rules;
use cordon::egress::{InjectSecret, Injector, Tls};
use cordon::process::{Killer, Refusals};
use cordon::profile::hosts::{parse_rule, HostRule};
use cordon::profile::{Divergence, Location, Presentation};
use cordon::secrets::{Placeholder, SecretValue};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, RootCertStore, ServerConnection, StreamOwned};

/// A request as the real host received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub head: String,
    pub body: Vec<u8>,
    /// The application protocol the connection agreed on.
    pub alpn: Option<Vec<u8>>,
}

/// What the real host answers: status, extra headers, body.
pub type Handler = fn(&h1::Request, &[u8], u16) -> (u16, Vec<(String, String)>, Vec<u8>);

/// The default handler: `/echo` answers with the head it received,
/// `/redirect` sends the client to `other.test`, `/stream` sends a
/// chunked body in pieces with pauses, anything else answers `ok`.
pub fn default_handler(
    req: &h1::Request,
    _body: &[u8],
    port: u16,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    match req.target.as_str() {
        "/echo" => {
            let mut head = format!("{}\r\n", req.line());
            for (n, v) in &req.headers {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
            (200, vec![], head.into_bytes())
        }
        "/redirect" => (
            302,
            vec![("Location".into(), format!("https://other.test:{port}/echo"))],
            b"moved".to_vec(),
        ),
        _ => (200, vec![], b"ok\n".to_vec()),
    }
}

/// A local TLS server under its own test CA.
pub struct Upstream {
    pub port: u16,
    pub ca_pem: String,
    pub ca_der: rustls::pki_types::CertificateDer<'static>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Connections the server has closed.
    pub ended: Arc<std::sync::atomic::AtomicUsize>,
}

impl Upstream {
    /// Serves `names` (certificate SANs) with `handler`; ALPN offers h2
    /// first, so a test shows the proxy never takes it (the server itself
    /// speaks HTTP/1.1 whatever was agreed).
    pub fn start(names: &[&str], handler: Handler) -> Upstream {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cordon test upstream root");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let leaf = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let ended: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let (log, count) = (Arc::clone(&seen), Arc::clone(&ended));
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (config, log, count) =
                    (Arc::clone(&config), Arc::clone(&log), Arc::clone(&count));
                std::thread::spawn(move || {
                    serve(tcp, config, log, handler, port);
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        Upstream {
            port,
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            seen,
            ended,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    log: Arc<Mutex<Vec<Seen>>>,
    handler: Handler,
    port: u16,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(conn) = ServerConnection::new(config) else {
        return;
    };
    let mut s = StreamOwned::new(conn, tcp);
    loop {
        let Ok(Some(head)) = h1::read_head(&mut s, 64 * 1024) else {
            return;
        };
        let Ok(req) = h1::parse_request(&head) else {
            return;
        };
        let mut body = Vec::new();
        let mut b = Body::new(req.framing().unwrap_or(Framing::None));
        while let Ok(Some(piece)) = b.next(&mut s) {
            body.extend_from_slice(piece);
        }
        log.lock().unwrap().push(Seen {
            head: String::from_utf8_lossy(&head).into_owned(),
            body: body.clone(),
            alpn: s.conn.alpn_protocol().map(<[u8]>::to_vec),
        });
        if let Some(n) = req
            .target
            .strip_prefix("/bytes/")
            .and_then(|n| n.parse::<usize>().ok())
        {
            // A large body, written in 64 KiB pieces (benchmarks).
            let _ =
                s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").as_bytes());
            let piece = vec![b'x'; 64 * 1024];
            let mut left = n;
            while left > 0 {
                let k = left.min(piece.len());
                if s.write_all(&piece[..k]).is_err() {
                    return;
                }
                left -= k;
            }
            let _ = s.flush();
            continue;
        }
        if req.target == "/stream" {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
            for i in 0..3 {
                let event = format!("data: event {i}\n\n");
                let _ = h1::write_chunk(&mut s, event.as_bytes());
                let _ = s.flush();
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = h1::end_chunks(&mut s);
            let _ = s.flush();
            continue;
        }
        let (status, headers, reply) = handler(&req, &body, port);
        let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", reply.len());
        for (n, v) in headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !req.method.eq_ignore_ascii_case("HEAD") {
            bytes.extend_from_slice(&reply);
        }
        // `/close-after`: a host that ends a kept-alive connection without
        // saying so (an idle timeout on its side).
        let ends = req.wants_close() || req.target == "/close-after";
        if s.write_all(&bytes).and_then(|()| s.flush()).is_err() || ends {
            s.conn.send_close_notify();
            let _ = s.flush();
            return;
        }
    }
}

/// `*.test` is 127.0.0.1.
pub fn resolve(host: &str, _port: u16) -> std::io::Result<Vec<IpAddr>> {
    if host.ends_with(".test") {
        Ok(vec![IpAddr::from([127, 0, 0, 1])])
    } else {
        Err(std::io::Error::other("no such name"))
    }
}

/// The values the tests inject. Long and distinctive, so a grep finds
/// any copy.
pub const API_VALUE: &str = "real-api-value-7f3c9a1e5b2d4c6a8e0f";
pub const GIT_VALUE: &str = "ghp_RealGitValue0123456789abcdefXYZ";

/// A running proxy with an injector, and what it recorded.
pub struct Proxied {
    pub proxy: Option<Proxy>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub tls: Arc<Tls>,
    pub injector: Arc<Injector>,
    pub victim: std::process::Child,
}

/// Who gets what: `API_KEY` goes to api.test as `Authorization: Bearer
/// {}`; `GIT_TOKEN` to git.test as basic auth with user
/// `x-access-token`. `other.test` is allowed but injects nothing.
pub fn proxied(upstream: &Upstream, max_denials: u32) -> Proxied {
    proxied_with(upstream, &upstream.ca_pem, max_denials)
}

/// Like [`proxied`], the upstream trusted through the PEM `roots`.
pub fn proxied_with(upstream: &Upstream, roots: &str, max_denials: u32) -> Proxied {
    let port = upstream.port;
    let dir = tempfile::tempdir().unwrap();
    let roots_file = dir.path().join("upstream-roots.pem");
    std::fs::write(&roots_file, roots).unwrap();
    let hosts = vec!["api.test".to_string(), "git.test".to_string()];
    let tls = Arc::new(Tls::new("test", &hosts, &roots_file).unwrap());
    let secrets = vec![
        InjectSecret {
            name: "API_KEY".into(),
            placeholder: Placeholder::generate().unwrap(),
            value: SecretValue::new(API_VALUE.as_bytes().to_vec()).into(),
            hosts: vec![("api.test".into(), port)],
            header: "Authorization".into(),
            form: Presentation::Format {
                before: "Bearer ".into(),
                after: String::new(),
            },
            expires: None,
            max_uses: None,
        },
        InjectSecret {
            name: "GIT_TOKEN".into(),
            placeholder: Placeholder::generate().unwrap(),
            value: SecretValue::new(GIT_VALUE.as_bytes().to_vec()).into(),
            hosts: vec![("git.test".into(), port)],
            header: "Authorization".into(),
            form: Presentation::Basic {
                user: "x-access-token".into(),
            },
            expires: None,
            max_uses: None,
        },
    ];
    let injector = Arc::new(Injector::new(Arc::clone(&tls), secrets).unwrap());
    let origin = || Location::whole_file(Path::new("t.toml"));
    let rules: Vec<HostRule> = ["api.test", "git.test", "other.test"]
        .iter()
        .map(|h| parse_rule(&format!("{h}:{port} via 127.0.0.1"), origin()).unwrap())
        .collect();
    let log = Arc::new(AuditLog::open(dir.path().join("audit.jsonl")).unwrap());
    let victim = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let pidfd = cordon::sys::process::pidfd_open(i32::try_from(victim.id()).unwrap()).unwrap();
    let killer = Arc::new(Killer::new(&pidfd).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let refusals = Refusals::root(
        &Divergence {
            max_denials,
            ..Divergence::default()
        },
        &killer,
    );
    let ctx = Context::new(
        Rules::new(&rules, &[], "network"),
        log,
        "0123456789abcdef0123456789abcdef",
        "inject-test",
        refusals,
    )
    .resolver(resolve)
    .injecting(Arc::clone(&injector));
    Proxied {
        proxy: Some(start(listener, ctx).unwrap()),
        addr,
        dir,
        tls,
        injector,
        victim,
    }
}

impl Proxied {
    pub fn placeholder(&self, name: &str) -> String {
        self.injector
            .placeholders()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.to_string())
            .unwrap()
    }

    pub fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn audit_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("audit.jsonl")).unwrap_or_default()
    }

    /// The PEM bundle a client trusts: the session CA only (these tests
    /// reach no public host).
    pub fn bundle(&self) -> PathBuf {
        let p = self.dir.path().join("bundle.pem");
        std::fs::write(&p, self.tls.ca_pem()).unwrap();
        p
    }

    /// Opens `CONNECT host:port`; returns the status line and the socket.
    pub fn connect(&self, host: &str, port: u16) -> (String, TcpStream) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(
            format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n").as_bytes(),
        )
        .unwrap();
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

    /// A TLS client through the proxy, trusting the session CA, offering
    /// `alpn`.
    pub fn tls_client(&self, host: &str, port: u16, alpn: &[&[u8]]) -> Result<Tunnel, String> {
        let (status, tcp) = self.connect(host, port);
        if !status.starts_with("HTTP/1.1 200") {
            return Err(status);
        }
        let mut roots = RootCertStore::empty();
        roots.add(self.tls.ca_der().clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        let name = ServerName::try_from(host.to_string()).unwrap();
        let conn = ClientConnection::new(Arc::new(config), name).unwrap();
        let mut s = StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).map_err(|e| e.to_string())?;
        }
        Ok(Tunnel {
            s: BufReader::new(s),
        })
    }
}

impl Drop for Proxied {
    fn drop(&mut self) {
        if let Some(p) = self.proxy.take() {
            p.stop(Duration::from_secs(2));
        }
        let _ = self.victim.kill();
        let _ = self.victim.wait();
    }
}

/// A TLS connection through the proxy.
pub struct Tunnel {
    pub s: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

/// A response as the client read it.
#[derive(Debug)]
pub struct Answer {
    pub head: String,
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        format!("{}{}", self.head, String::from_utf8_lossy(&self.body))
    }
}

impl Tunnel {
    pub fn send(&mut self, bytes: &[u8]) {
        let s = self.s.get_mut();
        s.write_all(bytes).unwrap();
        s.flush().unwrap();
    }

    /// Reads one response; `None` when the connection ends first.
    pub fn read(&mut self) -> Option<Answer> {
        let head = h1::read_head(&mut self.s, 64 * 1024).ok()??;
        let resp = h1::parse_response(&head).ok()?;
        let mut body = Vec::new();
        let mut b = Body::new(resp.framing("GET").ok()?);
        while let Ok(Some(piece)) = b.next(&mut self.s) {
            body.extend_from_slice(piece);
        }
        Some(Answer {
            head: String::from_utf8_lossy(&head).into_owned(),
            status: resp.status,
            body,
        })
    }

    pub fn get(&mut self, host: &str, port: u16, path: &str, auth: Option<&str>) -> Option<Answer> {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        self.send(format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}\r\n").as_bytes());
        self.read()
    }
}

/// A smart-HTTP git server for the repositories under `root`: `git
/// http-backend` as CGI, behind a check of the credential the proxy must
/// have injected (`x-access-token:GIT_VALUE`, basic).
pub fn git_over_http(
    root: &Path,
    req: &h1::Request,
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let want = format!(
        "Basic {}",
        STANDARD.encode(format!("x-access-token:{GIT_VALUE}"))
    );
    if h1::values(&req.headers, "authorization").next() != Some(want.as_str()) {
        let challenge = ("WWW-Authenticate".into(), "Basic realm=\"test\"".into());
        return (401, vec![challenge], b"credentials, please\n".to_vec());
    }
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let header = |n: &str| {
        h1::values(&req.headers, n)
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let mut cgi = Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REMOTE_USER", "x-access-token")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REQUEST_METHOD", &req.method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cgi.stdin.take().unwrap().write_all(body).unwrap();
    let out = cgi.wait_with_output().unwrap().stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
        .unwrap();
    let head = String::from_utf8_lossy(&out[..split.0]).into_owned();
    let mut status = 200;
    let mut headers = Vec::new();
    for line in head.lines() {
        let (n, v) = line.split_once(':').unwrap();
        if n.eq_ignore_ascii_case("status") {
            status = v.trim()[..3].parse().unwrap();
        } else {
            headers.push((n.to_string(), v.trim().to_string()));
        }
    }
    (status, headers, out[split.0 + split.1..].to_vec())
}
