//! One broker connection, up to the point where it is a request of a
//! known kind: the peer authenticated, the first frame read, its protocol
//! version checked (once, for every kind), and handed to the pipeline of
//! that kind (an exec call, a secret, a sub-agent, an MCP session).

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon_shim::protocol::{Reply, Request, VERSION};

use super::handoff::Handed;
use super::peer::authenticate;
use super::wire::{read_first, send_reply, WireError};
use super::{exec, refuse, Session};
use crate::audit::{Kind, Record};

/// How long a peer may take to send its request: a shim sends it at once;
/// a peer that sends half a frame and stalls is dropped after this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Refused-peer records written per session before they are only counted.
const MAX_REFUSED_PEER_RECORDS: u32 = 100;

/// A connection to the broker, as it arrives.
pub enum Incoming {
    /// Accepted on the session's socket: the peer is yet to be checked.
    Accepted(UnixStream),
    /// Made by the supervisor for a sandboxed process (its connect was
    /// mediated), the caller known.
    Handed(Handed),
}

/// A connection from a process of this session's agent tree.
pub(super) struct Authenticated {
    pub stream: UnixStream,
    /// The peer's pid (in cordon's pid namespace).
    pub pid: u32,
    /// Pins the peer process.
    pub pidfd: OwnedFd,
    /// The running call the peer's sandbox belongs to (a nested call).
    pub via_call: Option<u64>,
    /// When the connection was accepted (for the call's timings).
    pub since: Instant,
}

/// Serves one connection to completion.
pub fn serve(session: &Arc<Session>, incoming: Incoming) {
    let conn = match incoming {
        Incoming::Accepted(stream) => authenticated(session, stream),
        Incoming::Handed(h) => Some(Authenticated {
            stream: h.stream,
            pid: h.pid,
            pidfd: h.pidfd,
            via_call: h.via_call,
            since: Instant::now(),
        }),
    };
    let Some(mut conn) = conn else {
        return;
    };
    let Some(request) = first_request(session, &mut conn) else {
        return;
    };
    let version = match &request {
        Request::Exec { version, .. }
        | Request::Secret { version, .. }
        | Request::Spawn { version, .. }
        | Request::Mcp { version, .. } => *version,
        Request::Cancel { .. } => {
            send_reply(
                &mut conn.stream,
                &Reply::Error {
                    message: "the first frame must be an exec, secret, spawn or mcp request".into(),
                },
            );
            return;
        }
    };
    if version != VERSION {
        send_reply(&mut conn.stream, &Reply::Error {
            message: format!("protocol version {version} is not supported (this supervisor speaks {VERSION})"),
        });
        return;
    }
    let fds = match &request {
        Request::Exec { .. } | Request::Spawn { .. } | Request::Mcp { .. } => {
            match caller_fds(&conn) {
                Ok(fds) => fds,
                Err(why) => {
                    send_reply(&mut conn.stream, &Reply::Error { message: why });
                    return;
                }
            }
        }
        _ => Vec::new(),
    };
    match request {
        Request::Exec {
            tool, args, env, ..
        } => exec::serve(session, conn, exec::Request { tool, args, env }, fds),
        Request::Secret { name, .. } => super::expose::serve(session, conn, &name),
        Request::Spawn {
            name,
            profile,
            intent,
            argv,
            ..
        } => {
            let req = super::spawn::SpawnRequest {
                name,
                profile,
                intent,
                argv,
            };
            super::spawn::serve(session, conn, req, &fds);
        }
        Request::Mcp { server, env, .. } => {
            super::mcp::serve(session, conn, super::mcp::McpRequest { server, env }, fds);
        }
        Request::Cancel { .. } => {}
    }
}

/// The peer, if it is of this session's tree. A foreign peer cannot be
/// charged to this session; its records are capped so a connect loop
/// cannot flood the shared log.
fn authenticated(session: &Session, mut stream: UnixStream) -> Option<Authenticated> {
    let since = Instant::now();
    let call_of = |pid: i32| session.call_of_init(pid);
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    match authenticate(&stream, session.uid, session.pid_ns, &call_of) {
        Ok(p) => Some(Authenticated {
            stream,
            pid: p.pid,
            pidfd: p.pidfd,
            via_call: p.via_call,
            since,
        }),
        Err(e) => {
            let n = session.refused_peers.fetch_add(1, Ordering::Relaxed);
            if n < MAX_REFUSED_PEER_RECORDS {
                let _ = session
                    .record(Record::new(Kind::RefusedPeer, &session.id).reason(e.to_string()));
            } else if n == MAX_REFUSED_PEER_RECORDS {
                let _ = session.record(
                    Record::new(Kind::RefusedPeer, &session.id)
                        .reason(format!("more than {MAX_REFUSED_PEER_RECORDS} refused peers; no further records this session")),
                );
            }
            send_reply(
                &mut stream,
                &Reply::Denied {
                    reason: format!("refused: {e}"),
                },
            );
            None
        }
    }
}

/// The first frame. A malformed one from the agent's
/// own tree is a refusal like any other (it counts toward max_denials);
/// one of the supervisor's own kinds is a forged answer.
fn first_request(session: &Session, conn: &mut Authenticated) -> Option<Request> {
    let _ = conn.stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let read = read_first(&mut conn.stream);
    let _ = conn.stream.set_read_timeout(None);
    match read {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::info!(pid = conn.pid, error = %e, "broker: bad request");
            if let Some(what) = super::approve::forged_answer(&e) {
                super::approve::forgery(session, &mut conn.stream, conn.pid, &what);
                return None;
            }
            if !matches!(e, WireError::Closed) {
                let charged = refuse::count(
                    session,
                    conn.pid,
                    &format!("sent a malformed request ({e})"),
                );
                if charged.killed() {
                    return None;
                }
            }
            send_reply(
                &mut conn.stream,
                &Reply::Error {
                    message: e.to_string(),
                },
            );
            None
        }
    }
}

/// The caller's stdin, stdout and stderr (a closed one is /dev/null) and
/// its working directory (O_PATH), taken from the process itself: what a
/// call runs with is what its caller has, never descriptors it chose to
/// send. Checked against the pidfd afterwards, so a pid reused meanwhile
/// is not mistaken for the caller.
fn caller_fds(conn: &Authenticated) -> Result<Vec<OwnedFd>, String> {
    use crate::sys::sockets::pidfd_getfd;
    let gone = || {
        format!(
            "the caller (pid {}) exited before its call was read",
            conn.pid
        )
    };
    let mut fds = Vec::with_capacity(4);
    for n in 0..3 {
        let fd = match pidfd_getfd(&conn.pidfd, n) {
            Ok(fd) => fd,
            Err(crate::sys::Errno(libc::EBADF)) => std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| format!("cannot open /dev/null for a closed descriptor {n}: {e}"))?,
            Err(crate::sys::Errno(libc::ESRCH)) => return Err(gone()),
            Err(e) => return Err(format!("cannot take the caller's descriptor {n}: {e}")),
        };
        fds.push(fd);
    }
    let cwd = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(format!("/proc/{}/cwd", conn.pid))
            .map(OwnedFd::from)
            .map_err(|e| format!("cannot take the caller's working directory: {e}"))?
    };
    if super::peer::pidfd_pid(std::path::Path::new("/proc"), &conn.pidfd)
        != i32::try_from(conn.pid).ok()
    {
        return Err(gone());
    }
    fds.push(cwd);
    Ok(fds)
}
