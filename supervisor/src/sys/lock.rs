//! Advisory whole-file locks (`flock`), held for the life of a guard.
//!
//! The audit log uses these so that several cordon processes appending to
//! one file each read the current tail and write the next line without
//! another process slipping a line in between.

use std::os::fd::{AsRawFd, BorrowedFd};

use super::{check, Errno};

/// An exclusive `flock` on one open file description; unlocked on drop.
///
/// flock locks belong to the open file description, not the thread: two
/// threads sharing one fd do not exclude each other, so callers that share
/// a descriptor between threads must also hold a mutex.
#[derive(Debug)]
pub struct ExclusiveLock<'fd> {
    fd: BorrowedFd<'fd>,
}

impl<'fd> ExclusiveLock<'fd> {
    /// Blocks until the lock is held. Retries on EINTR.
    pub fn acquire(fd: BorrowedFd<'fd>) -> Result<ExclusiveLock<'fd>, Errno> {
        loop {
            // SAFETY: flock only reads the integer fd, which `fd` borrows
            // and so keeps open for the duration of the call.
            let ret = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) };
            match check(ret.into()) {
                Ok(_) => return Ok(ExclusiveLock { fd }),
                Err(e) if e.0 == libc::EINTR => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for ExclusiveLock<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard borrows the fd, so it is still open here.
        // Unlocking cannot fail on a valid fd we locked; closing the fd
        // would release the lock anyway, so the result is not needed.
        unsafe { libc::flock(self.fd.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Takes an exclusive `flock` on `fd` without waiting: Ok(true) when taken,
/// Ok(false) when another open file description holds it. The lock lives
/// as long as the descriptor (no guard: session directories hold theirs
/// for the life of the supervisor).
pub fn try_lock_forever(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    loop {
        // SAFETY: flock only reads the integer fd, which `fd` keeps open.
        let ret = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        match check(ret.into()) {
            Ok(_) => return Ok(true),
            Err(e) if e.0 == libc::EWOULDBLOCK => return Ok(false),
            Err(e) if e.0 == libc::EINTR => continue,
            Err(e) => return Err(e),
        }
    }
}
