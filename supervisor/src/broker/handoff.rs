//! Broker connections the supervisor makes itself. A sandboxed process's
//! connect to the session's broker is mediated (`process::mediate`): the
//! process gets one end of a new socket pair as the socket it connected,
//! and the broker gets the other here, with the caller already known from
//! the notification (its pid, pinned by a pidfd, and the call whose
//! sandbox it is in). Nothing about such a peer is read from the socket or
//! guessed from /proc.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

/// Connections waiting for the broker at most (like a listen backlog);
/// past it a mediated connect fails with EAGAIN.
pub const MAX_QUEUED: usize = 1024;

/// A connection made for a sandboxed process.
#[derive(Debug)]
pub struct Handed {
    pub stream: UnixStream,
    /// The caller's process (in cordon's pid namespace), and a pidfd of it.
    pub pid: u32,
    pub pidfd: OwnedFd,
    /// The running call whose sandbox the caller is in (a nested call).
    pub via_call: Option<u64>,
}

/// The queue from the mediators to the broker's accept loop.
#[derive(Debug)]
pub struct Handoff {
    queue: Mutex<VecDeque<Handed>>,
    wake: OwnedFd,
}

impl Handoff {
    pub fn new() -> Result<Handoff, crate::sys::Errno> {
        Ok(Handoff {
            queue: Mutex::new(VecDeque::new()),
            wake: crate::sys::eventfd::eventfd()?,
        })
    }

    /// Queues `h` for the broker; gives it back when the queue is full.
    pub fn hand(&self, h: Handed) -> Result<(), Handed> {
        let Ok(mut q) = self.queue.lock() else {
            return Err(h);
        };
        if q.len() >= MAX_QUEUED {
            return Err(h);
        }
        q.push_back(h);
        drop(q);
        crate::sys::eventfd::eventfd_bump(self.wake.as_raw_fd());
        Ok(())
    }

    /// The next queued connection.
    pub fn take(&self) -> Option<Handed> {
        self.queue.lock().ok()?.pop_front()
    }

    /// Readable when something was queued (`clear` it, then `take`).
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    pub fn clear(&self) {
        crate::sys::eventfd::eventfd_clear(self.wake.as_raw_fd());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_come_out_in_order_and_the_queue_is_bounded() {
        let h = Handoff::new().unwrap();
        let me = crate::sys::process::getpid();
        let one = |i: u32| {
            let (a, _b) = UnixStream::pair().unwrap();
            Handed {
                stream: a,
                pid: i,
                pidfd: crate::sys::process::pidfd_open(me).unwrap(),
                via_call: None,
            }
        };
        for i in 0..u32::try_from(MAX_QUEUED).unwrap() {
            assert!(h.hand(one(i)).is_ok());
        }
        assert!(h.hand(one(9999)).is_err(), "past the bound");
        let mut fds = [libc::pollfd {
            fd: h.wake_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        assert_eq!(crate::sys::fd::poll(&mut fds, 0).unwrap(), 1);
        h.clear();
        assert_eq!(crate::sys::fd::poll(&mut fds, 0).unwrap(), 0);
        assert_eq!(h.take().unwrap().pid, 0);
        assert_eq!(h.take().unwrap().pid, 1);
    }
}
