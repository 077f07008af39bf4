//! Refusing something the agent asked for: one record, one `denied` line
//! for the shim, and a count toward `max_denials` (or the kill the profile
//! asks for). Every refusal of the broker goes through here.

use std::os::unix::net::UnixStream;
use std::time::Duration;

use cordon_shim::protocol::Reply;

use super::wire::send_reply;
use super::Session;
use crate::audit::{Decision, Record};
use crate::process::{Charged, Violation};
use crate::profile::DivergenceAction;

/// How long a refusal that killed the session waits for the tree to be
/// gone before it lets go of the connection.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Records and answers a refusal, counting it toward `max_denials` (the
/// session's and every ancestor's), or killing the session when `action`
/// is `kill` or the count goes past the limit.
pub(super) fn refuse(
    session: &Session,
    stream: &mut UnixStream,
    base: Record,
    pid: u32,
    reason: &str,
    action: DivergenceAction,
) {
    let charged = session.refusals.charge_as(pid, reason, action);
    if !charged.killed() {
        say(session, pid, &base, reason);
    }
    let _ = session.record(
        base.decision(Decision::refusal(charged.killed()))
            .reason(reason.to_string()),
    );
    answer(session, stream, reason, &charged);
}

/// Says a refusal on cordon's stderr too, naming the call: the shim says
/// it on its caller's stderr, which an agent CLI usually captures (the
/// model sees it, the person running cordon would not). Not when the
/// caller's stderr is cordon's own: it was said there once already. A
/// refusal that kills is said by the kill's own line.
fn say(session: &Session, pid: u32, rec: &Record, reason: &str) {
    let notices = &session.notices;
    if !notices.loud() || notices.shares_stderr(pid) {
        return;
    }
    let call = match (&rec.tool, &rec.argv) {
        (Some(tool), Some(argv)) => {
            let args: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
            crate::policy::render_call(tool, &args)
        }
        _ => "a request".to_string(),
    };
    notices.say(&format!("denied: pid {pid}: {call}: {reason}"));
}

/// Counts a refusal that has no call record of its own (a malformed
/// request, a refused secret); kills the session past the limit.
pub(super) fn count(session: &Session, pid: u32, reason: &str) -> Charged {
    session.refusals.charge(pid, reason)
}

/// Records and answers a refusal that is not the agent's divergence (a
/// person's no, a timeout): not counted; with `kill`, the session ends.
pub(super) fn refuse_uncounted(
    session: &Session,
    stream: &mut UnixStream,
    rec: Record,
    pid: u32,
    reason: &str,
    kill: bool,
) {
    if !kill {
        say(session, pid, &rec, reason);
    }
    let _ = session.record(
        rec.decision(Decision::refusal(kill))
            .reason(reason.to_string()),
    );
    let charged = if kill {
        kill_now(session, pid, reason)
    } else {
        Charged::Counted
    };
    answer(session, stream, reason, &charged);
}

/// Kills the session for `what` (from the broker's side).
pub(super) fn kill_now(session: &Session, pid: u32, what: &str) -> Charged {
    session.killer().diverge(
        Violation {
            pid,
            what: what.to_string(),
        },
        true,
    );
    Charged::Killed(what.to_string())
}

/// The shim's answer to a refusal. A refusal that killed gets none: the
/// shim waits, connected, until the tree is gone, so the agent never runs
/// another step after its last refusal. (The divergence record itself is
/// written when the session ends.)
fn answer(session: &Session, stream: &mut UnixStream, reason: &str, charged: &Charged) {
    if charged.killed() {
        session.killer().wait_dead(KILL_WAIT);
        return;
    }
    send_reply(
        stream,
        &Reply::Denied {
            reason: reason.to_string(),
        },
    );
}
