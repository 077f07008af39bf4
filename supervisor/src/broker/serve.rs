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

use super::peer::authenticate;
use super::wire::{read_first, send_reply, WireError};
use super::{exec, refuse, Session};
use crate::audit::{Kind, Record};

/// How long a peer may take to send its request: a shim sends it at once;
/// a peer that sends half a frame and stalls is dropped after this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Refused-peer records written per session before they are only counted.
const MAX_REFUSED_PEER_RECORDS: u32 = 100;

/// A connection from a process of this session's agent tree.
pub(super) struct Authenticated {
    pub stream: UnixStream,
    /// The peer's pid (in cordon's pid namespace).
    pub pid: u32,
    /// When the connection was accepted (for the call's timings).
    pub since: Instant,
}

/// Serves one connection to completion.
pub fn serve(session: &Arc<Session>, stream: UnixStream) {
    let Some(mut conn) = authenticated(session, stream) else {
        return;
    };
    let Some((request, fds)) = first_request(session, &mut conn) else {
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
    match authenticate(&stream, session.uid, session.pid_ns) {
        Ok(p) => Some(Authenticated {
            stream,
            pid: p.pid,
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

/// The first frame and its descriptors. A malformed one from the agent's
/// own tree is a refusal like any other (it counts toward max_denials);
/// one of the supervisor's own kinds is a forged answer.
fn first_request(session: &Session, conn: &mut Authenticated) -> Option<(Request, Vec<OwnedFd>)> {
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
