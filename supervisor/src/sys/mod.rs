//! Raw syscalls and every `unsafe` block of cordon, and nothing else.
//!
//! Above this module everything is safe code. Policy never lives here: these
//! functions do exactly what their names say and return the errno.
//!
//! - [`landlock`]: the Landlock uapi (create ruleset, add rule, restrict).
//! - [`seccomp`]: BPF filter install, user-notification ioctls.
//! - [`process`]: clone3 with namespaces and a pidfd, pidfd signals, waits.
//! - [`fd`]: pipes, socketpairs, fd passing, poll, signalfd.
//! - [`probe`]: host probes for `cordon doctor` (a namespace trial run in a
//!   forked child, SO_PEERPIDFD, uname).
//! - [`lock`]: advisory `flock` guards (the audit log's appends).
//! - [`spawn`]: `cordon serve`'s session processes (credentials and cgroup
//!   set between fork and exec), user/group lookups, SO_PEERGROUPS.
//! - [`child`]: the code that runs between clone and execve: no allocation,
//!   no locks, raw syscalls only.

pub mod child;
pub mod eventfd;
pub mod fd;
pub mod in_sandbox;
pub mod landlock;
pub mod lock;
pub mod probe;
pub mod process;
pub mod seccomp;
pub mod sockets;
pub mod spawn;
pub mod tty;

use std::fmt;

/// An errno value from a failed syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The errno of the last failed libc call on this thread.
    pub fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.0))
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> Self {
        std::io::Error::from_raw_os_error(e.0)
    }
}

/// Turns a `-1 means errno` return value into a Result.
fn check(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// Like [`check`], for syscalls that return a file descriptor or pid
/// (the kernel's int fits in i32; anything else is an error).
fn check_int(ret: libc::c_long) -> Result<i32, Errno> {
    check(ret).and_then(|v| i32::try_from(v).map_err(|_| Errno(libc::EOVERFLOW)))
}

/// The effective uid of this process.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The effective gid of this process.
pub fn getegid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

/// Fills `buf` from the kernel's random source.
pub fn getrandom(buf: &mut [u8]) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: the pointer and length describe the writable slice `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = Errno::last();
            if e.0 == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        done += n.unsigned_abs();
    }
    Ok(())
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
pub(crate) struct CapHeader {
    pub version: u32,
    pub pid: i32,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CapData {
    pub effective: u32,
    pub permitted: u32,
    pub inheritable: u32,
}

pub(crate) const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
pub const CAP_SYS_ADMIN: u32 = 21;

/// Whether this process holds `cap` (a CAP_* number) in its effective set.
pub fn has_effective_cap(cap: u32) -> bool {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: version 3 capget writes exactly two data structs, which `data` holds.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if ret != 0 {
        return false;
    }
    let word = (cap / 32) as usize;
    word < 2 && data[word].effective & (1 << (cap % 32)) != 0
}

/// Marks every inherited descriptor from 3 up close-on-exec, so nothing
/// cordon's caller left open can reach a child by accident.
pub fn cloexec_inherited_fds() -> Result<(), Errno> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on fds.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    check(ret).map(drop)
}

/// PR_SET_DUMPABLE 0: no core dumps, and no ptrace or /proc/<pid>/mem,
/// environ, ... access by other processes of the same uid.
pub fn set_non_dumpable() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    check(ret.into()).map(drop)
}

/// Ignores SIGXFSZ, so a write past RLIMIT_FSIZE (the audit log hitting a
/// file-size limit) fails with EFBIG, which the caller handles (the broker
/// refuses the call), instead of killing the supervisor. Children get the
/// default disposition back before they exec (`child::reset_signals`).
pub fn ignore_file_size_signal() -> Result<(), Errno> {
    // SAFETY: setting a standard signal's disposition to SIG_IGN installs
    // no handler code; it only changes what the kernel does on delivery.
    let ret = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    if ret == libc::SIG_ERR {
        return Err(Errno::last());
    }
    Ok(())
}

/// Lowers the calling thread's scheduling priority to `nice` (Linux
/// keeps a nice value per thread; children the thread starts inherit it).
/// Raising a nice value needs no privilege, so this cannot fail for lack
/// of one.
pub fn lower_thread_priority(nice: i32) -> Result<(), Errno> {
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    let who = libc::id_t::try_from(tid).map_err(|_| Errno(libc::ESRCH))?;
    // SAFETY: setpriority with integer arguments only; `who` is this thread.
    let ret = unsafe { libc::setpriority(libc::PRIO_PROCESS, who, nice) };
    check(ret.into()).map(drop)
}
