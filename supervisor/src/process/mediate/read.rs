//! What a mediated call names, read out of the calling process into the
//! supervisor's memory: its arguments, address, data, the descriptors of
//! an SCM_RIGHTS message, and the socket file a pathname address names
//! (resolved as the caller sees it). Every size is bounded before it is
//! read.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use super::{Call, Message, MAX_ADDR, MAX_FDS, MAX_IOV, MAX_SEND};
use crate::sys::process::read_remote;
use crate::sys::sockets::{open_path, pidfd_getfd};

/// The low 32 bits of an argument as the C int the kernel reads.
pub(super) fn low_int(arg: u64) -> i32 {
    i32::from_ne_bytes(u32::try_from(arg & 0xffff_ffff).unwrap_or(0).to_ne_bytes())
}

pub(super) fn read_addr(pid: i32, addr: u64, len: u64) -> Result<Vec<u8>, (i32, Option<String>)> {
    if addr == 0 {
        return Ok(Vec::new());
    }
    let len = usize::try_from(len & 0xffff_ffff).unwrap_or(usize::MAX);
    if len > MAX_ADDR {
        return Err((libc::EINVAL, None));
    }
    let mut buf = vec![0u8; len];
    read_remote(pid, addr, &mut buf).map_err(|e| (e.0, None))?;
    Ok(buf)
}

pub(super) fn read_data(pid: i32, addr: u64, len: usize) -> Result<Vec<u8>, (i32, Option<String>)> {
    if len > MAX_SEND {
        return Err((libc::EMSGSIZE, None));
    }
    let mut buf = vec![0u8; len];
    if len > 0 {
        read_remote(pid, addr, &mut buf).map_err(|e| (e.0, None))?;
    }
    Ok(buf)
}

pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

/// Reads a `struct msghdr` at `at`: its name, its data gathered from the
/// iovecs, and the descriptors of an SCM_RIGHTS control message (copied
/// from the process). Any other control message is refused: the
/// supervisor would send it with its own credentials.
pub(super) fn read_msghdr(
    pid: i32,
    pidfd: &OwnedFd,
    at: u64,
) -> Result<Message, (i32, Option<String>)> {
    let mut h = [0u8; 56];
    read_remote(pid, at, &mut h).map_err(|e| (e.0, None))?;
    let (name_ptr, name_len) = (u64_at(&h, 0), u64_at(&h, 8) & 0xffff_ffff);
    let (iov_ptr, iov_len) = (u64_at(&h, 16), u64_at(&h, 24));
    let (ctl_ptr, ctl_len) = (u64_at(&h, 32), u64_at(&h, 40));
    let iov_len = usize::try_from(iov_len).unwrap_or(usize::MAX);
    if iov_len > MAX_IOV {
        return Err((libc::EMSGSIZE, None));
    }
    let mut iovs = vec![0u8; iov_len * 16];
    if iov_len > 0 {
        read_remote(pid, iov_ptr, &mut iovs).map_err(|e| (e.0, None))?;
    }
    let mut data = Vec::new();
    for i in 0..iov_len {
        let (base, len) = (u64_at(&iovs, i * 16), u64_at(&iovs, i * 16 + 8));
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if data.len().saturating_add(len) > MAX_SEND {
            return Err((libc::EMSGSIZE, None));
        }
        data.extend(read_data(pid, base, len)?);
    }
    let fds = read_rights(pid, pidfd, ctl_ptr, ctl_len)?;
    Ok(Message {
        name: read_addr(pid, name_ptr, name_len)?,
        data,
        fds,
        hold: None,
    })
}

/// The descriptors of the control messages at `ptr`: SCM_RIGHTS only.
pub(super) fn read_rights(
    pid: i32,
    pidfd: &OwnedFd,
    ptr: u64,
    len: u64,
) -> Result<Vec<OwnedFd>, (i32, Option<String>)> {
    if ptr == 0 || len == 0 {
        return Ok(Vec::new());
    }
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > 64 * 1024 {
        return Err((libc::EINVAL, None));
    }
    let mut c = vec![0u8; len];
    read_remote(pid, ptr, &mut c).map_err(|e| (e.0, None))?;
    let mut fds = Vec::new();
    let mut at = 0;
    // struct cmsghdr: size_t len, int level, int type, then data, 8-aligned.
    while at + 16 <= c.len() {
        let clen = usize::try_from(u64_at(&c, at)).unwrap_or(usize::MAX);
        let level = i32::from_ne_bytes(c[at + 8..at + 12].try_into().unwrap_or([0; 4]));
        let kind = i32::from_ne_bytes(c[at + 12..at + 16].try_into().unwrap_or([0; 4]));
        if clen < 16 || at + clen > c.len() {
            return Err((libc::EINVAL, None));
        }
        if level != libc::SOL_SOCKET || kind != libc::SCM_RIGHTS {
            return Err((
                libc::EOPNOTSUPP,
                Some(format!(
                    "sent a control message (level {level}, type {kind}) only SCM_RIGHTS may carry"
                )),
            ));
        }
        for i in (at + 16..at + clen).step_by(4) {
            let Some(b) = c.get(i..i + 4) else { break };
            let fd = i32::from_ne_bytes(b.try_into().unwrap_or([0; 4]));
            if fds.len() >= MAX_FDS {
                return Err((libc::ETOOMANYREFS, None));
            }
            fds.push(pidfd_getfd(pidfd, fd).map_err(|e| (e.0, None))?);
        }
        at += clen.div_ceil(8) * 8;
    }
    Ok(fds)
}

/// The socket file a pathname address names, as the caller sees it (its
/// root and working directory, its mount namespace's masks), opened by
/// the supervisor: (the descriptor, its canonical path).
pub(super) fn resolve_unix(
    pid: i32,
    path: &[u8],
) -> Result<(OwnedFd, PathBuf), (i32, Option<String>)> {
    use std::os::unix::ffi::OsStrExt;
    let rel = std::ffi::OsStr::from_bytes(path);
    let base = if path.first() == Some(&b'/') {
        PathBuf::from(format!("/proc/{pid}/root"))
    } else {
        PathBuf::from(format!("/proc/{pid}/cwd"))
    };
    let full = base.join(
        std::path::Path::new(rel)
            .strip_prefix("/")
            .unwrap_or(std::path::Path::new(rel)),
    );
    let c =
        std::ffi::CString::new(full.as_os_str().as_bytes()).map_err(|_| (libc::EINVAL, None))?;
    let fd = open_path(&c).map_err(|e| (e.0, None))?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| (e.raw_os_error().unwrap_or(libc::EINVAL), None))?;
    Ok((fd, real))
}

/// Replaces each pathname address by `/proc/self/fd/N` of the descriptor
/// the supervisor resolved, which the call then holds until it is made.
pub(super) fn rewrite_unix(call: Call, resolved: Vec<Option<(OwnedFd, PathBuf)>>) -> Call {
    let mut resolved = resolved.into_iter();
    let mut next = |addr: Vec<u8>| -> (Vec<u8>, Option<OwnedFd>) {
        match resolved.next().flatten() {
            Some((fd, _)) => (unix_proc_addr(fd.as_raw_fd()), Some(fd)),
            None => (addr, None),
        }
    };
    match call {
        Call::Connect { addr, .. } => {
            let (addr, hold) = next(addr);
            Call::Connect { addr, hold }
        }
        Call::Send { msgs, flags, many } => {
            let msgs = msgs
                .into_iter()
                .map(|m| {
                    if m.name.is_empty() {
                        return m;
                    }
                    let (name, hold) = next(m.name);
                    Message { name, hold, ..m }
                })
                .collect();
            Call::Send { msgs, flags, many }
        }
    }
}

/// A `sockaddr_un` for `/proc/self/fd/N`.
pub(super) fn unix_proc_addr(fd: i32) -> Vec<u8> {
    #[allow(clippy::cast_possible_truncation)] // AF_UNIX is 1
    let mut b = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    b.extend_from_slice(format!("/proc/self/fd/{fd}").as_bytes());
    b.push(0);
    b
}

/// Whether descriptor `fd` of thread `tid` is close-on-exec (the `flags:`
/// of its fdinfo, octal). Unknown: yes (what a shim asks for).
pub(super) fn fd_cloexec(tid: i32, fd: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}"))
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|v| i64::from_str_radix(v.trim(), 8).ok())
        })
        .is_none_or(|flags| flags & i64::from(libc::O_CLOEXEC) != 0)
}
