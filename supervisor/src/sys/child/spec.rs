//! What the child needs, prepared by the parent: C strings, pointer
//! arrays, a compiled BPF program, descriptors. Nothing here allocates in
//! the child.

use std::ffi::CStr;
use std::os::fd::RawFd;

use super::super::seccomp::SockFilter;

/// One path rule to add to the Landlock ruleset inside the child.
#[derive(Debug)]
pub struct RulePath {
    pub path: std::ffi::CString,
    pub access: u64,
    /// A missing path is skipped rather than a setup failure.
    pub optional: bool,
}

/// What to mount at a mask target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskKind {
    /// Bind the empty, mode-000 mask file over a denied file.
    File,
    /// Bind the empty, mode-000 mask directory over a denied directory.
    Directory,
    /// Bind a directory onto itself: a mount point cannot be renamed or
    /// removed, so the ancestors of a denied path stay where the mask is.
    Pin,
}

/// One mount of the deny masks, applied in order.
#[derive(Debug)]
pub struct MaskMount {
    pub target: std::ffi::CString,
    pub kind: MaskKind,
}

/// The empty, read-only tmpfs that mask mounts are bound from.
#[derive(Debug)]
pub struct MaskSource<'a> {
    /// An empty directory of the session where the tmpfs is mounted.
    pub mountpoint: &'a CStr,
    pub file: &'a CStr,
    pub directory: &'a CStr,
}

/// Landlock work for the agent.
#[derive(Debug)]
pub struct LandlockSpec<'a> {
    pub ruleset: RawFd,
    pub paths: &'a [RulePath],
    /// The rights that may be granted on a non-directory.
    pub file_access_mask: u64,
}

/// Everything the child needs, prepared by the parent.
pub struct ChildSpec<'a> {
    /// Set when the child is in a new user namespace: "inside outside 1".
    pub uid_map: Option<&'a CStr>,
    pub gid_map: Option<&'a CStr>,
    /// Make every mount private before changing any (needs a mount ns).
    pub private_mounts: bool,
    pub mask_source: Option<MaskSource<'a>>,
    pub masks: &'a [MaskMount],
    /// The shim, bound over each of `shadows` (a declared tool's real
    /// paths): in this mount namespace they run the broker's shim.
    pub shim: Option<&'a CStr>,
    pub shadows: &'a [std::ffi::CString],
    pub mount_proc: bool,
    pub landlock: Option<LandlockSpec<'a>>,
    pub seccomp: &'a [SockFilter],
    pub rlimits: &'a [(u32, u64)],
    pub cwd: &'a CStr,
    /// When set, the directory `cwd` must be (checked after chdir).
    pub cwd_fd: Option<RawFd>,
    /// When set, these become the process's 0, 1 and 2 (none of them may
    /// already be 0, 1 or 2).
    pub stdio: Option<[RawFd; 3]>,
    /// Descriptors (above 2) the program keeps across exec, at the same
    /// numbers (secrets delivered as files).
    pub keep_fds: &'a [RawFd],
    pub exe: &'a CStr,
    /// NULL-terminated.
    pub argv: &'a [*const libc::c_char],
    /// NULL-terminated.
    pub envp: &'a [*const libc::c_char],
    /// Write end of the report pipe (close-on-exec).
    pub report_fd: RawFd,
    /// Read end of the lifeline pipe: POLLHUP means the supervisor is gone.
    pub lifeline_fd: RawFd,
    /// Child end of the socketpair that carries the seccomp listener.
    pub listener_sock: RawFd,
    /// The parent's ends of those channels, closed first thing.
    pub parent_fds: &'a [RawFd],
    /// The stack the agent runs on until it executes.
    pub agent_stack: &'a [u8],
    /// In a new network namespace: bring loopback up and hand the
    /// supervisor a listening socket for its egress proxy.
    pub egress: Option<EgressSpec>,
}

/// The egress proxy's listener, made inside the sandbox's network namespace.
#[derive(Debug, Clone, Copy)]
pub struct EgressSpec {
    /// The port on 127.0.0.1 the proxy listens on.
    pub port: u16,
    /// Child end of the socketpair the listener is sent over.
    pub sock: RawFd,
}
