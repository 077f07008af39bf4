//! The broker: the agent never runs a declared tool itself. It runs
//! `cordon-shim` (linked under the tool's name in a directory first on its
//! PATH), which sends the call here over the session's Unix socket. Each
//! call is decided for this exact argv, cwd and session, recorded, and, if
//! allowed, run outside the agent's sandbox under the tool's own.
//!
//! Threads: one accepts connections; each call gets its own thread, up to
//! [`MAX_IN_FLIGHT`] at once (more are refused at once, so a flood from one
//! agent costs it, not the supervisor).

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

use cordon_shim::protocol::Reply;

use crate::audit::{AuditError, AuditLog, Record};
use crate::policy::Policy;
use crate::process::Killer;
use crate::profile::{Placeholders, Profile};
use crate::sandbox::Host;

pub use peer::pid_namespace;

/// Calls served at once per session; more are refused with a clear error.
pub const MAX_IN_FLIGHT: usize = 64;
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
    pub denials: AtomicU32,
    /// Connections refused as foreign (not charged to this session).
    pub refused_peers: AtomicU32,
    pub calls: Mutex<HashMap<String, u32>>,
    pub secrets: secrets::SessionSecrets,
    /// Pending approval requests and grants.
    pub approvals: crate::approval::Queue,
    /// Ancestor sessions of a sub-agent, root first; empty for a root.
    pub chain: Vec<String>,
    /// `cordon-shim`, for the sessions of sub-agents.
    pub shim: Option<PathBuf>,
    /// Sub-agent sessions running now.
    pub subs: Mutex<Vec<std::sync::Weak<Session>>>,
}

impl Session {
    /// Appends a record with this session's profile and identity (and its
    /// chain of ancestors, for a sub-agent).
    pub fn record(&self, rec: Record) -> Result<String, AuditError> {
        let rec = rec.profile(&self.profile.name);
        let rec = if self.chain.is_empty() {
            rec
        } else {
            rec.chain(self.chain.clone())
        };
        self.audit.append(&rec)
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
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "broker: accept failed");
                continue;
            }
        };
        if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            let _ = stream.set_nonblocking(true);
            wire::send_reply(
                &mut stream,
                &Reply::Denied {
                    reason: format!("too many calls at once (at most {MAX_IN_FLIGHT} per session)"),
                },
            );
            continue;
        }
        let session = Arc::clone(session);
        let counter = Arc::clone(in_flight);
        let spawned = std::thread::Builder::new()
            .name("cordon-call".into())
            .stack_size(CALL_STACK)
            .spawn(move || {
                call::serve(&session, stream);
                counter.fetch_sub(1, Ordering::AcqRel);
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
