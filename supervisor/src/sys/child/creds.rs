//! The agent's credentials and limits: resource limits, every capability
//! dropped with the securebits locked, and no_new_privs.

use std::os::fd::RawFd;

use super::report::{errno, fail};
use super::{ChildSpec, Stage};

/// Sets each resource limit (soft and hard) the spec lists.
pub(super) fn set_rlimits(spec: &ChildSpec<'_>) {
    for (i, &(resource, value)) in spec.rlimits.iter().enumerate() {
        let lim = libc::rlimit64 {
            rlim_cur: value,
            rlim_max: value,
        };
        // SAFETY: `lim` is a live rlimit64; the old value is not wanted.
        if unsafe {
            libc::prlimit64(
                0,
                resource as libc::__rlimit_resource_t,
                &lim,
                std::ptr::null_mut(),
            )
        } != 0
        {
            fail(spec.report_fd, Stage::Rlimit, i);
        }
    }
}

/// PR_SET_NO_NEW_PRIVS: no exec can grant privileges again.
pub(super) fn no_new_privs(rfd: RawFd) {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        fail(rfd, Stage::NoNewPrivs, 0);
    }
}

/// Drops every capability from every set, and locks root's special
/// treatment off so an exec as uid 0 cannot regain them.
pub(super) fn drop_capabilities(rfd: RawFd) {
    // NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE and their locks, plus
    // KEEP_CAPS_LOCKED (KEEP_CAPS itself stays off).
    const SECUREBITS: libc::c_int = libc::SECBIT_NOROOT
        | libc::SECBIT_NOROOT_LOCKED
        | libc::SECBIT_NO_SETUID_FIXUP
        | libc::SECBIT_NO_SETUID_FIXUP_LOCKED
        | libc::SECBIT_NO_CAP_AMBIENT_RAISE
        | libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED
        | libc::SECBIT_KEEP_CAPS_LOCKED;
    // SAFETY: prctl with integer arguments only.
    if unsafe {
        libc::prctl(
            libc::PR_SET_SECUREBITS,
            SECUREBITS as libc::c_ulong,
            0,
            0,
            0,
        )
    } != 0
    {
        fail(rfd, Stage::Securebits, 0);
    }
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            if errno() == libc::EINVAL as u32 {
                break; // past the last capability this kernel knows
            }
            fail(rfd, Stage::CapBound, cap);
        }
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    } != 0
    {
        fail(rfd, Stage::CapAmbient, 0);
    }
    let mut header = super::super::CapHeader {
        version: super::super::CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [super::super::CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: version 3 capset reads exactly two data structs from `data`.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } != 0 {
        fail(rfd, Stage::Capset, 0);
    }
}
