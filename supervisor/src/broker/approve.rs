//! A call that needs a human yes: covered by a grant, or parked as a
//! pending request until an approver answers, the shim goes away, or the
//! request times out (a deny; the tool never runs).
//!
//! While parked, the only frame the shim may send is a cancel. Anything
//! else on the connection (an "approval" the agent wrote itself, a frame
//! of the supervisor's own kinds) is a forgery: refused, recorded, and the
//! session killed unless `[approval] self_approval = "deny"`.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon_shim::protocol::{Reply, Request};

use super::wire::{read_followup, send_reply, WireError};
use super::Session;
use crate::approval::{hook, Answer, NewRequest, Pending, RequestInfo};
use crate::audit::{Decision, Kind, Record};
use crate::policy::RuleRef;
use crate::profile::{DivergenceAction, Tool};

/// How often a parked call looks at its connection and its answer.
const TICK: Duration = Duration::from_millis(50);

/// An approved call: who said yes, and when.
pub(super) struct Approved {
    pub approver: String,
    pub at: String,
    pub id: String,
}

/// The call being decided.
pub(super) struct Ask<'a> {
    pub tool: &'a Tool,
    pub name: &'a str,
    pub args: &'a [&'a [u8]],
    pub cwd: &'a Path,
    /// The TOML rule that matched (grants are keyed by it).
    pub rule: &'a RuleRef,
    /// Where that rule is (`tools.git`, `mcp.fs.tools.write_file`).
    pub at: &'a str,
    /// The Cedar policies that ask (`@approve`) when the TOML rule alone
    /// would not have.
    pub asked_by: Option<&'a str>,
    pub pid: u32,
}

impl Ask<'_> {
    /// What asks for approval, for the request and its refusals.
    fn why(&self) -> String {
        let rule = self.rule.describe_at(self.at);
        match self.asked_by {
            Some(p) => format!("{rule}, and Cedar policy {p} (@approve)"),
            None => rule,
        }
    }
}

/// Decides an approval-needing call. `Some` when it may run; `None` when
/// it was refused (the reply is sent and the record written here).
pub(super) fn gate(
    session: &Session,
    stream: &mut UnixStream,
    base: &Record,
    ask: &Ask<'_>,
) -> Option<Approved> {
    let queue = &session.approvals;
    let rule_key = (ask.rule.list, ask.rule.index);
    if let Some(c) = queue.covered(ask.name, rule_key, ask.args) {
        return Some(Approved {
            approver: format!("{} (grant from {})", c.approver, c.from),
            at: c.at,
            id: c.from,
        });
    }
    if !queue.has_approver() {
        let reason = format!(
            "{} needs approval, and no approver can be reached (no [approval] approver hook, no control socket, no terminal prompt)",
            ask.why()
        );
        refuse(session, stream, base.clone(), ask.pid, &reason, None, false);
        return None;
    }
    let info = RequestInfo {
        id: String::new(),
        session: session.id.clone(),
        identity: crate::audit::identity(&session.profile.name, &session.id),
        profile: session.profile.name.clone(),
        intent: session.intent.clone(),
        tool: ask.name.to_string(),
        argv: crate::audit::argv_text(ask.args),
        cwd: ask.cwd.display().to_string(),
        secrets: ask.tool.secrets.iter().map(|s| s.name.clone()).collect(),
        rule: ask.why(),
        risk: ask.rule.risk.map(|r| r.as_str().to_string()),
        pid: ask.pid,
        requested_at: crate::audit::time::now(),
        expires_in_s: 0,
    };
    let new = NewRequest {
        info,
        rule_key,
        args: ask.args.iter().map(|a| a.to_vec()).collect(),
    };
    let pending = match queue.open(new) {
        Ok(p) => p,
        Err(e) => {
            let reason = e.to_string();
            let kill = queue.config.on_limit == DivergenceAction::Kill;
            refuse(session, stream, base.clone(), ask.pid, &reason, None, kill);
            return None;
        }
    };
    let id = pending.info.id.clone();
    let mut rec = base
        .clone()
        .decision(Decision::Pending)
        .approval(id.clone());
    rec.kind = Kind::Approval;
    if session.record(rec).is_err() {
        pending.close();
        queue.finish(&pending, None);
        send_reply(
            stream,
            &Reply::Denied {
                reason: "the audit log cannot be written; no approval is asked unrecorded".into(),
            },
        );
        return None;
    }
    let mut hook_thread = None;
    if let Some(argv) = &queue.config.approver {
        let (argv, p) = (argv.clone(), Arc::clone(&pending));
        let spawned = std::thread::Builder::new()
            .name("cordon-hook".into())
            .spawn(move || {
                if let Some(a) = hook::ask(&argv, &p) {
                    p.answer(a);
                }
            });
        match spawned {
            Ok(t) => hook_thread = Some(t),
            Err(e) => tracing::warn!(error = %e, "approval: cannot start the hook thread"),
        }
    }
    let base = base.clone().approval(id.clone());
    let outcome = wait(stream, &pending);
    let answer = pending.close();
    // A hook still running sees the request closed within a tick and is
    // killed with its process group; the call waits for that, so no hook
    // outlives its call (or the session).
    if let Some(t) = hook_thread {
        let _ = t.join();
    }
    queue.finish(&pending, answer.as_ref());
    match (outcome, answer) {
        (_, Some(a)) if a.approve => Some(Approved {
            approver: a.approver,
            at: a.at,
            id,
        }),
        (_, Some(a)) => {
            let reason = match &a.reason {
                Some(r) => format!("denied by {}: {r}", a.approver),
                None => format!("denied by {}", a.approver),
            };
            refuse(session, stream, base, ask.pid, &reason, Some(&a), false);
            None
        }
        (Waited::TimedOut, None) => {
            let t = humantime::format_duration(queue.config.timeout);
            let reason = format!("approval request {id} timed out after {t} without an answer");
            refuse(session, stream, base, ask.pid, &reason, None, false);
            None
        }
        (Waited::Cancelled, None) => {
            let reason = format!("cancelled while waiting for approval ({id})");
            refuse(session, stream, base, ask.pid, &reason, None, false);
            None
        }
        (Waited::Gone, None) => {
            let rec = base.decision(Decision::Deny).reason(format!(
                "the caller went away while waiting for approval ({id})"
            ));
            let _ = session.record(rec);
            None
        }
        (Waited::Forged(what), None) => {
            let kill = queue.config.self_approval == DivergenceAction::Kill;
            refuse(session, stream, base, ask.pid, &what, None, kill);
            None
        }
        (Waited::Answered, None) => None,
    }
}

enum Waited {
    Answered,
    TimedOut,
    Cancelled,
    Gone,
    Forged(String),
}

/// Waits for an answer while watching the connection.
/// An answer wakes the wait at once (a condition variable); the
/// connection is looked at every [`TICK`].
fn wait(stream: &mut UnixStream, pending: &Pending) -> Waited {
    // A frame begun on a parked call must arrive whole, promptly.
    let _ = stream.set_read_timeout(Some(FRAME_TIMEOUT));
    let waited = wait_inner(stream, pending);
    let _ = stream.set_read_timeout(None);
    waited
}

/// How long a frame begun on a parked call may take to arrive whole.
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

fn wait_inner(stream: &mut UnixStream, pending: &Pending) -> Waited {
    loop {
        let left = pending.deadline.saturating_duration_since(Instant::now());
        if pending.wait(left.min(TICK)).is_some() {
            return Waited::Answered;
        }
        if left.is_zero() {
            return Waited::TimedOut;
        }
        let mut fds = [libc::pollfd {
            fd: stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        match crate::sys::fd::poll(&mut fds, 0) {
            Ok(0) | Err(_) => continue,
            Ok(_) => {}
        }
        match read_followup(stream) {
            Ok(Request::Cancel { .. }) => return Waited::Cancelled,
            Err(WireError::Closed) => return Waited::Gone,
            Err(WireError::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                return Waited::Forged(
                    "began a frame on a call waiting for approval and stalled".into(),
                )
            }
            Err(WireError::Io(_)) => return Waited::Gone,
            Ok(_) => {
                return Waited::Forged(
                    "sent another request on a call waiting for approval (an attempt to answer its own request)"
                        .into(),
                )
            }
            Err(e) => {
                return Waited::Forged(format!(
                    "sent a forged frame while its call waited for approval ({e})"
                ))
            }
        }
    }
}

/// Records and answers a refused approval. These refusals do not count
/// toward `max_denials` (a person's no is not the agent's divergence); a
/// `kill` ends the session.
fn refuse(
    session: &Session,
    stream: &mut UnixStream,
    base: Record,
    pid: u32,
    reason: &str,
    answer: Option<&Answer>,
    kill: bool,
) {
    let rec = match answer {
        Some(a) => base.approver(a.approver.clone()).approved_at(a.at.clone()),
        None => base,
    };
    super::refuse::refuse_uncounted(session, stream, rec, pid, reason, kill);
}

/// A first frame of one of the supervisor's own kinds (an answer: denied,
/// exited, signaled, error, value) is the agent forging the supervisor's
/// side, such as an "approved" reply: never a mistake a shim makes.
pub(super) fn forged_answer(e: &WireError) -> Option<String> {
    use cordon_shim::protocol::{kind, DecodeError};
    match e {
        WireError::Decode(DecodeError::UnknownKind(k))
            if (kind::DENIED..=kind::VALUE).contains(k) =>
        {
            Some(format!(
                "sent a frame of the supervisor's own kind {k} (a forged answer) on its broker socket"
            ))
        }
        _ => None,
    }
}

/// Records a forgery and acts on it per `[approval] self_approval`.
pub(super) fn forgery(session: &Session, stream: &mut UnixStream, pid: u32, what: &str) {
    let kill = session.approvals.config.self_approval == DivergenceAction::Kill;
    let rec = Record::new(Kind::Approval, &session.id)
        .profile(&session.profile.name)
        .pid(pid);
    refuse(session, stream, rec, pid, what, None, kill);
}
