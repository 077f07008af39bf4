//! Processes: clone3 into new namespaces with a pidfd, signals through the
//! pidfd (immune to pid reuse), and waiting on it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::child::{self, ChildSpec};
use super::{check, Errno};

const CLONE_PIDFD: u64 = 0x1000;
const P_PIDFD: libc::idtype_t = 3;

/// `struct clone_args` (CLONE_ARGS_SIZE_VER0 fields are enough).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// A started sandbox init process.
#[derive(Debug)]
pub struct Spawned {
    /// Its pid in cordon's pid namespace.
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// Namespaces to create for the child.
#[derive(Debug, Clone, Copy, Default)]
pub struct Namespaces {
    pub user: bool,
    pub pid: bool,
    pub mount: bool,
    /// A network namespace with only loopback (egress through the proxy).
    pub net: bool,
}

impl Namespaces {
    fn clone_flags(self) -> u64 {
        let mut f = 0u64;
        if self.user {
            f |= libc::CLONE_NEWUSER as u64;
        }
        if self.pid {
            f |= libc::CLONE_NEWPID as u64;
        }
        if self.mount {
            f |= libc::CLONE_NEWNS as u64;
        }
        if self.net {
            f |= libc::CLONE_NEWNET as u64;
        }
        f
    }
}

/// Starts the sandbox init in new namespaces. The child runs
/// [`child::run_init`] and never returns here.
pub fn spawn_init(namespaces: Namespaces, spec: &ChildSpec<'_>) -> Result<Spawned, Errno> {
    let mut pidfd: RawFd = -1;
    let args = CloneArgs {
        flags: namespaces.clone_flags() | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM and with a null stack forks: the child
    // gets a copy of this address space and continues here with ret == 0.
    // The child only runs `run_init`, which uses raw syscalls on data that
    // `spec` borrows (copied into the child by the fork) and never returns,
    // so no Rust destructor or lock of the parent runs twice.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    let pid = super::check_int(ret)?;
    if pid == 0 {
        child::run_init(spec);
    }
    // SAFETY: with CLONE_PIDFD the kernel stored a fresh pidfd that we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Spawned { pid, pidfd })
}

/// Sends `signal` to the process behind `pidfd`.
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> Result<(), Errno> {
    // SAFETY: a null siginfo asks the kernel to fill in a default one.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    check(ret).map(drop)
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Reaps the process behind `pidfd` if it has exited.
pub fn try_wait(pidfd: &OwnedFd) -> Result<Option<Exit>, Errno> {
    // SAFETY: siginfo_t is plain data; zero means "nothing reaped".
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes one siginfo_t into `info`.
    let ret = unsafe {
        libc::waitid(
            P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    check(ret.into())?;
    // SAFETY: waitid filled `info` (or left it zeroed: si_pid 0).
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(match info.si_code {
        libc::CLD_EXITED => Exit::Code(status),
        _ => Exit::Signal(status),
    }))
}

/// Opens a pidfd for `pid` (used by `doctor` to probe support).
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags, no memory.
    let fd = super::check_int(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) })?;
    // SAFETY: the kernel returned a fresh fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A pidfd for thread `tid` itself (PIDFD_THREAD, Linux 6.9): a seccomp
/// notification names the calling thread, and only a thread pidfd lets
/// `pidfd_getfd` read that thread's descriptor table (a thread may have
/// unshared it). Older kernels: its thread group's leader, whose table a
/// thread shares unless it unshared it (the descriptor taken is then the
/// leader's, and that is the one decided and used).
pub fn pidfd_open_thread(tid: i32) -> Result<OwnedFd, Errno> {
    const PIDFD_THREAD: u32 = libc::O_EXCL as u32;
    // SAFETY: pidfd_open takes a pid and flags, no memory.
    match super::check_int(unsafe { libc::syscall(libc::SYS_pidfd_open, tid, PIDFD_THREAD) }) {
        // SAFETY: the kernel returned a fresh fd that we own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(Errno(libc::EINVAL)) => pidfd_open(thread_group(tid)?),
        Err(e) => Err(e),
    }
}

/// The thread group (process) thread `tid` belongs to.
pub fn thread_group(tid: i32) -> Result<i32, Errno> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status"))
        .map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::ESRCH)))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(Errno(libc::ESRCH))
}

/// The pid of this process.
pub fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Reads `buf.len()` bytes at `addr` in process `pid` (process_vm_readv);
/// a short read is EFAULT.
pub fn read_remote(pid: i32, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes the writable `buf`; the remote address is
    // only read by the kernel, in the other process.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(Errno::last());
    }
    if n.unsigned_abs() != buf.len() {
        return Err(Errno(libc::EFAULT));
    }
    Ok(())
}

/// Writes `buf` at `addr` in process `pid` (process_vm_writev); a short
/// write is EFAULT.
pub fn write_remote(pid: i32, addr: u64, buf: &[u8]) -> Result<(), Errno> {
    let local = libc::iovec {
        iov_base: buf.as_ptr().cast_mut().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes the readable `buf` (the kernel only reads
    // it); the remote address is written by the kernel, in the other
    // process, which is stopped in the syscall that handed it over.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(Errno::last());
    }
    if n.unsigned_abs() != buf.len() {
        return Err(Errno(libc::EFAULT));
    }
    Ok(())
}

/// Reads a NUL-terminated string of at most `max` bytes at `addr` in
/// process `pid` (process_vm_readv, page by page so an unmapped page after
/// the string does not fail the read). Returns the bytes without the NUL.
pub fn read_remote_cstr(pid: i32, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
    const PAGE: u64 = 4096;
    let mut out = Vec::with_capacity(256);
    let mut at = addr;
    while out.len() < max {
        let chunk = usize::try_from(PAGE - at % PAGE)
            .unwrap_or(1)
            .min(max - out.len());
        let start = out.len();
        out.resize(start + chunk, 0);
        let local = libc::iovec {
            iov_base: out[start..].as_mut_ptr().cast(),
            iov_len: chunk,
        };
        let remote = libc::iovec {
            iov_base: at as *mut libc::c_void,
            iov_len: chunk,
        };
        // SAFETY: `local` describes `chunk` writable bytes of `out`; the
        // remote address is only read by the kernel, in the other process.
        let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
        if n < 0 {
            return Err(Errno::last());
        }
        let n = n.unsigned_abs();
        out.truncate(start + n);
        if let Some(nul) = out[start..].iter().position(|&b| b == 0) {
            out.truncate(start + nul);
            return Ok(out);
        }
        if n < chunk {
            return Err(Errno(libc::EFAULT));
        }
        at += chunk as u64;
    }
    Err(Errno(libc::ENAMETOOLONG))
}

/// Sends `signal` to every process of process group `pgid` (a hook cordon
/// started as the leader of its own group).
pub fn kill_process_group(pgid: i32, signal: i32) -> Result<(), Errno> {
    if pgid <= 1 {
        // -1 and -0 would mean "every process we may signal" and "our own
        // group": never what a caller means.
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: kill takes two integers and touches no memory; pgid > 1 was
    // checked so the negative value names exactly that group.
    let ret = unsafe { libc::kill(-pgid, signal) };
    check(ret.into()).map(drop)
}

/// Makes `cmd`'s process get SIGKILL when the thread that starts it ends
/// (PR_SET_PDEATHSIG), so a helper cordon runs (an approval hook) does not
/// outlive a cordon that is killed with -9.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed: prctl is a plain syscall
    // that allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
