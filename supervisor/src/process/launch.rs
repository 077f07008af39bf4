//! Starts the sandbox init from a plan: sets up the channels between
//! supervisor and child, lays out the C arrays, and clones.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::sandbox::landlock::FILE_RIGHTS;
use crate::sandbox::{Command, Confined};
use crate::sys::child::{ChildSpec, EgressSpec, LandlockSpec, MaskSource};
use crate::sys::fd::{pipe, recv_fd, set_nonblocking, socketpair};
use crate::sys::process::{spawn_init, Spawned};
use crate::sys::Errno;

/// Why the child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("creating a {what}: {errno}")]
    Channel { what: &'static str, errno: Errno },
    #[error("creating the sandbox namespaces (clone3): {errno}{hint}")]
    Clone { errno: Errno, hint: &'static str },
}

/// Stack for the agent between clone and execve.
const AGENT_STACK_SIZE: usize = 256 * 1024;

/// A running sandbox: init's pidfd and the supervisor's ends of the channels.
#[derive(Debug)]
pub struct Running {
    pub init: Spawned,
    /// Fixed-size reports from init and the agent (see `sys::child::Report`).
    pub reports: OwnedFd,
    /// Carries the seccomp listener from the agent.
    pub listener_sock: OwnedFd,
    /// Held open while the supervisor lives; init watches it.
    pub lifeline: OwnedFd,
    /// The egress proxy's listener, made by init inside the sandbox's
    /// network namespace (when the plan has one). `None` there means init
    /// failed before sending it; its report says why.
    pub egress_listener: Option<std::net::TcpListener>,
}

fn channel<T>(what: &'static str, r: Result<T, Errno>) -> Result<T, LaunchError> {
    r.map_err(|errno| LaunchError::Channel { what, errno })
}

fn pointer_array(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Descriptors the child gets instead of inheriting cordon's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Io<'a> {
    /// Become the child's stdin, stdout and stderr (a brokered call gets
    /// the shim's). Must not be 0, 1 or 2 themselves.
    pub stdio: Option<[RawFd; 3]>,
    /// The working directory, as a directory descriptor (instead of the
    /// command's `cwd` path).
    pub cwd: Option<RawFd>,
    /// Kept open across exec at the same numbers.
    pub keep: &'a [RawFd],
}

/// Clones the sandbox init; it sets up and executes the command.
pub fn launch(plan: &Confined, command: &Command, io: Io<'_>) -> Result<Running, LaunchError> {
    let (reports, report_wr) = channel("report pipe", pipe())?;
    let (lifeline_rd, lifeline) = channel("lifeline pipe", pipe())?;
    let (listener_sock, listener_child) = channel("socketpair", socketpair())?;
    let egress = match plan.egress_port {
        Some(port) => Some((port, channel("socketpair", socketpair())?)),
        None => None,
    };
    channel(
        "non-blocking report pipe",
        set_nonblocking(reports.as_raw_fd()),
    )?;

    // Ample for the agent's setup path, which keeps its buffers small; the
    // pages it never touches are never faulted in.
    let agent_stack = vec![0u8; AGENT_STACK_SIZE];
    let argv = pointer_array(&command.argv);
    let envp = pointer_array(&command.envp);
    let parent_fds = [
        reports.as_raw_fd(),
        lifeline.as_raw_fd(),
        listener_sock.as_raw_fd(),
        egress
            .as_ref()
            .map_or(-1, |(_, (ours, _))| ours.as_raw_fd()),
    ];
    let parent_fds = &parent_fds[..if egress.is_some() { 4 } else { 3 }];
    let spec = ChildSpec {
        uid_map: plan.uid_map.as_deref(),
        gid_map: plan.gid_map.as_deref(),
        private_mounts: plan.namespaces.mount,
        mask_source: (!plan.masks.is_empty()).then_some(MaskSource {
            mountpoint: &plan.mask_mountpoint,
            file: &plan.mask_file,
            directory: &plan.mask_dir,
        }),
        masks: &plan.masks,
        shim: plan.shim.as_deref(),
        shadows: &plan.shadows,
        mount_proc: plan.mount_proc && plan.namespaces.pid && plan.namespaces.mount,
        landlock: plan.landlock.as_ref().map(|l| LandlockSpec {
            ruleset: l.ruleset.as_raw_fd(),
            paths: &l.paths,
            file_access_mask: FILE_RIGHTS,
        }),
        seccomp: &plan.seccomp,
        rlimits: &plan.rlimits,
        cwd: &command.cwd,
        cwd_fd: io.cwd,
        stdio: io.stdio,
        keep_fds: io.keep,
        exe: &command.exe,
        argv: &argv,
        envp: &envp,
        report_fd: report_wr.as_raw_fd(),
        lifeline_fd: lifeline_rd.as_raw_fd(),
        listener_sock: listener_child.as_raw_fd(),
        parent_fds,
        agent_stack: &agent_stack,
        egress: egress.as_ref().map(|(port, (_, theirs))| EgressSpec {
            port: *port,
            sock: theirs.as_raw_fd(),
        }),
    };
    let init = spawn_init(plan.namespaces, &spec).map_err(|errno| LaunchError::Clone {
        errno,
        hint: if plan.namespaces.user && (errno.0 == libc::EPERM || errno.0 == libc::ENOSPC) {
            " (unprivileged user namespaces look disabled: check sysctl user.max_user_namespaces and kernel.apparmor_restrict_unprivileged_userns, or run `cordon doctor`)"
        } else if plan.namespaces.net && errno.0 == libc::EINVAL {
            " (this kernel cannot make network namespaces, which host rules need: without one nothing makes the agent use the proxy; use connect_tcp port rules instead)"
        } else {
            ""
        },
    })?;
    // The child's ends live on in the child only.
    drop((report_wr, lifeline_rd, listener_child));
    let egress_listener = egress.and_then(|(_, (ours, theirs))| {
        drop(theirs);
        // Init sends it early in its setup, or dies first (then this
        // reads end of file and the report pipe has the reason).
        recv_fd(ours.as_raw_fd())
            .ok()
            .flatten()
            .map(std::net::TcpListener::from)
    });
    Ok(Running {
        init,
        reports,
        listener_sock,
        lifeline,
        egress_listener,
    })
}
