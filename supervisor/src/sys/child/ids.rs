//! A new user namespace's id maps: the caller's uid and gid, and nothing
//! else, so files keep their owners and no one becomes root by mapping.

use super::report::{fail, write_file};
use super::{ChildSpec, Stage};

/// Writes setgroups, uid_map and gid_map when the spec has maps.
pub(super) fn write_maps(spec: &ChildSpec<'_>) {
    let (Some(uid_map), Some(gid_map)) = (spec.uid_map, spec.gid_map) else {
        return;
    };
    let rfd = spec.report_fd;
    // A non-dumpable process (the supervisor is, once it may hold secrets,
    // and we are its copy) has root-owned /proc files, so an unprivileged
    // one cannot write its own maps. Be dumpable for the three writes
    // only; the agent cannot reach us either way (another pid namespace,
    // Landlock-scoped).
    // SAFETY: prctl with integer arguments only.
    let was_dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) } == 1;
    if !was_dumpable {
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
    }
    if !write_file(c"/proc/self/setgroups", c"deny") {
        fail(rfd, Stage::Setgroups, 0);
    }
    if !write_file(c"/proc/self/uid_map", uid_map) {
        fail(rfd, Stage::UidMap, 0);
    }
    if !write_file(c"/proc/self/gid_map", gid_map) {
        fail(rfd, Stage::GidMap, 0);
    }
    if !was_dumpable {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    }
}
