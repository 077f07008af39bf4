//! The operator control protocol: a Unix stream socket, one JSON object
//! per line. A client connects, writes one request line, reads one
//! response line, and the daemon closes the connection.
//!
//! ```text
//! → {"op":"ps"}
//! ← {"ok":true,"agents":[{"name":"triage","state":"running",...}]}
//! → {"op":"stop","agent":"triage"}
//! ← {"ok":true,"message":"stopping triage (session 5f0c...)"}
//! → {"op":"kill","session":"nope"}
//! ← {"ok":false,"error":"no running session `nope`"}
//! ```
//!
//! The peer is identified with SO_PEERCRED (and SO_PEERGROUPS) before a
//! byte is read: root, `allow_uids` and members of `allow_gids` may talk;
//! anyone else is logged and disconnected without a response.
//!
//! New operations (the approval queue's `approvals`/`approve`/`deny`) are
//! new variants of [`Request`]; old clients and daemons answer an unknown
//! `op` with `{"ok":false,"error":"unknown request ..."}`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::Control;

/// The longest request or response line accepted.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// What an operator asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Every configured agent and its session.
    Ps,
    /// Stop one session (by session id, or agent name): its agent's
    /// restart policy then applies, as for any other end.
    Kill { session: String },
    /// Start an agent now (also one given up on or stopped).
    Start { agent: String },
    /// Stop an agent's session and do not restart it.
    Stop { agent: String },
}

/// The answer to one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<AgentStatus>>,
}

impl Response {
    pub fn ok(message: impl Into<String>) -> Response {
        Response {
            ok: true,
            message: Some(message.into()),
            ..Response::default()
        }
    }

    pub fn error(error: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(error.into()),
            ..Response::default()
        }
    }
}

/// One row of `cordon ps`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub name: String,
    pub profile: String,
    /// "running", "stopping", "backing-off", "stopped", "gave-up".
    pub state: String,
    /// The running session's id (cordon run's), once it has one.
    pub session: Option<String>,
    /// Its workload identity, from its `session_start` audit record.
    pub identity: Option<String>,
    /// The session's `cordon run` process.
    pub pid: Option<i32>,
    /// The uid the session runs as.
    pub uid: Option<u32>,
    pub uptime_secs: Option<u64>,
    /// Brokered calls of the running session, from the audit log (only
    /// when the configuration names it in `[audit] path`).
    pub calls_allowed: Option<u64>,
    pub calls_denied: Option<u64>,
    /// Calls of the running session waiting for an approver (asked of
    /// its approval control socket, when it has one).
    #[serde(default)]
    pub pending_approvals: Option<usize>,
    /// Sessions started after the first.
    pub restarts: u32,
    /// Failures within the restart window.
    pub recent_failures: u32,
    /// How the last session ended ("exit 0", "signal 9", "could not start: ...").
    pub last_exit: Option<String>,
    /// Seconds until the next restart, when backing off.
    pub next_start_secs: Option<f64>,
    /// Why the daemon gave up, when it did.
    pub gave_up: Option<String>,
}

/// Whether a peer may use the socket: root, the daemon's own uid (which
/// could signal and trace the daemon anyway), a listed uid, or a member
/// (primary or supplementary) of a listed group.
pub fn permitted(control: &Control, uid: u32, gid: u32, groups: &[u32]) -> bool {
    uid == 0
        || uid == crate::sys::geteuid()
        || control.allow_uids.contains(&uid)
        || control.allow_gids.contains(&gid)
        || groups.iter().any(|g| control.allow_gids.contains(g))
}

/// Why a request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {path}: {source} (is `cordon serve` running? see --socket)")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("talking to the daemon: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "refused: the daemon closed the connection without an answer (is this uid or group in [control] allow_uids/allow_gids?)"
    )]
    NoAnswer,
    #[error("the daemon's answer is not valid: {0}")]
    BadAnswer(serde_json::Error),
}

/// Sends one request and reads its response.
pub fn request(socket: &Path, req: &Request) -> Result<Response, ClientError> {
    let mut stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.display().to_string(),
        source,
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(req).map_err(ClientError::BadAnswer)?;
    line.push(b'\n');
    // A refused peer is disconnected unread: the write or the read then
    // fails with EPIPE/ECONNRESET, or the read sees end of file.
    let refused = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
            ClientError::NoAnswer
        }
        _ => ClientError::Io(e),
    };
    stream.write_all(&line).map_err(refused)?;
    let mut reader = BufReader::new(stream.take(MAX_LINE as u64));
    let mut answer = String::new();
    if reader.read_line(&mut answer).map_err(refused)? == 0 {
        return Err(ClientError::NoAnswer);
    }
    serde_json::from_str(&answer).map_err(ClientError::BadAnswer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_json() {
        let r: Request =
            serde_json::from_str(r#"{"op":"kill","session":"abc"}"#).unwrap_or(Request::Ps);
        assert_eq!(
            r,
            Request::Kill {
                session: "abc".into()
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"approve","id":"1"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Request::Ps).unwrap_or_default(),
            r#"{"op":"ps"}"#
        );
    }

    #[test]
    fn root_listed_uids_and_groups_are_permitted() {
        let c = Control {
            socket: "/x".into(),
            allow_uids: vec![1000],
            allow_gids: vec![50],
        };
        assert!(permitted(&c, 0, 0, &[]));
        assert!(permitted(&c, 1000, 1000, &[]));
        assert!(permitted(&c, 1001, 50, &[]));
        assert!(permitted(&c, 1001, 1001, &[7, 50]));
        assert!(!permitted(&c, 1001, 1001, &[7]));
    }
}
