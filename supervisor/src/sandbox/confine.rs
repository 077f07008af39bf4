//! The kernel-enforced part of a launch plan, shared by the agent and by
//! each brokered tool call: namespaces, deny masks, Landlock rules, the
//! seccomp program and resource limits.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::cstr::{cstring, path_cstring};
use super::error::PlanError;
use super::landlock::{self as ll, Feature};
use super::seccomp::{self, ExecWatch};
use crate::egress::PROXY_PORT;
use crate::host::{landlock_absence, Host};
use crate::profile::{Filesystem, Limits, Location, Network, PathRule, Placeholders, SyscallRule};
use crate::sys::child::{MaskKind, MaskMount, RulePath};
use crate::sys::landlock::{add_net_rule, create_ruleset, RulesetAttr};
use crate::sys::process::Namespaces;
use crate::sys::seccomp::SockFilter;

/// What to confine a process to: the parts of a profile (or of a tool's
/// sandbox) that the kernel enforces.
#[derive(Debug, Clone, Copy)]
pub struct Confinement<'a> {
    pub filesystem: &'a Filesystem,
    pub network: &'a Network,
    pub syscall_deny: &'a [SyscallRule],
    pub limits: &'a Limits,
    pub best_effort: bool,
    /// Report every execve to the supervisor (the agent: an exec outside
    /// the profile is divergence). Tools are not watched.
    pub exec_watch: ExecWatch,
    /// The declared tools' real paths (and same-named programs on the
    /// usual PATH) to cover with `shim` in this sandbox's mount namespace,
    /// so however it names a tool, it reaches the broker.
    pub shadows: &'a [PathBuf],
    pub shim: Option<&'a Path>,
    /// The supervisor decides and makes every connect and addressed send.
    pub mediate: bool,
}

/// The kernel objects and mount plan for one confined process.
#[derive(Debug)]
pub struct Confined {
    pub namespaces: Namespaces,
    pub uid_map: Option<CString>,
    pub gid_map: Option<CString>,
    pub mask_mountpoint: CString,
    pub mask_file: CString,
    pub mask_dir: CString,
    pub masks: Vec<MaskMount>,
    /// For error messages: origin of each mask, by index.
    pub mask_origins: Vec<(Location, PathBuf)>,
    /// The shim, and the paths it is bound over.
    pub shim: Option<CString>,
    pub shadows: Vec<CString>,
    /// Mount a fresh /proc for the pid namespace (a grant reaches /proc).
    pub mount_proc: bool,
    pub landlock: Option<LandlockPlan>,
    pub seccomp: Vec<SockFilter>,
    pub rlimits: Vec<(u32, u64)>,
    /// With host rules: the port init listens on for the egress proxy,
    /// inside the sandbox's own network namespace.
    pub egress_port: Option<u16>,
    /// Protections this host could not give (only with best_effort).
    pub weakened: Vec<String>,
}

/// Plans the confinement. `mask_dir` is an empty directory to mount the
/// mask tmpfs on; `make_mask_dir` creates it, called only if there are masks.
pub fn confine(
    c: &Confinement<'_>,
    values: &Placeholders,
    host: &Host,
    mask_dir: &Path,
    make_mask_dir: &dyn Fn() -> std::io::Result<()>,
) -> Result<Confined, PlanError> {
    let weakened = check_host(c.best_effort, host)?;
    let writable: Vec<PathBuf> = c
        .filesystem
        .write
        .iter()
        .map(|r| r.path.expand(values))
        .collect();
    let (masks, mask_origins) = plan_masks(&c.filesystem.deny, &writable, values)?;
    if !masks.is_empty() {
        make_mask_dir().map_err(|source| PlanError::Session {
            base: mask_dir.to_path_buf(),
            source,
        })?;
    }
    let mount_proc = grants_proc(c.filesystem, values);
    let (shim, shadows) = match c.shim {
        Some(shim) if !c.shadows.is_empty() => (
            Some(path_cstring(shim)?),
            c.shadows
                .iter()
                .map(|p| path_cstring(p))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => (None, Vec::new()),
    };
    // Host rules: a network namespace of its own, whose only way out is
    // the proxy on its loopback (which Landlock must let it connect to).
    let host_rules = c.network.has_host_rules();
    let mut network = c.network.clone();
    if host_rules && !network.connect_tcp.contains(&PROXY_PORT) {
        network.connect_tcp.push(PROXY_PORT);
    }
    let landlock = match host.landlock_abi {
        Ok(abi) => Some(plan_landlock(
            c.filesystem,
            &network,
            values,
            abi,
            host.landlock_unknown,
        )?),
        Err(_) => None,
    };
    let extra: Vec<(String, u32)> = c
        .syscall_deny
        .iter()
        .map(|r| (r.name.clone(), r.number))
        .collect();
    let sockets = seccomp::SocketPolicy {
        tcp: !network.connect_tcp.is_empty() || !network.bind_tcp.is_empty(),
        // Name resolution for direct TCP; behind the proxy, names are the
        // proxy's to resolve and UDP has nowhere to go.
        udp: !network.connect_tcp.is_empty() && !host_rules,
        mediate: c.mediate,
    };
    let seccomp = seccomp::build_program(&extra, c.exec_watch, sockets)?;
    // A mount namespace is only needed to place masks or a fresh /proc;
    // without a /proc grant Landlock already hides the host's /proc.
    let namespaces = Namespaces {
        user: !host.privileged,
        pid: true,
        mount: !masks.is_empty() || mount_proc || !shadows.is_empty(),
        net: host_rules,
    };
    let (uid_map, gid_map) = id_maps(namespaces.user, host)?;
    Ok(Confined {
        namespaces,
        uid_map,
        gid_map,
        mask_mountpoint: path_cstring(mask_dir)?,
        mask_file: path_cstring(&mask_dir.join("file"))?,
        mask_dir: path_cstring(&mask_dir.join("dir"))?,
        masks,
        mask_origins,
        shim,
        shadows,
        mount_proc,
        landlock,
        seccomp,
        rlimits: rlimits(c.limits),
        egress_port: host_rules.then_some(PROXY_PORT),
        weakened,
    })
}

/// A uid_map and a gid_map line.
pub(super) type IdMaps = (Option<CString>, Option<CString>);

/// The map lines that keep the caller's ids inside a new user namespace
/// (None without one).
pub(super) fn id_maps(user_namespace: bool, host: &Host) -> Result<IdMaps, PlanError> {
    if !user_namespace {
        return Ok((None, None));
    }
    Ok((
        Some(cstring(format!("{0} {0} 1", host.euid).as_bytes())?),
        Some(cstring(format!("{0} {0} 1", host.egid).as_bytes())?),
    ))
}

/// The Landlock part of a plan.
#[derive(Debug)]
pub struct LandlockPlan {
    pub ruleset: OwnedFd,
    pub paths: Vec<RulePath>,
    /// Where each path rule came from, by index, for error messages.
    pub origins: Vec<(Location, PathBuf)>,
}

/// Refuses to run when the host cannot enforce the profile, unless the
/// profile opted into best effort; then returns what is weakened.
fn check_host(best_effort: bool, host: &Host) -> Result<Vec<String>, PlanError> {
    if !host.seccomp_user_notif {
        return Err(PlanError::NoUserNotif);
    }
    let abi = host.abi();
    let missing = ll::missing_required(abi);
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let why = match host.landlock_abi {
        Err(e) => format!(" ({})", landlock_absence(e)),
        Ok(abi) => format!(" (this kernel has Landlock ABI {abi})"),
    };
    let names: Vec<String> = missing.iter().map(Feature::to_string).collect();
    if !best_effort {
        return Err(PlanError::MissingFeatures {
            missing: names.join(", "),
            why,
        });
    }
    Ok(names
        .into_iter()
        .map(|n| format!("{n} is NOT enforced{why}"))
        .collect())
}

fn expand_existing(rule: &PathRule, values: &Placeholders) -> Result<Option<PathBuf>, PlanError> {
    let path = rule.path.expand(values);
    match std::fs::metadata(&path) {
        Ok(_) => Ok(Some(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if rule.optional {
                Ok(None)
            } else {
                Err(PlanError::PathMissing {
                    origin: rule.origin.clone(),
                    path,
                })
            }
        }
        Err(source) => Err(PlanError::PathUnreadable {
            origin: rule.origin.clone(),
            path,
            source,
        }),
    }
}

/// Mask mounts in order, and where each came from.
type MaskPlan = (Vec<MaskMount>, Vec<(Location, PathBuf)>);

/// Plans the deny masks: first pins (self-binds) on every ancestor of a
/// denied path that the agent could rename, outermost first, then the
/// masks themselves. Pins come first because a bind of a directory does
/// not carry the mounts below it.
fn plan_masks(
    deny: &[PathRule],
    writable: &[PathBuf],
    values: &Placeholders,
) -> Result<MaskPlan, PlanError> {
    let mut pins: Vec<(PathBuf, Location)> = Vec::new();
    let mut masks = Vec::new();
    let mut origins = Vec::new();
    for rule in deny {
        let Some(path) = expand_existing(rule, values)? else {
            tracing::info!(path = %rule.path, "optional deny path does not exist; the agent could create it");
            continue;
        };
        let meta = std::fs::metadata(&path).map_err(|source| PlanError::PathUnreadable {
            origin: rule.origin.clone(),
            path: path.clone(),
            source,
        })?;
        if !meta.is_dir() && meta.nlink() > 1 {
            return Err(PlanError::DenyHardLinked {
                origin: rule.origin.clone(),
                path,
                links: meta.nlink(),
            });
        }
        for ancestor in renamable_ancestors(&path, writable) {
            if !pins.iter().any(|(p, _)| *p == ancestor) {
                pins.push((ancestor, rule.origin.clone()));
            }
        }
        masks.push(MaskMount {
            target: path_cstring(&path)?,
            kind: if meta.is_dir() {
                MaskKind::Directory
            } else {
                MaskKind::File
            },
        });
        origins.push((rule.origin.clone(), path));
    }
    pins.sort_by_key(|(p, _)| p.components().count());
    let mut all = Vec::with_capacity(pins.len() + masks.len());
    let mut all_origins = Vec::with_capacity(pins.len() + origins.len());
    for (path, origin) in pins {
        all.push(MaskMount {
            target: path_cstring(&path)?,
            kind: MaskKind::Pin,
        });
        all_origins.push((origin, path));
    }
    all.extend(masks);
    all_origins.extend(origins);
    Ok((all, all_origins))
}

/// The ancestors of `target` whose parent directory lies in a write grant:
/// the agent could rename those and carry the denied path elsewhere, or
/// put a fresh one in its place.
fn renamable_ancestors(target: &Path, writable: &[PathBuf]) -> Vec<PathBuf> {
    target
        .ancestors()
        .skip(1)
        .filter(|a| {
            a.parent()
                .is_some_and(|parent| writable.iter().any(|w| parent.starts_with(w)))
        })
        .map(Path::to_path_buf)
        .collect()
}

fn plan_landlock(
    fsys: &Filesystem,
    network: &Network,
    values: &Placeholders,
    abi: u32,
    unknown: ll::UnknownRights,
) -> Result<LandlockPlan, PlanError> {
    let (fs, net, scoped) = ll::handled(abi, unknown);
    let attr = RulesetAttr {
        handled_access_fs: fs,
        handled_access_net: net,
        scoped,
    };
    let ruleset = create_ruleset(&attr, ll::ruleset_attr_size(abi)).map_err(PlanError::Ruleset)?;
    if net != 0 {
        let grants = [
            (&network.connect_tcp, ll::NET_CONNECT_TCP),
            (&network.bind_tcp, ll::NET_BIND_TCP),
        ];
        for (ports, access) in grants {
            for &port in ports {
                add_net_rule(ruleset.as_raw_fd(), port, access)
                    .map_err(|errno| PlanError::NetRule { port, errno })?;
            }
        }
    }
    // One rule per path, with the union of what each list grants it.
    let mut by_path: BTreeMap<PathBuf, (u64, bool, Location)> = BTreeMap::new();
    let lists = [
        (&fsys.read, ll::GRANT_READ),
        (&fsys.write, ll::GRANT_WRITE),
        (&fsys.exec, ll::GRANT_EXEC),
    ];
    for (rules, grant) in lists {
        for rule in rules {
            let Some(path) = expand_existing(rule, values)? else {
                continue;
            };
            let entry = by_path
                .entry(path)
                .or_insert((0, rule.optional, rule.origin.clone()));
            entry.0 |= grant & fs;
            entry.1 &= rule.optional;
        }
    }
    let mut paths = Vec::with_capacity(by_path.len());
    let mut origins = Vec::with_capacity(by_path.len());
    for (path, (access, optional, origin)) in by_path {
        paths.push(RulePath {
            path: path_cstring(&path)?,
            access,
            optional,
        });
        origins.push((origin, path));
    }
    Ok(LandlockPlan {
        ruleset,
        paths,
        origins,
    })
}

/// Whether any grant reaches into /proc (or contains it, like `/`).
fn grants_proc(fs: &Filesystem, values: &Placeholders) -> bool {
    let proc_dir = Path::new("/proc");
    fs.read
        .iter()
        .chain(&fs.write)
        .chain(&fs.exec)
        .map(|r| r.path.expand(values))
        .any(|p| p.starts_with(proc_dir) || proc_dir.starts_with(&p))
}

fn rlimits(l: &Limits) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let pairs = [
        (libc::RLIMIT_NOFILE, l.nofile),
        (libc::RLIMIT_NPROC, l.nproc),
        (libc::RLIMIT_FSIZE, l.fsize),
        (libc::RLIMIT_AS, l.address_space),
        (libc::RLIMIT_CPU, l.cpu),
        // No core dumps unless asked: a dump of a tool could hold secrets.
        (libc::RLIMIT_CORE, Some(l.core.unwrap_or(0))),
    ];
    for (resource, value) in pairs {
        if let Some(v) = value {
            out.push((resource, v));
        }
    }
    out
}

#[cfg(test)]
#[path = "confine_tests.rs"]
mod tests;
