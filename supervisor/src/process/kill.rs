//! Killing a sandbox for divergence, from whichever thread notices it
//! first (the supervisor loop, or a broker thread).

use std::os::fd::OwnedFd;
use std::sync::Mutex;

use super::outcome::Violation;
use crate::sys::process::pidfd_send_signal;

/// Holds a sandbox's init pidfd and the first reason it was killed.
#[derive(Debug)]
pub struct Killer {
    pidfd: OwnedFd,
    reason: Mutex<Option<Violation>>,
}

impl Killer {
    /// `pidfd` is the sandbox's init (killing it kills the whole tree).
    pub fn new(pidfd: &OwnedFd) -> std::io::Result<Killer> {
        Ok(Killer {
            pidfd: pidfd.try_clone()?,
            reason: Mutex::new(None),
        })
    }

    /// Kills the whole sandbox for `v` unless it was already killed.
    /// With `loud`, says so on stderr (the agent's run).
    pub fn diverge(&self, v: Violation, loud: bool) {
        // A poisoned lock still holds a valid Option; killing must not be skipped.
        let mut reason = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if reason.is_some() {
            return;
        }
        if loud {
            eprintln!(
                "cordon: killed: pid {} {}; stopping the whole sandbox",
                v.pid, v.what
            );
        }
        tracing::info!(pid = v.pid, what = %v.what, "divergence: killing the sandbox");
        let _ = pidfd_send_signal(&self.pidfd, libc::SIGKILL);
        *reason = Some(v);
    }

    /// Waits (at most `limit`) until the sandbox's init has exited, so a
    /// caller holding a connection open cannot let the agent act on an
    /// answer between the kill and the kernel tearing the tree down.
    pub fn wait_dead(&self, limit: std::time::Duration) {
        let mut fds = [libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&self.pidfd),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ms = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
        let _ = crate::sys::fd::poll(&mut fds, ms);
    }

    /// Why the sandbox was killed, if it was.
    pub fn diverged(&self) -> Option<Violation> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
