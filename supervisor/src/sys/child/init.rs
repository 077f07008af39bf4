//! Init, pid 1 of the new pid namespace: walks [`INIT_STEPS`], then
//! forwards stop signals to the agent, reaps orphans, and exits with the
//! agent's status. When init exits the kernel kills everything left in
//! the namespace: that is the containment.

use std::os::fd::RawFd;

use super::report::{exit, fail, report, write_file};
use super::steps::{InitStep, INIT_STEPS};
use super::{agent, ids, mounts, net, ChildSpec, ReportKind, Stage};

/// Signals init forwards to the agent when they come from the supervisor.
const FORWARDED: [libc::c_int; 6] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Entry point of init. Never returns.
pub fn run_init(spec: &ChildSpec<'_>) -> ! {
    let rfd = spec.report_fd;
    // SAFETY: sigset_t is plain data; filled by the BlockSignals step.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    for step in INIT_STEPS {
        match step {
            InitStep::Lifeline => lifeline(spec),
            InitStep::UserMaps => ids::write_maps(spec),
            InitStep::Mounts => {
                if spec.private_mounts {
                    mounts::setup(spec);
                }
            }
            InitStep::Egress => {
                if let Some(egress) = spec.egress {
                    net::setup_egress(rfd, egress);
                }
            }
            InitStep::MemfdNoexec => {
                // memfds are created sealed non-executable in this pid
                // namespace (the sysctl is per pid namespace and can only
                // be raised); asking for an executable one (MFD_EXEC) is a
                // seccomp violation. Landlock does not govern exec from a
                // memfd. Kernels before 6.3 lack the sysctl.
                let _ = write_file(c"/proc/sys/vm/memfd_noexec", c"1");
            }
            InitStep::BlockSignals => block_signals(&mut all),
            InitStep::CloneAgent => {
                let agent = clone_agent(spec);
                // The agent has executed (vfork): init keeps only the
                // report pipe and the lifeline. Everything else it
                // inherited from the supervisor (other calls' pipes and
                // sockets, the audit log...) is closed, so init never
                // holds another call's pipe open.
                close_all_but(rfd, spec.lifeline_fd);
                init_loop(rfd, agent, &all)
            }
        }
    }
    // CloneAgent is the last step and does not return.
    exit(125)
}

/// Closes the parent's channel ends and dies with the supervisor.
fn lifeline(spec: &ChildSpec<'_>) {
    let rfd = spec.report_fd;
    for &fd in spec.parent_fds {
        // SAFETY: these are the parent's ends of our pipes; closing our copy
        // is what lets the lifeline report the parent's death.
        unsafe { libc::close(fd) };
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    } != 0
    {
        fail(rfd, Stage::Lifeline, 0);
    }
    // The parent may have died before PDEATHSIG was armed: check the lifeline.
    let mut pfd = libc::pollfd {
        fd: spec.lifeline_fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polls one live pollfd with a zero timeout.
    if unsafe { libc::poll(&mut pfd, 1, 0) } != 0
        && pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0
    {
        exit(125);
    }
}

/// Blocks every signal: init takes them one at a time with sigwaitinfo.
fn block_signals(all: &mut libc::sigset_t) {
    // SAFETY: `all` is a live sigset_t; the old mask is not needed.
    unsafe {
        libc::sigfillset(all);
        libc::sigprocmask(libc::SIG_SETMASK, all, std::ptr::null_mut());
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
}

/// Clones the agent. It shares init's memory until it executes (vfork, as
/// posix_spawn does): no page tables to copy, no copy-on-write faults, and
/// init sleeps meanwhile so nothing else touches that memory.
fn clone_agent(spec: &ChildSpec<'_>) -> libc::pid_t {
    let stack_top = spec.agent_stack.as_ptr_range().end as usize & !0xf;
    // SAFETY: `agent::entry` runs on `spec.agent_stack`, a buffer that
    // outlives the child's use of it (init is suspended until the agent
    // executes or exits) and is used by nothing else; the argument points
    // at `spec`, valid in the shared memory for the same reason. Without
    // CLONE_SIGHAND or CLONE_THREAD, the agent's signal handlers, masks,
    // credentials, Landlock domain and seccomp filters are its own.
    let agent = unsafe {
        libc::clone(
            agent::entry,
            stack_top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (spec as *const ChildSpec<'_>).cast_mut().cast(),
        )
    };
    if agent < 0 {
        fail(spec.report_fd, Stage::Fork, 0);
    }
    agent
}

/// Closes every descriptor from 3 up except `a` and `b`.
fn close_all_but(a: RawFd, b: RawFd) {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let mut from = 3;
    for keep in [lo, hi] {
        if keep >= from {
            if keep > from {
                // SAFETY: close_range on a range of descriptor numbers.
                unsafe {
                    libc::syscall(libc::SYS_close_range, from as u32, (keep - 1) as u32, 0u32)
                };
            }
            from = keep + 1;
        }
    }
    // SAFETY: as above, up to the highest possible descriptor.
    unsafe { libc::syscall(libc::SYS_close_range, from as u32, u32::MAX, 0u32) };
}

/// Waits for signals: forwards stop signals to the agent, reaps every
/// orphan, and exits with the agent's status once it is gone.
fn init_loop(rfd: RawFd, agent: libc::pid_t, all: &libc::sigset_t) -> ! {
    loop {
        // SAFETY: siginfo_t is plain data, written by sigwaitinfo.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `all` is an initialised set; `info` is writable.
        let sig = unsafe { libc::sigwaitinfo(all, &mut info) };
        if sig < 0 {
            continue;
        }
        if sig == libc::SIGCHLD {
            loop {
                let mut status = 0;
                // SAFETY: reaps any child without blocking; writes `status`.
                let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if pid <= 0 {
                    break;
                }
                if pid == agent {
                    report(rfd, ReportKind::AgentExited, 0, 0, status as u32);
                    let code = if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        128 + libc::WTERMSIG(status)
                    };
                    exit(code);
                }
            }
        } else if FORWARDED.contains(&sig) && info.si_code != libc::SI_KERNEL {
            // A signal the terminal sent to the whole foreground group already
            // reached the agent (SI_KERNEL); forward only those sent to us.
            // SAFETY: kill with a pid and signal number.
            unsafe { libc::kill(agent, sig) };
        }
    }
}
