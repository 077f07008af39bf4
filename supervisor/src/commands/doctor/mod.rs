//! `cordon doctor`: what this host can enforce.
//!
//! Probes the kernel (Landlock ABI, seccomp, a trial run of the namespaces
//! `cordon run` would create, /proc, cgroups, pidfds), prints one line per
//! check and a summary, and exits 0 when everything cordon requires is
//! present, 1 otherwise. The verdicts are in `verdicts`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;

mod verdicts;
#[cfg(test)]
mod verdicts_tests;

use cordon::host::cgroup::{self as cgroups, find_cgroup_kill, own_v2_cgroup, CgroupKill};
use cordon::host::kernel::{kernel_version, UsernsSysctls};
use cordon::host::Host;
use cordon::sys::probe::{self, NsTrial};
use cordon::sys::{process, seccomp};
use verdicts::{CgroupFacts, Facts};

/// The uid and gid the "unprivileged users" trial switches to (nobody).
const NOBODY: (u32, u32) = (65534, 65534);

pub fn doctor() -> ExitCode {
    // The namespace trials fork: do them first, while the process is still
    // single-threaded (nothing in cordon has started a thread by now).
    let host = Host::probe();
    let launch_trial = probe::namespace_trial(NsTrial {
        user: !host.privileged,
        pid: true,
        mount: true,
        mount_proc: true,
        net: false,
        as_user: None,
    });
    // What `[network] allow_hosts` needs: a network namespace of its own.
    let net_trial = probe::namespace_trial(NsTrial {
        user: !host.privileged,
        pid: false,
        mount: false,
        mount_proc: false,
        net: true,
        as_user: None,
    });
    let unprivileged_trial = (host.privileged && host.euid == 0).then(|| {
        probe::namespace_trial(NsTrial {
            user: true,
            pid: true,
            mount: true,
            mount_proc: false,
            net: false,
            as_user: Some(NOBODY),
        })
    });
    let kernel_release =
        probe::kernel_release().unwrap_or_else(|e| format!("unknown kernel ({e})"));
    let facts = Facts {
        seccomp_filters: seccomp::action_available(libc::SECCOMP_RET_ERRNO),
        launch_trial,
        net_trial,
        unprivileged_trial,
        sysctls: UsernsSysctls::read(Path::new("/proc/sys")),
        cgroup: cgroup_facts(kernel_version(&kernel_release)),
        pidfd_open: process::pidfd_open(process::getpid()).map(drop),
        peer_pidfd: probe::peer_pidfd(),
        kernel_release,
        host,
    };
    let checks = verdicts::checks(&facts);
    let (ok, text) = verdicts::render(&facts.kernel_release, &checks);
    print!("{text}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn cgroup_facts(kernel: Option<(u32, u32)>) -> CgroupFacts {
    let layout =
        cgroups::cgroup_layout(Path::new("/proc/self/mountinfo")).map_err(|e| e.to_string());
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| own_v2_cgroup(&t));
    let mount = layout.as_ref().ok().and_then(|l| l.v2_mount.clone());
    let (kill, can_create) = match &mount {
        Some(mount) => {
            let dir = match own.as_deref().map(|o| o.trim_start_matches('/')) {
                Some(rel) if !rel.is_empty() => mount.join(rel),
                _ => mount.clone(),
            };
            let can_create = CString::new(dir.as_os_str().as_bytes())
                .map(|c| probe::writable(&c))
                .unwrap_or(false);
            (find_cgroup_kill(mount, own.as_deref(), kernel), can_create)
        }
        None => (CgroupKill::Unknown, false),
    };
    CgroupFacts {
        layout,
        kill,
        can_create,
    }
}
