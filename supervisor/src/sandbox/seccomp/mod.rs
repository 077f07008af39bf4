//! The seccomp program: cordon's default deny-list plus the profile's, as
//! classic BPF (pure; installed by `sys::child`).
//!
//! Every violation returns SECCOMP_RET_USER_NOTIF, so the supervisor learns
//! the pid and syscall and decides: kill the tree or fail the call with
//! EPERM. The syscall itself never runs while it waits.

mod bpf;
#[cfg(test)]
mod tests;

use crate::sys::seccomp::{SockFilter, SECCOMP_RET_USER_NOTIF};
use bpf::{
    arg_lo, Builder, BPF_JEQ_K, BPF_JGE_K, BPF_LD_W_ABS, BPF_RET_K, OFF_ARCH, OFF_NR, RET_ERRNO,
};
pub use bpf::{RET_ALLOW, RET_VIOLATION};

#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH: u32 = 0xc000_00b7;

/// x32 syscalls arrive with the native arch and this bit set in `nr`.
#[cfg(target_arch = "x86_64")]
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Syscalls no agent needs and every escape wants, denied outright.
pub const DEFAULT_DENY: &[&str] = &[
    // Reading or steering other processes.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "process_madvise",
    // The mount family: a sandbox that can remount can undo itself.
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    // Kernel attack surface and kernel-wide state.
    "bpf",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "keyctl",
    "add_key",
    "request_key",
    "setns",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
    "open_by_handle_at",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "uselib",
    "vhangup",
    "iopl",
    "ioperm",
    "nfsservctl",
];

const CLONE_NS_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u32;
/// unshare also takes CLONE_NEWTIME (0x80, which clone() uses for the exit signal).
const UNSHARE_NS_FLAGS: u32 = CLONE_NS_FLAGS | 0x80;
const TIOCSTI: u32 = 0x5412;
const TIOCLINUX: u32 = 0x541c;
/// personality() values that change nothing dangerous: query, PER_LINUX,
/// PER_LINUX32, UNAME26 and PER_LINUX32|UNAME26 (as Docker allows).
/// READ_IMPLIES_EXEC and ADDR_NO_RANDOMIZE are what an exploit wants.
const PERSONALITY_OK: [u32; 5] = [0xffff_ffff, 0, 0x8, 0x20000, 0x20008];

/// Why a profile's seccomp request cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeccompError {
    #[error("`{0}` cannot be denied: cordon needs it to start the agent")]
    NeededForStart(String),
    #[error("the seccomp program would have {0} instructions, over the kernel's limit of 4096")]
    TooLong(usize),
}

/// Which sockets a sandboxed process may create. Landlock rules TCP ports
/// only; every other family and type is decided here, on `socket()`'s
/// arguments (io_uring, which could bypass it, is denied outright).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketPolicy {
    /// AF_INET/AF_INET6 SOCK_STREAM (the profile grants a TCP port).
    pub tcp: bool,
    /// AF_INET/AF_INET6 SOCK_DGRAM: name resolution needs UDP to reach the
    /// resolver; allowed when the profile grants outgoing TCP (where each
    /// datagram may go, the supervisor decides: `mediate`).
    pub udp: bool,
    /// connect(), an addressed sendto(), sendmsg() and sendmmsg() go to
    /// the supervisor, which makes the call itself with its own copy of
    /// the address (`process::mediate`): the only way to decide where a
    /// datagram or a Unix socket connection goes without a race.
    pub mediate: bool,
}

/// The syscalls [`SocketPolicy::mediate`] sends to the supervisor.
pub const MEDIATED: [&str; 4] = ["connect", "sendto", "sendmsg", "sendmmsg"];

// Socket families, types and protocols as seccomp compares them (u32).
const AF_UNIX: u32 = libc::AF_UNIX as u32;
const AF_INET: u32 = libc::AF_INET as u32;
const AF_INET6: u32 = libc::AF_INET6 as u32;
const AF_NETLINK: u32 = libc::AF_NETLINK as u32;
const NETLINK_ROUTE: u32 = libc::NETLINK_ROUTE as u32;
const SOCK_STREAM: u32 = libc::SOCK_STREAM as u32;
const IPPROTO_TCP: u32 = libc::IPPROTO_TCP as u32;
const IPPROTO_UDP: u32 = libc::IPPROTO_UDP as u32;
const SOCK_DGRAM: u32 = libc::SOCK_DGRAM as u32;
/// The type bits below SOCK_NONBLOCK/SOCK_CLOEXEC.
const SOCK_TYPE_MASK: u32 = 0xf;

/// Whether execve/execveat go to the supervisor for a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecWatch {
    /// Every exec is a user notification; the supervisor lets the kernel
    /// continue (Landlock still decides) or treats it as divergence.
    /// `launch_path`: the address of the path cordon's own launch exec
    /// passes (in the child's copy of cordon's memory); that one execve is
    /// let through without the round trip. A program guessing that address
    /// only skips the report, never Landlock's decision.
    Notify {
        launch_path: Option<u64>,
    },
    Off,
}

/// Whether `nr` is an exec the supervisor watches.
pub fn is_exec(number: i32) -> bool {
    let number = u32::try_from(number).ok();
    number.is_some() && [nr("execve"), nr("execveat")].contains(&number)
}

/// Syscalls the agent's own start-up makes after the filter is installed.
const NEEDED_FOR_START: &[&str] = &[
    "execve",
    "sendmsg",
    "close",
    "close_range",
    "chdir",
    "exit",
    "exit_group",
    "write",
];

fn nr(name: &str) -> Option<u32> {
    name.parse::<syscalls::Sysno>().ok().map(|s| s.id() as u32)
}

/// The name of native syscall `nr`, for reports.
pub fn syscall_name(nr: i32) -> Option<&'static str> {
    usize::try_from(nr)
        .ok()
        .and_then(syscalls::Sysno::new)
        .map(|s| s.name())
}

/// Compiles the filter for the default deny-list plus `extra` (syscall
/// numbers from the profile, with their names for error messages).
pub fn build_program(
    extra: &[(String, u32)],
    exec_watch: ExecWatch,
    sockets: SocketPolicy,
) -> Result<Vec<SockFilter>, SeccompError> {
    for (name, _) in extra {
        if NEEDED_FOR_START.contains(&name.as_str()) {
            return Err(SeccompError::NeededForStart(name.clone()));
        }
    }
    let mut b = Builder(Vec::with_capacity(256));
    // Any other ABI (i386 `int 0x80`, or a foreign arch) is a violation.
    b.stmt(BPF_LD_W_ABS, OFF_ARCH);
    b.jump(BPF_JEQ_K, AUDIT_ARCH, 1, 0);
    b.stmt(BPF_RET_K, RET_VIOLATION);
    b.stmt(BPF_LD_W_ABS, OFF_NR);
    #[cfg(target_arch = "x86_64")]
    {
        b.jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1);
        b.stmt(BPF_RET_K, RET_VIOLATION);
    }

    let mut denied: Vec<u32> = extra.iter().map(|(_, n)| *n).collect();
    denied.extend(DEFAULT_DENY.iter().filter_map(|name| nr(name)));
    let mut seen = std::collections::HashSet::new();
    denied.retain(|n| seen.insert(*n));
    for &n in &denied {
        b.deny_nr(n, RET_VIOLATION);
    }
    if let ExecWatch::Notify { launch_path } = exec_watch {
        if let (Some(n), Some(addr)) = (nr("execve"), launch_path) {
            b.exec_unless_path(n, addr);
        }
        for name in ["execve", "execveat"] {
            if let Some(n) = nr(name) {
                b.deny_nr(n, SECCOMP_RET_USER_NOTIF);
            }
        }
    }
    // clone3 passes its flags in memory seccomp cannot read: report ENOSYS
    // so libc falls back to clone(), whose flags we can check. Not a
    // violation: every pthread_create tries clone3 first.
    if let Some(n) = nr("clone3").filter(|n| !seen.contains(n)) {
        b.deny_nr(n, RET_ERRNO | libc::ENOSYS as u32);
    }
    if let Some(n) = nr("clone").filter(|n| !seen.contains(n)) {
        b.deny_arg_bits(n, 0, CLONE_NS_FLAGS);
    }
    if let Some(n) = nr("unshare").filter(|n| !seen.contains(n)) {
        b.deny_arg_bits(n, 0, UNSHARE_NS_FLAGS);
    }
    if let Some(n) = nr("ioctl").filter(|n| !seen.contains(n)) {
        b.deny_arg_values(n, 1, &[TIOCSTI, TIOCLINUX]);
    }
    if let Some(n) = nr("personality").filter(|n| !seen.contains(n)) {
        b.allow_arg_values(n, 0, &PERSONALITY_OK);
    }
    if let Some(n) = nr("memfd_create").filter(|n| !seen.contains(n)) {
        const MFD_EXEC: u32 = 0x10; // <linux/memfd.h>; not in libc yet
        b.deny_arg_bits(n, 1, MFD_EXEC);
    }
    if let Some(n) = nr("socket").filter(|n| !seen.contains(n)) {
        b.socket(n, sockets);
    }
    if let Some(n) = nr("socketpair").filter(|n| !seen.contains(n)) {
        // Pairs only make sense (and only exist) for AF_UNIX.
        b.jump(BPF_JEQ_K, n, 0, 4);
        b.stmt(BPF_LD_W_ABS, arg_lo(0));
        b.jump(BPF_JEQ_K, AF_UNIX, 0, 1);
        b.stmt(BPF_RET_K, RET_ALLOW);
        b.stmt(BPF_RET_K, RET_ERRNO | libc::EAFNOSUPPORT as u32);
    }
    if sockets.mediate {
        for name in ["connect", "sendmsg", "sendmmsg"] {
            if let Some(n) = nr(name).filter(|n| !seen.contains(n)) {
                b.deny_nr(n, SECCOMP_RET_USER_NOTIF);
            }
        }
        // sendto without an address sends on a connected socket, whose
        // destination was decided at connect: only addressed ones go up.
        if let Some(n) = nr("sendto").filter(|n| !seen.contains(n)) {
            b.notify_if_pointer(n, 4);
        }
    }
    b.stmt(BPF_RET_K, RET_ALLOW);
    if b.0.len() > 4096 {
        return Err(SeccompError::TooLong(b.0.len()));
    }
    Ok(b.0)
}

/// The syscalls `cordon learn` observes: every one that opens, creates,
/// removes or renames a path, executes, connects or binds. Each becomes a
/// user notification the supervisor records and lets continue.
pub const OBSERVED: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "creat",
    "execve",
    "execveat",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "unlink",
    "unlinkat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "truncate",
    "connect",
    "bind",
];

/// The filter of an observed (not confined) run: [`OBSERVED`] syscalls
/// are notifications, everything else is allowed. Other ABIs pass
/// unobserved (a documented blind spot of learn mode).
pub fn build_learn_program() -> Vec<SockFilter> {
    let mut b = Builder(Vec::with_capacity(64));
    b.stmt(BPF_LD_W_ABS, OFF_ARCH);
    b.jump(BPF_JEQ_K, AUDIT_ARCH, 1, 0);
    b.stmt(BPF_RET_K, RET_ALLOW);
    b.stmt(BPF_LD_W_ABS, OFF_NR);
    for n in OBSERVED.iter().filter_map(|name| nr(name)) {
        b.deny_nr(n, SECCOMP_RET_USER_NOTIF);
    }
    b.stmt(BPF_RET_K, RET_ALLOW);
    b.0
}
