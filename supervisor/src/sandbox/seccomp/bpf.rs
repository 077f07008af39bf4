//! Classic BPF, as the seccomp program is written: the opcodes and a
//! small assembler whose methods each emit one checked pattern (a syscall
//! number, an argument's bits or values, the socket() policy).

use super::{
    SocketPolicy, AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, IPPROTO_TCP, IPPROTO_UDP, NETLINK_ROUTE,
    SOCK_DGRAM, SOCK_STREAM, SOCK_TYPE_MASK,
};
use crate::sys::seccomp::{SockFilter, SECCOMP_RET_USER_NOTIF};

// Classic BPF opcodes, from libc's parts (each fits the 16-bit code).
#[allow(clippy::cast_possible_truncation)]
pub(super) const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
#[allow(clippy::cast_possible_truncation)]
pub(super) const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
#[allow(clippy::cast_possible_truncation)]
pub(super) const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
#[allow(clippy::cast_possible_truncation)]
pub(super) const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
#[allow(clippy::cast_possible_truncation)]
pub(super) const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
#[allow(clippy::cast_possible_truncation)]
pub(super) const BPF_ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;

pub const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
pub(super) const RET_ERRNO: u32 = libc::SECCOMP_RET_ERRNO;
pub const RET_VIOLATION: u32 = SECCOMP_RET_USER_NOTIF;

// Offsets in `struct seccomp_data`.
pub(super) const OFF_NR: u32 = 0;
pub(super) const OFF_ARCH: u32 = 4;
/// Low 32 bits of argument `i` (little-endian). Flags and ioctl numbers are
/// 32-bit in the kernel, which ignores the high half, so we must too.
pub(super) const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
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

pub(super) struct Builder(pub(super) Vec<SockFilter>);

impl Builder {
    /// `socket(domain, type, protocol)`: AF_UNIX always; AF_NETLINK only
    /// NETLINK_ROUTE (address and interface lookups); AF_INET/AF_INET6
    /// only the granted types, else EACCES like a Landlock port refusal;
    /// any other family (AF_PACKET, AF_VSOCK, AF_ALG, ...) is a violation.
    pub(super) fn socket(&mut self, n: u32, p: SocketPolicy) {
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
    pub(super) fn exec_unless_path(&mut self, n: u32, addr: u64) {
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

    pub(super) fn stmt(&mut self, code: u16, k: u32) {
        self.0.push(SockFilter {
            code,
            jt: 0,
            jf: 0,
            k,
        });
    }
    pub(super) fn jump(&mut self, code: u16, k: u32, jt: u8, jf: u8) {
        self.0.push(SockFilter { code, jt, jf, k });
    }
    /// `if nr == n && args[arg] != 0 { notify }`: a pointer argument, both
    /// halves compared (a non-NULL pointer may have a zero low half).
    pub(super) fn notify_if_pointer(&mut self, n: u32, arg: u32) {
        self.jump(BPF_JEQ_K, n, 0, 6); // not n: past the block
        self.stmt(BPF_LD_W_ABS, arg_lo(arg));
        self.jump(BPF_JEQ_K, 0, 0, 2); // low half set: notify
        self.stmt(BPF_LD_W_ABS, arg_lo(arg) + 4);
        self.jump(BPF_JEQ_K, 0, 1, 0); // both halves zero: allow
        self.stmt(BPF_RET_K, SECCOMP_RET_USER_NOTIF);
        self.stmt(BPF_RET_K, RET_ALLOW);
    }

    /// `if nr == n { return action }`
    pub(super) fn deny_nr(&mut self, n: u32, action: u32) {
        self.jump(BPF_JEQ_K, n, 0, 1);
        self.stmt(BPF_RET_K, action);
    }
    /// `if nr == n { if arg & mask { violation } else { allow } }`
    pub(super) fn deny_arg_bits(&mut self, n: u32, arg: u32, mask: u32) {
        self.jump(BPF_JEQ_K, n, 0, 4);
        self.stmt(BPF_LD_W_ABS, arg_lo(arg));
        self.jump(BPF_JSET_K, mask, 0, 1);
        self.stmt(BPF_RET_K, RET_VIOLATION);
        self.stmt(BPF_RET_K, RET_ALLOW);
    }
    /// `if nr == n { if arg in values { violation } else { allow } }`
    pub(super) fn deny_arg_values<const N: usize>(&mut self, n: u32, arg: u32, values: &[u32; N]) {
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
    pub(super) fn allow_arg_values<const N: usize>(&mut self, n: u32, arg: u32, values: &[u32; N]) {
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
