//! Starting `cordon serve`'s session processes: credentials switched and
//! the cgroup joined in the child, between fork and exec; user and group
//! lookups; the monotonic clock systemd's RELOADING=1 wants.
//!
//! Everything the child does after fork is a raw syscall on values
//! prepared before the fork: no allocation, no locks (async-signal-safe).

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::{check, Errno};

/// Who a session process runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
}

/// What the child does before exec. Built in the parent.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreExec {
    /// Drop to these ids (supplementary groups become just `gid`).
    pub credentials: Option<Credentials>,
    /// An open `cgroup.procs` of the session's own cgroup: the child
    /// writes "0" (itself) to it, so everything it starts is born inside.
    pub cgroup_procs: Option<RawFd>,
    /// Start a new session (setsid): the daemon's terminal, if any, does
    /// not signal the agents.
    pub setsid: bool,
    /// PR_SET_PDEATHSIG: the signal the child gets when the thread that
    /// started it dies, with the parent's pid to check it has not died
    /// already. Set after the credentials change, which clears it.
    pub parent_death: Option<(i32, i32)>,
}

/// Arranges for `cmd`'s child to apply `pre` before exec.
pub fn arrange(cmd: &mut Command, pre: PreExec) {
    let hook = move || -> std::io::Result<()> {
        if pre.setsid {
            // SAFETY: setsid takes no arguments; async-signal-safe.
            check(unsafe { libc::setsid() }.into())?;
        }
        if let Some(fd) = pre.cgroup_procs {
            // SAFETY: `fd` is open in the child (inherited from the parent,
            // which keeps it open until spawn returns); the buffer is a
            // static one-byte string; write is async-signal-safe.
            let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            check(n as libc::c_long)?;
        }
        if let Some(c) = pre.credentials {
            let groups = [c.gid];
            // Groups first, then gid, then uid: after setresuid the
            // process could no longer change the others.
            // SAFETY: `groups` is a live array of one gid_t.
            check(unsafe { libc::setgroups(1, groups.as_ptr()) }.into())?;
            // SAFETY: plain integer arguments.
            check(unsafe { libc::setresgid(c.gid, c.gid, c.gid) }.into())?;
            // SAFETY: plain integer arguments.
            check(unsafe { libc::setresuid(c.uid, c.uid, c.uid) }.into())?;
        }
        if let Some((signal, parent)) = pre.parent_death {
            // SAFETY: prctl with integer arguments; async-signal-safe.
            check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0) }.into())?;
            // The parent may have died before the line above: then the
            // signal will never come, so do not start at all.
            // SAFETY: getppid takes nothing and cannot fail.
            if unsafe { libc::getppid() } != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        Ok(())
    };
    // SAFETY: the hook only makes async-signal-safe syscalls on values
    // captured by copy (integers and a static buffer): it allocates
    // nothing and takes no lock, so it is sound between fork and exec.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// A user from the password database: (uid, primary gid).
pub fn lookup_user(name: &str) -> Result<Option<(u32, u32)>, Errno> {
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain data the call fills in.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is live for the call; `buf` is writable for
    // its full length, which is passed.
    let ret = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        )
    };
    if ret != 0 {
        return Err(Errno(ret));
    }
    if out.is_null() {
        return Ok(None);
    }
    Ok(Some((pw.pw_uid, pw.pw_gid)))
}

/// A group's gid from the group database.
pub fn lookup_group(name: &str) -> Result<Option<u32>, Errno> {
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    let mut buf = vec![0 as libc::c_char; 64 * 1024];
    // SAFETY: group is plain data the call fills in.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as for getpwnam_r above.
    let ret = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut gr,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        )
    };
    if ret != 0 {
        return Err(Errno(ret));
    }
    if out.is_null() {
        return Ok(None);
    }
    Ok(Some(gr.gr_gid))
}

/// CLOCK_MONOTONIC in microseconds (systemd's MONOTONIC_USEC=).
pub fn monotonic_usec() -> u64 {
    // SAFETY: timespec is plain data.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: clock_gettime writes one timespec into `ts`.
    let ret = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if ret != 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let micros = u64::try_from(ts.tv_nsec).unwrap_or(0) / 1000;
    secs * 1_000_000 + micros
}

/// The supplementary groups of a Unix socket's peer (SO_PEERGROUPS).
pub fn peer_groups(sock: RawFd) -> Result<Vec<u32>, Errno> {
    let mut groups = vec![0u32; 64];
    loop {
        let mut len = libc::socklen_t::try_from(groups.len() * 4).unwrap_or(libc::socklen_t::MAX);
        // SAFETY: the kernel writes at most `len` bytes into `groups`,
        // which holds that many.
        let ret = unsafe {
            libc::getsockopt(
                sock,
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if ret == 0 {
            groups.truncate(len as usize / 4);
            return Ok(groups);
        }
        let e = Errno::last();
        // ERANGE: `len` now says how much room the list needs.
        if e.0 == libc::ERANGE && (len as usize / 4) > groups.len() && groups.len() < 65536 {
            groups.resize(len as usize / 4, 0);
            continue;
        }
        return Err(e);
    }
}
