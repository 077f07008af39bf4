//! The TLS-terminating path of the proxy, for a CONNECT to a host some
//! proxy-delivered secret names (every other CONNECT stays a plain,
//! uninspected tunnel).
//!
//! Order: TLS to the real host first, verified against the roots, so a
//! host with a bad certificate is refused with a proxy answer (502)
//! before the client is told anything; then `200`, then TLS with the
//! client under the session CA's leaf for that host (its SNI must name
//! it). Then each request on the connection, kept-alive or pipelined, is
//! read, rewritten by the [`Injector`], recorded when it carries a
//! secret, and sent; its response is relayed, masked for the values
//! injected toward this host, and framed again (chunked). One thread,
//! one exchange at a time: HTTP/1.1 answers in order anyway.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, ServerConnection, StreamOwned};
use rustls_pki_types::ServerName;
use zeroize::Zeroizing;

use super::Connection;
use crate::audit::{Decision, Kind, Record};
use crate::egress::h1::{self, Body, Framing, ReadError, Request, Response, Version};
use crate::egress::http::{self, HOP_BY_HOP};
use crate::egress::inject::Injector;
use crate::secrets::Redactor;

/// How long each TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive client may stay silent between requests.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

type Client = StreamOwned<ServerConnection, Prefixed>;
type Upstream = StreamOwned<ClientConnection, TcpStream>;

/// The client socket, with what it sent after its CONNECT head in front.
struct Prefixed {
    early: Vec<u8>,
    at: usize,
    tcp: TcpStream,
}

impl Read for Prefixed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at < self.early.len() {
            let n = buf.len().min(self.early.len() - self.at);
            buf[..n].copy_from_slice(&self.early[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        (&self.tcp).read(buf)
    }
}

impl Write for Prefixed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&self.tcp).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (&self.tcp).flush()
    }
}

/// How one exchange ended.
enum Next {
    /// Read the next request.
    Again,
    /// Close the connection (cleanly).
    Close,
}

/// Bytes moved, for the `connect_end` record.
#[derive(Default)]
pub(super) struct Moved {
    pub up: u64,
    pub down: u64,
}

impl Connection<'_> {
    /// Serves a CONNECT to `host:port` by terminating TLS on both sides.
    pub(super) fn intercept(
        &self,
        inj: &Injector,
        client: TcpStream,
        upstream: TcpStream,
        host: &str,
        port: u16,
        early: &[u8],
    ) -> Moved {
        let _ = upstream.set_nodelay(true);
        let up = match upstream_tls(inj, upstream.try_clone(), host) {
            Ok(u) => u,
            Err(why) => {
                // Not the sandbox's doing: answered, recorded, not counted.
                let msg =
                    format!("TLS with {host}:{port} failed, so the connection is refused: {why}");
                let rec = self
                    .inject_record(host, port)
                    .decision(Decision::Deny)
                    .reason(msg.clone());
                let _ = self.ctx().audit.append(&rec);
                let _ = (&client).write_all(&http::answer(502, "Bad Gateway", &msg));
                return Moved::default();
            }
        };
        if (&client)
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .is_err()
        {
            return Moved::default();
        }
        if let (Ok(c), Ok(u)) = (client.try_clone(), upstream.try_clone()) {
            super::lock(&self.shared.live).insert(self.id, [c, u]);
        }
        if self
            .shared
            .stopping
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Moved::default();
        }
        let mut down = match client_tls(inj, client, host, early) {
            Ok(d) => d,
            Err(why) => {
                let msg = format!("TLS with the client for {host}:{port} failed: {why}");
                let rec = self
                    .inject_record(host, port)
                    .decision(Decision::Deny)
                    .reason(msg);
                let _ = self.ctx().audit.append(&rec);
                return Moved::default();
            }
        };
        let mut up = up;
        let mut moved = Moved::default();
        let mut timeout = super::HEAD_TIMEOUT;
        loop {
            let _ = down.sock.tcp.set_read_timeout(Some(timeout));
            timeout = IDLE_TIMEOUT;
            match self.exchange(inj, &mut down, &mut up, host, port, &mut moved) {
                Next::Again => continue,
                Next::Close => break,
            }
        }
        down.conn.send_close_notify();
        let _ = down.flush();
        up.conn.send_close_notify();
        let _ = up.flush();
        let _ = down.sock.tcp.shutdown(Shutdown::Both);
        let _ = up.sock.shutdown(Shutdown::Both);
        moved
    }

    /// One request and its response.
    fn exchange(
        &self,
        inj: &Injector,
        down: &mut Client,
        up: &mut Upstream,
        host: &str,
        port: u16,
        moved: &mut Moved,
    ) -> Next {
        let head = match h1::read_head(down, http::MAX_HEAD) {
            Ok(Some(h)) => Zeroizing::new(h),
            Ok(None) | Err(ReadError::Io(_) | ReadError::Truncated) => return Next::Close,
            Err(ReadError::Head(e)) => {
                return self.refuse_inside(down, host, port, None, e.status(), &e.to_string(), true)
            }
            Err(e @ ReadError::Chunked(_)) => {
                return self.refuse_inside(
                    down,
                    host,
                    port,
                    None,
                    (400, "Bad Request"),
                    &e.to_string(),
                    true,
                )
            }
        };
        let reused = moved.up > 0;
        if reused && readable(up) {
            // The host closed the kept-alive connection (or sent something
            // unasked) while the client was idle: close without an answer,
            // so the client retries on a fresh connection, as it would with
            // the host itself.
            return Next::Close;
        }
        let parsed = h1::parse_request(&head).and_then(|r| r.framing().map(|f| (r, f)));
        let (req, framing) = match parsed {
            Ok(p) => p,
            Err(e) => {
                return self.refuse_inside(down, host, port, None, e.status(), &e.to_string(), true)
            }
        };
        let rw = match inj.rewrite(&req, host, port, Instant::now()) {
            Ok(rw) => rw,
            Err(r) => {
                let line = req.line();
                return self.refuse_inside(
                    down,
                    host,
                    port,
                    r.secret.as_deref().map(|s| (s, line.as_str())),
                    (403, "Forbidden"),
                    &r.reason,
                    r.charged,
                );
            }
        };
        if !rw.injected.is_empty() {
            let rec = self
                .inject_record(host, port)
                .decision(Decision::Allow)
                .secrets(rw.injected.clone())
                .detail(req.line());
            // Fail closed: no credential leaves unrecorded.
            if let Err(e) = self.ctx().audit.append(&rec) {
                let msg = format!("cannot record the injection, so the request is refused: {e}");
                let _ = down.write_all(&http::answer(503, "Service Unavailable", &msg));
                let _ = down.flush();
                return Next::Close;
            }
        }
        if up.write_all(&rw.head).is_err() {
            return Next::Close;
        }
        moved.up += rw.head.len() as u64;
        drop(rw.head);
        if rw.expect_continue {
            let _ = down.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
            let _ = down.flush();
        }
        match relay_request_body(down, up, framing) {
            Ok(n) => moved.up += n,
            Err(_) => return Next::Close,
        }
        if up.flush().is_err() {
            return Next::Close;
        }
        // The masks of the values held now (a value may have been fetched
        // for this very request).
        let redactor = inj.redactor(host, port);
        let redactor = redactor.as_deref();
        match self.relay_response(redactor, &req, (down, up), (host, port), reused, moved) {
            Some(false) if !rw.close => Next::Again,
            _ => Next::Close,
        }
    }

    /// Relays the response (and any interim 1xx before it). `Some(close)`
    /// when it was relayed whole; `None` when the connection broke. On a
    /// `reused` connection that the host closed before answering, the
    /// client's connection is closed without an answer, as the host's own
    /// would be, so the client retries.
    fn relay_response(
        &self,
        redactor: Option<&Redactor>,
        req: &Request,
        (down, up): (&mut Client, &mut Upstream),
        (host, port): (&str, u16),
        reused: bool,
        moved: &mut Moved,
    ) -> Option<bool> {
        let mask = |b: &[u8]| redactor.map_or_else(|| b.to_vec(), |r| r.redact(b));
        let (resp, framing) = loop {
            let head = match h1::read_head(up, h1::MAX_RESPONSE_HEAD) {
                Ok(Some(h)) => h,
                Ok(None) | Err(ReadError::Io(_)) if reused => return None,
                Ok(None) | Err(_) => {
                    let msg =
                        format!("{host}:{port} closed the connection or sent no valid response");
                    let _ = down.write_all(&http::answer(502, "Bad Gateway", &msg));
                    let _ = down.flush();
                    return None;
                }
            };
            let parsed =
                h1::parse_response(&head).and_then(|r| r.framing(&req.method).map(|f| (r, f)));
            let (resp, framing) = match parsed {
                Ok(p) => p,
                Err(e) => {
                    let msg = format!("{host}:{port} sent a response the proxy cannot relay: {e}");
                    let _ = down.write_all(&http::answer(502, "Bad Gateway", &msg));
                    let _ = down.flush();
                    return None;
                }
            };
            if (100..200).contains(&resp.status) && resp.status != 101 {
                let out = mask(&client_head(&resp, false, false, false));
                moved.down += out.len() as u64;
                down.write_all(&out).ok()?;
                continue;
            }
            if resp.status == 101 {
                return None;
            }
            break (resp, framing);
        };
        // An HTTP/1.0 client cannot take chunks: its body ends at close.
        let chunked = req.version == Version::Http11;
        let body = framing != Framing::None;
        let close = resp.closes() || framing == Framing::Close || req.version == Version::Http10;
        let out = mask(&client_head(&resp, body, chunked, close));
        moved.down += out.len() as u64;
        down.write_all(&out).ok()?;
        if framing != Framing::None {
            moved.down += relay_response_body(redactor, up, down, framing, chunked)?;
        }
        down.flush().ok()?;
        Some(close)
    }

    /// An `inject` record about this connection.
    fn inject_record(&self, host: &str, port: u16) -> Record {
        self.record(Kind::Inject).host(host.to_string()).port(port)
    }

    /// Refuses a request inside the tunnel: recorded, charged when the
    /// sandbox is at fault (and then killing past `max_denials`, with no
    /// answer), answered otherwise; the connection then closes.
    #[allow(clippy::too_many_arguments)]
    fn refuse_inside(
        &self,
        down: &mut Client,
        host: &str,
        port: u16,
        secret: Option<(&str, &str)>,
        status: (u16, &str),
        reason: &str,
        charged: bool,
    ) -> Next {
        let ctx = self.ctx();
        let what = match &ctx.tool {
            Some((tool, _)) => {
                format!("egress of tool `{tool}` to {host}:{port} refused: {reason}")
            }
            None => format!("egress to {host}:{port} refused: {reason}"),
        };
        if ctx.loud {
            eprintln!("cordon: {what}");
        }
        let killed = charged && ctx.refusals.charge(0, &what).killed();
        let mut rec = self
            .inject_record(host, port)
            .decision(Decision::refusal(killed))
            .reason(reason.to_string());
        if let Some((name, line)) = secret {
            rec = rec.secrets(vec![name.to_string()]).detail(line.to_string());
        }
        let _ = ctx.audit.append(&rec);
        if killed {
            ctx.refusals.killer().wait_dead(Duration::from_secs(5));
            let _ = down.sock.tcp.shutdown(Shutdown::Both);
            return Next::Close;
        }
        let _ = down.write_all(&http::answer(status.0, status.1, reason));
        let _ = down.flush();
        Next::Close
    }
}

/// TLS to the real host, verified; the handshake done.
fn upstream_tls(
    inj: &Injector,
    tcp: std::io::Result<TcpStream>,
    host: &str,
) -> Result<Upstream, String> {
    let tcp = tcp.map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let conn =
        ClientConnection::new(inj.tls().upstream_config(), name).map_err(|e| e.to_string())?;
    let _ = tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).map_err(|e| e.to_string())?;
    }
    // Responses may take as long as the host likes (a streamed answer);
    // `Proxy::stop` cuts the socket when the sandbox ends.
    let _ = s.sock.set_read_timeout(None);
    let _ = s.sock.set_write_timeout(None);
    Ok(s)
}

/// TLS with the client under the leaf for `host`; its SNI, when sent,
/// must name `host`.
fn client_tls(inj: &Injector, tcp: TcpStream, host: &str, early: &[u8]) -> Result<Client, String> {
    let config = inj.tls().server_config(host).map_err(|e| e.to_string())?;
    let conn = ServerConnection::new(config).map_err(|e| e.to_string())?;
    let _ = tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
    let mut s = StreamOwned::new(
        conn,
        Prefixed {
            early: early.to_vec(),
            at: 0,
            tcp,
        },
    );
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidData => format!(
                    "{e} (not TLS, or a TLS the proxy does not accept: it speaks HTTP/1.1 only)"
                ),
                _ => e.to_string(),
            })?;
    }
    if let Some(sni) = s.conn.server_name() {
        let sni = sni.strip_suffix('.').unwrap_or(sni);
        if !sni.eq_ignore_ascii_case(host) {
            return Err(format!(
                "the client asked for `{}` (SNI) in a tunnel to {host}",
                sni.escape_debug()
            ));
        }
    }
    let _ = s.sock.tcp.set_write_timeout(None);
    Ok(s)
}

/// Copies the request body on, framed as its head says (the head keeps
/// its `Content-Length` or `Transfer-Encoding: chunked`). Returns bytes.
fn relay_request_body(
    down: &mut Client,
    up: &mut Upstream,
    framing: Framing,
) -> Result<u64, ReadError> {
    let mut body = Body::new(framing);
    let mut n = 0u64;
    while let Some(piece) = body.next(down)? {
        n += piece.len() as u64;
        if framing == Framing::Chunked {
            h1::write_chunk(up, piece)?;
        } else {
            up.write_all(piece)?;
        }
    }
    if framing == Framing::Chunked {
        h1::end_chunks(up)?;
    }
    Ok(n)
}

/// Copies a response body to the client, masked, chunked (or until close
/// for an HTTP/1.0 client). What the mask holds back is let out whenever
/// the host has nothing more to send for now, so streamed answers (server
/// -sent events) are not delayed. Returns bytes written, `None` when the
/// connection broke.
fn relay_response_body(
    redactor: Option<&Redactor>,
    up: &mut Upstream,
    down: &mut Client,
    framing: Framing,
    chunked: bool,
) -> Option<u64> {
    let mut stream = redactor.map(Redactor::stream);
    let mut body = Body::new(framing);
    let mut out = Zeroizing::new(Vec::new());
    let mut total = 0u64;
    let send = |down: &mut Client, out: &mut Vec<u8>| -> Option<u64> {
        let n = out.len() as u64;
        let sent = if chunked {
            h1::write_chunk(down, out)
        } else {
            down.write_all(out)
        };
        out.clear();
        sent.ok()?;
        Some(n)
    };
    loop {
        if stream.is_some() && idle(up) {
            if let Some(s) = stream.as_mut() {
                s.flush(&mut out);
            }
            total += send(down, &mut out)?;
            down.flush().ok()?;
        }
        let piece = match body.next(up) {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A host that closes without TLS close_notify ends a body read
            // until close; anything else is a broken connection.
            Err(ReadError::Io(e))
                if e.kind() == ErrorKind::UnexpectedEof && framing == Framing::Close =>
            {
                break
            }
            Err(_) => return None,
        };
        match stream.as_mut() {
            Some(s) => s.push(piece, &mut out),
            None => out.extend_from_slice(piece),
        }
        total += send(down, &mut out)?;
    }
    if let Some(s) = stream.as_mut() {
        s.finish(&mut out);
    }
    total += send(down, &mut out)?;
    if chunked {
        h1::end_chunks(down).ok()?;
    }
    Some(total)
}

/// Whether the host has sent nothing that is waiting to be read.
fn idle(up: &Upstream) -> bool {
    up.conn.wants_read() && !socket_readable(up)
}

/// Whether the host has sent something (or closed) between exchanges.
fn readable(up: &Upstream) -> bool {
    !up.conn.wants_read() || socket_readable(up)
}

fn socket_readable(up: &Upstream) -> bool {
    let mut fds = [libc::pollfd {
        fd: up.sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    !matches!(crate::sys::fd::poll(&mut fds, 0), Ok(0))
}

/// The response head for the client: hop-by-hop headers dropped; a body
/// framed again (`chunked`, or until close: then its length headers go
/// too); `Connection: close` when this is the last exchange.
fn client_head(resp: &Response, body: bool, chunked: bool, close: bool) -> Vec<u8> {
    let named: Vec<String> = h1::values(&resp.headers, "connection")
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, resp.reason).into_bytes();
    for (name, value) in &resp.headers {
        let lower = name.to_ascii_lowercase();
        let framing_header = lower == "content-length" || lower == "transfer-encoding";
        if HOP_BY_HOP.contains(&lower.as_str())
            || named.contains(&lower)
            || (body && framing_header)
        {
            continue;
        }
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if body && chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    if close && !(100..200).contains(&resp.status) {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}
