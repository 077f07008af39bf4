//! Kernel facts read as text: the release's version, and the sysctls that
//! decide whether unprivileged users may create user namespaces.

use std::path::Path;

/// (major, minor) from a kernel release such as `6.18.44-fc-v769`.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// User-namespace sysctls (None: the file does not exist on this kernel).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsernsSysctls {
    /// /proc/sys/user/max_user_namespaces
    pub max_user_namespaces: Option<u64>,
    /// /proc/sys/kernel/unprivileged_userns_clone (Debian/Ubuntu patch)
    pub unprivileged_userns_clone: Option<u64>,
    /// /proc/sys/kernel/apparmor_restrict_unprivileged_userns (Ubuntu 23.10+)
    pub apparmor_restrict: Option<u64>,
}

impl UsernsSysctls {
    /// Reads the three files under `proc_sys` (normally /proc/sys).
    pub fn read(proc_sys: &Path) -> UsernsSysctls {
        let num = |rel: &str| -> Option<u64> {
            std::fs::read_to_string(proc_sys.join(rel))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        };
        UsernsSysctls {
            max_user_namespaces: num("user/max_user_namespaces"),
            unprivileged_userns_clone: num("kernel/unprivileged_userns_clone"),
            apparmor_restrict: num("kernel/apparmor_restrict_unprivileged_userns"),
        }
    }

    /// The sysctls that stop unprivileged users from creating user namespaces.
    pub fn blockers(&self) -> Vec<&'static str> {
        let mut b = Vec::new();
        if self.max_user_namespaces == Some(0) {
            b.push("user.max_user_namespaces=0 (set it above 0)");
        }
        if self.unprivileged_userns_clone == Some(0) {
            b.push("kernel.unprivileged_userns_clone=0 (set it to 1)");
        }
        if self.apparmor_restrict == Some(1) {
            b.push("kernel.apparmor_restrict_unprivileged_userns=1 (set it to 0, or give cordon an AppArmor profile with `userns,`)");
        }
        b
    }

    pub fn describe(&self) -> String {
        let show = |v: Option<u64>| v.map_or_else(|| "absent".to_string(), |n| n.to_string());
        format!(
            "max_user_namespaces={}, unprivileged_userns_clone={}, apparmor_restrict_unprivileged_userns={}",
            show(self.max_user_namespaces),
            show(self.unprivileged_userns_clone),
            show(self.apparmor_restrict)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_version_from_a_release() {
        assert_eq!(kernel_version("6.18.44-fc-v769"), Some((6, 18)));
        assert_eq!(kernel_version("5.4"), Some((5, 4)));
        assert_eq!(kernel_version("weird"), None);
    }

    #[test]
    fn sysctls_read_from_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("user")).unwrap();
        std::fs::create_dir_all(dir.path().join("kernel")).unwrap();
        std::fs::write(dir.path().join("user/max_user_namespaces"), "0\n").unwrap();
        std::fs::write(
            dir.path()
                .join("kernel/apparmor_restrict_unprivileged_userns"),
            "1\n",
        )
        .unwrap();
        let s = UsernsSysctls::read(dir.path());
        assert_eq!(s.max_user_namespaces, Some(0));
        assert_eq!(s.unprivileged_userns_clone, None);
        assert_eq!(s.apparmor_restrict, Some(1));
        assert_eq!(s.blockers().len(), 2);
    }
}
