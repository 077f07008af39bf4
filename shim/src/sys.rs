//! The shim's raw syscalls: sending a frame with descriptors, and turning
//! stop signals into a readable descriptor.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Sends all of `bytes` on `sock`, with `fds` attached to the first byte.
pub fn send_with_fds(sock: RawFd, bytes: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    const MAX_FDS: usize = 8;
    if fds.len() > MAX_FDS || bytes.is_empty() {
        return Err(std::io::ErrorKind::InvalidInput.into());
    }
    // Room for a cmsghdr and MAX_FDS descriptors, 8-byte aligned.
    #[repr(C, align(8))]
    struct Cmsg([u8; 64]);
    let mut cbuf = Cmsg([0; 64]);
    // At most MAX_FDS * 4 = 32 bytes, so the u32 below is exact.
    let fd_bytes = u32::try_from(std::mem::size_of_val(fds)).unwrap_or(u32::MAX);
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    // SAFETY: msghdr is plain data; zero is valid for every field.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size; fd_bytes <= 32.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(fd_bytes) } as usize;
    // SAFETY: msg_control points at a 64-byte aligned buffer and
    // CMSG_SPACE(32) = 48 fits, so the header and the fds are in bounds.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(fd_bytes) as usize;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr().cast::<u8>(),
            libc::CMSG_DATA(c),
            fd_bytes as usize,
        );
    }
    // SAFETY: `msg` and the buffers it points to are live for the call.
    let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The descriptors went with the first bytes; send any rest plainly.
    let mut sent = n.unsigned_abs();
    while sent < bytes.len() {
        let rest = &bytes[sent..];
        // SAFETY: sends from the live slice `rest`.
        let n = unsafe { libc::send(sock, rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        sent += n.unsigned_abs();
    }
    Ok(())
}

/// Blocks the stop signals and returns a signalfd that reports them, so
/// the shim can forward them as a cancel instead of dying mid-call.
pub fn stop_signals() -> std::io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset_t.
    unsafe {
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    // SAFETY: `set` is initialised; -1 asks for a new descriptor.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: signalfd returned a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one signal number from a signalfd.
pub fn read_signal(fd: RawFd) -> std::io::Result<i32> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: reads at most `size` bytes into `info`.
    let n = unsafe { libc::read(fd, (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
    if n < 0 || n.unsigned_abs() != size {
        return Err(std::io::Error::last_os_error());
    }
    Ok(i32::try_from(info.ssi_signo).unwrap_or(0))
}

/// Waits until one of `fds` is readable (or hung up); returns which.
pub fn wait_readable(fds: &[RawFd; 2]) -> std::io::Result<[bool; 2]> {
    let mut p = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    loop {
        // SAFETY: polls two live pollfds.
        let n = unsafe { libc::poll(p.as_mut_ptr(), 2, -1) };
        if n >= 0 {
            return Ok([p[0].revents != 0, p[1].revents != 0]);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Opens the working directory as an O_PATH descriptor to hand over.
pub fn open_cwd() -> std::io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated literal path.
    let fd = unsafe {
        libc::open(
            c".".as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: open returned a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
