//! seccomp: installing a BPF filter with a user-notification listener, and
//! the supervisor's side of that listener.
//!
//! seccompiler (0.5) has no SECCOMP_RET_USER_NOTIF action, and user
//! notification is how the supervisor *sees* a violation anywhere in the
//! agent's tree (pid and syscall) instead of finding a dead process later.
//! The program itself is built, and unit-tested, in `sandbox::seccomp`.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::{check, Errno};

/// `struct sock_filter`: one classic-BPF instruction.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

pub use libc::SECCOMP_RET_USER_NOTIF;
use libc::{
    SECCOMP_FILTER_FLAG_NEW_LISTENER, SECCOMP_GET_ACTION_AVAIL, SECCOMP_GET_NOTIF_SIZES,
    SECCOMP_IOCTL_NOTIF_ID_VALID, SECCOMP_IOCTL_NOTIF_RECV, SECCOMP_IOCTL_NOTIF_SEND,
    SECCOMP_SET_MODE_FILTER,
};
/// Let the kernel run the notified syscall as if no filter had asked.
#[allow(clippy::cast_possible_truncation)] // the flag is 1
const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;

/// `struct seccomp_data`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

/// `struct seccomp_notif`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Notification {
    pub id: u64,
    pub pid: u32,
    pub flags: u32,
    pub data: SeccompData,
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct NotificationResponse {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// `struct seccomp_notif_sizes`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct NotifSizes {
    seccomp_notif: u16,
    seccomp_notif_resp: u16,
    seccomp_data: u16,
}

/// Installs `program` on the calling thread and returns the raw listener fd.
/// Requires no_new_privs. Async-signal-safe: one syscall, no allocation.
pub fn install_with_listener(program: &[SockFilter]) -> Result<RawFd, Errno> {
    let len = u16::try_from(program.len()).map_err(|_| Errno(libc::EINVAL))?;
    let fprog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut().cast(),
    };
    // SAFETY: `fprog` points at `program`, which outlives the call; the
    // kernel copies the instructions and keeps no pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    super::check_int(ret)
}

/// Whether the kernel supports an action such as SECCOMP_RET_USER_NOTIF.
pub fn action_available(action: u32) -> bool {
    // SAFETY: the kernel reads one u32 from the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0u32,
            &action as *const u32,
        )
    };
    ret == 0
}

/// Checks that the kernel's notification structs match ours, so the ioctls
/// below never read or write past them.
pub fn check_notif_sizes() -> Result<(), Errno> {
    let mut sizes = NotifSizes::default();
    // SAFETY: the kernel writes one struct seccomp_notif_sizes into `sizes`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_NOTIF_SIZES,
            0u32,
            &mut sizes as *mut NotifSizes,
        )
    };
    check(ret)?;
    let ours = (
        std::mem::size_of::<Notification>(),
        std::mem::size_of::<NotificationResponse>(),
    );
    if usize::from(sizes.seccomp_notif) != ours.0 || usize::from(sizes.seccomp_notif_resp) != ours.1
    {
        return Err(Errno(libc::EPROTO));
    }
    Ok(())
}

/// A seccomp user-notification listener held by the supervisor.
#[derive(Debug)]
pub struct Listener(OwnedFd);

impl Listener {
    /// Takes ownership of a listener fd received from the child.
    pub fn from_owned(fd: OwnedFd) -> Listener {
        Listener(fd)
    }

    pub fn raw(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        self.0.as_raw_fd()
    }

    /// Receives one pending notification. ENOENT means the caller died
    /// before we read it.
    pub fn receive(&self) -> Result<Notification, Errno> {
        // The kernel rejects a non-zeroed buffer.
        let mut n = Notification::default();
        // SAFETY: check_notif_sizes() proved the kernel's struct is the size
        // of `Notification`, so the kernel writes within `n`.
        let ret = unsafe {
            libc::ioctl(
                self.raw(),
                SECCOMP_IOCTL_NOTIF_RECV,
                &mut n as *mut Notification,
            )
        };
        check(ret.into()).map(|_| n)
    }

    /// Whether the notification is still pending: the caller has not died
    /// (so a pid read from it still names that caller).
    pub fn id_valid(&self, id: u64) -> bool {
        // SAFETY: the kernel reads one u64 from the pointer.
        unsafe { libc::ioctl(self.raw(), SECCOMP_IOCTL_NOTIF_ID_VALID, &id as *const u64) == 0 }
    }

    /// Lets the notified syscall proceed in the kernel (Landlock and the
    /// rest of the filter still apply; only this notification is answered).
    pub fn respond_continue(&self, id: u64) -> Result<(), Errno> {
        self.respond(NotificationResponse {
            id,
            val: 0,
            error: 0,
            flags: SECCOMP_USER_NOTIF_FLAG_CONTINUE,
        })
    }

    /// Answers the notified syscall with `val` as its return value (the
    /// supervisor made the call itself).
    pub fn respond_value(&self, id: u64, val: i64) -> Result<(), Errno> {
        self.respond(NotificationResponse {
            id,
            val,
            error: 0,
            flags: 0,
        })
    }

    /// Installs `fd` in the notifying process as its descriptor `target`
    /// (replacing what was there, as dup2 would; close-on-exec when
    /// `cloexec`), before the notification is answered.
    pub fn add_fd_at(&self, id: u64, fd: RawFd, target: i32, cloexec: bool) -> Result<(), Errno> {
        let add = libc::seccomp_notif_addfd {
            id,
            flags: u32::try_from(libc::SECCOMP_ADDFD_FLAG_SETFD).unwrap_or(1),
            srcfd: u32::try_from(fd).map_err(|_| Errno(libc::EBADF))?,
            newfd: u32::try_from(target).map_err(|_| Errno(libc::EBADF))?,
            newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        // SAFETY: `add` is a live seccomp_notif_addfd; the kernel only
        // reads it.
        let ret = unsafe { libc::ioctl(self.raw(), libc::SECCOMP_IOCTL_NOTIF_ADDFD, &add) };
        check(ret.into()).map(drop)
    }

    /// Fails the notified syscall with `errno`.
    pub fn respond_error(&self, id: u64, errno: i32) -> Result<(), Errno> {
        self.respond(NotificationResponse {
            id,
            val: 0,
            error: -errno,
            flags: 0,
        })
    }

    fn respond(&self, mut resp: NotificationResponse) -> Result<(), Errno> {
        // SAFETY: `resp` is a live seccomp_notif_resp of the size the kernel expects.
        let ret = unsafe {
            libc::ioctl(
                self.raw(),
                SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp as *mut NotificationResponse,
            )
        };
        check(ret.into()).map(drop)
    }
}

/// Builds a listener from a raw fd received over SCM_RIGHTS.
///
/// # Safety
/// `fd` must be an open descriptor that nothing else owns.
pub unsafe fn listener_from_raw(fd: RawFd) -> Listener {
    // SAFETY: the caller guarantees sole ownership of `fd`.
    Listener(unsafe { OwnedFd::from_raw_fd(fd) })
}
