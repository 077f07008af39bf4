//! The agent's Landlock domain: each path rule opened and added here,
//! after the mount namespace is ready, so rules bind to the inodes the
//! agent sees; then enforced.

use std::os::fd::RawFd;

use super::super::landlock;
use super::report::{errno, fail, fail_errno};
use super::{LandlockSpec, Stage};

pub(super) fn apply(rfd: RawFd, ll: &LandlockSpec<'_>) {
    for (i, rule) in ll.paths.iter().enumerate() {
        // SAFETY: path is NUL-terminated; O_PATH opens without reading.
        let fd = unsafe { libc::open(rule.path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            if rule.optional && errno() == libc::ENOENT as u32 {
                continue;
            }
            fail(rfd, Stage::LandlockOpen, i);
        }
        // SAFETY: stat is plain data, written by fstat on our fd.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is writable; fd is open.
        let is_dir = unsafe { libc::fstat(fd, &mut st) } == 0
            && (st.st_mode & libc::S_IFMT) == libc::S_IFDIR;
        let access = if is_dir {
            rule.access
        } else {
            rule.access & ll.file_access_mask
        };
        let res = landlock::add_path_rule(ll.ruleset, fd, access);
        // SAFETY: closes the fd we opened.
        unsafe { libc::close(fd) };
        if let Err(e) = res {
            fail_errno(rfd, Stage::LandlockRule, i, e.0 as u32);
        }
    }
    if let Err(e) = landlock::restrict_self(ll.ruleset) {
        fail_errno(rfd, Stage::LandlockRestrict, 0, e.0 as u32);
    }
    // SAFETY: the ruleset is enforced; the fd is no longer needed.
    unsafe { libc::close(ll.ruleset) };
}
