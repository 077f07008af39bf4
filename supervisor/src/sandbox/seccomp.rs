//! The seccomp program: cordon's default deny-list plus the profile's, as
//! classic BPF (pure; installed by `sys::child`).
//!
//! Every violation returns SECCOMP_RET_USER_NOTIF, so the supervisor learns
//! the pid and syscall and decides: kill the tree or fail the call with
//! EPERM. The syscall itself never runs while it waits.

use crate::sys::seccomp::{SockFilter, SECCOMP_RET_USER_NOTIF};

// Classic BPF opcodes, from libc's parts (each fits the 16-bit code).
#[allow(clippy::cast_possible_truncation)]
const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
#[allow(clippy::cast_possible_truncation)]
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
#[allow(clippy::cast_possible_truncation)]
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
#[allow(clippy::cast_possible_truncation)]
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
#[allow(clippy::cast_possible_truncation)]
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
#[allow(clippy::cast_possible_truncation)]
const BPF_ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;

pub const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const RET_ERRNO: u32 = libc::SECCOMP_RET_ERRNO;
pub const RET_VIOLATION: u32 = SECCOMP_RET_USER_NOTIF;

// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// Low 32 bits of argument `i` (little-endian). Flags and ioctl numbers are
/// 32-bit in the kernel, which ignores the high half, so we must too.
const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

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

/// The jump offset over `N` compares; BPF jumps are one byte, so a list
/// of values must stay short (checked at compile time).
const fn short_jump<const N: usize>() -> u8 {
    assert!(N < 250, "too many values for a one-byte BPF jump");
    short(N)
}

/// `n` as a one-byte jump offset; callers pass `n < N < 250`.
#[allow(clippy::cast_possible_truncation)] // bounded by short_jump's assertion
const fn short(n: usize) -> u8 {
    n as u8
}

struct Builder(Vec<SockFilter>);

impl Builder {
    /// `socket(domain, type, protocol)`: AF_UNIX always; AF_NETLINK only
    /// NETLINK_ROUTE (address and interface lookups); AF_INET/AF_INET6
    /// only the granted types, else EACCES like a Landlock port refusal;
    /// any other family (AF_PACKET, AF_VSOCK, AF_ALG, ...) is a violation.
    fn socket(&mut self, n: u32, p: SocketPolicy) {
        let refuse = RET_ERRNO | libc::EACCES as u32;
        let inet = |ok: bool| if ok { RET_ALLOW } else { refuse };
        // Twenty-five instructions; each line below notes its index and,
        // for jumps, where the branches land (the false branch falls
        // through unless noted). The first skips the whole block for other
        // syscalls. A stream or datagram socket must also name TCP or UDP
        // (or 0): SCTP and other protocols on those types are not what
        // Landlock's TCP port rules govern.
        let mut v: Vec<SockFilter> = Vec::with_capacity(25);
        let j = |code: u16, k: u32, jt: u8, jf: u8| SockFilter { code, jt, jf, k };
        v.push(j(BPF_JEQ_K, n, 0, 24)); // 0, false -> past the block
        v.push(j(BPF_LD_W_ABS, arg_lo(0), 0, 0)); // 1
        v.push(j(BPF_JEQ_K, AF_UNIX, 4, 0)); // 2 -> 7
        v.push(j(BPF_JEQ_K, AF_NETLINK, 4, 0)); // 3 -> 8
        v.push(j(BPF_JEQ_K, AF_INET, 7, 0)); // 4 -> 12
        v.push(j(BPF_JEQ_K, AF_INET6, 6, 0)); // 5 -> 12
        v.push(j(BPF_RET_K, RET_VIOLATION, 0, 0)); // 6
        v.push(j(BPF_RET_K, RET_ALLOW, 0, 0)); // 7
        v.push(j(BPF_LD_W_ABS, arg_lo(2), 0, 0)); // 8
        v.push(j(BPF_JEQ_K, NETLINK_ROUTE, 0, 1)); // 9 -> 10 allow / 11 refuse
        v.push(j(BPF_RET_K, RET_ALLOW, 0, 0)); // 10
        v.push(j(BPF_RET_K, refuse, 0, 0)); // 11
        v.push(j(BPF_LD_W_ABS, arg_lo(1), 0, 0)); // 12
        v.push(j(BPF_ALU_AND_K, SOCK_TYPE_MASK, 0, 0)); // 13
        v.push(j(BPF_JEQ_K, SOCK_STREAM, 0, 4)); // 14 -> 15 / 19
        v.push(j(BPF_LD_W_ABS, arg_lo(2), 0, 0)); // 15
        v.push(j(BPF_JEQ_K, 0, 1, 0)); // 16 -> 18 / 17
        v.push(j(BPF_JEQ_K, IPPROTO_TCP, 0, 6)); // 17 -> 18 / 24
        v.push(j(BPF_RET_K, inet(p.tcp), 0, 0)); // 18
        v.push(j(BPF_JEQ_K, SOCK_DGRAM, 0, 4)); // 19 -> 20 / 24
        v.push(j(BPF_LD_W_ABS, arg_lo(2), 0, 0)); // 20
        v.push(j(BPF_JEQ_K, 0, 1, 0)); // 21 -> 23 / 22
        v.push(j(BPF_JEQ_K, IPPROTO_UDP, 0, 1)); // 22 -> 23 / 24
        v.push(j(BPF_RET_K, inet(p.udp), 0, 0)); // 23
        v.push(j(BPF_RET_K, refuse, 0, 0)); // 24
        self.0.extend(v);
    }

    /// `if nr == n && args[0] == addr { allow }`: the launch execve.
    fn exec_unless_path(&mut self, n: u32, addr: u64) {
        let lo = u32::try_from(addr & 0xffff_ffff).unwrap_or(0);
        let hi = u32::try_from(addr >> 32).unwrap_or(0);
        self.jump(BPF_JEQ_K, n, 0, 5); // not execve: past the block
        self.stmt(BPF_LD_W_ABS, arg_lo(0));
        self.jump(BPF_JEQ_K, lo, 0, 3); // low half differs: to the reload
        self.stmt(BPF_LD_W_ABS, arg_lo(0) + 4);
        self.jump(BPF_JEQ_K, hi, 0, 1); // high half differs: to the reload
        self.stmt(BPF_RET_K, RET_ALLOW);
        // Reload nr for the checks that follow.
        self.stmt(BPF_LD_W_ABS, OFF_NR);
    }

    fn stmt(&mut self, code: u16, k: u32) {
        self.0.push(SockFilter {
            code,
            jt: 0,
            jf: 0,
            k,
        });
    }
    fn jump(&mut self, code: u16, k: u32, jt: u8, jf: u8) {
        self.0.push(SockFilter { code, jt, jf, k });
    }
    /// `if nr == n && args[arg] != 0 { notify }`: a pointer argument, both
    /// halves compared (a non-NULL pointer may have a zero low half).
    fn notify_if_pointer(&mut self, n: u32, arg: u32) {
        self.jump(BPF_JEQ_K, n, 0, 6); // not n: past the block
        self.stmt(BPF_LD_W_ABS, arg_lo(arg));
        self.jump(BPF_JEQ_K, 0, 0, 2); // low half set: notify
        self.stmt(BPF_LD_W_ABS, arg_lo(arg) + 4);
        self.jump(BPF_JEQ_K, 0, 1, 0); // both halves zero: allow
        self.stmt(BPF_RET_K, SECCOMP_RET_USER_NOTIF);
        self.stmt(BPF_RET_K, RET_ALLOW);
    }

    /// `if nr == n { return action }`
    fn deny_nr(&mut self, n: u32, action: u32) {
        self.jump(BPF_JEQ_K, n, 0, 1);
        self.stmt(BPF_RET_K, action);
    }
    /// `if nr == n { if arg & mask { violation } else { allow } }`
    fn deny_arg_bits(&mut self, n: u32, arg: u32, mask: u32) {
        self.jump(BPF_JEQ_K, n, 0, 4);
        self.stmt(BPF_LD_W_ABS, arg_lo(arg));
        self.jump(BPF_JSET_K, mask, 0, 1);
        self.stmt(BPF_RET_K, RET_VIOLATION);
        self.stmt(BPF_RET_K, RET_ALLOW);
    }
    /// `if nr == n { if arg in values { violation } else { allow } }`
    fn deny_arg_values<const N: usize>(&mut self, n: u32, arg: u32, values: &[u32; N]) {
        let count = short_jump::<N>();
        self.jump(BPF_JEQ_K, n, 0, count + 3);
        self.stmt(BPF_LD_W_ABS, arg_lo(arg));
        for (i, &v) in values.iter().enumerate() {
            // Jump past the remaining compares and the `allow` to `violation`.
            self.jump(BPF_JEQ_K, v, count - short(i), 0);
        }
        self.stmt(BPF_RET_K, RET_ALLOW);
        self.stmt(BPF_RET_K, RET_VIOLATION);
    }
    /// `if nr == n { if arg in values { allow } else { violation } }`
    fn allow_arg_values<const N: usize>(&mut self, n: u32, arg: u32, values: &[u32; N]) {
        let count = short_jump::<N>();
        self.jump(BPF_JEQ_K, n, 0, count + 3);
        self.stmt(BPF_LD_W_ABS, arg_lo(arg));
        for (i, &v) in values.iter().enumerate() {
            self.jump(BPF_JEQ_K, v, count - short(i), 0);
        }
        self.stmt(BPF_RET_K, RET_VIOLATION);
        self.stmt(BPF_RET_K, RET_ALLOW);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_learn_filter_observes_opens_execs_and_sockets_only() {
        let p = build_learn_program();
        for name in [
            "openat",
            "execve",
            "connect",
            "bind",
            "renameat2",
            "unlinkat",
        ] {
            assert_eq!(call(&p, name, [0; 6]), SECCOMP_RET_USER_NOTIF, "{name}");
        }
        for name in ["read", "write", "ptrace", "mount", "getpid"] {
            assert_eq!(call(&p, name, [0; 6]), RET_ALLOW, "{name}");
        }
    }

    /// A classic-BPF interpreter for the instructions we emit.
    fn run(prog: &[SockFilter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = Vec::new();
        data.extend_from_slice(&nr.to_le_bytes());
        data.extend_from_slice(&arch.to_le_bytes());
        data.extend_from_slice(&0u64.to_le_bytes());
        for a in args {
            data.extend_from_slice(&a.to_le_bytes());
        }
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS => {
                    let k = i.k as usize;
                    acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                }
                BPF_RET_K => return i.k,
                BPF_ALU_AND_K => acc &= i.k,
                BPF_JEQ_K | BPF_JGE_K | BPF_JSET_K => {
                    let t = match i.code {
                        BPF_JEQ_K => acc == i.k,
                        BPF_JGE_K => acc >= i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += usize::from(if t { i.jt } else { i.jf });
                }
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn call(prog: &[SockFilter], name: &str, args: [u64; 6]) -> u32 {
        run(prog, AUDIT_ARCH, nr(name).unwrap(), args)
    }

    #[test]
    fn mediated_calls_go_to_the_supervisor_unaddressed_sends_do_not() {
        let on = SocketPolicy {
            mediate: true,
            ..SocketPolicy::default()
        };
        let p = build_program(&[], ExecWatch::Off, on).unwrap();
        for name in ["connect", "sendmsg", "sendmmsg"] {
            assert_eq!(
                call(&p, name, [3, 0x1000, 16, 0, 0, 0]),
                SECCOMP_RET_USER_NOTIF,
                "{name}"
            );
        }
        // sendto(fd, buf, len, flags, dest, destlen)
        assert_eq!(call(&p, "sendto", [3, 0x1000, 5, 0, 0, 0]), RET_ALLOW);
        assert_eq!(
            call(&p, "sendto", [3, 0x1000, 5, 0, 0x7ffd_0000, 16]),
            SECCOMP_RET_USER_NOTIF
        );
        // A pointer whose low half is zero is still a pointer.
        assert_eq!(
            call(&p, "sendto", [3, 0x1000, 5, 0, 0x7f_0000_0000, 16]),
            SECCOMP_RET_USER_NOTIF
        );
        for name in ["write", "read", "recvfrom", "getpid"] {
            assert_eq!(
                call(&p, name, [3, 0x1000, 5, 0, 0x7ffd_0000, 16]),
                RET_ALLOW,
                "{name}"
            );
        }
        let off = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
        assert_eq!(call(&off, "connect", [3, 0x1000, 16, 0, 0, 0]), RET_ALLOW);
    }

    #[test]
    fn default_deny_list_is_enforced() {
        let p = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
        for name in DEFAULT_DENY {
            if let Some(n) = nr(name) {
                assert_eq!(run(&p, AUDIT_ARCH, n, [0; 6]), RET_VIOLATION, "{name}");
            }
        }
        for name in [
            "read",
            "write",
            "openat",
            "execve",
            "mmap",
            "futex",
            "landlock_restrict_self",
        ] {
            assert_eq!(call(&p, name, [0; 6]), RET_ALLOW, "{name}");
        }
    }

    #[test]
    fn namespaces_are_refused_through_clone_and_unshare() {
        let p = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(call(&p, "clone", [thread, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(
            call(&p, "clone", [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(
            call(&p, "clone", [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]),
            RET_VIOLATION
        );
        assert_eq!(
            call(&p, "unshare", [libc::CLONE_NEWNET as u64, 0, 0, 0, 0, 0]),
            RET_VIOLATION
        );
        assert_eq!(call(&p, "unshare", [0x80, 0, 0, 0, 0, 0]), RET_VIOLATION);
        assert_eq!(
            call(&p, "unshare", [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(call(&p, "clone3", [0; 6]), RET_ERRNO | libc::ENOSYS as u32);
    }

    #[test]
    fn tty_injection_is_refused_whatever_the_high_bits() {
        let p = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
        assert_eq!(
            call(&p, "ioctl", [0, u64::from(TIOCSTI), 0, 0, 0, 0]),
            RET_VIOLATION
        );
        assert_eq!(
            call(
                &p,
                "ioctl",
                [0, 0xdead_0000_0000_0000 | u64::from(TIOCSTI), 0, 0, 0, 0]
            ),
            RET_VIOLATION
        );
        assert_eq!(
            call(&p, "ioctl", [0, u64::from(TIOCLINUX), 0, 0, 0, 0]),
            RET_VIOLATION
        );
        assert_eq!(call(&p, "ioctl", [0, 0x5401, 0, 0, 0, 0]), RET_ALLOW); // TCGETS
    }

    #[test]
    fn personality_allows_only_harmless_values() {
        let p = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
        assert_eq!(
            call(&p, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(call(&p, "personality", [0, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(
            call(&p, "personality", [0x0040000, 0, 0, 0, 0, 0]),
            RET_VIOLATION
        );
        assert_eq!(
            call(&p, "personality", [0x0400000, 0, 0, 0, 0, 0]),
            RET_VIOLATION
        );
    }

    #[test]
    fn execs_are_reported_only_when_watched() {
        let off = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
        let on = build_program(
            &[],
            ExecWatch::Notify { launch_path: None },
            SocketPolicy::default(),
        )
        .unwrap();
        for name in ["execve", "execveat"] {
            assert_eq!(call(&off, name, [0; 6]), RET_ALLOW);
            assert_eq!(call(&on, name, [0; 6]), SECCOMP_RET_USER_NOTIF);
            assert!(is_exec(nr(name).unwrap() as i32));
        }
        assert!(!is_exec(nr("ptrace").unwrap() as i32));
        // The launch exec, by its path pointer, goes through unreported;
        // the same call with any other pointer is reported.
        let addr = 0x5555_dead_beef_u64;
        let launch = build_program(
            &[],
            ExecWatch::Notify {
                launch_path: Some(addr),
            },
            SocketPolicy::default(),
        )
        .unwrap();
        assert_eq!(call(&launch, "execve", [addr, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(
            call(&launch, "execve", [addr + 1, 0, 0, 0, 0, 0]),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            call(&launch, "execve", [addr & 0xffff_ffff, 0, 0, 0, 0, 0]),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            call(&launch, "execveat", [0, addr, 0, 0, 0, 0]),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            call(&launch, "ptrace", [addr, 0, 0, 0, 0, 0]),
            RET_VIOLATION
        );
    }

    #[test]
    fn executable_memfds_are_violations() {
        let p = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
        assert_eq!(
            call(&p, "memfd_create", [0, 0x10, 0, 0, 0, 0]),
            RET_VIOLATION
        );
        assert_eq!(
            call(&p, "memfd_create", [0, 0x1 | 0x8, 0, 0, 0, 0]),
            RET_ALLOW
        );
    }

    #[test]
    fn sockets_are_limited_to_what_the_profile_grants() {
        let closed = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
        let tcp = build_program(
            &[],
            ExecWatch::Off,
            SocketPolicy {
                tcp: true,
                udp: true,
                mediate: false,
            },
        )
        .unwrap();
        let refuse = RET_ERRNO | libc::EACCES as u32;
        let sock = |p: &[SockFilter], d: u32, t: u32, proto: u32| {
            call(
                p,
                "socket",
                [u64::from(d), u64::from(t), u64::from(proto), 0, 0, 0],
            )
        };
        let nonblock_cloexec = (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) as u32;
        assert_eq!(sock(&closed, AF_UNIX, SOCK_STREAM, 0), RET_ALLOW);
        assert_eq!(
            sock(&closed, AF_UNIX, SOCK_DGRAM | nonblock_cloexec, 0),
            RET_ALLOW
        );
        assert_eq!(sock(&closed, AF_INET, SOCK_STREAM, 0), refuse);
        assert_eq!(sock(&closed, AF_INET6, SOCK_DGRAM, 0), refuse);
        assert_eq!(
            sock(&tcp, AF_INET, SOCK_STREAM | nonblock_cloexec, 6),
            RET_ALLOW
        );
        assert_eq!(sock(&tcp, AF_INET6, SOCK_DGRAM, 17), RET_ALLOW);
        assert_eq!(sock(&tcp, AF_INET, 3 /* SOCK_RAW */, 1), refuse);
        assert_eq!(sock(&tcp, AF_INET, SOCK_STREAM, 0), RET_ALLOW);
        assert_eq!(sock(&tcp, AF_INET6, SOCK_DGRAM, 0), RET_ALLOW);
        // Other protocols on stream and datagram types escape Landlock's
        // TCP rules: SCTP (132), MPTCP (262), UDP-Lite (136).
        assert_eq!(sock(&tcp, AF_INET, SOCK_STREAM, 132), refuse);
        assert_eq!(sock(&tcp, AF_INET6, SOCK_STREAM, 262), refuse);
        assert_eq!(sock(&tcp, AF_INET, SOCK_DGRAM, 136), refuse);
        assert_eq!(sock(&tcp, AF_INET, 5 /* SOCK_SEQPACKET */, 132), refuse);
        assert_eq!(sock(&closed, AF_NETLINK, 3, NETLINK_ROUTE), RET_ALLOW);
        assert_eq!(sock(&closed, AF_NETLINK, 3, 9 /* NETLINK_AUDIT */), refuse);
        for family in [
            17, /* AF_PACKET */
            38, /* AF_ALG */
            40, /* AF_VSOCK */
            44, /* AF_XDP */
        ] {
            assert_eq!(
                sock(&tcp, family, SOCK_DGRAM, 0),
                RET_VIOLATION,
                "family {family}"
            );
        }
        let pair = |p: &[SockFilter], d: u32| call(p, "socketpair", [u64::from(d), 1, 0, 0, 0, 0]);
        assert_eq!(pair(&closed, AF_UNIX), RET_ALLOW);
        assert_eq!(pair(&tcp, AF_INET), RET_ERRNO | libc::EAFNOSUPPORT as u32);
    }

    #[test]
    fn foreign_abis_are_violations() {
        let p = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        assert_eq!(run(&p, AUDIT_ARCH_I386, 20, [0; 6]), RET_VIOLATION);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            run(&p, AUDIT_ARCH, X32_SYSCALL_BIT | 39, [0; 6]),
            RET_VIOLATION
        );
    }

    #[test]
    fn profile_denies_are_added_and_checked() {
        let extra = vec![
            ("getpid".to_string(), nr("getpid").unwrap()),
            ("ioctl".to_string(), nr("ioctl").unwrap()),
        ];
        let p = build_program(&extra, ExecWatch::Off, SocketPolicy::default()).unwrap();
        assert_eq!(call(&p, "getpid", [0; 6]), RET_VIOLATION);
        // Denying ioctl outright beats the argument check.
        assert_eq!(call(&p, "ioctl", [0, 0x5401, 0, 0, 0, 0]), RET_VIOLATION);
        let bad = vec![("execve".to_string(), nr("execve").unwrap())];
        assert_eq!(
            build_program(&bad, ExecWatch::Off, SocketPolicy::default()),
            Err(SeccompError::NeededForStart("execve".into()))
        );
    }
}
