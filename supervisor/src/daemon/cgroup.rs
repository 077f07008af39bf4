//! One cgroup per session, when the daemon's own cgroup is delegated to
//! it (systemd `Delegate=yes`): the session's `cordon run` joins it
//! before exec, so the agent and everything it forks are born inside, and
//! `cgroup.kill` ends them all at once, however they daemonized.
//!
//! No controllers are enabled (cordon limits nothing through cgroups), so
//! the daemon may stay in the parent cgroup without breaking cgroup v2's
//! "no internal processes" rule. Without delegation (the root cgroup, or a
//! directory the daemon cannot write) sessions stay in the daemon's
//! cgroup and are contained as under `cordon run`: a pid namespace whose
//! init holds PR_SET_PDEATHSIG(SIGKILL).

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use crate::host::cgroup::{cgroup_layout, own_v2_cgroup};

/// The daemon's delegated cgroup directory.
#[derive(Debug, Clone)]
pub struct Delegated {
    pub dir: PathBuf,
}

/// A session's own cgroup.
#[derive(Debug)]
pub struct SessionCgroup {
    pub dir: PathBuf,
    procs: File,
}

impl Delegated {
    /// The daemon's own cgroup v2 directory, if it is not the root and the
    /// daemon can create children in it; `why` is the reason when not.
    pub fn detect() -> Result<Delegated, String> {
        let layout = cgroup_layout(Path::new("/proc/self/mountinfo"))
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let mount = layout
            .v2_mount
            .ok_or_else(|| "no cgroup2 hierarchy is mounted".to_string())?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|t| own_v2_cgroup(&t))
            .ok_or_else(|| "this process has no cgroup2 path".to_string())?;
        let rel = own.trim_start_matches('/');
        if rel.is_empty() {
            return Err("cordon runs in the root cgroup (not delegated)".into());
        }
        let dir = mount.join(rel);
        let probe = dir.join(format!("cordon-probe-{}", std::process::id()));
        std::fs::create_dir(&probe).map_err(|e| {
            format!(
                "cannot create a child cgroup in {} ({e}): not delegated",
                dir.display()
            )
        })?;
        let _ = std::fs::remove_dir(&probe);
        if !probe.with_file_name("cgroup.kill").exists() {
            return Err("this kernel's cgroups have no cgroup.kill (5.14+)".into());
        }
        Ok(Delegated { dir })
    }

    /// Makes the cgroup `name` and opens its cgroup.procs for the child.
    pub fn session(&self, name: &str) -> std::io::Result<SessionCgroup> {
        let dir = self.dir.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))?;
        Ok(SessionCgroup { dir, procs })
    }
}

impl SessionCgroup {
    /// The descriptor the child writes "0" to.
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// Kills every process in the cgroup.
    pub fn kill(&self) -> std::io::Result<()> {
        std::fs::write(self.dir.join("cgroup.kill"), "1")
    }

    /// Whether no process is left.
    pub fn empty(&self) -> bool {
        std::fs::read_to_string(self.dir.join("cgroup.procs")).is_ok_and(|s| s.trim().is_empty())
    }

    /// Kills what is left and removes the cgroup.
    pub fn remove(&self) {
        if !self.empty() {
            let _ = self.kill();
            for _ in 0..100 {
                if self.empty() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}
