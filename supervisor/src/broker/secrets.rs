//! Secrets for one call: fetched when the call is allowed, delivered to
//! the tool only (environment or a 0400 file), revoked exactly once when
//! the call ends, whatever ends it.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use zeroize::Zeroize;

use super::Session;
use crate::identity::{Binding, CallBinding};
use crate::profile::{Delivery, SecretSource, SecretSpec, Tool, ToolSecret};
use crate::secrets::provider::{fetch, fetch_for_proxy, revoke, FetchError, Sources};
use crate::secrets::SecretValue;
use crate::sys::fd::sealed_memfd;

/// A fetched value shared by a cache entry and the calls using it.
type Shared = Arc<SecretValue>;

/// Session-wide secret state: uses per secret, and cached values.
#[derive(Default)]
pub struct SessionSecrets {
    uses: Mutex<HashMap<String, u32>>,
    cache: Mutex<HashMap<String, (Shared, Instant)>>,
    /// Values handed to the agent (`expose`): revoked at session end.
    kept: Mutex<Vec<(String, Shared)>>,
}

impl SessionSecrets {
    /// Counts one use of `spec` against its `max_uses`, or says why the
    /// session may not have another.
    pub(super) fn take_use(&self, spec: &SecretSpec) -> Result<(), String> {
        let Some(max) = spec.max_uses else {
            return Ok(());
        };
        let mut uses = self.uses.lock().unwrap_or_else(|e| e.into_inner());
        let n = uses.entry(spec.name.clone()).or_insert(0);
        if *n >= max {
            return Err(format!(
                "secret `{}` reached its max_uses = {max} for this session",
                spec.name
            ));
        }
        *n += 1;
        Ok(())
    }

    /// Holds a value handed to the agent so its revoke runs at session end.
    pub fn keep_until_end(&self, name: &str, value: Shared) {
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.to_string(), value));
    }

    /// Revokes every cached or exposed value (at session end).
    pub fn revoke_cached(&self, session: &Session) {
        let mut held: Vec<(String, Shared)> = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(k, (v, _))| (k, v))
            .collect();
        held.append(&mut self.kept.lock().unwrap_or_else(|e| e.into_inner()));
        for (name, value) in held {
            if let Some(spec) = session.profile.secrets.get(&name) {
                run_revoke(session, spec, &value);
            }
        }
    }
}

struct Held {
    spec: SecretSpec,
    value: Shared,
    delivery: Delivery,
    expires: Option<Instant>,
    /// Cached values are revoked at session end, not per call.
    cached: bool,
}

/// The secrets of one call. Dropping it revokes them (once).
pub struct CallSecrets<'s> {
    session: &'s Session,
    held: Vec<Held>,
}

impl<'s> CallSecrets<'s> {
    /// Fetches every secret `tool` lists, or says why the call cannot have
    /// them (the reason never holds a value). The call is not named, so a
    /// call-bound identity secret cannot be had this way (see
    /// [`CallSecrets::fetch_for`]).
    pub fn fetch(session: &'s Session, tool: &Tool) -> Result<CallSecrets<'s>, String> {
        CallSecrets::fetch_for(session, &tool.secrets, None)
    }

    /// Fetches `wanted` for one call; `call` binds identity tokens to it.
    pub fn fetch_for(
        session: &'s Session,
        wanted: &[ToolSecret],
        call: Option<CallBinding<'_>>,
    ) -> Result<CallSecrets<'s>, String> {
        let mut held = CallSecrets {
            session,
            held: Vec::new(),
        };
        for wanted in wanted {
            let Some(spec) = session.profile.secrets.get(&wanted.name) else {
                return Err(format!("secret `{}` is not declared", wanted.name));
            };
            // A proxy-delivered secret is never fetched for the process:
            // the call's proxy fetches it when a request needs it
            // (`super::proxied`), and the tool holds a placeholder.
            if spec.proxy.is_some() {
                continue;
            }
            session.secrets.take_use(spec)?;
            let (value, expires, cached) =
                obtain(session, spec, &|| fetch_now(session, spec, call))?;
            held.held.push(Held {
                spec: spec.clone(),
                value,
                delivery: wanted.delivery,
                expires,
                cached,
            });
        }
        Ok(held)
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    pub fn names(&self) -> Vec<String> {
        self.held.iter().map(|h| h.spec.name.clone()).collect()
    }

    pub fn values(&self) -> Vec<&SecretValue> {
        self.held.iter().map(|h| h.value.as_ref()).collect()
    }

    /// The first expiry among the secrets, and which secret it is.
    pub fn expiry(&self) -> Option<(Instant, &str)> {
        self.held
            .iter()
            .filter_map(|h| h.expires.map(|e| (e, h.spec.name.as_str())))
            .min_by_key(|(e, _)| *e)
    }

    /// `NAME=value` (env delivery) or `NAME=/proc/self/fd/N` (file
    /// delivery) entries for the tool's environment, as C strings the
    /// caller must wipe, and the descriptors the tool must keep: each file
    /// is a sealed 0400 memfd, so no secret ever lies on a filesystem (and
    /// nothing is left behind if cordon is killed).
    pub fn environment(&self) -> std::io::Result<(Vec<CString>, Vec<OwnedFd>)> {
        let mut out = Vec::new();
        let mut fds = Vec::new();
        for h in &self.held {
            let mut entry = format!("{}=", h.spec.name).into_bytes();
            match h.delivery {
                Delivery::Env => entry.extend_from_slice(h.value.expose()),
                Delivery::File => {
                    let name = CString::new(format!("cordon-secret-{}", h.spec.name))
                        .map_err(std::io::Error::other)?;
                    let fd = sealed_memfd(&name, h.value.expose()).map_err(std::io::Error::from)?;
                    entry.extend_from_slice(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_bytes());
                    fds.push(fd);
                }
            }
            match CString::new(entry) {
                Ok(c) => out.push(c),
                Err(e) => {
                    let mut bytes = e.into_vec();
                    bytes.zeroize();
                    return Err(std::io::Error::other(format!(
                        "secret `{}` contains a NUL byte and cannot go in an environment variable; deliver it as a file",
                        h.spec.name
                    )));
                }
            }
        }
        Ok((out, fds))
    }
}

impl Drop for CallSecrets<'_> {
    fn drop(&mut self) {
        for h in &self.held {
            if !h.cached {
                run_revoke(self.session, &h.spec, &h.value);
            }
        }
    }
}

/// The value, from the cache when allowed and fresh, else from `fetch`
/// now; with its expiry, and whether the cache holds it (then it is
/// revoked at session end, not by its user).
pub(super) fn obtain(
    session: &Session,
    spec: &SecretSpec,
    fetch: &dyn Fn() -> Result<SecretValue, FetchError>,
) -> Result<(Shared, Option<Instant>, bool), String> {
    if spec.cache {
        let cache = session
            .secrets
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((v, expires)) = cache.get(&spec.name) {
            if Instant::now() < *expires {
                return Ok((Arc::clone(v), Some(*expires), true));
            }
        }
    }
    let value = fetch().map_err(|e| format!("secret `{}` could not be fetched: {e}", spec.name))?;
    let value = Arc::new(value);
    let expires = spec.ttl.map(|t| Instant::now() + t);
    if let (true, Some(e)) = (spec.cache, expires) {
        let mut cache = session
            .secrets
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // A replaced, expired entry is revoked now.
        if let Some((old, _)) = cache.insert(spec.name.clone(), (Arc::clone(&value), e)) {
            drop(cache);
            run_revoke(session, spec, &old);
        }
        return Ok((value, expires, true));
    }
    Ok((value, expires, false))
}

/// Fetches `spec` now for a process, from cordon's own environment and
/// credentials directory (never the agent's); an identity token is minted
/// for `session`, bound to `call` when it names one.
pub(super) fn fetch_now(
    session: &Session,
    spec: &SecretSpec,
    call: Option<CallBinding<'_>>,
) -> Result<SecretValue, FetchError> {
    with_sources(session, spec, call, &|sources| fetch(spec, sources))
}

/// Fetches a proxy-delivered `spec` now, for an egress proxy's injector
/// (never for a process).
pub(super) fn fetch_for_injector(
    session: &Session,
    spec: &SecretSpec,
) -> Result<SecretValue, FetchError> {
    with_sources(session, spec, None, &|sources| {
        fetch_for_proxy(spec, sources)
    })
}

/// Runs `f` with the places a fetch of `spec` may look.
fn with_sources(
    session: &Session,
    spec: &SecretSpec,
    call: Option<CallBinding<'_>>,
    f: &dyn Fn(&Sources<'_>) -> Result<SecretValue, FetchError>,
) -> Result<SecretValue, FetchError> {
    let env = |name: &str| std::env::var_os(name);
    let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let identity = match &spec.source {
        SecretSource::Identity(_) => {
            let issuer = session.issuer().map(|i| i.as_ref()).map_err(String::as_str);
            let binding = Binding {
                session: &session.id,
                profile: &session.profile.name,
                intent: session.intent.as_deref(),
                chain: &session.chain,
                call,
            };
            Some((issuer, binding))
        }
        _ => None,
    };
    let sources = Sources {
        env: &env,
        credentials: creds.as_deref(),
        identity,
    };
    f(&sources)
}

pub(super) fn run_revoke(session: &Session, spec: &SecretSpec, value: &SecretValue) {
    let Some(argv) = &spec.revoke else { return };
    let result = revoke(argv, value, spec.fetch_timeout);
    let rec = crate::audit::Record::new(crate::audit::Kind::Secret, &session.id);
    // A revoke is recorded as a detail of the session, never with the value.
    let rec = match &result {
        Ok(()) => rec.detail(format!("secret `{}` revoked", spec.name)),
        Err(e) => rec.detail(format!("secret `{}`: revoke failed: {e}", spec.name)),
    };
    if let Err(e) = &result {
        tracing::warn!(secret = %spec.name, error = %e, "revoke failed");
    }
    let _ = session.record(rec.secrets(vec![spec.name.clone()]));
}
