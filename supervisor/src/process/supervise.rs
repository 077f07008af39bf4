//! The supervisor's event loop for one sandbox (the agent's, or one
//! brokered tool call's): stop requests, seccomp violations and exec
//! checks, child reports, and init's exit.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::exec_check::{check_exec, ExecVerdict};
use super::kill::Killer;
use super::launch::Running;
use super::outcome::{Outcome, Violation};
use crate::audit::{Decision, Kind};
use crate::profile::{DivergenceAction, OnViolation};
use crate::sandbox::seccomp::{is_exec, syscall_name, AUDIT_ARCH};
use crate::sys::child::{Report, ReportKind, Stage, REPORT_SIZE};
use crate::sys::fd::{poll, read, read_signal};
use crate::sys::process::{pidfd_send_signal, try_wait, Exit};
use crate::sys::seccomp::{Listener, Notification};
use crate::sys::Errno;

/// Violations printed before the rest are only counted.
const MAX_PRINTED_DENIALS: u32 = 20;

/// What an exec outside the profile means (the agent only).
#[derive(Debug, Clone)]
pub struct ExecPolicy {
    /// Canonical paths (files or directory trees) the agent may execute.
    pub allowed: Vec<PathBuf>,
    /// Canonical paths of the dynamic loaders, refused when executed
    /// directly whatever `allowed` says.
    pub interpreters: Vec<PathBuf>,
    pub undeclared: DivergenceAction,
    /// `[divergence] tolerated_execs`, canonical, each with its rule's
    /// name: refused with EACCES, never divergence.
    pub tolerated: Vec<(PathBuf, String)>,
}

/// Sees every seccomp notification instead of the violation and exec
/// handling (`cordon learn`); the syscall then continues.
pub trait Observer: Send + Sync + std::fmt::Debug {
    fn observe(&self, listener: &Listener, n: &Notification);
}

/// How the loop should treat violations and stop requests.
#[derive(Debug, Clone)]
pub struct Policy {
    /// An observed run: notifications are recorded, never refused.
    pub observer: Option<std::sync::Arc<dyn Observer>>,
    pub on_violation: OnViolation,
    pub stop_grace: Duration,
    pub exec: Option<ExecPolicy>,
    /// Kill the sandbox at this time (a tool call's timeout).
    pub deadline: Option<Instant>,
    /// Print violations on stderr (the agent's run); tool calls only
    /// report them through the outcome.
    pub loud: bool,
    /// Makes the sandbox's connects and addressed sends.
    pub net: Option<std::sync::Arc<super::mediate::Mediator>>,
    /// Where refusals are said and recorded (`None`: nowhere, e.g. a
    /// sandbox of `cordon learn`'s, which records what it observes).
    pub notices: Option<std::sync::Arc<super::Notices>>,
}

/// What happened on the caller's control channel (a tool call's shim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlEvent {
    Nothing,
    /// Forward this signal and start the grace period.
    Stop(i32),
    /// The caller is gone: kill now.
    Gone,
}

/// Where stop requests come from.
pub enum Stops<'a> {
    /// cordon's own signals, through a signalfd.
    Signals(&'a OwnedFd),
    /// A descriptor that becomes readable, and what to make of it.
    Control(RawFd, &'a mut dyn FnMut() -> ControlEvent),
}

/// Why the supervisor loop itself failed (the sandbox is killed first).
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("supervisor {what}: {errno}")]
    Sys { what: &'static str, errno: Errno },
}

struct State<'k> {
    policy: Policy,
    killer: &'k Killer,
    timed_out: bool,
    listener: Option<std::sync::Arc<Listener>>,
    listener_sock_open: bool,
    reports_open: bool,
    partial: Vec<u8>,
    setup_failure: Option<Report>,
    exec_failure: Option<Report>,
    agent_status: Option<i32>,
    denied: u32,
    stop_deadline: Option<Instant>,
}

/// Runs until init (and so the whole sandbox) is gone. `killer` holds the
/// sandbox's pidfd and records why it was killed, shared with the broker.
pub fn supervise(
    running: &Running,
    mut stops: Stops<'_>,
    policy: Policy,
    killer: &Killer,
) -> Result<Outcome, SuperviseError> {
    let mut st = State {
        policy,
        killer,
        timed_out: false,
        listener: None,
        listener_sock_open: true,
        reports_open: true,
        partial: Vec::with_capacity(REPORT_SIZE * 4),
        setup_failure: None,
        exec_failure: None,
        agent_status: None,
        denied: 0,
        stop_deadline: None,
    };
    let result = event_loop(running, &mut stops, &mut st);
    if result.is_err() {
        // Never leave a sandbox running unsupervised.
        let _ = pidfd_send_signal(&running.init.pidfd, libc::SIGKILL);
    }
    let init_exit = result?;
    // Init is gone, so are all its writers: take what is left in the pipe.
    drain_reports(running, &mut st);
    if st.policy.loud && st.denied > MAX_PRINTED_DENIALS {
        eprintln!("cordon: {} syscalls were denied in total", st.denied);
    }
    Ok(decide(st, init_exit))
}

fn event_loop(
    running: &Running,
    stops: &mut Stops<'_>,
    st: &mut State<'_>,
) -> Result<Exit, SuperviseError> {
    let pidfd = &running.init.pidfd;
    let mut control_open = true;
    loop {
        let stop_fd = match stops {
            Stops::Signals(fd) => fd.as_raw_fd(),
            Stops::Control(fd, _) if control_open => *fd,
            Stops::Control(..) => -1,
        };
        let mut fds = vec![
            pollfd(stop_fd),
            pollfd(pidfd.as_raw_fd()),
            pollfd(if st.reports_open {
                running.reports.as_raw_fd()
            } else {
                -1
            }),
            pollfd(if st.listener_sock_open {
                running.listener_sock.as_raw_fd()
            } else {
                -1
            }),
            pollfd(st.listener.as_ref().map_or(-1, |l| l.raw())),
        ];
        let next = [
            st.stop_deadline,
            st.policy.deadline.filter(|_| !st.timed_out),
        ]
        .into_iter()
        .flatten()
        .min();
        let timeout = match next {
            // Round up so we never wake a millisecond early and spin.
            Some(d) => i32::try_from(
                d.saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000),
            )
            .unwrap_or(i32::MAX),
            None => -1,
        };
        poll(&mut fds, timeout).map_err(|errno| SuperviseError::Sys {
            what: "poll",
            errno,
        })?;
        if st.stop_deadline.is_some_and(|d| Instant::now() >= d) {
            tracing::warn!("grace period over; killing the sandbox");
            let _ = pidfd_send_signal(pidfd, libc::SIGKILL);
            st.stop_deadline = None;
        }
        if !st.timed_out && st.policy.deadline.is_some_and(|d| Instant::now() >= d) {
            st.timed_out = true;
            let _ = pidfd_send_signal(pidfd, libc::SIGKILL);
        }
        if fds[0].revents != 0 {
            match stops {
                Stops::Signals(signals) => handle_signals(signals, pidfd, st)?,
                Stops::Control(_, on_ready) => match on_ready() {
                    ControlEvent::Nothing => {}
                    ControlEvent::Stop(sig) => request_stop(pidfd, st, sig, true),
                    ControlEvent::Gone => {
                        control_open = false;
                        let _ = pidfd_send_signal(pidfd, libc::SIGKILL);
                    }
                },
            }
        }
        if fds[4].revents & libc::POLLIN != 0 {
            handle_notification(st);
        } else if fds[4].revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            // Every process under the filter is gone.
            st.listener = None;
        }
        if fds[3].revents != 0 {
            if let Some(l) = take_listener(running) {
                st.listener = Some(std::sync::Arc::new(l));
            }
            st.listener_sock_open = false;
        }
        if fds[2].revents != 0 {
            read_reports(running, st);
        }
        if fds[1].revents != 0 {
            if let Some(exit) = try_wait(pidfd).map_err(|errno| SuperviseError::Sys {
                what: "waitid",
                errno,
            })? {
                return Ok(exit);
            }
        }
    }
}

/// Takes the seccomp listener from the agent (see `sys::child::agent`): it
/// writes the listener's number and waits; we copy it with pidfd_getfd and
/// answer one byte. `None` when the agent died first (its report says why)
/// or the copy failed (the agent then fails its set-up).
fn take_listener(running: &Running) -> Option<Listener> {
    let sock = running.listener_sock.as_raw_fd();
    let mut number = [0u8; 4];
    if read(sock, &mut number).ok()? != 4 {
        return None;
    }
    let fd = i32::from_ne_bytes(number);
    let agent = only_child(running.init.pid)?;
    let pidfd = crate::sys::process::pidfd_open(agent).ok()?;
    let listener = crate::sys::sockets::pidfd_getfd(&pidfd, fd);
    match listener {
        Ok(l) => {
            let _ = crate::sys::fd::write_all(sock, &[1]);
            Some(Listener::from_owned(l))
        }
        Err(errno) => {
            tracing::error!(%errno, "cannot copy the sandbox's seccomp listener");
            None
        }
    }
}

/// The one child of `init` (the agent, while it sets itself up).
fn only_child(init: i32) -> Option<i32> {
    let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

fn handle_signals(
    signals: &OwnedFd,
    pidfd: &OwnedFd,
    st: &mut State<'_>,
) -> Result<(), SuperviseError> {
    while let Some((sig, code)) = read_signal(signals).map_err(|errno| SuperviseError::Sys {
        what: "signalfd",
        errno,
    })? {
        if sig == libc::SIGCHLD {
            continue; // init's exit is seen through its pidfd
        }
        // A terminal's ^C or ^\ (SI_KERNEL) already reached the agent, which
        // shares our process group; the agent decides what it means.
        if code == libc::SI_KERNEL
            && st.stop_deadline.is_none()
            && (sig == libc::SIGINT || sig == libc::SIGQUIT)
        {
            continue;
        }
        request_stop(pidfd, st, sig, code != libc::SI_KERNEL);
    }
    Ok(())
}

/// Forwards a stop signal and starts the grace period; a second request
/// while stopping kills at once.
fn request_stop(pidfd: &OwnedFd, st: &mut State<'_>, sig: i32, forward: bool) {
    if st.stop_deadline.is_some() {
        if st.policy.loud {
            eprintln!("cordon: second stop request; killing the sandbox");
        }
        let _ = pidfd_send_signal(pidfd, libc::SIGKILL);
        return;
    }
    if forward {
        let _ = pidfd_send_signal(pidfd, sig);
    }
    st.stop_deadline = Some(Instant::now() + st.policy.stop_grace);
}

fn handle_notification(st: &mut State<'_>) {
    let Some(listener) = &st.listener else { return };
    let received = listener.receive();
    let n = match received {
        Ok(n) => n,
        // ENOENT: the caller died before we looked; nothing to answer.
        Err(_) => return,
    };
    if let Some(observer) = &st.policy.observer {
        observer.observe(listener, &n);
        let _ = listener.respond_continue(n.id);
        return;
    }
    if n.data.arch == AUDIT_ARCH && super::mediate::Mediator::handles(n.data.nr) {
        match &st.policy.net {
            Some(net) => {
                if let Some(what) = net.handle(listener, &n) {
                    st.killer
                        .diverge(Violation { pid: n.pid, what }, st.policy.loud);
                }
            }
            // Not mediated: the filter never sends these then.
            None => {
                let _ = listener.respond_error(n.id, libc::EACCES);
            }
        }
        return;
    }
    if n.data.arch == AUDIT_ARCH && is_exec(n.data.nr) {
        if let Some(exec) = &st.policy.exec {
            // cordon's own launch exec never gets here (the filter lets that
            // one path pointer through): every exec seen is the agent's.
            let verdict = check_exec(listener, &n, &exec.allowed, &exec.interpreters);
            match verdict {
                ExecVerdict::Allowed => {
                    let _ = listener.respond_continue(n.id);
                }
                ExecVerdict::Outside(_) | ExecVerdict::Interpreter(_) => {
                    refuse_exec(st, listener, &n, &verdict, exec);
                }
            }
            return;
        }
    }
    let syscall = describe_syscall(n.data.arch, n.data.nr);
    // A clone or unshare asking for namespaces says what it means.
    let name = (n.data.arch == AUDIT_ARCH)
        .then(|| syscall_name(n.data.nr))
        .flatten()
        .unwrap_or("");
    let own_sandbox = super::own_sandbox::namespace_call(
        name,
        n.data.args[0],
        super::own_sandbox::comm(n.pid).as_deref(),
    );
    match st.policy.on_violation {
        OnViolation::Kill => {
            let what = own_sandbox
                .unwrap_or_else(|| format!("called {syscall}, which the profile denies"));
            st.killer
                .diverge(Violation { pid: n.pid, what }, st.policy.loud);
        }
        OnViolation::Deny => {
            st.denied += 1;
            let what = match &own_sandbox {
                Some(text) => format!("pid {} {text} (returned EPERM)", n.pid),
                None => format!("pid {} called {syscall} (returned EPERM)", n.pid),
            };
            if st.policy.loud && st.denied <= MAX_PRINTED_DENIALS {
                eprintln!("cordon: denied: {what}");
            }
            if let Some(notices) = &st.policy.notices {
                notices.record(
                    notices
                        .base(Kind::Violation)
                        .pid(n.pid)
                        .decision(Decision::Deny)
                        .rule("syscalls.on_violation")
                        .detail(syscall.clone())
                        .reason(format!("called {syscall}, which the profile denies")),
                );
            }
            tracing::info!(pid = n.pid, %syscall, "seccomp violation denied");
            let _ = listener.respond_error(n.id, libc::EPERM);
        }
    }
}

/// An exec outside the profile: tolerated (EACCES, said once), refused
/// (EACCES), or divergence, as the profile says; every refusal recorded.
fn refuse_exec(
    st: &State<'_>,
    listener: &Listener,
    n: &Notification,
    verdict: &ExecVerdict,
    exec: &ExecPolicy,
) {
    let (what, path) = match verdict {
        ExecVerdict::Interpreter(path) => (
            format!(
                "executed the dynamic loader `{}` directly (it would run any file the sandbox can read); cordon lets programs use it only as their interpreter",
                path.display()
            ),
            path,
        ),
        ExecVerdict::Outside(path) => (
            match super::own_sandbox::exec_hint(path) {
                Some(hint) => format!(
                    "executed `{}`, which is neither under [filesystem] exec nor a declared tool: {hint}",
                    path.display()
                ),
                None => format!(
                    "executed `{}`, which is neither under [filesystem] exec nor a declared tool",
                    path.display()
                ),
            },
            path,
        ),
        ExecVerdict::Allowed => return,
    };
    let tolerated = match verdict {
        ExecVerdict::Outside(p) => exec
            .tolerated
            .iter()
            .find(|(t, _)| p.starts_with(t))
            .map(|(_, rule)| rule.clone()),
        _ => None,
    };
    let record = |rule: &str, reason: String| {
        if let Some(notices) = &st.policy.notices {
            notices.record(
                notices
                    .base(Kind::Violation)
                    .pid(n.pid)
                    .decision(Decision::Deny)
                    .rule(rule.to_string())
                    .detail(format!("exec {}", path.display()))
                    .reason(reason),
            );
        }
    };
    if let Some(rule) = tolerated {
        if let Some(notices) = &st.policy.notices {
            notices.say_once(
                &format!("exec {}", path.display()),
                &format!(
                    "denied: pid {} {what} (returned EACCES; tolerated by {rule}: not divergence, and further execs of it are only recorded)",
                    n.pid
                ),
            );
        }
        record(&rule, format!("{what} (tolerated)"));
        let _ = listener.respond_error(n.id, libc::EACCES);
        return;
    }
    match exec.undeclared {
        DivergenceAction::Kill => {
            st.killer
                .diverge(Violation { pid: n.pid, what }, st.policy.loud);
        }
        DivergenceAction::Deny => {
            match &st.policy.notices {
                Some(notices) => {
                    notices.say(&format!("denied: pid {} {what} (returned EACCES)", n.pid))
                }
                None if st.policy.loud => {
                    eprintln!("cordon: denied: pid {} {what} (returned EACCES)", n.pid);
                }
                None => {}
            }
            record("divergence.undeclared_tool", what);
            let _ = listener.respond_error(n.id, libc::EACCES);
        }
    }
}

/// "`ptrace`", or a description of a syscall from another ABI.
fn describe_syscall(arch: u32, nr: i32) -> String {
    if arch != AUDIT_ARCH {
        return format!(
            "syscall {nr} of a foreign ABI (audit arch {arch:#x}, e.g. i386 `int 0x80`)"
        );
    }
    #[cfg(target_arch = "x86_64")]
    if (nr as u32) & crate::sandbox::seccomp::X32_SYSCALL_BIT != 0 {
        return format!(
            "x32 syscall {}",
            (nr as u32) & !crate::sandbox::seccomp::X32_SYSCALL_BIT
        );
    }
    match syscall_name(nr) {
        Some(name) => format!("`{name}`"),
        None => format!("syscall {nr}"),
    }
}

fn read_reports(running: &Running, st: &mut State<'_>) {
    let mut buf = [0u8; REPORT_SIZE * 8];
    loop {
        match read(running.reports.as_raw_fd(), &mut buf) {
            Ok(0) => {
                st.reports_open = false;
                break;
            }
            Ok(n) => {
                st.partial.extend_from_slice(&buf[..n]);
                while st.partial.len() >= REPORT_SIZE {
                    let mut rec = [0u8; REPORT_SIZE];
                    rec.copy_from_slice(&st.partial[..REPORT_SIZE]);
                    st.partial.drain(..REPORT_SIZE);
                    record(st, Report::decode(&rec));
                }
            }
            Err(e) if e.0 == libc::EAGAIN => break,
            Err(_) => {
                st.reports_open = false;
                break;
            }
        }
    }
}

fn drain_reports(running: &Running, st: &mut State<'_>) {
    if st.reports_open {
        read_reports(running, st);
    }
}

fn record(st: &mut State<'_>, r: Report) {
    match r.kind {
        k if k == ReportKind::SetupFailed as u32 => {
            st.setup_failure.get_or_insert(r);
        }
        k if k == ReportKind::ExecFailed as u32 => {
            st.exec_failure.get_or_insert(r);
        }
        k if k == ReportKind::AgentExited as u32 => st.agent_status = Some(r.value as i32),
        _ => tracing::warn!(kind = r.kind, "unknown report from the sandbox"),
    }
}

fn decide(st: State<'_>, init_exit: Exit) -> Outcome {
    if let Some(v) = st.killer.diverged() {
        return Outcome::Diverged(v);
    }
    if st.timed_out {
        return Outcome::TimedOut;
    }
    if let Some(r) = st.setup_failure {
        return Outcome::SetupFailed {
            stage: Stage::from_u32(r.stage),
            index: r.index as usize,
            errno: Errno(r.value as i32),
        };
    }
    if let Some(r) = st.exec_failure {
        return Outcome::ExecFailed(Errno(r.value as i32));
    }
    match st.agent_status {
        Some(status) if libc::WIFEXITED(status) => Outcome::Exited(libc::WEXITSTATUS(status)),
        Some(status) => Outcome::Signaled(libc::WTERMSIG(status)),
        // Init died without a report: it was killed (grace period over, or
        // from outside). The agent died with it.
        None => match init_exit {
            Exit::Code(c) => Outcome::Exited(c),
            Exit::Signal(s) => Outcome::Signaled(s),
        },
    }
}
