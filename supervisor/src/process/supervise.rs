//! The supervisor's event loop for one sandbox: signals, seccomp
//! violations, child reports, and init's exit.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::launch::Running;
use super::outcome::{Outcome, Violation};
use crate::profile::OnViolation;
use crate::sandbox::seccomp::{syscall_name, AUDIT_ARCH};
use crate::sys::child::{Report, ReportKind, Stage, REPORT_SIZE};
use crate::sys::fd::{poll, read, read_signal, recv_fd};
use crate::sys::process::{pidfd_send_signal, try_wait, Exit};
use crate::sys::seccomp::Listener;
use crate::sys::Errno;

/// Violations printed before the rest are only counted.
const MAX_PRINTED_DENIALS: u32 = 20;

/// How the loop should treat violations and stop requests.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub on_violation: OnViolation,
    pub stop_grace: Duration,
}

/// Why the supervisor loop itself failed (the sandbox is killed first).
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("supervisor {what}: {errno}")]
    Sys { what: &'static str, errno: Errno },
}

struct State {
    policy: Policy,
    listener: Option<Listener>,
    listener_sock_open: bool,
    reports_open: bool,
    partial: Vec<u8>,
    setup_failure: Option<Report>,
    exec_failure: Option<Report>,
    agent_status: Option<i32>,
    diverged: Option<Violation>,
    denied: u32,
    stop_deadline: Option<Instant>,
}

/// Runs until init (and so the whole sandbox) is gone.
pub fn supervise(
    running: &Running,
    signals: &OwnedFd,
    policy: Policy,
) -> Result<Outcome, SuperviseError> {
    let mut st = State {
        policy,
        listener: None,
        listener_sock_open: true,
        reports_open: true,
        partial: Vec::with_capacity(REPORT_SIZE * 4),
        setup_failure: None,
        exec_failure: None,
        agent_status: None,
        diverged: None,
        denied: 0,
        stop_deadline: None,
    };
    let result = event_loop(running, signals, &mut st);
    if result.is_err() {
        // Never leave a sandbox running unsupervised.
        let _ = pidfd_send_signal(&running.init.pidfd, libc::SIGKILL);
    }
    let init_exit = result?;
    // Init is gone, so are all its writers: take what is left in the pipe.
    drain_reports(running, &mut st);
    if st.denied > MAX_PRINTED_DENIALS {
        eprintln!("cordon: {} syscalls were denied in total", st.denied);
    }
    Ok(decide(st, init_exit))
}

fn event_loop(
    running: &Running,
    signals: &OwnedFd,
    st: &mut State,
) -> Result<Exit, SuperviseError> {
    let pidfd = &running.init.pidfd;
    loop {
        let mut fds = vec![
            pollfd(signals.as_raw_fd()),
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
            pollfd(st.listener.as_ref().map_or(-1, Listener::raw)),
        ];
        let timeout = match st.stop_deadline {
            Some(d) => i32::try_from(d.saturating_duration_since(Instant::now()).as_millis())
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
        if fds[0].revents != 0 {
            handle_signals(signals, pidfd, st)?;
        }
        if fds[4].revents & libc::POLLIN != 0 {
            handle_violation(pidfd, st);
        } else if fds[4].revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            // Every process under the filter is gone.
            st.listener = None;
        }
        if fds[3].revents != 0 {
            if let Ok(Some(fd)) = recv_fd(running.listener_sock.as_raw_fd()) {
                st.listener = Some(Listener::from_owned(fd));
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
    st: &mut State,
) -> Result<(), SuperviseError> {
    while let Some((sig, code)) = read_signal(signals).map_err(|errno| SuperviseError::Sys {
        what: "signalfd",
        errno,
    })? {
        if sig == libc::SIGCHLD {
            continue; // init's exit is seen through its pidfd
        }
        if st.stop_deadline.is_some() {
            // A second request while stopping: stop waiting.
            eprintln!("cordon: second stop request; killing the sandbox");
            let _ = pidfd_send_signal(pidfd, libc::SIGKILL);
            continue;
        }
        // A terminal's ^C or ^\ (SI_KERNEL) already reached the agent, which
        // shares our process group; the agent decides what it means.
        if code == libc::SI_KERNEL && (sig == libc::SIGINT || sig == libc::SIGQUIT) {
            continue;
        }
        if code != libc::SI_KERNEL {
            let _ = pidfd_send_signal(pidfd, sig);
        }
        st.stop_deadline = Some(Instant::now() + st.policy.stop_grace);
    }
    Ok(())
}

fn handle_violation(pidfd: &OwnedFd, st: &mut State) {
    let Some(listener) = &st.listener else { return };
    let n = match listener.receive() {
        Ok(n) => n,
        // ENOENT: the caller died before we looked; nothing to answer.
        Err(_) => return,
    };
    let v = Violation {
        pid: n.pid,
        syscall: describe_syscall(n.data.arch, n.data.nr),
    };
    match st.policy.on_violation {
        OnViolation::Kill => {
            if st.diverged.is_none() {
                eprintln!(
                    "cordon: killed: pid {} called {}, which the profile denies; stopping the whole sandbox",
                    v.pid, v.syscall
                );
                tracing::info!(pid = v.pid, syscall = %v.syscall, "seccomp violation: killing the sandbox");
                let _ = pidfd_send_signal(pidfd, libc::SIGKILL);
                st.diverged = Some(v);
            }
        }
        OnViolation::Deny => {
            st.denied += 1;
            if st.denied <= MAX_PRINTED_DENIALS {
                eprintln!(
                    "cordon: denied: pid {} called {} (returned EPERM)",
                    v.pid, v.syscall
                );
            }
            tracing::info!(pid = v.pid, syscall = %v.syscall, "seccomp violation denied");
            let _ = listener.respond_error(n.id, libc::EPERM);
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

fn read_reports(running: &Running, st: &mut State) {
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

fn drain_reports(running: &Running, st: &mut State) {
    if st.reports_open {
        read_reports(running, st);
    }
}

fn record(st: &mut State, r: Report) {
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

fn decide(st: State, init_exit: Exit) -> Outcome {
    if let Some(v) = st.diverged {
        return Outcome::Diverged(v);
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
