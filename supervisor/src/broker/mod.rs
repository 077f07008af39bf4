//! The broker: the agent never runs a declared tool itself. It runs
//! `cordon-shim` (linked under the tool's name in a directory first on its
//! PATH), which sends the call here over the session's Unix socket. Each
//! call is decided for this exact argv, cwd and session, recorded, and, if
//! allowed, run outside the agent's sandbox under the tool's own.
//!
//! Threads: one accepts connections; each call gets its own thread, up to
//! [`MAX_IN_FLIGHT`] at once (more wait in the listen queue, unaccepted, so
//! a flood from one agent costs it time, not the supervisor CPU), and all
//! but the first [`FOREGROUND_CALLS`] of them at a low priority.

mod approve;
mod call;
pub mod control;
mod expose;
mod peer;
pub mod prompt;
mod pump;
pub mod secrets;
mod spawn;
pub mod tool;
mod wire;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::audit::{AuditError, AuditLog, Record};
use crate::policy::Policy;
use crate::process::Killer;
use crate::profile::{Placeholders, Profile};
use crate::sandbox::Host;

pub use peer::pid_namespace;

/// Calls served at once per session; further connections wait, unaccepted,
/// until one ends.
pub const MAX_IN_FLIGHT: usize = 64;
/// Calls a session may have in flight at normal scheduling priority. Its
/// further concurrent calls (their call thread and the tool it starts) run
/// at [`BACKGROUND_NICE`]: on an idle machine as fast as ever, but under
/// contention an agent that floods its broker gets about one call's share
/// of the CPU, not one share per connection, and other sessions keep
/// their latency (BENCHMARKS.md, "Load with a flooding agent").
pub const FOREGROUND_CALLS: usize = 1;
/// The nice value of a session's calls beyond [`FOREGROUND_CALLS`].
pub const BACKGROUND_NICE: i32 = 19;
/// Stack of a call thread: it only decides and waits on the tool.
const CALL_STACK: usize = 256 * 1024;

/// Everything a call needs to know about its session.
pub struct Session {
    pub id: String,
    pub profile: Arc<Profile>,
    pub policy: Policy,
    pub intent: Option<String>,
    pub placeholders: Placeholders,
    pub host: Host,
    /// Kills the agent's whole tree (divergence).
    pub killer: Arc<Killer>,
    pub audit: Arc<AuditLog>,
    /// The uid every peer must have.
    pub uid: u32,
    /// The agent's pid namespace: only processes in it are served.
    pub pid_ns: u64,
    /// Canonical directories each tool's calls may run in.
    pub tool_cwds: HashMap<String, Vec<PathBuf>>,
    /// The session directory (calls get private subdirectories).
    pub root: PathBuf,
    pub next_call: AtomicU64,
    /// Refusals so far (shared with the session's egress proxies).
    pub denials: Arc<AtomicU32>,
    /// Connections refused as foreign (not charged to this session).
    pub refused_peers: AtomicU32,
    pub calls: Mutex<HashMap<String, u32>>,
    pub secrets: secrets::SessionSecrets,
    /// Appends that failed (each refused its call), for the session's end.
    pub audit_failures: AuditFailures,
    /// Pending approval requests and grants.
    pub approvals: crate::approval::Queue,
    /// Ancestor sessions of a sub-agent, root first; empty for a root.
    pub chain: Vec<String>,
    /// `cordon-shim`, for the sessions of sub-agents.
    pub shim: Option<PathBuf>,
    /// Sub-agent sessions running now.
    pub subs: Mutex<Vec<std::sync::Weak<Session>>>,
}

/// The audit appends a session could not make: how many, and the first
/// error (the reason an operator needs; later ones usually repeat it).
#[derive(Default)]
pub struct AuditFailures {
    count: AtomicU32,
    first: Mutex<Option<String>>,
}

impl AuditFailures {
    fn note(&self, e: &AuditError) {
        if self.count.fetch_add(1, Ordering::Relaxed) == 0 {
            *self.first.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
    }

    /// How many appends failed, and the first failure's message.
    pub fn summary(&self) -> Option<(u32, String)> {
        let n = self.count.load(Ordering::Relaxed);
        let first = self
            .first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        (n > 0).then_some((n, first))
    }
}

impl Session {
    /// Appends a record with this session's profile and identity (and its
    /// chain of ancestors, for a sub-agent). A failure is counted and
    /// logged here; the caller decides what it refuses because of it.
    pub fn record(&self, rec: Record) -> Result<String, AuditError> {
        let rec = rec.profile(&self.profile.name);
        let rec = if self.chain.is_empty() {
            rec
        } else {
            rec.chain(self.chain.clone())
        };
        let appended = self.audit.append(&rec);
        if let Err(e) = &appended {
            tracing::error!(session = %self.id, error = %e, "audit: append failed");
            self.audit_failures.note(e);
        }
        appended
    }

    /// This session and every sub-agent session below it.
    pub fn tree(self: &Arc<Session>) -> Vec<Arc<Session>> {
        let mut out = vec![Arc::clone(self)];
        let mut i = 0;
        while let Some(s) = out.get(i).cloned() {
            let subs = s.subs.lock().unwrap_or_else(|e| e.into_inner());
            out.extend(subs.iter().filter_map(std::sync::Weak::upgrade));
            i += 1;
        }
        out
    }

    /// A private directory for one call.
    pub fn call_dir(&self, call: u64) -> PathBuf {
        self.root.join("calls").join(call.to_string())
    }
}

/// A bound socket and the shim links, made before the agent starts so its
/// first call finds them.
pub struct Prepared {
    listener: UnixListener,
}

/// Binds the session socket and links each declared tool to the shim.
pub fn prepare(
    profile: &Profile,
    shim_dir: &Path,
    socket: &Path,
    shim: &Path,
) -> std::io::Result<Prepared> {
    std::fs::create_dir(shim_dir)?;
    for name in profile.tools.keys() {
        std::os::unix::fs::symlink(shim, shim_dir.join(name))?;
    }
    // `cordon-shim secret NAME` by its own name, unless a tool took it.
    if !profile.tools.contains_key("cordon-shim") {
        std::os::unix::fs::symlink(shim, shim_dir.join("cordon-shim"))?;
    }
    let listener = UnixListener::bind(socket)?;
    // The session directory is 0700 already; the socket itself too.
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(Prepared { listener })
}

/// A running broker.
pub struct Broker {
    session: Arc<Session>,
    in_flight: Arc<AtomicUsize>,
}

impl Broker {
    /// At session end: waits (at most `limit`) for calls still running
    /// (their shims died with the agent, so their tools are being
    /// cancelled and their secrets revoked), then revokes the secrets that
    /// outlive calls (cached or exposed ones).
    pub fn finish(&self, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        while self.in_flight.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        self.session.secrets.revoke_cached(&self.session);
    }

    /// The audit appends this session's broker could not make.
    pub fn audit_failures(&self) -> Option<(u32, String)> {
        self.session.audit_failures.summary()
    }
}

impl Broker {
    /// The session this broker serves.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }
}

/// Starts accepting calls for `session`.
pub fn start(prepared: Prepared, session: Arc<Session>) -> std::io::Result<Broker> {
    let listener = prepared.listener;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (s, f) = (Arc::clone(&session), Arc::clone(&in_flight));
    std::thread::Builder::new()
        .name("cordon-broker".into())
        .spawn(move || accept_loop(&listener, &s, &f))?;
    Ok(Broker { session, in_flight })
}

fn accept_loop(listener: &UnixListener, session: &Arc<Session>, in_flight: &Arc<AtomicUsize>) {
    let acceptor = std::thread::current();
    loop {
        // Backpressure: with every slot taken, accept nothing. Further
        // connections wait in the kernel's listen queue (and, once it is
        // full, in their connect()), costing the supervisor no CPU; a
        // flooding agent's threads sleep instead of spinning through
        // refusals. A call that ends wakes this thread.
        while in_flight.load(Ordering::Acquire) >= MAX_IN_FLIGHT {
            std::thread::park_timeout(std::time::Duration::from_millis(50));
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "broker: accept failed");
                continue;
            }
        };
        // Only this thread adds, so `already` < MAX_IN_FLIGHT.
        let already = in_flight.fetch_add(1, Ordering::AcqRel);
        let session = Arc::clone(session);
        let counter = Arc::clone(in_flight);
        let acceptor = acceptor.clone();
        let spawned = std::thread::Builder::new()
            .name("cordon-call".into())
            .stack_size(CALL_STACK)
            .spawn(move || {
                if already >= FOREGROUND_CALLS {
                    if let Err(e) = crate::sys::lower_thread_priority(BACKGROUND_NICE) {
                        tracing::warn!(error = %e, "broker: cannot lower a call's priority");
                    }
                }
                call::serve(&session, stream);
                if counter.fetch_sub(1, Ordering::AcqRel) == MAX_IN_FLIGHT {
                    acceptor.unpark();
                }
            });
        if let Err(e) = spawned {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(error = %e, "broker: cannot start a call thread");
        }
    }
}

/// The canonical `cwd` trees of every tool, expanded for this session.
pub fn tool_cwds(profile: &Profile, values: &Placeholders) -> HashMap<String, Vec<PathBuf>> {
    profile
        .tools
        .iter()
        .map(|(name, tool)| {
            let dirs: Vec<PathBuf> = if tool.sandbox.cwd.is_empty() {
                vec![values.workspace.clone()]
            } else {
                tool.sandbox
                    .cwd
                    .iter()
                    .map(|r| r.path.expand(values))
                    .collect()
            };
            (name.clone(), call::canonical_dirs(&dirs))
        })
        .collect()
}
