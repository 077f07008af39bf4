//! `cordon-shim spawn --profile FILE [--intent TEXT] -- CMD`: a sub-agent,
//! as a session of its own under a profile that must be a subset of this
//! session's.
//!
//! The agent reads the profile inside its sandbox and sends its text; it
//! is parsed here without `extends`, checked against the parent's profile
//! (`profile::widenings`, paths expanded and canonicalized), and the
//! sub-agent is launched like `cordon run` would: its own sandbox, pid
//! namespace, session directory, broker socket and workload identity, the
//! caller's stdin, stdout and stderr, in the parent's workspace. Its audit
//! records carry `chain` (root session first). The spawn is a call of the
//! parent (`call` and `call_end` records naming the sub-session).
//!
//! Containment: the call's thread supervises the sub-agent; when the
//! parent's shim goes away (the parent was killed or exited) the sub-agent
//! is killed at once, and cordon's own death kills it through its init's
//! parent-death signal. A sub-agent's divergence kills the sub-agent only;
//! the parent's `spawn` exits 86 and the parent's records say why.
//! Approvals and grants of the parent are not inherited.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cordon_shim::protocol::Reply;

use super::serve::Authenticated;
use super::wire::{control_event, send_reply};
use super::{refuse, Session};
use crate::audit::{Decision, Kind, Record};
use crate::policy::cedar::Request as CedarRequest;
use crate::policy::Verdict;
use crate::process::{self, Outcome, Stops};
use crate::profile::{DivergenceAction, Profile};
use crate::sandbox;
use crate::session::{Approvers, Egress, Planned, Start};
use crate::sys::fd::dup_above_stdio;

/// How deep sub-agents may nest.
const MAX_DEPTH: usize = 8;

/// A spawn request, decoded.
pub(super) struct SpawnRequest {
    pub name: Vec<u8>,
    pub profile: Vec<u8>,
    pub intent: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
}

/// Serves one spawn to completion (the sub-agent's whole life).
pub(super) fn serve(
    session: &Arc<Session>,
    mut conn: Authenticated,
    req: SpawnRequest,
    fds: &[OwnedFd],
) {
    let call = session.next_call_id();
    let name = PathBuf::from(OsString::from_vec(req.name));
    let shown = name.display().to_string();
    let argv: Vec<OsString> = req.argv.into_iter().map(OsString::from_vec).collect();
    let base = Record::new(Kind::Call, &session.id)
        .call(call)
        .tool("cordon-shim spawn")
        .argv_bytes(
            &argv
                .iter()
                .map(|a| std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str()))
                .collect::<Vec<_>>(),
        )
        .pid(conn.pid)
        .detail(format!("sub-agent profile {shown}"));
    let action = session.profile.divergence.denied_action;
    let mut policies = Vec::new();
    let planned = (|| {
        if argv.is_empty() {
            // The shim never sends this; a hand-made frame might.
            return Err("spawn needs a command".to_string());
        }
        if session.chain.len() + 1 >= MAX_DEPTH {
            return Err(format!("sub-agents may nest at most {MAX_DEPTH} deep"));
        }
        let child = checked_profile(session, &name, &req.profile)?;
        asked(session, &child.name, &argv, &mut policies)?;
        let request = sandbox::Request {
            workspace: session.placeholders.workspace.clone(),
            command: argv.clone(),
            invocation_dir: session.placeholders.workspace.clone(),
            session_base: session
                .root
                .parent()
                .map_or_else(std::env::temp_dir, Path::to_path_buf),
            shim: session.shim.clone(),
            cache: crate::sandbox::host_cache::default_dir(),
        };
        Planned::confined(Arc::new(child), &request, &session.host)
            .map_err(|e| format!("the sub-agent cannot start: {e}"))
    })();
    let base = if policies.is_empty() {
        base
    } else {
        base.policies(policies)
    };
    let planned = match planned {
        Ok(p) => p,
        Err(reason) => {
            return refuse::refuse(session, &mut conn.stream, base, conn.pid, &reason, action)
        }
    };
    let sub_id = planned.id().to_string();
    let base = base.detail(format!("sub-agent profile {shown}, session {sub_id}"));
    if session.record(base.decision(Decision::Allow)).is_err() {
        send_reply(
            &mut conn.stream,
            &Reply::Denied {
                reason: "the audit log cannot be written; no sub-agent starts unrecorded".into(),
            },
        );
        return;
    }
    let intent = String::from_utf8_lossy(&req.intent).into_owned();
    let intent = (!intent.is_empty()).then_some(intent);
    let (reply, end) = run_sub(session, &mut conn, planned, intent, &argv, fds);
    let end = end
        .call(call)
        .tool("cordon-shim spawn")
        .detail(format!("sub-agent session {sub_id}"));
    let _ = session.record(end);
    send_reply(&mut conn.stream, &reply);
}

/// Parses the sub-agent's profile and checks it is a subset of ours.
/// Parse errors are told by location only: their messages may say
/// whether a path exists, which the agent must not learn this way.
fn checked_profile(session: &Session, name: &Path, text: &[u8]) -> Result<Profile, String> {
    let shown = name.display();
    let text =
        std::str::from_utf8(text).map_err(|_| format!("sub-agent profile {shown} is not UTF-8"))?;
    let mut child = crate::profile::load_text(name, text).map_err(|e| {
        let first = e
            .diagnostics
            .first()
            .map(|d| format!("{}:{}", d.location.line, d.location.column))
            .unwrap_or_default();
        format!(
            "sub-agent profile {shown} has {} error(s), the first at line:column {first}; check it with `cordon check` outside the sandbox",
            e.diagnostics.len()
        )
    })?;
    let wider = crate::profile::widenings(&child, &session.profile, Some(&session.placeholders));
    if let Some(first) = wider.first() {
        let more = match wider.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return Err(format!(
            "sub-agent profile grants more than this session's: {first}{more}"
        ));
    }
    // A sub-agent cannot name a policy file; it is held to its parent's.
    child.policy = session.profile.policy.clone();
    Ok(child)
}

/// What the session's Cedar policies say about a sub-agent under profile
/// `child` running `argv` (its profile is within this session's). They
/// can only refuse; an `@approve` refuses too, as no person is asked about
/// a spawn. The policies that decided go in `policies`.
fn asked(
    session: &Session,
    child: &str,
    argv: &[OsString],
    policies: &mut Vec<String>,
) -> Result<(), String> {
    let Some(cedar) = &session.cedar else {
        return Ok(());
    };
    let args: Vec<&[u8]> = argv
        .iter()
        .map(|a| std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str()))
        .collect();
    let req = CedarRequest::spawn(cedar.principal(), child, &args);
    let combined = cedar.decide(&req).without_approval("starting a sub-agent");
    *policies = combined.policies;
    match combined.verdict {
        Verdict::Deny => Err(format!(
            "sub-agent profile `{child}`: {}",
            combined
                .reason
                .unwrap_or_else(|| "refused by the Cedar policies".into())
        )),
        Verdict::Allow | Verdict::Approve => Ok(()),
    }
}

/// Starts, supervises and ends the sub-agent: its reply for the shim and
/// the parent's `call_end` record (without its call fields).
fn run_sub(
    session: &Arc<Session>,
    conn: &mut Authenticated,
    planned: Planned,
    intent: Option<String>,
    argv: &[OsString],
    fds: &[OwnedFd],
) -> (Reply, Record) {
    let end = Record::new(Kind::CallEnd, &session.id);
    let error = |message: String| {
        (
            Reply::Error {
                message: message.clone(),
            },
            end.clone().detail(message),
        )
    };
    let dup = |fd: &OwnedFd| dup_above_stdio(fd.as_raw_fd());
    let (Ok(stdin), Ok(stdout), Ok(stderr)) = (dup(&fds[0]), dup(&fds[1]), dup(&fds[2])) else {
        return error("cannot pass the caller's descriptors on".into());
    };
    let io = process::Io {
        stdio: Some([stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()]),
        cwd: None,
        keep: &[],
    };
    let start = Start {
        audit: Arc::clone(&session.audit),
        intent,
        argv: argv.to_vec(),
        io,
        parent: Some(session),
        loud: false,
        approvers: Approvers::default(),
        egress: Egress::Profile,
        control_socket: None,
    };
    let started = match planned.start(start) {
        Ok(s) => s,
        Err(e) => return error(format!("cannot start the sub-agent: {e}")),
    };
    drop((stdin, stdout, stderr));
    // The parent's shim: a cancel stops the sub-agent gracefully; the shim
    // gone (the parent died) kills it at once.
    let _ = conn
        .stream
        .set_read_timeout(Some(std::time::Duration::from_secs(1)));
    let sock = conn.stream.as_raw_fd();
    let stream = &mut conn.stream;
    let mut on_control = || control_event(stream);
    let policy = started.agent_policy();
    let outcome = started.supervise(Stops::Control(sock, &mut on_control), policy);
    let sub = started.plan.session.id.clone();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            drop(started.finish(&Outcome::Signaled(libc::SIGKILL)));
            session.prune_subs();
            return error(format!("supervising the sub-agent failed: {e}"));
        }
    };
    drop(started.finish(&outcome));
    session.prune_subs();
    match &outcome {
        Outcome::Exited(c) => (Reply::Exited { code: *c }, end.exit(*c)),
        Outcome::Signaled(s) => (Reply::Signaled { signal: *s }, end.signal(*s)),
        Outcome::Diverged(v) => {
            if let Some(Ok(err)) = fds.get(2).map(OwnedFd::try_clone) {
                let mut f = std::fs::File::from(err);
                let _ = writeln!(f, "cordon: killed: sub-agent pid {} {}", v.pid, v.what);
            }
            if session.profile.divergence.sub_agent == DivergenceAction::Kill {
                // `[divergence] sub_agent = "kill"`: the parent goes too,
                // and no reply before its tree is gone.
                let what = format!("had sub-agent session {sub} diverge ({})", v.what);
                refuse::kill_now(session, v.pid, &what);
                session
                    .killer()
                    .wait_dead(std::time::Duration::from_secs(5));
            }
            let code = i32::from(process::EXIT_DIVERGED);
            (
                Reply::Exited { code },
                end.decision(Decision::Kill)
                    .reason(format!("sub-agent session {sub} diverged: {}", v.what)),
            )
        }
        other => {
            let code = i32::from(other.exit_code());
            (Reply::Exited { code }, end.exit(code))
        }
    }
}
