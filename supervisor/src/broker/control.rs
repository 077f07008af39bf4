//! The operator control socket: `cordon approvals`, `cordon approve ID`,
//! `cordon deny ID` talk to a running cordon here.
//!
//! The socket is 0600 in a 0700 directory of cordon's user, but Landlock
//! does not govern connecting to pathname Unix sockets and an agent runs
//! as the same uid, so the peer is checked on every connection:
//! SO_PEERCRED's uid must be cordon's user or root, and the process must
//! live in cordon's own pid namespace and not descend from cordon (the
//! agent and every tool run in namespaces of their own, below cordon). A
//! process of this session's sandbox that connects is refused, recorded,
//! and treated as divergence (`[approval] self_approval`).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::peer::{pid_namespace, pidfd_pid};
use super::Session;
use crate::approval::grant::GrantSpec;
use crate::approval::names::describe_uid;
use crate::approval::wire::{ControlReply, ControlRequest, MAX_LINE};
use crate::approval::{printable, Answer};
use crate::audit::{Decision, Kind, Record};
use crate::process::Violation;
use crate::profile::DivergenceAction;
use crate::sys::fd::peer_cred;

/// How long an operator command may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Refused-peer records per session before they are only counted.
const MAX_REFUSED_RECORDS: u32 = 100;

/// The bound socket; the file is removed when this is dropped.
pub struct ControlSocket {
    path: PathBuf,
    listener: Option<UnixListener>,
    /// Connections being answered: cordon waits for them before it exits,
    /// so an operator whose answer was taken also hears so.
    busy: Arc<AtomicUsize>,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let until = Instant::now() + Duration::from_secs(2);
        while self.busy.load(Ordering::Acquire) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl ControlSocket {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Binds the control socket at `path` (mode 0600). A stale socket of a
/// dead cordon is replaced; a live one, or any other file, is an error.
pub fn bind(path: &Path) -> Result<ControlSocket, String> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!("{} exists and is not a socket", path.display()));
        }
        match UnixStream::connect(path) {
            Ok(_) => return Err(format!("{} is in use by another cordon", path.display())),
            Err(_) => {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot bind the control socket {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot make {} 0600: {e}", path.display()))?;
    Ok(ControlSocket {
        path: path.to_path_buf(),
        listener: Some(listener),
        busy: Arc::new(AtomicUsize::new(0)),
    })
}

/// The sessions a control socket answers for: one for `cordon run`; a
/// daemon adds each session it starts. Sub-agent sessions are reached
/// through their root's [`Session::tree`].
#[derive(Default)]
pub struct Registry {
    roots: Mutex<Vec<Weak<Session>>>,
}

impl Registry {
    /// Answers for `session` (and its sub-agents) from now on.
    pub fn add(&self, session: &Arc<Session>) {
        session.approvals.set_operators();
        let mut roots = self.roots.lock().unwrap_or_else(|e| e.into_inner());
        roots.retain(|w| w.strong_count() > 0);
        roots.push(Arc::downgrade(session));
    }

    /// The live root sessions.
    fn roots(&self) -> Vec<Arc<Session>> {
        let roots = self.roots.lock().unwrap_or_else(|e| e.into_inner());
        roots.iter().filter_map(Weak::upgrade).collect()
    }
}

/// Serves the control socket for the sessions of `registry` on a thread
/// of its own.
pub fn start(socket: &mut ControlSocket, registry: Arc<Registry>) -> std::io::Result<()> {
    let Some(listener) = socket.listener.take() else {
        return Ok(());
    };
    let busy = Arc::clone(&socket.busy);
    std::thread::Builder::new()
        .name("cordon-control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        busy.fetch_add(1, Ordering::AcqRel);
                        serve(s, &registry.roots());
                        busy.fetch_sub(1, Ordering::AcqRel);
                    }
                    Err(e) => tracing::warn!(error = %e, "control: accept failed"),
                }
            }
        })?;
    Ok(())
}

/// Who is on the other end.
enum Peer {
    Operator(u32),
    /// A process of a session's sandbox (agent, tool, sub-agent):
    /// divergence of that (root) session.
    Agent(Arc<Session>, u32, String),
    Refused(String),
}

fn check_peer(stream: &UnixStream, roots: &[Arc<Session>]) -> Peer {
    let proc_root = Path::new("/proc");
    let cred = match peer_cred(stream.as_raw_fd()) {
        Ok(c) => c,
        Err(e) => return Peer::Refused(format!("cannot read the peer's credentials: {e}")),
    };
    if cred.pid <= 0 {
        return Peer::Refused("the peer's process is outside cordon's pid namespace".into());
    }
    let me = crate::sys::process::getpid();
    let ns = pid_namespace(proc_root, cred.pid);
    let own_ns = pid_namespace(proc_root, me);
    let descends = descends_from(proc_root, cred.pid, me);
    if pidfd_pid(proc_root, &cred.pidfd) != Some(cred.pid) {
        return Peer::Refused(format!("peer pid {} exited while being checked", cred.pid));
    }
    let pid = cred.pid.unsigned_abs();
    let what = format!("a process of the sandbox (pid {pid}) connected to the operator control socket, trying to answer approval requests");
    let owner = ns.and_then(|ns| {
        roots
            .iter()
            .find(|r| r.tree().iter().any(|s| s.pid_ns == ns))
            .cloned()
    });
    if let Some(root) = owner {
        return Peer::Agent(root, pid, what);
    }
    if descends && ns != own_ns {
        // A tool's process (its own pid namespace, below cordon). With one
        // session it is that session's; with several it cannot be told
        // apart cheaply, and is refused without a kill.
        if let [only] = roots {
            return Peer::Agent(Arc::clone(only), pid, what);
        }
        return Peer::Refused(format!("peer pid {pid} is a process of a sandbox"));
    }
    if ns.is_none() || ns != own_ns {
        return Peer::Refused(format!(
            "peer pid {pid} is in another pid namespace (a sandbox or container); operators must run in cordon's"
        ));
    }
    if descends {
        return Peer::Refused(format!("peer pid {pid} is a process cordon started"));
    }
    if cred.uid != crate::sys::geteuid() && cred.uid != 0 {
        return Peer::Refused(format!(
            "uid {} may not use this control socket (only uid {} and root)",
            cred.uid,
            crate::sys::geteuid()
        ));
    }
    Peer::Operator(cred.uid)
}

/// True when `pid`'s chain of parents reaches `ancestor`.
fn descends_from(proc_root: &Path, pid: i32, ancestor: i32) -> bool {
    let mut cur = pid;
    for _ in 0..4096 {
        let Ok(status) = std::fs::read_to_string(proc_root.join(cur.to_string()).join("status"))
        else {
            return false;
        };
        let parent: Option<i32> = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse().ok());
        match parent {
            Some(p) if p == ancestor => return true,
            Some(p) if p > 1 => cur = p,
            _ => return false,
        }
    }
    false
}

fn reply(stream: &mut UnixStream, r: &ControlReply) {
    if let Ok(mut line) = serde_json::to_vec(r) {
        line.push(b'\n');
        let _ = stream.write_all(&line);
    }
}

fn serve(mut stream: UnixStream, roots: &[Arc<Session>]) {
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let uid = match check_peer(&stream, roots) {
        Peer::Operator(uid) => uid,
        Peer::Agent(session, pid, what) => {
            let kill = session.approvals.config.self_approval == DivergenceAction::Kill;
            let rec = Record::new(Kind::Approval, &session.id)
                .profile(&session.profile.name)
                .pid(pid)
                .decision(Decision::refusal(kill))
                .reason(what.clone());
            // With "deny" the agent may keep trying: its records are capped
            // like refused peers', so it cannot flood the shared log.
            let n = session.refused_peers.fetch_add(1, Ordering::Relaxed);
            if kill || n < MAX_REFUSED_RECORDS {
                let _ = session.record(rec);
            }
            if kill {
                // No answer at all: the agent takes no further step after
                // trying to answer its own request.
                session.killer().diverge(Violation { pid, what }, true);
                session.killer().wait_dead(Duration::from_secs(5));
                return;
            }
            reply(
                &mut stream,
                &ControlReply::error("refused: you are inside the sandbox"),
            );
            return;
        }
        Peer::Refused(why) => {
            // Recorded in each session's log (capped per session): every
            // session whose approvals the peer tried to reach.
            for session in roots {
                let n = session.refused_peers.fetch_add(1, Ordering::Relaxed);
                if n < MAX_REFUSED_RECORDS {
                    let rec = Record::new(Kind::RefusedPeer, &session.id)
                        .reason(format!("control socket: {why}"));
                    let _ = session.record(rec);
                }
            }
            reply(&mut stream, &ControlReply::error(format!("refused: {why}")));
            return;
        }
    };
    let mut line = String::new();
    let read = BufReader::new((&stream).take(MAX_LINE)).read_line(&mut line);
    let request: ControlRequest = match read.map(|_| serde_json::from_str(&line)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return reply(
                &mut stream,
                &ControlReply::error(format!("bad request: {e}")),
            )
        }
        Err(e) => {
            return reply(
                &mut stream,
                &ControlReply::error(format!("reading the request: {e}")),
            )
        }
    };
    let answer = handle(roots, uid, request);
    reply(&mut stream, &answer);
}

/// Answers for the root sessions and their sub-agents' sessions.
fn handle(roots: &[Arc<Session>], uid: u32, request: ControlRequest) -> ControlReply {
    let tree: Vec<Arc<Session>> = roots.iter().flat_map(Session::tree).collect();
    let (id, approve, grant, reason) = match request {
        ControlRequest::List => {
            return ControlReply {
                ok: true,
                pending: tree.iter().flat_map(|s| s.approvals.list()).collect(),
                ..ControlReply::default()
            }
        }
        ControlRequest::Approve {
            id,
            for_session,
            count,
            ttl_ms,
        } => {
            let spec = GrantSpec {
                for_session,
                count,
                ttl: ttl_ms.map(Duration::from_millis),
            };
            if let Err(e) = spec.validate() {
                return ControlReply::error(e);
            }
            (id, true, spec, None)
        }
        ControlRequest::Deny { id, reason } => {
            let reason = reason.map(|r| printable(&r).chars().take(500).collect());
            (id, false, GrantSpec::default(), reason)
        }
    };
    let Some(pending) = tree.iter().find_map(|s| s.approvals.find(&id)) else {
        let sessions: Vec<&str> = roots.iter().map(|s| s.id.as_str()).collect();
        return ControlReply::error(format!(
            "no pending request `{}` in session {} (answered, timed out, or never asked)",
            printable(&id),
            sessions.join(", ")
        ));
    };
    let granted = grant.describe();
    let answer = Answer {
        approve,
        grant,
        approver: describe_uid(uid),
        reason,
        at: crate::audit::time::now(),
    };
    if !pending.answer(answer) {
        return ControlReply::error(format!(
            "request `{id}` was answered by another approver, or expired"
        ));
    }
    ControlReply {
        ok: true,
        granted: approve.then_some(granted),
        ..ControlReply::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    #[test]
    fn ancestry_is_read_from_proc_and_bounded() {
        let proc_root = tempfile::tempdir().unwrap();
        let task = |pid: i32, ppid: i32| {
            let dir = proc_root.path().join(pid.to_string());
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(
                dir.join("status"),
                format!("Name:\tx\nPid:\t{pid}\nPPid:\t{ppid}\n"),
            )
            .unwrap();
        };
        // 1 <- 100 (cordon) <- 200 (init) <- 300 (agent); 1 <- 400 (operator)
        task(100, 1);
        task(200, 100);
        task(300, 200);
        task(400, 1);
        // a cycle, as a racing /proc could show
        task(500, 501);
        task(501, 500);
        let root = proc_root.path();
        assert!(descends_from(root, 300, 100));
        assert!(descends_from(root, 200, 100));
        assert!(!descends_from(root, 400, 100));
        assert!(!descends_from(root, 100, 100));
        assert!(!descends_from(root, 999, 100), "a vanished pid");
        assert!(!descends_from(root, 500, 100), "a cycle ends");
    }
}
