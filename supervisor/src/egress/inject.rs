//! The injector: which placeholders stand for which secrets, and the pure
//! rewriting of one request head on a TLS-terminated connection.
//!
//! A secret's value enters a request only when all of these hold:
//! - the connection's CONNECT target is one of the secret's `hosts`, and
//!   the request's one `Host` header names that same host and port;
//! - the secret's header (any case) has exactly the declared shape with
//!   the placeholder in the secret's place (`Bearer <placeholder>`, or
//!   `Basic base64(user:<placeholder>)`), and appears once;
//! - the secret is not revoked, expired (`ttl`) or used up (`max_uses`,
//!   counted per injected request when the injector counts them).
//!
//! A value is either given when the injector is made ([`Supply::Value`])
//! or fetched by a [`Supplier`] at the first request that needs it, and
//! again once its lifetime is over ([`Supply::Lazy`]); each value it no
//! longer injects (replaced, or at [`Injector::finish`]) is handed back
//! to the supplier, which revokes it.
//!
//! Any other appearance of a known placeholder in a request head (the
//! target, another header, another host, the user-info of a Basic
//! credential it does not belong to) is refused: nothing is sent, and
//! the refusal is recorded. Bodies are never rewritten: a placeholder in
//! a body stays a placeholder. Responses are masked for every form of the
//! values injected toward that host (a last line of defence against a
//! service that echoes a header back; see `secrets::redact`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroizing;

use super::h1::{has_token, Request};
use super::http::HOP_BY_HOP;
use super::tls::Tls;
use crate::profile::{Presentation, SecretSpec};
use crate::secrets::{Placeholder, RedactError, Redactor, SecretValue};

/// One secret the injector may put into requests.
pub struct InjectSecret {
    pub name: String,
    pub placeholder: Placeholder,
    pub value: Supply,
    /// (lower-case name, port).
    pub hosts: Vec<(String, u16)>,
    pub header: String,
    pub form: Presentation,
    /// After this a [`Supply::Value`] is refused (`ttl`); a lazily
    /// fetched value's lifetime is its [`Fetched::expires`].
    pub expires: Option<Instant>,
    /// Injected requests allowed (`max_uses`), counted here; `None` when
    /// the supplier counts uses itself (per tool call).
    pub max_uses: Option<u32>,
}

impl InjectSecret {
    /// From a `deliver = "proxy"` spec, its placeholder and where its
    /// value comes from; a given value's `ttl` counts from `now`. `None`
    /// for a raw secret.
    pub fn from_spec(
        spec: &SecretSpec,
        placeholder: Placeholder,
        value: Supply,
        now: Instant,
    ) -> Option<InjectSecret> {
        let proxy = spec.proxy.as_ref()?;
        Some(InjectSecret {
            name: spec.name.clone(),
            placeholder,
            value,
            hosts: proxy.targets(),
            header: proxy.header.clone(),
            form: proxy.form.clone(),
            expires: spec.ttl.map(|t| now + t),
            max_uses: spec.max_uses,
        })
    }
}

/// Where an injected secret's value comes from.
pub enum Supply {
    /// Fetched already; injected until [`InjectSecret::expires`].
    Value(Arc<SecretValue>),
    /// Fetched by the supplier when a request first needs it, and again
    /// when that value's lifetime is over.
    Lazy(Arc<dyn Supplier>),
}

impl From<SecretValue> for Supply {
    fn from(v: SecretValue) -> Supply {
        Supply::Value(Arc::new(v))
    }
}

/// A value fetched for the injector.
pub struct Fetched {
    pub value: Arc<SecretValue>,
    /// Not injected from this time on (the secret's `ttl`): the next
    /// request that needs it fetches again.
    pub expires: Option<Instant>,
}

/// Fetches values for the injector, at the moment a request needs one,
/// and takes back those it no longer injects.
pub trait Supplier: Send + Sync {
    /// Fetches `name`'s value now. The error is recorded and answered to
    /// the client, so it must never hold a value.
    fn fetch(&self, name: &str) -> Result<Fetched, String>;
    /// `value` of `name` will not be injected again (replaced after its
    /// lifetime, or the injector finished): revoke it.
    fn release(&self, name: &str, value: Arc<SecretValue>);
}

/// Why an injector could not be made.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error("egress: secret `{0}` is given to the injector twice")]
    Duplicate(String),
    #[error("egress: secrets `{0}` and `{1}` have the same placeholder")]
    SamePlaceholder(String, String),
    #[error("egress: secret `{name}`: the session CA cannot sign for its host {host}")]
    Unsigned { name: String, host: String },
    #[error("egress: secret `{0}` has no hosts")]
    NoHosts(String),
    #[error("egress: the value of secret `{0}` is empty or holds a control character (CR, LF, NUL...), so it cannot go in an HTTP header")]
    BadValue(String),
    #[error("{0}")]
    Redact(#[from] RedactError),
}

struct Entry {
    name: String,
    placeholder: Placeholder,
    hosts: Vec<(String, u16)>,
    /// Lower case.
    header: String,
    form: Presentation,
    max_uses: Option<u32>,
    uses: AtomicU32,
    revoked: AtomicBool,
    /// Fetches the value when there is none, or it expired.
    supplier: Option<Arc<dyn Supplier>>,
    /// The value injected now. Held while a value is fetched, so
    /// concurrent requests wait for one fetch instead of making several.
    current: Mutex<Option<Fetched>>,
}

/// The placeholders of one sandbox's secrets, and the session's TLS.
pub struct Injector {
    tls: Arc<Tls>,
    entries: Vec<Entry>,
    /// Masks the values injected toward each host, in its responses
    /// (made again whenever a value is fetched).
    redactors: Mutex<HashMap<(String, u16), Arc<Redactor>>>,
}

impl std::fmt::Debug for Injector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
        f.debug_struct("Injector")
            .field("secrets", &names)
            .finish_non_exhaustive()
    }
}

/// Why a request is not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: String,
    /// The secret concerned, if one is.
    pub secret: Option<String>,
    /// The sandbox did something it must not (counts toward
    /// `max_denials`), as opposed to a secret's lifetime running out.
    pub charged: bool,
}

impl Refused {
    fn charged(reason: String, secret: Option<&str>) -> Refused {
        Refused {
            reason,
            secret: secret.map(str::to_string),
            charged: true,
        }
    }
}

/// A head ready for the real host.
pub struct Rewritten {
    /// Holds the values injected: zeroed when dropped.
    pub head: Zeroizing<Vec<u8>>,
    /// Names of the secrets injected, in header order.
    pub injected: Vec<String>,
    /// The client asked to close after this exchange.
    pub close: bool,
    /// The client waits for `100 Continue` before its body (the proxy
    /// answers it itself; `Expect` is not sent on).
    pub expect_continue: bool,
}

impl Injector {
    /// An injector for `secrets`, whose hosts the session CA `tls` must
    /// cover.
    pub fn new(tls: Arc<Tls>, secrets: Vec<InjectSecret>) -> Result<Injector, InjectError> {
        let mut entries: Vec<Entry> = Vec::with_capacity(secrets.len());
        for s in secrets {
            if entries.iter().any(|e| e.name == s.name) {
                return Err(InjectError::Duplicate(s.name));
            }
            if let Some(e) = entries.iter().find(|e| e.placeholder == s.placeholder) {
                return Err(InjectError::SamePlaceholder(e.name.clone(), s.name));
            }
            if s.hosts.is_empty() {
                return Err(InjectError::NoHosts(s.name));
            }
            if let Some((h, _)) = s.hosts.iter().find(|(h, _)| !tls.hosts().contains(h)) {
                return Err(InjectError::Unsigned {
                    name: s.name,
                    host: h.clone(),
                });
            }
            let (supplier, current) = match s.value {
                Supply::Value(value) => {
                    if !header_safe(&value) {
                        return Err(InjectError::BadValue(s.name));
                    }
                    let expires = s.expires;
                    (None, Some(Fetched { value, expires }))
                }
                Supply::Lazy(supplier) => (Some(supplier), None),
            };
            entries.push(Entry {
                name: s.name,
                placeholder: s.placeholder,
                hosts: s.hosts,
                header: s.header.to_ascii_lowercase(),
                form: s.form,
                max_uses: s.max_uses,
                uses: AtomicU32::new(0),
                revoked: AtomicBool::new(false),
                supplier,
                current: Mutex::new(current),
            });
        }
        let inj = Injector {
            tls,
            entries,
            redactors: Mutex::new(HashMap::new()),
        };
        let targets: Vec<(String, u16)> =
            inj.entries.iter().flat_map(|e| e.hosts.clone()).collect();
        inj.mask_again(&targets)?;
        Ok(inj)
    }

    /// Makes the redactors of `targets` again from the values held now.
    fn mask_again(&self, targets: &[(String, u16)]) -> Result<(), RedactError> {
        for t in targets {
            let held: Vec<Arc<SecretValue>> = self
                .entries
                .iter()
                .filter(|e| e.hosts.contains(t))
                .filter_map(|e| lock(&e.current).as_ref().map(|f| Arc::clone(&f.value)))
                .collect();
            let values: Vec<&SecretValue> = held.iter().map(AsRef::as_ref).collect();
            let redactor = Arc::new(Redactor::new(&values)?);
            lock(&self.redactors).insert(t.clone(), redactor);
        }
        Ok(())
    }

    /// Stops injecting every secret and hands each value fetched by a
    /// supplier back to it (its revoke runs). Called when the sandbox's
    /// proxy has stopped; dropping the injector does it too.
    pub fn finish(&self) {
        for e in &self.entries {
            e.revoked.store(true, Ordering::Release);
            let Some(supplier) = &e.supplier else {
                continue;
            };
            let held = lock(&e.current).take();
            if let Some(f) = held {
                supplier.release(&e.name, f.value);
            }
        }
    }

    pub fn tls(&self) -> &Arc<Tls> {
        &self.tls
    }

    /// Whether the proxy terminates TLS for `host:port` (some secret
    /// names it). Every other CONNECT stays an uninspected tunnel.
    pub fn intercepts(&self, host: &str, port: u16) -> bool {
        self.entries.iter().any(|e| {
            e.hosts
                .iter()
                .any(|(h, p)| h.eq_ignore_ascii_case(host) && *p == port)
        })
    }

    /// Stops injecting `name` (its revoke ran, or its call ended).
    /// Returns whether the injector had it.
    pub fn revoke(&self, name: &str) -> bool {
        self.entries
            .iter()
            .filter(|e| e.name == name)
            .map(|e| e.revoked.store(true, Ordering::Release))
            .count()
            > 0
    }

    /// The names of the secrets and their placeholders.
    pub fn placeholders(&self) -> impl Iterator<Item = (&str, &Placeholder)> {
        self.entries
            .iter()
            .map(|e| (e.name.as_str(), &e.placeholder))
    }

    /// Masks what is injected toward `host:port` in its responses (the
    /// values held now: ask after the request has been rewritten).
    pub fn redactor(&self, host: &str, port: u16) -> Option<Arc<Redactor>> {
        lock(&self.redactors)
            .get(&(host.to_ascii_lowercase(), port))
            .cloned()
    }

    /// The secret whose placeholder appears in `bytes` (any case, and
    /// inside a Basic credential), if one does: for request heads that are
    /// never rewritten (plain HTTP, or a tunnel the proxy does not open).
    pub fn find_placeholder(&self, bytes: &[u8]) -> Option<&str> {
        let mut hay = bytes.to_ascii_lowercase();
        for decoded in basic_credentials(bytes) {
            hay.push(b'\n');
            hay.extend(decoded.to_ascii_lowercase());
        }
        self.entries
            .iter()
            .find(|e| contains(&hay, e.placeholder.as_str().as_bytes()))
            .map(|e| e.name.as_str())
    }

    /// Rewrites `req`, read in the tunnel to `host:port` (lower case),
    /// for the real host: the secrets swapped in, hop-by-hop headers
    /// dropped, `Accept-Encoding: identity` (so responses can be masked).
    pub fn rewrite(
        &self,
        req: &Request,
        host: &str,
        port: u16,
        now: Instant,
    ) -> Result<Rewritten, Refused> {
        check_host(req, host, port)?;
        if has_token(&req.headers, "connection", "upgrade")
            || super::h1::values(&req.headers, "upgrade").next().is_some()
        {
            let msg = "protocol upgrades (WebSocket, h2c) are not relayed on a connection whose requests get credentials injected".to_string();
            return Err(Refused::charged(msg, None));
        }
        let named: Vec<String> = super::h1::values(&req.headers, "connection")
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        let mut out = Zeroizing::new(
            format!("{} {} {}\r\n", req.method, req.target, req.version.as_str()).into_bytes(),
        );
        let mut injected: Vec<String> = Vec::new();
        let mut unswapped = Zeroizing::new(out.to_vec());
        let mut expect_continue = false;
        for (name, value) in &req.headers {
            let lower = name.to_ascii_lowercase();
            unswapped.extend_from_slice(name.as_bytes());
            unswapped.push(b'\n');
            if HOP_BY_HOP.contains(&lower.as_str())
                || named.contains(&lower)
                || lower == "accept-encoding"
            {
                unswapped.extend_from_slice(value.as_bytes());
                unswapped.push(b'\n');
                continue;
            }
            if lower == "expect" && value.eq_ignore_ascii_case("100-continue") {
                expect_continue = true;
                continue;
            }
            let swapped = self.swap(&lower, value, host, port, now)?;
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            match swapped {
                Some((secret, new)) => {
                    if injected.contains(&secret) {
                        let msg = format!("two `{name}` headers carry the placeholder of secret `{secret}`; send it once");
                        return Err(Refused::charged(msg, Some(&secret)));
                    }
                    out.extend_from_slice(&new);
                    injected.push(secret);
                }
                None => {
                    out.extend_from_slice(value.as_bytes());
                    unswapped.extend_from_slice(value.as_bytes());
                    unswapped.push(b'\n');
                }
            }
            out.extend_from_slice(b"\r\n");
        }
        if let Some(secret) = self.find_placeholder(&unswapped) {
            return Err(self.misplaced(secret, host, port));
        }
        out.extend_from_slice(b"Accept-Encoding: identity\r\n");
        let close = req.wants_close();
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Ok(Rewritten {
            head: out,
            injected,
            close,
            expect_continue,
        })
    }

    /// The refusal for a placeholder found where it is not swapped.
    fn misplaced(&self, secret: &str, host: &str, port: u16) -> Refused {
        let Some(e) = self.entries.iter().find(|e| e.name == secret) else {
            return Refused::charged(format!("placeholder of `{secret}`"), Some(secret));
        };
        let hosts: Vec<String> = e.hosts.iter().map(|(h, p)| format!("{h}:{p}")).collect();
        let reason = if e.hosts.iter().any(|(h, p)| h == host && *p == port) {
            format!(
                "the placeholder of secret `{secret}` is somewhere it is never swapped; it is injected only as `{}: {}`",
                e.header,
                e.shape()
            )
        } else {
            format!(
                "the placeholder of secret `{secret}` was sent toward {host}:{port}, which is not one of its hosts ({})",
                hosts.join(", ")
            )
        };
        Refused::charged(reason, Some(secret))
    }

    /// The value for header `lower: value` toward `host:port`, when it
    /// is exactly one secret's declared shape with its placeholder.
    fn swap(
        &self,
        lower: &str,
        value: &str,
        host: &str,
        port: u16,
        now: Instant,
    ) -> Result<Option<(String, Vec<u8>)>, Refused> {
        for e in &self.entries {
            if e.header != lower || !e.hosts.iter().any(|(h, p)| h == host && *p == port) {
                continue;
            }
            if !e.matches(value) {
                continue;
            }
            let value = e.admit(now, || {
                self.mask_again(&e.hosts).map_err(|err| Refused {
                    reason: format!("secret `{}`: {err}", e.name),
                    secret: Some(e.name.clone()),
                    charged: false,
                })
            })?;
            return Ok(Some((e.name.clone(), e.present(&value))));
        }
        Ok(None)
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Entry {
    fn shape(&self) -> String {
        match &self.form {
            Presentation::Format { before, after } => format!("{before}<placeholder>{after}"),
            Presentation::Basic { user } => format!("Basic base64({user}:<placeholder>)"),
        }
    }

    /// Whether `value` is exactly this secret's shape with its placeholder.
    fn matches(&self, value: &str) -> bool {
        let p = self.placeholder.as_str();
        match &self.form {
            Presentation::Format { before, after } => {
                value.len() == before.len() + p.len() + after.len()
                    && value
                        .get(..before.len())
                        .is_some_and(|b| b.eq_ignore_ascii_case(before))
                    && value.get(before.len()..before.len() + p.len()) == Some(p)
                    && value
                        .get(before.len() + p.len()..)
                        .is_some_and(|a| a.eq_ignore_ascii_case(after))
            }
            Presentation::Basic { user } => {
                basic_payload(value).is_some_and(|d| *d == format!("{user}:{p}").into_bytes())
            }
        }
    }

    /// The header value with the real secret.
    fn present(&self, value: &SecretValue) -> Vec<u8> {
        let v = value.expose();
        match &self.form {
            Presentation::Format { before, after } => {
                let mut out = Vec::with_capacity(before.len() + v.len() + after.len());
                out.extend_from_slice(before.as_bytes());
                out.extend_from_slice(v);
                out.extend_from_slice(after.as_bytes());
                out
            }
            Presentation::Basic { user } => {
                let mut plain = Zeroizing::new(Vec::with_capacity(user.len() + 1 + v.len()));
                plain.extend_from_slice(user.as_bytes());
                plain.push(b':');
                plain.extend_from_slice(v);
                let mut out = b"Basic ".to_vec();
                out.extend_from_slice(STANDARD.encode(plain.as_slice()).as_bytes());
                out
            }
        }
    }

    /// The lifetime checks, counting a use when they pass, and the value
    /// to inject: the one held, or (from a supplier, when none is held or
    /// it expired) a fresh one, after which `fetched` runs (the
    /// injector's masks are made again). A refusal takes no use.
    fn admit(
        &self,
        now: Instant,
        fetched: impl FnOnce() -> Result<(), Refused>,
    ) -> Result<Arc<SecretValue>, Refused> {
        let refuse = |why: String| Refused {
            reason: format!("secret `{}` {why}", self.name),
            secret: Some(self.name.clone()),
            charged: false,
        };
        if self.revoked.load(Ordering::Acquire) {
            return Err(refuse("was revoked".into()));
        }
        if let Some(max) = self.max_uses {
            let taken = self
                .uses
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                });
            if taken.is_err() {
                return Err(refuse(format!("reached its max_uses = {max}")));
            }
        }
        let got = self.value(now, &refuse).and_then(|(v, fresh)| {
            if fresh {
                fetched()?;
            }
            Ok(v)
        });
        if got.is_err() && self.max_uses.is_some() {
            self.uses.fetch_sub(1, Ordering::AcqRel);
        }
        got
    }

    /// The value held now, or a fresh one from the supplier (`true`).
    fn value(
        &self,
        now: Instant,
        refuse: &dyn Fn(String) -> Refused,
    ) -> Result<(Arc<SecretValue>, bool), Refused> {
        let mut current = lock(&self.current);
        let live = current
            .as_ref()
            .filter(|f| f.expires.is_none_or(|t| now < t))
            .map(|f| Arc::clone(&f.value));
        match (live, &self.supplier) {
            (Some(v), _) => Ok((v, false)),
            (None, None) => Err(refuse("has expired (its ttl ran out)".into())),
            (None, Some(supplier)) => {
                // The expired value goes back (revoked) once the fetch is
                // done; a failed fetch leaves none.
                let old = current.take();
                let got = supplier.fetch(&self.name);
                if let Some(old) = old {
                    supplier.release(&self.name, old.value);
                }
                let f = got.map_err(|e| refuse(format!("could not be fetched: {e}")))?;
                if !header_safe(&f.value) {
                    supplier.release(&self.name, f.value);
                    return Err(refuse("has a value that is empty or holds a control character (CR, LF, NUL...), so it cannot go in an HTTP header".into()));
                }
                let v = Arc::clone(&f.value);
                *current = Some(f);
                Ok((v, true))
            }
        }
    }
}

/// Whether a value can stand in a header: not empty, no control bytes.
fn header_safe(v: &SecretValue) -> bool {
    let v = v.expose();
    !v.is_empty() && !v.iter().any(|&b| b < 0x20 || b == 0x7f)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The state stays consistent whatever a panicking holder did.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The one `Host` must name the tunnel's host and port.
fn check_host(req: &Request, host: &str, port: u16) -> Result<(), Refused> {
    let hosts: Vec<&str> = super::h1::values(&req.headers, "host").collect();
    let [given] = hosts.as_slice() else {
        let msg = format!("a request in the tunnel to {host}:{port} must have exactly one Host header (it has {})", hosts.len());
        return Err(Refused::charged(msg, None));
    };
    // Without a port, Host means https' default (RFC 9110 7.2).
    let (name, given_port) = match given.rsplit_once(':') {
        Some((n, p)) => (n, p.parse::<u16>().ok()),
        None => (*given, Some(443)),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if !name.eq_ignore_ascii_case(host) || given_port != Some(port) {
        let msg = format!(
            "Host `{}` is not the tunnel's host {host}:{port}; one connection carries requests to one host",
            given.escape_debug()
        );
        return Err(Refused::charged(msg, None));
    }
    Ok(())
}

/// The decoded payload of a `Basic` credential.
fn basic_payload(value: &str) -> Option<Zeroizing<Vec<u8>>> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    STANDARD
        .decode(rest.trim_start_matches(' '))
        .ok()
        .map(Zeroizing::new)
}

/// Every decodable Basic credential in a head's text.
fn basic_credentials(bytes: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let text = String::from_utf8_lossy(bytes);
    text.split(['\n', '\r', ':', ','])
        .filter_map(|v| basic_payload(v.trim()))
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
#[path = "inject_tests.rs"]
mod tests;
