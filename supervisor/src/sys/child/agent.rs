//! The agent, init's vfork child: walks [`AGENT_STEPS`] (confine this
//! process, then execute the command). Never returns.

use std::os::fd::RawFd;

use super::super::seccomp;
use super::report::{errno, exit, fail, fail_errno, report};
use super::steps::{AgentStep, AGENT_STEPS};
use super::{creds, landlock, ChildSpec, ReportKind, Stage};

pub(super) extern "C" fn entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `&ChildSpec` run_init passed to clone; init keeps
    // it alive and untouched while this vfork child runs.
    let spec = unsafe { &*(arg as *const ChildSpec<'_>) };
    run(spec)
}

fn run(spec: &ChildSpec<'_>) -> ! {
    let rfd = spec.report_fd;
    for step in AGENT_STEPS {
        match step {
            AgentStep::Signals => {
                // SAFETY: lifeline is init's business; closing our copy.
                unsafe { libc::close(spec.lifeline_fd) };
                reset_signals();
            }
            AgentStep::Rlimits => creds::set_rlimits(spec),
            AgentStep::DropCapabilities => creds::drop_capabilities(rfd),
            AgentStep::NoNewPrivs => creds::no_new_privs(rfd),
            AgentStep::Landlock => {
                if let Some(ll) = &spec.landlock {
                    landlock::apply(rfd, ll);
                }
            }
            AgentStep::Seccomp => install_seccomp(spec),
            AgentStep::Chdir => chdir(spec),
            AgentStep::Stdio => stdio(spec),
            AgentStep::KeepFds => keep_fds(spec),
            AgentStep::Exec => exec(spec),
        }
    }
    // Exec is the last step and does not return.
    exit(125)
}

/// Gives the agent the signal state a plain exec from cordon's caller
/// would: execve resets handled signals itself, and cordon installs no
/// handlers; it only ignores SIGPIPE (the Rust runtime does) and SIGXFSZ
/// (`sys::ignore_file_size_signal`), and blocks signals (init blocks
/// all). Init already set SIGCHLD to the default.
fn reset_signals() {
    // SAFETY: setting two dispositions to SIG_DFL.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
    }
    // SAFETY: sigset_t is plain data, emptied by sigemptyset.
    let mut none: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `none` is a live sigset_t.
    unsafe {
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// Installs the filter and hands its listener to the supervisor. Not by
/// SCM_RIGHTS: the filter may send sendmsg() to the supervisor, which
/// does not hold the listener yet. The agent writes the listener's number
/// and waits; the supervisor copies it (pidfd_getfd) and answers one byte;
/// only then may the agent's own copy go.
fn install_seccomp(spec: &ChildSpec<'_>) {
    let rfd = spec.report_fd;
    if !spec.seccomp.is_empty() {
        let listener = match seccomp::install_with_listener(spec.seccomp) {
            Ok(fd) => fd,
            Err(e) => fail_errno(rfd, Stage::Seccomp, 0, e.0 as u32),
        };
        // A non-dumpable process (a copy of a supervisor that holds
        // secrets) cannot have its descriptors copied by an unprivileged
        // supervisor; exec makes this process dumpable anyway.
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
        let number = listener.to_ne_bytes();
        // SAFETY: writes four bytes from a live stack array.
        let wrote = unsafe { libc::write(spec.listener_sock, number.as_ptr().cast(), 4) };
        if wrote != 4 {
            fail(rfd, Stage::SendListener, 0);
        }
        let mut ack = [0u8; 1];
        loop {
            // SAFETY: reads at most one byte into a live stack array.
            let n = unsafe { libc::read(spec.listener_sock, ack.as_mut_ptr().cast(), 1) };
            if n == 1 {
                break;
            }
            if n < 0 && errno() == libc::EINTR as u32 {
                continue;
            }
            fail(rfd, Stage::SendListener, 1);
        }
        // SAFETY: the supervisor holds its own copy now; close ours.
        unsafe { libc::close(listener) };
    }
    // SAFETY: closing our end of the listener socketpair.
    unsafe { libc::close(spec.listener_sock) };
}

/// Enters the directory by path, inside this mount namespace, so the deny
/// masks apply to lookups relative to it (a descriptor opened outside
/// would see under them). With a descriptor given, it must be the very
/// same directory: a path swapped since the check fails here.
fn chdir(spec: &ChildSpec<'_>) {
    let rfd = spec.report_fd;
    // SAFETY: cwd is NUL-terminated.
    if unsafe { libc::chdir(spec.cwd.as_ptr()) } != 0 {
        fail(rfd, Stage::Chdir, 0);
    }
    if let Some(fd) = spec.cwd_fd {
        // SAFETY: stat is plain data, written by stat/fstat below.
        let (mut here, mut want): (libc::stat, libc::stat) =
            unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        // SAFETY: both structs are writable; "." and `fd` are valid names.
        let ok =
            unsafe { libc::stat(c".".as_ptr(), &mut here) == 0 && libc::fstat(fd, &mut want) == 0 };
        if !ok || here.st_dev != want.st_dev || here.st_ino != want.st_ino {
            fail_errno(rfd, Stage::Chdir, 0, libc::ESTALE as u32);
        }
    }
}

/// The caller's descriptors become 0, 1 and 2.
fn stdio(spec: &ChildSpec<'_>) {
    let Some(fds) = spec.stdio else { return };
    for (target, &fd) in (0..).zip(fds.iter()) {
        // SAFETY: dup2 onto 0..=2; `fd` is open and above 2, so the new
        // descriptor is a copy without close-on-exec.
        if unsafe { libc::dup2(fd, target) } < 0 {
            fail(spec.report_fd, Stage::Stdio, target as usize);
        }
    }
}

/// Nothing but 0, 1, 2 and the descriptors to keep survives the exec; the
/// report pipe stays open until then so an exec failure can be reported.
fn keep_fds(spec: &ChildSpec<'_>) {
    // SAFETY: only sets the close-on-exec flag on descriptors.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    for &fd in spec.keep_fds {
        keep(spec.report_fd, fd);
    }
}

fn keep(rfd: RawFd, fd: RawFd) {
    // SAFETY: clears close-on-exec on a descriptor the parent handed over.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } != 0 {
        fail(rfd, Stage::KeepFds, 0);
    }
}

fn exec(spec: &ChildSpec<'_>) -> ! {
    // SAFETY: exe is NUL-terminated, argv and envp are NULL-terminated arrays
    // of NUL-terminated strings that live in this process's memory.
    unsafe { libc::execve(spec.exe.as_ptr(), spec.argv.as_ptr(), spec.envp.as_ptr()) };
    let e = errno();
    report(spec.report_fd, ReportKind::ExecFailed, 0, 0, e);
    exit(if e == libc::ENOENT as u32 { 127 } else { 126 })
}
