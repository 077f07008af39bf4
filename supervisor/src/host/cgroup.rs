//! The cgroup layout of this host (v1, hybrid, unified), this process's
//! own cgroup2 path, and whether `cgroup.kill` is there.

use std::path::{Path, PathBuf};

use super::mountinfo::{parse_mountinfo, Mount};

/// How cgroups are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// No cgroup filesystem mounted.
    None,
    /// Only v1 hierarchies.
    Legacy,
    /// v1 controllers plus a cgroup2 hierarchy (usually /sys/fs/cgroup/unified).
    Hybrid,
    /// cgroup2 only.
    Unified,
}

/// The cgroup layout seen in a mountinfo file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLayout {
    pub mode: CgroupMode,
    /// Where cgroup2 is mounted (the first one, if several).
    pub v2_mount: Option<PathBuf>,
}

/// The cgroup layout of the mount table in `mountinfo` (a path, so tests
/// can pass a temp file; normally /proc/self/mountinfo).
pub fn cgroup_layout(mountinfo: &Path) -> std::io::Result<CgroupLayout> {
    Ok(layout_of(&parse_mountinfo(&std::fs::read_to_string(
        mountinfo,
    )?)))
}

/// The cgroup layout of a parsed mount table.
pub fn layout_of(mounts: &[Mount]) -> CgroupLayout {
    let v2_mount = mounts
        .iter()
        .find(|m| m.fstype == "cgroup2")
        .map(|m| m.mount_point.clone());
    let v1 = mounts.iter().any(|m| m.fstype == "cgroup");
    let mode = match (v1, v2_mount.is_some()) {
        (false, false) => CgroupMode::None,
        (true, false) => CgroupMode::Legacy,
        (true, true) => CgroupMode::Hybrid,
        (false, true) => CgroupMode::Unified,
    };
    CgroupLayout { mode, v2_mount }
}

/// This process's cgroup2 path from /proc/self/cgroup text (the `0::` line).
pub fn own_v2_cgroup(proc_self_cgroup: &str) -> Option<String> {
    proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim().to_string())
}

/// Whether `cgroup.kill` can be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupKill {
    /// Found at this path.
    Present(PathBuf),
    /// No child cgroup to look in (the root cgroup never has the file), but
    /// the kernel is new enough (5.14+) to have it in any child cgroup.
    KernelHasIt,
    /// The kernel predates cgroup.kill (5.14).
    KernelTooOld,
    /// No cgroup2 hierarchy, or it could not be read.
    Unknown,
}

/// Looks for `cgroup.kill` in this process's own cgroup, then in the
/// direct children of the hierarchy root; falls back on the kernel version.
pub fn find_cgroup_kill(
    v2_mount: &Path,
    own: Option<&str>,
    kernel: Option<(u32, u32)>,
) -> CgroupKill {
    let mut candidates = Vec::new();
    if let Some(own) = own {
        let rel = own.trim_start_matches('/');
        if !rel.is_empty() {
            candidates.push(v2_mount.join(rel));
        }
    }
    if let Ok(entries) = std::fs::read_dir(v2_mount) {
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        dirs.sort();
        candidates.extend(dirs);
    }
    if let Some(found) = candidates
        .into_iter()
        .map(|d| d.join("cgroup.kill"))
        .find(|p| p.exists())
    {
        return CgroupKill::Present(found);
    }
    match kernel {
        Some(v) if v >= (5, 14) => CgroupKill::KernelHasIt,
        Some(_) => CgroupKill::KernelTooOld,
        None => CgroupKill::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw
";

    #[test]
    fn reads_layout_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mountinfo");
        std::fs::write(&path, HYBRID).unwrap();
        assert_eq!(cgroup_layout(&path).unwrap().mode, CgroupMode::Hybrid);
        assert!(cgroup_layout(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn finds_cgroup_kill_in_own_or_child_cgroup() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(
            find_cgroup_kill(root, Some("/"), Some((6, 18))),
            CgroupKill::KernelHasIt
        );
        assert_eq!(
            find_cgroup_kill(root, Some("/"), Some((5, 10))),
            CgroupKill::KernelTooOld
        );
        assert_eq!(find_cgroup_kill(root, None, None), CgroupKill::Unknown);
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/cgroup.kill"), "").unwrap();
        assert_eq!(
            find_cgroup_kill(root, Some("/a/b"), None),
            CgroupKill::Present(root.join("a/b/cgroup.kill"))
        );
        std::fs::write(root.join("a/cgroup.kill"), "").unwrap();
        assert_eq!(
            find_cgroup_kill(root, Some("/"), None),
            CgroupKill::Present(root.join("a/cgroup.kill"))
        );
    }

    #[test]
    fn own_cgroup_from_proc_self_cgroup() {
        assert_eq!(
            own_v2_cgroup("1:cpu:/\n0::/user.slice/x\n").as_deref(),
            Some("/user.slice/x")
        );
        assert_eq!(own_v2_cgroup("1:cpu:/\n"), None);
    }
}
