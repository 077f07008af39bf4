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
mod call_env;
pub mod control;
mod exec;
mod expose;
pub mod handoff;
mod leak;
mod mcp;
mod mcp_call;
mod mcp_server;
mod peer;
pub mod prompt;
mod proxied;
mod pump;
mod refuse;
pub mod secrets;
mod serve;
mod session;
mod spawn;
pub mod tool;
mod wire;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::profile::Profile;

pub use peer::{namespace_of_child, pid_namespace};
pub use proxied::agent_injector;
pub use session::{tool_cwds, AuditFailures, Session, SessionError, SessionParts};

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
    Session::set_this(&session);
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
    let handoff = Arc::clone(&session.handoff);
    loop {
        // Backpressure: with every slot taken, accept nothing. Further
        // connections wait in the kernel's listen queue (and, once it is
        // full, in their connect()) or in the handoff queue (then their
        // connect fails with EAGAIN), costing the supervisor no CPU; a
        // flooding agent's threads sleep instead of spinning through
        // refusals. A call that ends wakes this thread.
        while in_flight.load(Ordering::Acquire) >= MAX_IN_FLIGHT {
            std::thread::park_timeout(std::time::Duration::from_millis(50));
        }
        let Some(incoming) = next_incoming(listener, &handoff) else {
            continue;
        };
        // Only this thread adds, so `already` < MAX_IN_FLIGHT.
        let already = in_flight.fetch_add(1, Ordering::AcqRel);
        let session = Arc::clone(session);
        let counter = Arc::clone(in_flight);
        let acceptor = acceptor.clone();
        let stack = match session.cedar {
            Some(_) => crate::policy::cedar::STACK,
            None => CALL_STACK,
        };
        let spawned = std::thread::Builder::new()
            .name("cordon-call".into())
            .stack_size(stack)
            .spawn(move || {
                if already >= FOREGROUND_CALLS {
                    if let Err(e) = crate::sys::lower_thread_priority(BACKGROUND_NICE) {
                        tracing::warn!(error = %e, "broker: cannot lower a call's priority");
                    }
                }
                serve::serve(&session, incoming);
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

/// The next connection: a handed one first (its caller is waiting on a
/// connect that already returned), else one accepted on the socket.
fn next_incoming(listener: &UnixListener, handoff: &handoff::Handoff) -> Option<serve::Incoming> {
    use std::os::fd::AsRawFd;
    if let Some(h) = handoff.take() {
        return Some(serve::Incoming::Handed(h));
    }
    let mut fds = [
        libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: handoff.wake_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    if let Err(e) = crate::sys::fd::poll(&mut fds, -1) {
        tracing::warn!(error = %e, "broker: poll failed");
        std::thread::sleep(std::time::Duration::from_millis(10));
        return None;
    }
    if fds[1].revents != 0 {
        handoff.clear();
        return handoff.take().map(serve::Incoming::Handed);
    }
    if fds[0].revents == 0 {
        return None;
    }
    match listener.accept() {
        Ok((s, _)) => Some(serve::Incoming::Accepted(s)),
        Err(e) => {
            tracing::warn!(error = %e, "broker: accept failed");
            None
        }
    }
}

/// `cordon-shim`, installed next to `cordon`.
pub fn shim_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let shim = exe.parent()?.join("cordon-shim");
    shim.is_file().then_some(shim)
}
