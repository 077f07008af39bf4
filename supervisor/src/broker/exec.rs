//! One exec call as typed stages, each the only way to the next:
//!
//! received -> [`Decided`] (the tool and the policy's verdict) ->
//! [`Admitted`] (working directory and quota checked, a human yes if the
//! rule asks for one, the `call` record written, the secrets fetched) ->
//! [`Ran`] (the tool's outcome, and what it means) -> recorded (the
//! `call_end` record and the reply, both from that one meaning).
//!
//! A stage that refuses returns a [`Stop`]; every counted refusal is
//! answered and recorded in one place ([`super::refuse`]).
//!
//! (Over 400 lines on purpose: the stages read top to bottom in the order
//! a call goes through them, and splitting them would hide that order.)

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cordon_shim::protocol::Reply;

use super::call_env::{end_record, pass_env};
use super::secrets::CallSecrets;
use super::serve::Authenticated;
use super::tool::{self, Ending};
use super::wire::send_reply;
use super::{refuse, Session};

#[path = "exec_cedar.rs"]
mod cedar;
use crate::audit::{Decision, Kind, Record};
use crate::identity::CallBinding;
use crate::policy::{self, Verdict};
use crate::profile::{DivergenceAction, Tool};

/// An exec request as the shim sent it.
pub(super) struct Request {
    pub tool: Vec<u8>,
    pub args: Vec<Vec<u8>>,
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Why a call ended before its tool ran.
enum Stop {
    /// A refusal: recorded on `record`, answered, counted (or killing,
    /// per `action`).
    Refused {
        record: Box<Record>,
        reason: String,
        action: DivergenceAction,
    },
    /// Already answered and recorded (an approval's outcome, an audit
    /// log that cannot be written).
    Answered,
}

/// A call of this session, with its id, working directory and the record
/// every later stage adds to.
struct Received<'s> {
    session: &'s Session,
    conn: Authenticated,
    call: u64,
    name: String,
    args: Vec<Vec<u8>>,
    env: Vec<(Vec<u8>, Vec<u8>)>,
    /// [stdin, stdout, stderr, cwd] from the shim.
    fds: Vec<OwnedFd>,
    cwd: PathBuf,
    base: Record,
}

/// The tool is declared and the policy has a verdict.
struct Decided<'s> {
    received: Received<'s>,
    tool: &'s Tool,
    decision: policy::Decision,
    /// The Cedar policies that turned an allowed call into one that asks
    /// for approval (`@approve`), for the approval request.
    asked_by: Option<String>,
}

/// Everything checked, the call recorded, its secrets in hand.
struct Admitted<'s> {
    received: Received<'s>,
    tool: &'s Tool,
    secrets: CallSecrets<'s>,
}

/// The tool ran (or could not be run).
struct Ran<'s> {
    received: Received<'s>,
    ending: Ending,
    started: Instant,
}

/// Serves one exec call to completion.
pub(super) fn serve(session: &Session, conn: Authenticated, req: Request, fds: Vec<OwnedFd>) {
    let received = received(session, conn, req, fds);
    let stages = decide(received).and_then(admit);
    match stages {
        Ok(admitted) => run(admitted).record(),
        Err((mut conn, stop)) => match stop {
            Stop::Refused {
                record,
                reason,
                action,
            } => refuse::refuse(
                session,
                &mut conn.stream,
                *record,
                conn.pid,
                &reason,
                action,
            ),
            Stop::Answered => {}
        },
    }
}

type StageResult<T> = Result<T, (Authenticated, Stop)>;

fn received(
    session: &Session,
    conn: Authenticated,
    req: Request,
    fds: Vec<OwnedFd>,
) -> Received<'_> {
    let call = session.next_call_id();
    let name = String::from_utf8_lossy(&req.tool).into_owned();
    let cwd = fds
        .get(3)
        .and_then(|fd| {
            std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(fd)
            ))
            .ok()
        })
        .unwrap_or_default();
    let args: Vec<&[u8]> = req.args.iter().map(Vec::as_slice).collect();
    let base = Record::new(Kind::Call, &session.id)
        .profile(&session.profile.name)
        .call(call)
        .tool(name.clone())
        .argv_bytes(&args)
        .cwd_bytes(std::os::unix::ffi::OsStrExt::as_bytes(cwd.as_os_str()))
        .pid(conn.pid);
    let base = match &session.intent {
        Some(i) => base.intent(i.clone()),
        None => base,
    };
    let base = match conn.via_call {
        Some(c) => base.via_call(c),
        None => base,
    };
    Received {
        session,
        conn,
        call,
        name,
        args: req.args,
        env: req.env,
        fds,
        cwd,
        base,
    }
}

impl Received<'_> {
    fn stop(self, stop: Stop) -> (Authenticated, Stop) {
        (self.conn, stop)
    }

    fn refused(self, reason: String, action: DivergenceAction) -> (Authenticated, Stop) {
        let record = Box::new(self.base.clone());
        self.stop(Stop::Refused {
            record,
            reason,
            action,
        })
    }

    fn arg_slices(&self) -> Vec<&[u8]> {
        self.args.iter().map(Vec::as_slice).collect()
    }
}

/// An undeclared name is divergence, whatever the patterns say; a
/// declared one gets the policy's verdict and the rule behind it.
fn decide(mut received: Received<'_>) -> StageResult<Decided<'_>> {
    let session = received.session;
    if let Some(key) = declared_name(session, &received.name) {
        if key != received.name {
            received.base = received.base.clone().tool(key.clone());
            received.name = key;
        }
    }
    let Some(tool) = session.profile.tools.get(&received.name) else {
        let what = format!(
            "ran undeclared tool `{}` through the shim",
            received.name.escape_debug()
        );
        return Err(received.refused(what, session.profile.divergence.undeclared_tool));
    };
    let decision = session
        .policy
        .decide(&received.name, &received.arg_slices());
    // The exact argv stays in `argv`; the form the rules saw goes beside it.
    if let Some(c) = &decision.canonical {
        received.base = received.base.clone().canonical_bytes(c);
    }
    let rule_text = decision.rule.as_ref().map(|r| {
        format!(
            "tools.{}.{}[{}] {} ({})",
            received.name, r.list, r.index, r.pattern, r.origin
        )
    });
    if let Some(r) = &rule_text {
        received.base = received.base.clone().rule(r.clone());
    }
    let mut decision = decision;
    let asked_by = cedar::decide(&mut received, tool, &mut decision, rule_text);
    Ok(Decided {
        received,
        tool,
        decision,
        asked_by,
    })
}

/// The checks after the verdict, in order: the verdict itself, the
/// working directory, the tool's quota, then (for a call that needs one)
/// a human yes. Then the `call` record, before anything of the call
/// happens, the fetch of its secrets included (a provider may mint a
/// credential): no call runs, and no secret is fetched for one,
/// unrecorded. Secrets are fetched at the moment of the call, never
/// before; a call that cannot have them ends on its `call_end`.
fn admit(decided: Decided<'_>) -> StageResult<Admitted<'_>> {
    let Decided {
        mut received,
        tool,
        decision,
        asked_by,
    } = decided;
    let session = received.session;
    let denied_action = session.profile.divergence.denied_action;
    let refusal = match decision.verdict {
        Verdict::Deny => Some(decision.reason.clone()),
        Verdict::Approve if decision.rule.is_none() => Some(decision.reason.clone()),
        Verdict::Allow | Verdict::Approve => None,
    };
    let refusal = refusal
        .or_else(|| cwd_refusal(session, &received.name, &received.cwd))
        .or_else(|| over_quota(session, tool, &received.name));
    if let Some(reason) = refusal {
        return Err(received.refused(reason, denied_action));
    }
    received.base = match (decision.verdict, decision.rule.as_ref()) {
        (Verdict::Approve, Some(rule)) => {
            let args: Vec<&[u8]> = received.args.iter().map(Vec::as_slice).collect();
            let at = format!("tools.{}", received.name);
            let ask = super::approve::Ask {
                tool,
                name: &received.name,
                args: &args,
                cwd: &received.cwd,
                rule,
                at: &at,
                asked_by: asked_by.as_deref(),
                pid: received.conn.pid,
            };
            let approved =
                super::approve::gate(session, &mut received.conn.stream, &received.base, &ask);
            let Some(ok) = approved else {
                return Err(received.stop(Stop::Answered));
            };
            received
                .base
                .clone()
                .decision(Decision::Approve)
                .approver(ok.approver)
                .approved_at(ok.at)
                .approval(ok.id)
        }
        _ => received.base.clone().decision(Decision::Allow),
    };
    if !tool.secrets.is_empty() {
        received.base = received.base.clone().secrets(
            tool.secrets
                .iter()
                .map(|w| w.name.clone())
                .collect::<Vec<_>>(),
        );
    }
    if let Err(e) = session.record(received.base.clone()) {
        send_reply(
            &mut received.conn.stream,
            &Reply::Denied {
                reason: format!("the audit log cannot be written ({e}); no call runs unrecorded"),
            },
        );
        return Err(received.stop(Stop::Answered));
    }
    // Identity tokens minted for this call carry it: its id, the tool and
    // the digest of its exact arguments, as its `call` record has them.
    let digest = received.base.argv_sha256.clone().unwrap_or_default();
    let binding = CallBinding {
        id: received.call,
        tool: &received.name,
        argv_sha256: &digest,
    };
    match CallSecrets::fetch_for(session, &tool.secrets, Some(binding)) {
        Ok(secrets) => Ok(Admitted {
            received,
            tool,
            secrets,
        }),
        Err(reason) => {
            let record = Box::new(end_record(session, received.call, &received.name));
            Err(received.stop(Stop::Refused {
                record,
                reason,
                action: DivergenceAction::Deny,
            }))
        }
    }
}

/// Runs the tool; its secrets are revoked the moment it is gone, before
/// the call is reported finished.
fn run(admitted: Admitted<'_>) -> Ran<'_> {
    let Admitted {
        mut received,
        tool,
        secrets,
    } = admitted;
    let session = received.session;
    let env = pass_env(&tool.env, &received.env);
    let args: Vec<&[u8]> = received.args.iter().map(Vec::as_slice).collect();
    let started = Instant::now();
    let recorded = received.conn.since.elapsed();
    let call = tool::Call {
        id: received.call,
        cwd: &received.cwd,
        args: &args,
        env: &env,
        fds: &received.fds,
    };
    let ending = match tool::run(session, tool, &call, &secrets, &mut received.conn.stream) {
        Ok(ending) => ending,
        Err(e) => Ending::failed(e.to_string()),
    };
    drop(args);
    drop(secrets);
    tracing::debug!(
        call = received.call,
        recorded_us = recorded.as_micros(),
        ran_us = received.conn.since.elapsed().as_micros(),
        "broker: call timings"
    );
    Ran {
        received,
        ending,
        started,
    }
}

impl Ran<'_> {
    /// The `call_end` record, then the reply: both say what [`Ending`] says.
    fn record(self) {
        let Ran {
            mut received,
            ending,
            started,
        } = self;
        let session = received.session;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let end = end_record(session, received.call, &received.name).duration_ms(duration_ms);
        let _ = session.record(ending.record(end));
        send_reply(&mut received.conn.stream, &ending.reply);
    }
}

/// The declared tool a shim was run as. The shim's name is its argv[0]'s
/// last component: a tool's own name through the shim directory on PATH,
/// or its binary's file name when the agent ran the tool's real path
/// (which is the shim in the sandbox): `[tools.g] path = "/usr/bin/git"`
/// is `g` whether the agent ran `g` or `/usr/bin/git`. A file name two
/// tools share names neither.
fn declared_name(session: &Session, name: &str) -> Option<String> {
    if session.profile.tools.contains_key(name) {
        return Some(name.to_string());
    }
    let mut by_file = session
        .profile
        .tools
        .iter()
        .filter(|(_, t)| t.path.file_name().is_some_and(|f| f == name));
    match (by_file.next(), by_file.next()) {
        (Some((key, _)), None) => Some(key.clone()),
        _ => None,
    }
}

/// The call's working directory must lie inside one of the tool's `cwd`
/// trees.
fn cwd_refusal(session: &Session, tool: &str, cwd: &Path) -> Option<String> {
    let allowed = session.tool_cwds.get(tool)?;
    if cwd.as_os_str().is_empty() || !allowed.iter().any(|a| cwd.starts_with(a)) {
        return Some(format!(
            "working directory `{}` is outside what `{tool}` may run in ({})",
            cwd.display(),
            allowed
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    None
}

/// Counts the call against the tool's `max_calls`.
fn over_quota(session: &Session, tool: &Tool, name: &str) -> Option<String> {
    let max = tool.max_calls?;
    let mut counts = session.calls.lock().unwrap_or_else(|e| e.into_inner());
    let n = counts.entry(name.to_string()).or_insert(0);
    if *n >= max {
        return Some(format!(
            "`{name}` reached its max_calls = {max} for this session"
        ));
    }
    *n += 1;
    None
}
