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
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cordon_shim::protocol::{Reply, VERSION};

use super::call::count_denial;
use super::wire::{control_event, send_reply};
use super::Session;
use crate::audit::{Kind, Record};
use crate::process::{self, ExecPolicy, Killer, Outcome, Policy, Stops};
use crate::profile::Profile;
use crate::sandbox;
use crate::sys::fd::dup_above_stdio;

/// How deep sub-agents may nest.
const MAX_DEPTH: usize = 8;
/// How long the sub-agent's first process may take to exec, when its pid
/// namespace can only be read from it (see `peer::namespace_of_child`).
const PID_NS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A spawn request, decoded.
pub(super) struct SpawnRequest {
    pub version: u16,
    pub name: Vec<u8>,
    pub profile: Vec<u8>,
    pub intent: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
}

fn deny(session: &Session, stream: &mut UnixStream, pid: u32, base: Record, reason: &str) {
    let _ = session.record(base.decision("deny").reason(reason.to_string()));
    send_reply(
        stream,
        &Reply::Denied {
            reason: reason.to_string(),
        },
    );
    count_denial(session, pid, reason);
}

/// Serves one spawn to completion (the sub-agent's whole life).
pub(super) fn serve(
    session: &Session,
    stream: &mut UnixStream,
    pid: u32,
    req: SpawnRequest,
    fds: &[OwnedFd],
) {
    let call = session
        .next_call
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    let name = PathBuf::from(OsString::from_vec(req.name));
    let shown = name.display().to_string();
    let argv: Vec<OsString> = req.argv.into_iter().map(OsString::from_vec).collect();
    let base = Record::new(Kind::Call, &session.id)
        .call(call)
        .tool("cordon-shim spawn")
        .argv(
            argv.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>(),
        )
        .pid(pid)
        .detail(format!("sub-agent profile {shown}"));
    if req.version != VERSION {
        let reason = format!("protocol version {} is not supported", req.version);
        return deny(session, stream, pid, base, &reason);
    }
    if argv.is_empty() {
        // The shim never sends this; a hand-made frame might.
        return deny(session, stream, pid, base, "spawn needs a command");
    }
    if session.chain.len() + 1 >= MAX_DEPTH {
        let reason = format!("sub-agents may nest at most {MAX_DEPTH} deep");
        return deny(session, stream, pid, base, &reason);
    }
    let child = match checked_profile(session, &name, &req.profile) {
        Ok(p) => p,
        Err(reason) => return deny(session, stream, pid, base, &reason),
    };
    let intent = String::from_utf8_lossy(&req.intent).into_owned();
    let intent = (!intent.is_empty()).then_some(intent);
    let request = sandbox::Request {
        workspace: session.placeholders.workspace.clone(),
        command: argv,
        invocation_dir: session.placeholders.workspace.clone(),
        session_base: session
            .root
            .parent()
            .map_or_else(std::env::temp_dir, Path::to_path_buf),
        shim: session.shim.clone(),
    };
    let plan = match sandbox::build(&child, &request, &session.host, &|n| std::env::var_os(n)) {
        Ok(plan) => plan,
        Err(e) => {
            let reason = format!("the sub-agent cannot start: {e}");
            return deny(session, stream, pid, base, &reason);
        }
    };
    if let Some((secret, source, grant)) =
        crate::profile::secret_source_reachable(&child, &plan.placeholders)
            .into_iter()
            .next()
    {
        let reason = format!(
            "the sub-agent could reach the source of secret `{secret}` ({}) through {grant}",
            source.display()
        );
        return deny(session, stream, pid, base, &reason);
    }
    let sub_id = plan.session.id.clone();
    let base = base.detail(format!("sub-agent profile {shown}, session {sub_id}"));
    if session.record(base.clone().decision("allow")).is_err() {
        send_reply(
            stream,
            &Reply::Denied {
                reason: "the audit log cannot be written; no sub-agent starts unrecorded".into(),
            },
        );
        return;
    }
    let reply = run_sub(session, stream, child, &plan, intent, fds, call);
    send_reply(stream, &reply);
}

/// Parses the sub-agent's profile and checks it is a subset of ours.
/// Parse errors are told by location only: their messages may say
/// whether a path exists, which the agent must not learn this way.
fn checked_profile(session: &Session, name: &Path, text: &[u8]) -> Result<Profile, String> {
    let shown = name.display();
    let text =
        std::str::from_utf8(text).map_err(|_| format!("sub-agent profile {shown} is not UTF-8"))?;
    let child = crate::profile::load_text(name, text).map_err(|e| {
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
    Ok(child)
}

/// Launches, serves and supervises the sub-agent; its reply for the shim.
fn run_sub(
    session: &Session,
    stream: &mut UnixStream,
    child: Profile,
    plan: &sandbox::Plan,
    intent: Option<String>,
    fds: &[OwnedFd],
    call: u64,
) -> Reply {
    let error = |message: String| Reply::Error { message };
    let prepared = if sandbox::plan::brokered(&child) {
        let Some(shim) = session.shim.as_deref() else {
            return error("cordon-shim is not installed next to cordon".into());
        };
        match super::prepare(
            &child,
            &plan.session.shim_dir(),
            &plan.session.socket_path(),
            shim,
        ) {
            Ok(p) => Some(p),
            Err(e) => return error(format!("cannot set up the sub-agent's broker: {e}")),
        }
    } else {
        None
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
    let mut chain = session.chain.clone();
    chain.push(session.id.clone());
    let start = Record::new(Kind::SessionStart, &plan.session.id)
        .profile(&child.name)
        .chain(chain.clone())
        .cwd(plan.placeholders.workspace.display().to_string());
    let start = match &intent {
        Some(i) => start.intent(i.clone()),
        None => start,
    };
    // Recorded before the sub-agent exists, as the root session's start is.
    if session.audit.append(&start).is_err() {
        return error("the audit log cannot be written".into());
    }
    let running = match process::launch(&plan.confined, &plan.command, io) {
        Ok(r) => r,
        Err(e) => return error(format!("cannot start the sub-agent: {e}")),
    };
    drop((stdin, stdout, stderr));
    let killer = match Killer::new(&running.init.pidfd) {
        Ok(k) => Arc::new(k),
        Err(e) => {
            let _ = crate::sys::process::pidfd_send_signal(&running.init.pidfd, libc::SIGKILL);
            return error(format!("cannot hold the sub-agent's pidfd: {e}"));
        }
    };
    let child = Arc::new(child);
    // Host rules (already checked to lie within ours): the sub-agent's own
    // proxy, deciding on its rules.
    let proxy = match running.egress_listener.as_ref().map(|l| l.try_clone()) {
        None => None,
        Some(listener) => {
            let ctx = crate::egress::Context {
                rules: crate::egress::Rules::new(
                    &child.network.allow_hosts,
                    &child.network.deny_hosts,
                    "network",
                ),
                audit: Arc::clone(&session.audit),
                session: plan.session.id.clone(),
                profile: child.name.clone(),
                tool: None,
                refusals: process::Refusals {
                    count: Arc::default(),
                    divergence: child.divergence.clone(),
                    killer: Arc::clone(&killer),
                },
                resolve: crate::egress::proxy::system_resolver,
                loud: false,
                inject: None,
            };
            match listener.and_then(|l| crate::egress::proxy::start(l, ctx)) {
                Ok(p) => Some(p),
                Err(e) => {
                    let _ =
                        crate::sys::process::pidfd_send_signal(&running.init.pidfd, libc::SIGKILL);
                    return error(format!("cannot start the sub-agent's egress proxy: {e}"));
                }
            }
        }
    };
    let broker = match prepared {
        None => None,
        Some(prepared) => {
            match start_broker(
                session,
                prepared,
                &child,
                plan,
                &killer,
                intent,
                chain.clone(),
                running.init.pid,
            ) {
                Ok((b, sub)) => {
                    session
                        .subs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Arc::downgrade(&sub));
                    Some(b)
                }
                Err(e) => {
                    let _ =
                        crate::sys::process::pidfd_send_signal(&running.init.pidfd, libc::SIGKILL);
                    return error(format!("cannot start the sub-agent's broker: {e}"));
                }
            }
        }
    };
    let policy = Policy {
        observer: None,
        on_violation: child.syscalls.on_violation,
        stop_grace: child.stop_grace,
        exec: Some(ExecPolicy {
            allowed: plan.exec_allowed.clone(),
            undeclared: child.divergence.undeclared_tool,
        }),
        deadline: None,
        loud: false,
    };
    // The parent's shim: a cancel stops the sub-agent gracefully; the shim
    // gone (the parent died) kills it at once.
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(1)));
    let sock = stream.as_raw_fd();
    let mut on_control = || control_event(stream);
    let outcome = process::supervise(
        &running,
        Stops::Control(sock, &mut on_control),
        policy,
        &killer,
    );
    if let Some(p) = proxy {
        p.stop(std::time::Duration::from_secs(2));
    }
    if let Some(b) = &broker {
        b.finish(child.stop_grace + std::time::Duration::from_secs(2));
    }
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return error(format!("supervising the sub-agent failed: {e}")),
    };
    let sub = plan.session.id.as_str();
    let end = Record::new(Kind::CallEnd, &session.id)
        .call(call)
        .tool("cordon-shim spawn");
    let (reply, end) = match &outcome {
        Outcome::Exited(c) => (Reply::Exited { code: *c }, end.exit(*c)),
        Outcome::Signaled(s) => (Reply::Signaled { signal: *s }, end.signal(*s)),
        Outcome::Diverged(v) => {
            let rec = Record::new(Kind::Divergence, sub)
                .profile(&child.name)
                .chain(chain.clone())
                .pid(v.pid)
                .decision("kill")
                .reason(v.what.clone());
            let _ = session.audit.append(&rec);
            if let Some(Ok(err)) = fds.get(2).map(OwnedFd::try_clone) {
                let mut f = std::fs::File::from(err);
                let _ = writeln!(f, "cordon: killed: sub-agent pid {} {}", v.pid, v.what);
            }
            if session.profile.divergence.sub_agent == crate::profile::DivergenceAction::Kill {
                // `[divergence] sub_agent = "kill"`: the parent goes too.
                session.killer.diverge(
                    crate::process::Violation {
                        pid: v.pid,
                        what: format!("had sub-agent session {sub} diverge ({})", v.what),
                    },
                    true,
                );
                // No reply before the parent's tree is gone.
                session.killer.wait_dead(std::time::Duration::from_secs(5));
            }
            let code = i32::from(process::EXIT_DIVERGED);
            (
                Reply::Exited { code },
                end.decision("kill")
                    .reason(format!("sub-agent session {sub} diverged: {}", v.what)),
            )
        }
        other => (
            Reply::Exited {
                code: i32::from(other.exit_code()),
            },
            end.exit(i32::from(other.exit_code())),
        ),
    };
    let _ = session.record(end.detail(format!("sub-agent session {sub}")));
    let _ = session.audit.append(
        &Record::new(Kind::SessionEnd, sub)
            .profile(&child.name)
            .chain(chain.clone())
            .exit(match reply {
                Reply::Exited { code } => code,
                _ => 128,
            }),
    );
    session
        .subs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|w| w.strong_count() > 0);
    reply
}

#[allow(clippy::too_many_arguments)]
fn start_broker(
    parent: &Session,
    prepared: super::Prepared,
    child: &Arc<Profile>,
    plan: &sandbox::Plan,
    killer: &Arc<Killer>,
    intent: Option<String>,
    chain: Vec<String>,
    init_pid: i32,
) -> Result<(super::Broker, Arc<Session>), String> {
    let policy = crate::policy::Policy::compile(child).map_err(|e| e.to_string())?;
    // cordon may be non-dumpable by now (it holds secrets), and so is the
    // sub-agent's init; unprivileged, its /proc/<pid>/ns cannot be read,
    // but its pidfd can name the namespace.
    let pid_ns = match super::pid_namespace(Path::new("/proc"), init_pid) {
        Some(ns) => ns,
        None => super::peer::namespace_of_child(Path::new("/proc"), init_pid, PID_NS_WAIT)
            .ok_or_else(|| {
                "cannot identify the sub-agent's pid namespace (did its command start?)".to_string()
            })?,
    };
    let approvals = crate::approval::Queue::new(child.approval.clone(), &plan.session.id);
    if parent.approvals.has_operators() {
        approvals.set_operators();
    }
    let sub = Arc::new(Session {
        id: plan.session.id.clone(),
        profile: Arc::clone(child),
        policy,
        intent,
        placeholders: plan.placeholders.clone(),
        host: parent.host.clone(),
        killer: Arc::clone(killer),
        audit: Arc::clone(&parent.audit),
        uid: parent.uid,
        pid_ns,
        tool_cwds: super::tool_cwds(child, &plan.placeholders),
        root: plan.session.root.clone(),
        next_call: Default::default(),
        denials: Default::default(),
        refused_peers: Default::default(),
        calls: Default::default(),
        secrets: Default::default(),
        audit_failures: Default::default(),
        approvals,
        chain,
        shim: parent.shim.clone(),
        subs: Mutex::new(Vec::new()),
    });
    let broker = super::start(prepared, Arc::clone(&sub)).map_err(|e| e.to_string())?;
    Ok((broker, sub))
}
