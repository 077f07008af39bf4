//! File-descriptor plumbing: pipes, socketpairs, fd passing, poll, signalfd.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{check, Errno};

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the two-element array.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    check(ret.into())?;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A close-on-exec Unix datagram socketpair, used to pass one fd.
pub fn socketpair() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair writes two fds into the two-element array.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    check(ret.into())?;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The size of one fd in a control message.
const FD_SIZE: u32 = 4;
const _: () = assert!(std::mem::size_of::<RawFd>() == FD_SIZE as usize);

/// Control-message buffer for exactly one fd, aligned for cmsghdr.
#[repr(C, align(8))]
struct OneFdCmsg([u8; 24]);

/// Sends `fd` over `sock` (SCM_RIGHTS). Async-signal-safe.
pub fn send_fd(sock: RawFd, fd: RawFd) -> Result<(), Errno> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cmsg_buf = OneFdCmsg([0; 24]);
    // SAFETY: msghdr is plain data; zero is a valid value for every field.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_buf.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(FD_SIZE) } as usize;
    // SAFETY: msg_control points at a 24-byte, 8-aligned buffer, which is
    // CMSG_SPACE(4) on 64-bit Linux, so the header and one fd fit.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(FD_SIZE) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
    }
    // SAFETY: `msg` and everything it points to are live for the call.
    let ret = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
    check(ret as libc::c_long).map(drop)
}

/// Receives one fd sent with [`send_fd`]. Ok(None) means the peer closed
/// without sending one.
pub fn recv_fd(sock: RawFd) -> Result<Option<OwnedFd>, Errno> {
    let mut byte = [0u8; 1];
    let (_, fds) = recv_with_fds(sock, &mut byte, 1)?;
    Ok(fds.into_iter().next())
}

/// Reads into `buf`, retrying on EINTR. Ok(0) is end of file.
pub fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: the pointer and length describe the writable slice `buf`.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n.unsigned_abs());
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// Writes all of `buf`, retrying on EINTR and short writes.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        // SAFETY: the pointer and length describe the readable slice `buf`.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = Errno::last();
            if e.0 == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n.unsigned_abs()..];
    }
    Ok(())
}

/// The file status flags of `fd` (F_GETFL: O_NONBLOCK...).
pub fn status_flags(fd: RawFd) -> Result<i32, Errno> {
    // SAFETY: F_GETFL takes and returns plain integers.
    super::check_int(unsafe { libc::fcntl(fd, libc::F_GETFL) }.into())
}

/// Sets O_NONBLOCK on `fd`.
pub fn set_nonblocking(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: F_GETFL/F_SETFL take and return plain integers.
    let flags = super::check_int(unsafe { libc::fcntl(fd, libc::F_GETFL) }.into())?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) }.into()).map(drop)
}

/// Shuts a listening socket down: a thread blocked in accept() on it
/// returns (EINVAL), and no connection is accepted any more.
pub fn shutdown_listener(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: shutdown takes a descriptor and a flag.
    check(unsafe { libc::shutdown(fd, libc::SHUT_RDWR) }.into()).map(drop)
}

/// Waits for events on `fds`; returns how many are ready (0 on timeout or EINTR).
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize, Errno> {
    // SAFETY: the pointer and length describe the writable slice `fds`.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = Errno::last();
        return if e.0 == libc::EINTR { Ok(0) } else { Err(e) };
    }
    Ok(n.unsigned_abs() as usize)
}

/// Blocks `signals` in this thread and returns a signalfd that reports them.
pub fn block_signals_to_fd(signals: &[libc::c_int]) -> Result<OwnedFd, Errno> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset below.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset_t for each call.
    unsafe {
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
    }
    // SAFETY: `set` is initialised; the old mask is not needed.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(Errno(ret));
    }
    // SAFETY: `set` is initialised; -1 asks for a new fd.
    let fd = super::check_int(
        unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) }.into(),
    )?;
    // SAFETY: signalfd just returned this fd and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One signal read from a signalfd: (signal number, si_code).
pub fn read_signal(fd: &OwnedFd) -> Result<Option<(i32, i32)>, Errno> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: reads at most `size` bytes into `info`.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size,
        )
    };
    if n < 0 {
        let e = Errno::last();
        return if e.0 == libc::EAGAIN || e.0 == libc::EINTR {
            Ok(None)
        } else {
            Err(e)
        };
    }
    if n.unsigned_abs() != size {
        return Ok(None);
    }
    Ok(Some((info.ssi_signo as i32, info.ssi_code)))
}

/// Receives into `buf` from a stream socket, collecting up to `max_fds`
/// descriptors passed with SCM_RIGHTS (close-on-exec). More descriptors
/// than that, or a truncated control message, is EPROTO: every descriptor
/// received is closed, so a hostile peer cannot leak fds into us.
pub fn recv_with_fds(
    sock: RawFd,
    buf: &mut [u8],
    max_fds: usize,
) -> Result<(usize, Vec<OwnedFd>), Errno> {
    // Room for exactly `max_fds` descriptors: the kernel installs no more
    // than fit (it drops the rest and sets MSG_CTRUNC), so a peer sending
    // more cannot leave descriptors in our table.
    const MAX: usize = 12;
    #[repr(C, align(8))]
    struct Cmsg([u8; 64]);
    let mut cbuf = Cmsg([0; 64]);
    let fd_bytes = u32::try_from(max_fds.min(MAX) * std::mem::size_of::<RawFd>()).unwrap_or(0);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; zero is a valid value for every field.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size; at most CMSG_SPACE(48) = 64.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(fd_bytes) } as usize;
    let n = loop {
        // SAFETY: `msg` and its buffers are live and writable for the call.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n.unsigned_abs();
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control; CMSG_FIRSTHDR/NXTHDR walk it
    // within msg_controllen.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !c.is_null() {
        // SAFETY: `c` is a header inside cbuf, per CMSG_FIRSTHDR/NXTHDR.
        let (level, kind, len) = unsafe { ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len) };
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN(0) only computes the header size.
            let header = unsafe { libc::CMSG_LEN(0) } as usize;
            let count = len.saturating_sub(header) / std::mem::size_of::<RawFd>();
            // Every descriptor the kernel installed is owned (and so closed
            // on any error below), however many there are.
            for i in 0..count {
                // SAFETY: `count` fds follow the header within `len` bytes.
                let fd =
                    unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>().add(i)) };
                // SAFETY: SCM_RIGHTS installed this fresh fd in our table.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        // SAFETY: NXTHDR stays within msg_controllen or returns null.
        c = unsafe { libc::CMSG_NXTHDR(&msg, c) };
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 || fds.len() > max_fds {
        return Err(Errno(libc::EPROTO)); // `fds` drop here: all closed
    }
    Ok((n, fds))
}

/// Duplicates `fd` to a number of at least 3, close-on-exec, so it can be
/// dup2'ed onto 0, 1 or 2 in a child without colliding with them.
pub fn dup_above_stdio(fd: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let new = super::check_int(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) }.into())?;
    // SAFETY: the new descriptor is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The credentials and pidfd of a Unix socket's peer, taken when it connected.
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// SO_PEERPIDFD: pins the exact process, immune to pid reuse.
    pub pidfd: OwnedFd,
}

/// SO_PEERCRED and SO_PEERPIDFD of a connected Unix socket.
pub fn peer_cred(sock: RawFd) -> Result<PeerCred, Errno> {
    const SO_PEERPIDFD: libc::c_int = 77;
    // SAFETY: ucred is plain data.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len: libc::socklen_t = 12; // sizeof(struct ucred)
    const _: () = assert!(std::mem::size_of::<libc::ucred>() == 12);
    // SAFETY: the kernel writes at most `len` bytes into `cred`.
    let ret = unsafe {
        libc::getsockopt(
            sock,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    check(ret.into())?;
    let mut pidfd: libc::c_int = -1;
    let mut len: libc::socklen_t = 4; // sizeof(int)
                                      // SAFETY: the kernel writes one int (a new pidfd) into `pidfd`.
    let ret = unsafe {
        libc::getsockopt(
            sock,
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut pidfd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    check(ret.into())?;
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
        // SAFETY: SO_PEERPIDFD installed a fresh descriptor that we own.
        pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
    })
}

/// Opens directory `path` as an O_PATH descriptor without following any
/// symlink on the way (openat2 with RESOLVE_NO_SYMLINKS), so a path checked
/// earlier cannot be redirected by a symlink swapped in since.
pub fn open_dir_nofollow(path: &std::ffi::CStr) -> Result<OwnedFd, Errno> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_NO_SYMLINKS,
    };
    // SAFETY: `path` is NUL-terminated and `how` is a live open_how of the
    // size passed; the kernel only reads both.
    let fd = super::check_int(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })?;
    // SAFETY: openat2 returned a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether two descriptors refer to the same inode.
pub fn same_inode(a: RawFd, b: RawFd) -> Result<bool, Errno> {
    let stat = |fd: RawFd| -> Result<(u64, u64), Errno> {
        // SAFETY: stat is plain data, written by fstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is writable; fstat on any fd number is safe.
        check(unsafe { libc::fstat(fd, &mut st) }.into())?;
        Ok((st.st_dev, st.st_ino))
    };
    Ok(stat(a)? == stat(b)?)
}

/// An anonymous, sealed, read-only (0400) file holding `data`: a secret
/// delivered "as a file" without touching any filesystem, so nothing is
/// left behind even if cordon is killed. Close-on-exec; the child clears
/// that flag on the copy it keeps.
pub fn sealed_memfd(name: &std::ffi::CStr, data: &[u8]) -> Result<OwnedFd, Errno> {
    const MFD_CLOEXEC: u32 = 0x1;
    const MFD_ALLOW_SEALING: u32 = 0x2;
    const MFD_NOEXEC_SEAL: u32 = 0x8;
    let create = |flags: u32| {
        // SAFETY: `name` is NUL-terminated; the kernel copies it.
        super::check_int(unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags) })
    };
    let fd = create(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL)
        // Kernels before 6.3 do not know MFD_NOEXEC_SEAL.
        .or_else(|_| create(MFD_CLOEXEC | MFD_ALLOW_SEALING))?;
    // SAFETY: memfd_create returned a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut done = 0;
    while done < data.len() {
        let rest = &data[done..];
        // SAFETY: writes from the live slice `rest` to our descriptor.
        let n = unsafe { libc::write(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            return Err(Errno::last());
        }
        done += n.unsigned_abs();
    }
    // SAFETY: fchmod and fcntl take a descriptor and integers.
    unsafe {
        check(libc::fchmod(fd.as_raw_fd(), 0o400).into())?;
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        check(libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals).into())?;
    }
    Ok(fd)
}
