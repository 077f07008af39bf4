//! The egress proxy: one per sandbox with host rules (the agent's, and
//! each call of a tool with its own), serving the listener init made
//! inside that sandbox's network namespace.
//!
//! Threads: one accepts; each connection gets one for its decision and
//! the upload direction, and one more for the download direction, up to
//! [`MAX_CONNECTIONS`] at once (more are answered 503 at once). A client
//! that sends no head within [`HEAD_TIMEOUT`] is dropped, so a slow or
//! half-open client holds only its own thread.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::http::{self, Request};
use super::inject::Injector;
use super::rules::{HostRule, Refusal, Rules, Target};
use crate::audit::{AuditLog, Decision, Kind, Record};
use crate::policy::cedar::{Request as CedarRequest, SessionPolicies};
use crate::policy::Verdict;
use crate::process::Refusals;

/// Connections served at once per proxy.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client has to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to one upstream address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Upstream addresses tried per connection.
const MAX_ADDRESSES: usize = 4;
/// Copy buffer per direction.
const BUFFER: usize = 128 * 1024;
/// Stack of a connection thread (its buffer is on the heap).
const STACK: usize = 128 * 1024;

/// Resolves a name to addresses (the system resolver, or a test's).
pub type Resolver = fn(&str, u16) -> std::io::Result<Vec<IpAddr>>;

/// getaddrinfo, through the standard library.
pub fn system_resolver(host: &str, port: u16) -> std::io::Result<Vec<IpAddr>> {
    use std::net::ToSocketAddrs;
    Ok((host, port).to_socket_addrs()?.map(|a| a.ip()).collect())
}

/// Whose proxy this is, and where its decisions go. Made with
/// [`Context::new`] and its setters.
pub struct Context {
    pub rules: Rules,
    pub audit: Arc<AuditLog>,
    pub session: String,
    pub profile: String,
    /// The tool and call this proxy serves; `None`: the agent's.
    pub tool: Option<(String, u64)>,
    pub refusals: Refusals,
    pub resolve: Resolver,
    /// Say refusals on stderr (the agent's proxy, in `cordon run`).
    pub loud: bool,
    /// Proxy-delivered secrets of this sandbox: TLS to their hosts is
    /// terminated and their placeholders swapped (see [`super::inject`]).
    /// `None`: every CONNECT is a plain tunnel.
    pub inject: Option<Arc<Injector>>,
    /// `[divergence] tolerated_hosts`: their refusals are not counted.
    pub tolerated: Vec<HostRule>,
    /// Tolerated rules already said on stderr (each is said once).
    said: Mutex<Vec<usize>>,
    /// The session's Cedar policies: asked about each connection the host
    /// rules allow (they can only refuse it). `None`: the rules decide.
    pub cedar: Option<Arc<SessionPolicies>>,
}

impl Context {
    /// The proxy of a session's agent, deciding on `rules`, recording in
    /// `audit` and charging its refusals to `refusals`; quiet, resolving
    /// with the system's resolver.
    pub fn new(
        rules: Rules,
        audit: Arc<AuditLog>,
        session: &str,
        profile: &str,
        refusals: Refusals,
    ) -> Context {
        Context {
            rules,
            audit,
            session: session.to_string(),
            profile: profile.to_string(),
            tool: None,
            refusals,
            resolve: system_resolver,
            loud: false,
            inject: None,
            tolerated: Vec::new(),
            said: Mutex::new(Vec::new()),
            cedar: None,
        }
    }

    /// Refusals of hosts `rules` match are recorded and answered, but not
    /// counted toward `max_denials` (`[divergence] tolerated_hosts`).
    #[must_use]
    pub fn tolerating(mut self, rules: &[HostRule]) -> Context {
        self.tolerated = rules.to_vec();
        self
    }

    /// Ask the session's Cedar policies about each connection the host
    /// rules allow.
    #[must_use]
    pub fn cedar(mut self, cedar: Option<Arc<SessionPolicies>>) -> Context {
        self.cedar = cedar;
        self
    }

    /// Terminate TLS to the hosts `inject`'s secrets name and swap their
    /// placeholders there.
    #[must_use]
    pub fn injecting(mut self, inject: Arc<Injector>) -> Context {
        self.inject = Some(inject);
        self
    }

    /// The proxy of one call of `tool` instead.
    #[must_use]
    pub fn for_tool(mut self, tool: &str, call: u64) -> Context {
        self.tool = Some((tool.to_string(), call));
        self
    }

    /// Say refusals on stderr too.
    #[must_use]
    pub fn loud(mut self, loud: bool) -> Context {
        self.loud = loud;
        self
    }

    /// Resolve names with `resolve` (tests script one).
    #[must_use]
    pub fn resolver(mut self, resolve: Resolver) -> Context {
        self.resolve = resolve;
        self
    }
}

struct Shared {
    ctx: Context,
    next: AtomicU64,
    active: AtomicUsize,
    /// Clones of each live connection's sockets, shut down by `stop`.
    live: Mutex<HashMap<u64, [TcpStream; 2]>>,
    stopping: AtomicBool,
}

/// A running proxy.
pub struct Proxy {
    shared: Arc<Shared>,
    listener: TcpListener,
    accept: Option<JoinHandle<()>>,
}

/// Starts serving `listener`.
pub fn start(listener: TcpListener, ctx: Context) -> std::io::Result<Proxy> {
    let shared = Arc::new(Shared {
        ctx,
        next: AtomicU64::new(0),
        active: AtomicUsize::new(0),
        live: Mutex::new(HashMap::new()),
        stopping: AtomicBool::new(false),
    });
    let ours = listener.try_clone()?;
    let s = Arc::clone(&shared);
    let accept = std::thread::Builder::new()
        .name("cordon-egress".into())
        .spawn(move || accept_loop(&listener, &s))?;
    Ok(Proxy {
        shared,
        listener: ours,
        accept: Some(accept),
    })
}

impl Proxy {
    /// Stops accepting, cuts every live connection, and waits (at most
    /// `grace`) for their threads to write their end records.
    pub fn stop(mut self, grace: Duration) {
        self.halt();
        let deadline = Instant::now() + grace;
        while self.shared.active.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn halt(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        let _ = crate::sys::fd::shutdown_listener(self.listener.as_raw_fd());
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for pair in lock(&self.shared.live).values() {
            for s in pair {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.next.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    /// A proxy dropped on an error path still stops serving.
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.halt();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The map stays consistent whatever a panicking holder did.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        let client = match listener.accept() {
            Ok((c, _)) => c,
            Err(_) if shared.stopping.load(Ordering::Acquire) => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "egress: accept failed");
                // EMFILE and the like: do not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        if shared.active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            shared.active.fetch_sub(1, Ordering::AcqRel);
            let _ = client.set_nonblocking(true);
            let msg = format!("too many connections at once (at most {MAX_CONNECTIONS})");
            let _ = (&client).write_all(&http::answer(503, "Service Unavailable", &msg));
            continue;
        }
        let id = shared.next.fetch_add(1, Ordering::Relaxed) + 1;
        let s = Arc::clone(shared);
        // The decision thread may evaluate Cedar policies.
        let stack = match shared.ctx.cedar {
            Some(_) => crate::policy::cedar::STACK,
            None => STACK,
        };
        let spawned = std::thread::Builder::new()
            .name("cordon-egress-conn".into())
            .stack_size(stack)
            .spawn(move || {
                Connection { shared: &s, id }.serve(client);
                lock(&s.live).remove(&id);
                s.active.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            shared.active.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(error = %e, "egress: cannot start a connection thread");
        }
    }
}

/// Why reading the head ended without one.
enum HeadRead {
    /// Closed, reset or silent past the timeout: nothing to answer.
    Gone,
    TooLarge,
}

#[path = "intercept.rs"]
mod intercept;

struct Connection<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Connection<'_> {
    fn ctx(&self) -> &Context {
        &self.shared.ctx
    }

    fn record(&self, kind: Kind) -> Record {
        let ctx = self.ctx();
        let rec = Record::new(kind, &ctx.session)
            .profile(&ctx.profile)
            .connection(self.id);
        match &ctx.tool {
            Some((tool, call)) => rec.tool(tool.clone()).call(*call),
            None => rec,
        }
    }

    fn serve(&self, client: TcpStream) {
        let started = Instant::now();
        let _ = client.set_nodelay(true);
        let _ = client.set_read_timeout(Some(HEAD_TIMEOUT));
        let parsed = match read_head(&client) {
            Ok((buf, len)) => http::parse(&buf[..len]).map(|r| (r, buf, len)),
            Err(HeadRead::Gone) => return,
            Err(HeadRead::TooLarge) => Err(http::HeadError::TooLarge),
        };
        let (request, buf, head_len) = match parsed {
            Ok(p) => p,
            Err(e) => {
                let rec = self.record(Kind::Connect);
                self.refuse(&client, rec, e.status(), &e.to_string());
                return;
            }
        };
        let (host, port) = (request.host().to_string(), request.port());
        let base = self.record(Kind::Connect).host(host.clone()).port(port);
        let forbidden = (403, "Forbidden");
        let target = match Target::parse(&host) {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("`{host}`: {e}");
                self.refuse(&client, base, (400, "Bad Request"), &msg);
                return;
            }
        };
        if let (Request::Forward { .. }, Some(inj)) = (&request, &self.ctx().inject) {
            if let Some(secret) = inj.find_placeholder(&buf[..head_len]) {
                let msg = format!("the placeholder of secret `{secret}` is in a plain-HTTP request to {target}:{port}; placeholders are swapped only inside TLS to the secret's own hosts");
                let rec = self
                    .record(Kind::Inject)
                    .host(host.clone())
                    .port(port)
                    .secrets(vec![secret.to_string()]);
                self.refuse(&client, rec, forbidden, &msg);
                return;
            }
        }
        let rules = &self.ctx().rules;
        let admitted = match rules.admit(&target, port) {
            Ok(a) => a,
            Err(r) => return self.refuse_rule(&client, base, forbidden, r, (&target, port)),
        };
        let (base, refused) = self.policies(&target, port, &admitted.rule, base);
        if let Some(r) = refused {
            return self.refuse_rule(&client, base, forbidden, r, (&target, port));
        }
        let resolved = match &target {
            Target::Ip(ip) => Ok(vec![*ip]),
            Target::Name(name) => (self.ctx().resolve)(name, port),
        };
        let resolved = match resolved {
            Ok(r) => r,
            Err(e) => {
                // Not the agent's fault: answered, recorded, not counted.
                let msg = format!("cannot resolve {target}: {e}");
                let rec = base
                    .decision(Decision::Deny)
                    .rule(admitted.rule.label.clone())
                    .reason(msg.clone());
                self.answer_and_record(&client, rec, (502, "Bad Gateway"), &msg);
                return;
            }
        };
        let addresses = match rules.permitted(&admitted, &target, port, &resolved) {
            Ok(a) => a,
            Err(r) => return self.refuse_rule(&client, base, forbidden, r, (&target, port)),
        };
        let candidates: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
        let allowed = base
            .decision(Decision::Allow)
            .address(candidates.join(" "))
            .rule(admitted.rule.label.clone())
            .detail(admitted.rule.text.clone());
        // Fail closed: nothing leaves unrecorded.
        if let Err(e) = self.ctx().audit.append(&allowed) {
            let msg = format!("cannot record the connection, so it is refused: {e}");
            let _ = (&client).write_all(&http::answer(503, "Service Unavailable", &msg));
            return;
        }
        let end = self.record(Kind::ConnectEnd).host(host.clone()).port(port);
        let upstream = match connect_any(&addresses, port) {
            Ok(u) => u,
            Err(msg) => {
                let _ = (&client).write_all(&http::answer(502, "Bad Gateway", &msg));
                let rec = end
                    .reason(msg)
                    .bytes_up(0u64)
                    .bytes_down(0u64)
                    .duration_ms(elapsed_ms(started));
                let _ = self.ctx().audit.append(&rec);
                return;
            }
        };
        let address = upstream
            .peer_addr()
            .map_or_else(|_| String::new(), |a| a.ip().to_string());
        let intercepting = match (&request, &target, &self.ctx().inject) {
            (Request::Connect { .. }, Target::Name(name), Some(inj))
                if inj.intercepts(name, port) =>
            {
                Some((Arc::clone(inj), name.clone()))
            }
            _ => None,
        };
        let (up, down) = match intercepting {
            Some((inj, name)) => {
                let m = self.intercept(&inj, client, upstream, &name, port, &buf[head_len..]);
                (m.up, m.down)
            }
            None => self.relay(client, upstream, &request, &buf[head_len..]),
        };
        let rec = end
            .address(address)
            .bytes_up(up)
            .bytes_down(down)
            .duration_ms(elapsed_ms(started));
        let _ = self.ctx().audit.append(&rec);
    }

    /// What the session's Cedar policies say about a connection the host
    /// rules allowed (by `rule`): the record names the policies that
    /// decided; a forbid, or an `@approve` (no person can be asked about a
    /// connection), refuses it.
    fn policies(
        &self,
        target: &Target,
        port: u16,
        rule: &super::rules::RuleRef,
        base: Record,
    ) -> (Record, Option<Refusal>) {
        let Some(cedar) = &self.ctx().cedar else {
            return (base, None);
        };
        let host = target.to_string();
        let tool = self.ctx().tool.as_ref().map(|(t, _)| t.as_str());
        let req = CedarRequest::connect(cedar.principal(), &host, port, tool).decided(
            Verdict::Allow,
            rule.label.clone(),
            None,
        );
        let combined = cedar.decide(&req).without_approval("a connection");
        let base = if combined.policies.is_empty() {
            base
        } else {
            base.policies(combined.policies.clone())
        };
        let refused = (combined.verdict == Verdict::Deny).then(|| Refusal {
            reason: combined
                .reason
                .unwrap_or_else(|| "refused by the Cedar policies".into()),
            rule: Some(rule.clone()),
        });
        (base, refused)
    }

    /// Answers, records and counts a refusal by a rule (or by no rule) of
    /// a connection to `target`; a tolerated host's is not counted.
    fn refuse_rule(
        &self,
        client: &TcpStream,
        base: Record,
        status: (u16, &str),
        r: Refusal,
        (target, port): (&Target, u16),
    ) {
        let base = match r.rule {
            Some(rule) => base.rule(rule.label).detail(rule.text),
            None => base,
        };
        let ctx = self.ctx();
        if let Some(i) = ctx.tolerated.iter().position(|t| t.matches(target, port)) {
            let label = format!("divergence.tolerated_hosts[{i}]");
            let reason = format!("{} (tolerated by {label}: not counted)", r.reason);
            let first = {
                let mut said = ctx.said.lock().unwrap_or_else(|e| e.into_inner());
                let first = !said.contains(&i);
                if first {
                    said.push(i);
                }
                first
            };
            if ctx.loud && first {
                eprintln!(
                    "cordon: {}; further refusals of `{}` are only recorded",
                    self.refused_what(&reason),
                    ctx.tolerated[i].text
                );
            }
            let rec = base.decision(Decision::Deny).reason(reason.clone());
            self.answer_and_record(client, rec, status, &reason);
            return;
        }
        self.refuse(client, base, status, &r.reason);
    }

    /// `egress refused: REASON`, naming the tool whose proxy this is.
    fn refused_what(&self, reason: &str) -> String {
        match &self.ctx().tool {
            Some((tool, _)) => format!("egress of tool `{tool}` refused: {reason}"),
            None => format!("egress refused: {reason}"),
        }
    }

    fn refuse(&self, client: &TcpStream, base: Record, status: (u16, &str), reason: &str) {
        let ctx = self.ctx();
        let what = self.refused_what(reason);
        if ctx.loud {
            eprintln!("cordon: {what}");
        }
        let killed = ctx.refusals.charge(0, &what).killed();
        let rec = base
            .decision(Decision::refusal(killed))
            .reason(reason.to_string());
        if killed {
            // No answer: the agent does not get to act on its last refusal
            // before the kernel has torn its tree down.
            let _ = ctx.audit.append(&rec);
            ctx.refusals.killer().wait_dead(Duration::from_secs(5));
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        self.answer_and_record(client, rec, status, reason);
    }

    fn answer_and_record(&self, client: &TcpStream, rec: Record, status: (u16, &str), msg: &str) {
        let _ = self.ctx().audit.append(&rec);
        let _ = client.set_write_timeout(Some(HEAD_TIMEOUT));
        let _ = (&*client).write_all(&http::answer(status.0, status.1, msg));
        let _ = client.shutdown(Shutdown::Both);
    }

    /// Sends the request on and copies both ways until both are done.
    /// Returns bytes (up, down).
    fn relay(
        &self,
        client: TcpStream,
        upstream: TcpStream,
        request: &Request,
        early: &[u8],
    ) -> (u64, u64) {
        let _ = client.set_read_timeout(None);
        let _ = upstream.set_nodelay(true);
        let mut up = 0u64;
        let opened = match request {
            Request::Connect { .. } => {
                (&client).write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            }
            Request::Forward { head, .. } => {
                up += head.len() as u64;
                (&upstream).write_all(head)
            }
        };
        if opened.and_then(|()| (&upstream).write_all(early)).is_err() {
            return (up, 0);
        }
        up += early.len() as u64;
        if let (Ok(c), Ok(u)) = (client.try_clone(), upstream.try_clone()) {
            lock(&self.shared.live).insert(self.id, [c, u]);
        }
        if self.shared.stopping.load(Ordering::Acquire) {
            return (up, 0);
        }
        let (c2, u2) = match (client.try_clone(), upstream.try_clone()) {
            (Ok(c), Ok(u)) => (c, u),
            _ => return (up, 0),
        };
        let downward = std::thread::Builder::new()
            .name("cordon-egress-down".into())
            .stack_size(STACK)
            .spawn(move || copy(&u2, &c2));
        let Ok(downward) = downward else {
            return (up, 0);
        };
        up += copy(&client, &upstream);
        let down = downward.join().unwrap_or(0);
        (up, down)
    }
}

/// Reads until the end of the head; returns the buffer (which may hold
/// bytes past the head) and the head's length.
fn read_head(client: &TcpStream) -> Result<(Vec<u8>, usize), HeadRead> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == buf.len() {
            if buf.len() > http::MAX_HEAD {
                return Err(HeadRead::TooLarge);
            }
            buf.resize(buf.len() * 2, 0);
        }
        match (&*client).read(&mut buf[len..]) {
            Ok(0) => return Err(HeadRead::Gone),
            Ok(n) => {
                // Look for the blank line only where it can newly appear.
                let from = len.saturating_sub(3);
                len += n;
                if let Some(end) = http::head_end(&buf[from..len]) {
                    buf.truncate(len);
                    return Ok((buf, from + end));
                }
                if len > http::MAX_HEAD {
                    return Err(HeadRead::TooLarge);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(HeadRead::Gone),
        }
    }
}

fn connect_any(addresses: &[IpAddr], port: u16) -> Result<TcpStream, String> {
    let mut last = String::from("no address to connect to");
    for ip in addresses.iter().take(MAX_ADDRESSES) {
        match TcpStream::connect_timeout(&SocketAddr::new(*ip, port), CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {ip} port {port}: {e}"),
        }
    }
    Err(last)
}

/// Copies `from` to `to` until end of file, then half-closes `to`; on an
/// error, cuts both so the other direction ends too. Returns bytes copied.
fn copy(from: &TcpStream, to: &TcpStream) -> u64 {
    let mut buf = vec![0u8; BUFFER];
    let mut total = 0u64;
    loop {
        match (&*from).read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return total;
            }
            Ok(n) => {
                if (&*to).write_all(&buf[..n]).is_err() {
                    break;
                }
                total += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    total
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
