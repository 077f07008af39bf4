//! The shim's raw syscalls: turning stop signals into a readable
//! descriptor, and waiting on it and the broker's socket.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

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
