//! Terminal calls for the approval prompt.

use std::os::fd::{AsRawFd, BorrowedFd};

use super::Errno;

/// Discards input typed before the prompt was shown (TCIFLUSH), so no
/// keystroke typed ahead, or held down, answers a question not yet asked.
pub fn flush_input(tty: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: tcflush takes a descriptor and a constant; it touches no
    // memory of ours, and a descriptor that is not a terminal gets ENOTTY.
    let ret = unsafe { libc::tcflush(tty.as_raw_fd(), libc::TCIFLUSH) };
    super::check(ret.into()).map(drop)
}
