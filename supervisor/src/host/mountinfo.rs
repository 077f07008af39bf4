//! /proc/self/mountinfo: the mount points and filesystem types.

use std::path::PathBuf;

/// One line of /proc/self/mountinfo, the fields doctor needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: PathBuf,
    pub fstype: String,
    /// The per-superblock options (after the source), e.g. `rw,cpu`.
    pub super_options: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
pub(crate) fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(oct) = b.get(i + 1..i + 4) {
                if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                    let v = oct
                        .iter()
                        .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                    if let Ok(v) = u8::try_from(v) {
                        out.push(v);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            // id parent major:minor root mount_point options [optional...] - fstype source super_options
            let sep = fields.iter().position(|f| *f == "-")?;
            if sep < 6 {
                return None;
            }
            let fstype = fields.get(sep + 1)?;
            Some(Mount {
                mount_point: PathBuf::from(unescape(fields[4])),
                fstype: unescape(fstype),
                super_options: fields
                    .get(sep + 3)
                    .map_or_else(String::new, |s| unescape(s)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const HYBRID: &str = "\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw
";

    const UNIFIED: &str = "\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn parses_mountinfo_and_tells_hybrid_from_unified() {
        let mounts = parse_mountinfo(HYBRID);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[2].fstype, "cgroup");
        assert_eq!(mounts[2].super_options, "rw,cpu");
        let hybrid = super::super::cgroup::layout_of(&mounts);
        assert_eq!(hybrid.mode, super::super::cgroup::CgroupMode::Hybrid);
        assert_eq!(
            hybrid.v2_mount.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        let unified = super::super::cgroup::layout_of(&parse_mountinfo(UNIFIED));
        assert_eq!(unified.mode, super::super::cgroup::CgroupMode::Unified);
        assert_eq!(
            unified.v2_mount.as_deref(),
            Some(Path::new("/sys/fs/cgroup"))
        );
        let legacy: String = HYBRID
            .lines()
            .filter(|l| !l.contains("cgroup2"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            super::super::cgroup::layout_of(&parse_mountinfo(&legacy)).mode,
            super::super::cgroup::CgroupMode::Legacy
        );
        assert_eq!(
            super::super::cgroup::layout_of(&parse_mountinfo("")).mode,
            super::super::cgroup::CgroupMode::None
        );
    }

    #[test]
    fn mountinfo_escapes_and_garbage() {
        let text = "50 22 0:40 / /mnt/my\\040cg rw - cgroup2 none rw\ngarbage line\n1 2 3\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, PathBuf::from("/mnt/my cg"));
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }
}
