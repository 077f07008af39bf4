//! Host probes for `cordon doctor`: a namespace trial run in a forked child,
//! SO_PEERPIDFD, uname and write access. Each does exactly what its name
//! says and returns the errno; the verdicts live in `cordon doctor` (commands/doctor).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{check, Errno};

/// `SO_PEERPIDFD` (Linux 6.5), not yet in every libc crate version.
const SO_PEERPIDFD: libc::c_int = 77;

/// The kernel release, as `uname -r` prints it.
pub fn kernel_release() -> Result<String, Errno> {
    // SAFETY: utsname is plain data (arrays of c_char); zero is valid.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname writes one struct utsname into `uts`.
    let ret = unsafe { libc::uname(&mut uts) };
    check(ret.into())?;
    // SAFETY: the kernel NUL-terminates every utsname field within its array.
    let release = unsafe { CStr::from_ptr(uts.release.as_ptr()) };
    Ok(release.to_string_lossy().into_owned())
}

/// Whether the kernel hands out a pidfd for the peer of a Unix socket.
pub fn peer_pidfd() -> Result<(), Errno> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair writes two fds into the two-element array.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    check(ret.into())?;
    // SAFETY: both fds were just created and are owned by nobody else.
    let (a, _b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut pidfd: libc::c_int = -1;
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: the kernel writes at most `len` bytes (one int) into `pidfd`
    // and the actual length into `len`.
    let ret = unsafe {
        libc::getsockopt(
            a.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut pidfd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    check(ret.into())?;
    if pidfd >= 0 {
        // SAFETY: SO_PEERPIDFD returned a fresh fd that we own; dropping it closes it.
        drop(unsafe { OwnedFd::from_raw_fd(pidfd) });
    }
    Ok(())
}

/// Whether this process may write into the directory `path` (access(2) W_OK).
pub fn writable(path: &CStr) -> bool {
    // SAFETY: `path` is a NUL-terminated string live for the call.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

/// The namespaces the trial run unshares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsTrial {
    pub user: bool,
    pub pid: bool,
    pub mount: bool,
    /// Mount a fresh /proc in the new pid namespace (needs pid + mount).
    pub mount_proc: bool,
    /// A network namespace too (what host rules need).
    pub net: bool,
    /// Switch to this (uid, gid) before unsharing (needs root): tests what an
    /// unprivileged user gets.
    pub as_user: Option<(u32, u32)>,
}

/// The steps of a trial run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// fork of the probe child (in cordon).
    Fork,
    /// setgroups/setresgid/setresuid to `as_user`.
    DropPrivileges,
    /// unshare(2) with the requested namespaces.
    Unshare,
    /// fork again so the grandchild is pid 1 of the new pid namespace.
    ForkInNamespace,
    /// The grandchild's pid really is 1.
    PidOne,
    /// mount(MS_REC|MS_PRIVATE) on /.
    PrivateMounts,
    /// mount proc on /proc.
    MountProc,
}

impl Step {
    const ALL: [Step; 7] = [
        Step::Fork,
        Step::DropPrivileges,
        Step::Unshare,
        Step::ForkInNamespace,
        Step::PidOne,
        Step::PrivateMounts,
        Step::MountProc,
    ];

    fn code(self) -> u32 {
        self as u32 + 1
    }

    fn from_code(code: u32) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// What each step of a trial run did (only the steps it reached).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NsTrialResult {
    pub steps: Vec<(Step, Result<(), Errno>)>,
}

impl NsTrialResult {
    /// The outcome of `step`, or None when it was not reached or not asked for.
    pub fn step(&self, step: Step) -> Option<Result<(), Errno>> {
        self.steps.iter().find(|(s, _)| *s == step).map(|(_, r)| *r)
    }

    /// The first step that failed.
    pub fn first_failure(&self) -> Option<(Step, Errno)> {
        self.steps
            .iter()
            .find_map(|(s, r)| r.err().map(|e| (*s, e)))
    }
}

/// One 8-byte record on the report pipe: step code and errno (0 = ok).
fn record(fd: RawFd, step: Step, errno: i32) {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&step.code().to_ne_bytes());
    buf[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: write of an 8-byte stack buffer; a pipe write this small is atomic.
    unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
}

/// The errno of the last failed call, without allocating.
fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Exits the forked process without running any destructor or atexit hook.
fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process at once; it is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// Runs `step`: records its outcome and exits with status 1 on failure.
fn step_or_exit(fd: RawFd, step: Step, ret: libc::c_int) {
    if ret == 0 {
        record(fd, step, 0);
    } else {
        record(fd, step, errno());
        exit(1);
    }
}

/// The probe child: only raw syscalls on stack data, never returns.
fn trial_child(trial: NsTrial, fd: RawFd) -> ! {
    if let Some((uid, gid)) = trial.as_user {
        // SAFETY: setgroups with size 0 reads no memory; setres[ug]id take ids.
        let ret = unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(gid, gid, gid) != 0
                || libc::setresuid(uid, uid, uid) != 0
            {
                -1
            } else {
                0
            }
        };
        step_or_exit(fd, Step::DropPrivileges, ret);
    }
    let mut flags = 0;
    if trial.user {
        flags |= libc::CLONE_NEWUSER;
    }
    if trial.pid {
        flags |= libc::CLONE_NEWPID;
    }
    if trial.mount {
        flags |= libc::CLONE_NEWNS;
    }
    if trial.net {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: unshare takes flags only.
    step_or_exit(fd, Step::Unshare, unsafe { libc::unshare(flags) });
    if !trial.pid {
        exit(0);
    }
    // SAFETY: this process is single-threaded (a fork of a single-threaded
    // point), so forking again is sound; the grandchild runs only the raw
    // syscalls below and _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        record(fd, Step::ForkInNamespace, errno());
        exit(1);
    }
    if pid > 0 {
        let mut status = 0;
        // SAFETY: waitpid writes one int into `status`.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        let ok = waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        exit(if ok { 0 } else { 1 });
    }
    record(fd, Step::ForkInNamespace, 0);
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    if me == 1 {
        record(fd, Step::PidOne, 0);
    } else {
        record(fd, Step::PidOne, libc::ESRCH);
        exit(1);
    }
    if !trial.mount {
        exit(0);
    }
    // SAFETY: "/" is a NUL-terminated literal; null source, type and data
    // are allowed for a propagation change.
    let ret = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    step_or_exit(fd, Step::PrivateMounts, ret);
    if trial.mount_proc {
        // SAFETY: NUL-terminated literals and null data; the mount lives in
        // this throwaway mount namespace only.
        let ret = unsafe {
            libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            )
        };
        step_or_exit(fd, Step::MountProc, ret);
    }
    exit(0)
}

/// Forks a child that unshares the namespaces of `trial` (as this user, or
/// as `trial.as_user`), forks again to become pid 1 there, makes mounts
/// private and mounts /proc; returns how far it got.
///
/// Call this only while the process is single-threaded (as `doctor` is):
/// the child runs raw syscalls only, but a fork of a multi-threaded process
/// could still inherit a lock held by another thread inside libc.
pub fn namespace_trial(trial: NsTrial) -> NsTrialResult {
    let mut result = NsTrialResult::default();
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        result.steps.push((Step::Fork, Err(Errno::last())));
        return result;
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the caller guarantees a single-threaded process; the child
    // runs `trial_child`, which uses only raw syscalls on stack data and
    // `_exit`s, so no destructor, lock or allocator state of the parent is
    // used twice.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        result.steps.push((Step::Fork, Err(Errno::last())));
        return result;
    }
    if pid == 0 {
        trial_child(trial, wr.as_raw_fd());
    }
    result.steps.push((Step::Fork, Ok(())));
    drop(wr);
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes one int into `status`.
        let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
        if ret >= 0 || Errno::last().0 != libc::EINTR {
            break;
        }
    }
    // The pipe holds a few 8-byte records: well under its capacity, so the
    // children never blocked on it and reading after the wait is safe.
    let mut buf = [0u8; 256];
    let mut len = 0;
    while len < buf.len() {
        let rest = &mut buf[len..];
        // SAFETY: read writes at most rest.len() bytes into `rest`.
        let n = unsafe { libc::read(rd.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len()) };
        if n > 0 {
            len += n.unsigned_abs();
        } else if n < 0 && Errno::last().0 == libc::EINTR {
            continue;
        } else {
            break;
        }
    }
    for rec in buf[..len].chunks_exact(8) {
        let code = u32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]);
        let errno = i32::from_ne_bytes([rec[4], rec[5], rec[6], rec[7]]);
        if let Some(step) = Step::from_code(code) {
            result.steps.push((
                step,
                if errno == 0 {
                    Ok(())
                } else {
                    Err(Errno(errno))
                },
            ));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_codes_round_trip() {
        for s in Step::ALL {
            assert_eq!(Step::from_code(s.code()), Some(s));
        }
        assert_eq!(Step::from_code(0), None);
    }

    #[test]
    fn kernel_release_looks_like_a_version() {
        let r = kernel_release().unwrap();
        assert!(r.chars().next().unwrap().is_ascii_digit(), "{r}");
    }
}
