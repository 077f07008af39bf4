//! A new mount namespace's set-up: private propagation, the deny masks
//! (an empty read-only tmpfs bound over each denied path, every renamable
//! ancestor pinned), the shim bound over each declared tool's real paths,
//! and a fresh /proc.

use super::report::fail;
use super::{ChildSpec, MaskKind, Stage};

pub(super) fn setup(spec: &ChildSpec<'_>) {
    let rfd = spec.report_fd;
    // SAFETY: (this and every mount call below) every pointer is a
    // NUL-terminated C string from the spec or a literal, or null where the
    // kernel allows it; mount copies them and keeps none.
    if unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    } != 0
    {
        fail(rfd, Stage::PrivateMounts, 0);
    }
    if let Some(src) = &spec.mask_source {
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        let data = c"size=4k,nr_inodes=8,mode=0700";
        // SAFETY: see above.
        if unsafe {
            libc::mount(
                c"cordon-mask".as_ptr(),
                src.mountpoint.as_ptr(),
                c"tmpfs".as_ptr(),
                flags,
                data.as_ptr().cast(),
            )
        } != 0
        {
            fail(rfd, Stage::MaskTmpfs, 0);
        }
        // Mode 000 and no capabilities in the agent: nobody can open them.
        // SAFETY: NUL-terminated paths; the fd is closed right away.
        let ok = unsafe {
            let fd = libc::open(
                src.file.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                0,
            );
            fd >= 0 && libc::close(fd) == 0 && libc::mkdir(src.directory.as_ptr(), 0) == 0
        };
        if !ok {
            fail(rfd, Stage::MaskFiles, 0);
        }
        // Read-only superblock: every bind of it is read-only, and chmod fails.
        // SAFETY: see above.
        if unsafe {
            libc::mount(
                std::ptr::null(),
                src.mountpoint.as_ptr(),
                std::ptr::null(),
                libc::MS_REMOUNT | libc::MS_RDONLY | flags,
                data.as_ptr().cast(),
            )
        } != 0
        {
            fail(rfd, Stage::MaskRemount, 0);
        }
        for (i, m) in spec.masks.iter().enumerate() {
            let (source, flags) = match m.kind {
                MaskKind::File => (src.file, libc::MS_BIND),
                MaskKind::Directory => (src.directory, libc::MS_BIND),
                MaskKind::Pin => (m.target.as_c_str(), libc::MS_BIND | libc::MS_REC),
            };
            // SAFETY: see above.
            if unsafe {
                libc::mount(
                    source.as_ptr(),
                    m.target.as_ptr(),
                    std::ptr::null(),
                    flags,
                    std::ptr::null(),
                )
            } != 0
            {
                fail(rfd, Stage::MaskBind, i);
            }
        }
    }
    if let Some(shim) = spec.shim {
        for (i, target) in spec.shadows.iter().enumerate() {
            // SAFETY: see above.
            if unsafe {
                libc::mount(
                    shim.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            } != 0
            {
                fail(rfd, Stage::ShimBind, i);
            }
        }
    }
    if spec.mount_proc {
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        // SAFETY: see above.
        if unsafe {
            libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                flags,
                std::ptr::null(),
            )
        } != 0
        {
            fail(rfd, Stage::MountProc, 0);
        }
    }
}
