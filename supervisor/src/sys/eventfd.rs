//! An eventfd: a counter one thread bumps to wake another's poll.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::Errno;

/// A close-on-exec, non-blocking eventfd (a counter other threads bump to
/// wake a poll).
pub fn eventfd() -> Result<OwnedFd, Errno> {
    // SAFETY: eventfd takes an initial value and flags.
    let fd = super::check_int(
        unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }.into(),
    )?;
    // SAFETY: the kernel just returned this descriptor to us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to eventfd `fd`.
pub fn eventfd_bump(fd: RawFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live buffer; a full counter is EAGAIN,
    // and then the reader is already woken.
    unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
}

/// Resets eventfd `fd` to zero (nothing to read is fine).
pub fn eventfd_clear(fd: RawFd) {
    let mut b = [0u8; 8];
    // SAFETY: reads at most 8 bytes into a live buffer.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), b.len()) };
}
