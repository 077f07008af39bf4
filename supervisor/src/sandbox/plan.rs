//! A launch plan: everything the child needs, computed in the parent from
//! a profile, a session and the host, so the child only issues syscalls.
//!
//! The broker will build one of these per tool call too.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::env;
use super::host::{landlock_absence, Host};
use super::landlock::{self as ll, Feature};
use super::seccomp::{self, SeccompError};
use super::session::Session;
use crate::profile::{Location, PathRule, Placeholders, Profile};
use crate::sys::child::{MaskKind, MaskMount, RulePath};
use crate::sys::landlock::{add_net_rule, create_ruleset, RulesetAttr};
use crate::sys::process::Namespaces;
use crate::sys::seccomp::SockFilter;
use crate::sys::Errno;

/// Why a plan could not be made. Each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("workspace {path}: {source}")]
    Workspace {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the session directory under {base}: {source}")]
    Session {
        base: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{origin}: `{path}` does not exist; create it, fix the path, or mark the entry optional"
    )]
    PathMissing { origin: Location, path: PathBuf },
    #[error("{origin}: denied file `{path}` has {links} hard links, so its content is reachable under a name cordon cannot mask; remove the other links first")]
    DenyHardLinked {
        origin: Location,
        path: PathBuf,
        links: u64,
    },
    #[error("{origin}: cannot inspect `{path}`: {source}")]
    PathUnreadable {
        origin: Location,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("this kernel cannot enforce what the profile needs: {missing}{why}; run `cordon doctor`, or set `best_effort = true` in [profile] to run with less protection")]
    MissingFeatures { missing: String, why: String },
    #[error("seccomp user notification is not available on this kernel (needed to see and stop violations); run `cordon doctor`")]
    NoUserNotif,
    #[error("creating the Landlock ruleset failed: {0}")]
    Ruleset(Errno),
    #[error("adding Landlock rule for TCP port {port}: {errno}")]
    NetRule { port: u16, errno: Errno },
    #[error("{0}")]
    Seccomp(#[from] SeccompError),
    #[error("command not found: `{name}` (searched PATH={path})")]
    CommandNotFound { name: String, path: String },
    #[error("`{0}` contains a NUL byte")]
    Nul(String),
}

impl PlanError {
    /// The `cordon run` exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            PlanError::CommandNotFound { .. } => 127,
            _ => 125,
        }
    }
}

/// What the user asked to run.
#[derive(Debug, Clone)]
pub struct Request {
    pub workspace: PathBuf,
    pub command: Vec<OsString>,
    /// The directory `cordon run` was started in (for relative commands).
    pub invocation_dir: PathBuf,
    /// Where session directories are made (TMPDIR or /tmp).
    pub session_base: PathBuf,
}

/// The Landlock part of a plan.
#[derive(Debug)]
pub struct LandlockPlan {
    pub ruleset: OwnedFd,
    pub paths: Vec<RulePath>,
    /// Where each path rule came from, by index, for error messages.
    pub origins: Vec<(Location, PathBuf)>,
}

/// Everything needed to launch the agent.
#[derive(Debug)]
pub struct Plan {
    pub session: Session,
    pub namespaces: Namespaces,
    pub uid_map: Option<CString>,
    pub gid_map: Option<CString>,
    pub mask_mountpoint: CString,
    pub mask_file: CString,
    pub mask_dir: CString,
    pub masks: Vec<MaskMount>,
    /// Mount a fresh /proc for the pid namespace (the profile grants /proc).
    pub mount_proc: bool,
    /// For error messages: origin of each mask, by index.
    pub mask_origins: Vec<(Location, PathBuf)>,
    pub landlock: Option<LandlockPlan>,
    pub seccomp: Vec<SockFilter>,
    pub rlimits: Vec<(u32, u64)>,
    pub cwd: CString,
    pub exe: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// Protections this host could not give (only with best_effort).
    pub weakened: Vec<String>,
}

fn cstring(bytes: &[u8]) -> Result<CString, PlanError> {
    CString::new(bytes).map_err(|_| PlanError::Nul(String::from_utf8_lossy(bytes).into_owned()))
}

fn path_cstring(p: &Path) -> Result<CString, PlanError> {
    cstring(p.as_os_str().as_bytes())
}

/// Builds the plan. `caller_env` looks up cordon's own environment.
pub fn build(
    profile: &Profile,
    request: &Request,
    host: &Host,
    caller_env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Plan, PlanError> {
    let workspace =
        std::fs::canonicalize(&request.workspace).map_err(|source| PlanError::Workspace {
            path: request.workspace.clone(),
            source,
        })?;
    if !workspace.is_dir() {
        return Err(PlanError::Workspace {
            path: workspace,
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let weakened = check_host(profile, host)?;
    let session = Session::create(&request.session_base).map_err(|source| PlanError::Session {
        base: request.session_base.clone(),
        source,
    })?;
    let values = Placeholders {
        workspace: workspace.clone(),
        home: session.home.clone(),
        tmp: session.tmp.clone(),
    };

    let writable: Vec<PathBuf> = profile
        .filesystem
        .write
        .iter()
        .map(|r| r.path.expand(&values))
        .collect();
    let (masks, mask_origins) = plan_masks(&profile.filesystem.deny, &writable, &values)?;
    if !masks.is_empty() {
        session
            .create_mask_dir()
            .map_err(|source| PlanError::Session {
                base: request.session_base.clone(),
                source,
            })?;
    }
    let mount_proc = grants_proc(profile, &values);
    let landlock = match host.landlock_abi {
        Ok(abi) => Some(plan_landlock(profile, &values, abi)?),
        Err(_) => None,
    };
    let extra: Vec<(String, u32)> = profile
        .syscalls
        .deny
        .iter()
        .map(|r| (r.name.clone(), r.number))
        .collect();
    let seccomp = seccomp::build_program(&extra)?;

    let envp = env::build(profile, &values, &session.id, caller_env);
    let agent_path = envp
        .get("PATH")
        .cloned()
        .unwrap_or_else(|| env::DEFAULT_PATH.to_string());
    let exe = resolve_command(&request.command[0], &agent_path, &request.invocation_dir)?;

    // A mount namespace is only needed to place masks or a fresh /proc;
    // without a /proc grant Landlock already hides the host's /proc.
    let namespaces = Namespaces {
        user: !host.privileged,
        pid: true,
        mount: !masks.is_empty() || mount_proc,
    };
    let (uid_map, gid_map) = if namespaces.user {
        (
            Some(cstring(format!("{0} {0} 1", host.euid).as_bytes())?),
            Some(cstring(format!("{0} {0} 1", host.egid).as_bytes())?),
        )
    } else {
        (None, None)
    };

    Ok(Plan {
        namespaces,
        uid_map,
        gid_map,
        mask_mountpoint: path_cstring(&session.mask)?,
        mask_file: path_cstring(&session.mask.join("file"))?,
        mask_dir: path_cstring(&session.mask.join("dir"))?,
        masks,
        mount_proc,
        mask_origins,
        landlock,
        seccomp,
        rlimits: rlimits(profile),
        cwd: path_cstring(&workspace)?,
        exe: path_cstring(&exe)?,
        argv: request
            .command
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<_, _>>()?,
        envp: envp
            .iter()
            .map(|(k, v)| cstring(format!("{k}={v}").as_bytes()))
            .collect::<Result<_, _>>()?,
        weakened,
        session,
    })
}

/// Refuses to run when the host cannot enforce the profile, unless the
/// profile opted into best effort; then returns what is weakened.
fn check_host(profile: &Profile, host: &Host) -> Result<Vec<String>, PlanError> {
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
    if !profile.best_effort {
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
            tracing::warn!(path = %rule.path, "optional deny path does not exist; the agent could create it");
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
    profile: &Profile,
    values: &Placeholders,
    abi: u32,
) -> Result<LandlockPlan, PlanError> {
    let (fs, net, scoped) = ll::handled(abi);
    let attr = RulesetAttr {
        handled_access_fs: fs,
        handled_access_net: net,
        scoped,
    };
    let ruleset = create_ruleset(&attr, ll::ruleset_attr_size(abi)).map_err(PlanError::Ruleset)?;
    if net != 0 {
        let grants = [
            (&profile.network.connect_tcp, ll::NET_CONNECT_TCP),
            (&profile.network.bind_tcp, ll::NET_BIND_TCP),
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
    let fsys = &profile.filesystem;
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
fn grants_proc(profile: &Profile, values: &Placeholders) -> bool {
    let proc_dir = Path::new("/proc");
    let fs = &profile.filesystem;
    fs.read
        .iter()
        .chain(&fs.write)
        .chain(&fs.exec)
        .map(|r| r.path.expand(values))
        .any(|p| p.starts_with(proc_dir) || proc_dir.starts_with(&p))
}

fn rlimits(profile: &Profile) -> Vec<(u32, u64)> {
    let l = &profile.limits;
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

/// Finds the program like execvp would, but outside the sandbox and before
/// it starts, so "not found" is a clear 127 instead of a confined failure.
fn resolve_command(
    name: &OsStr,
    path_var: &str,
    invocation_dir: &Path,
) -> Result<PathBuf, PlanError> {
    let as_path = Path::new(name);
    if name.as_bytes().contains(&b'/') {
        return Ok(if as_path.is_absolute() {
            as_path.to_path_buf()
        } else {
            invocation_dir.join(as_path)
        });
    }
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(as_path);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(PlanError::CommandNotFound {
        name: name.to_string_lossy().into_owned(),
        path: path_var.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_every_ancestor_the_agent_could_rename() {
        let ws = PathBuf::from("/w/ws");
        let target = Path::new("/w/ws/.git/hooks");
        assert_eq!(
            renamable_ancestors(target, std::slice::from_ref(&ws)),
            vec![PathBuf::from("/w/ws/.git")]
        );
        assert_eq!(
            renamable_ancestors(Path::new("/w/ws/a/b/.env"), &[ws]),
            vec![PathBuf::from("/w/ws/a/b"), PathBuf::from("/w/ws/a")]
        );
        // A writable parent of the workspace makes the workspace itself renamable.
        assert_eq!(
            renamable_ancestors(Path::new("/w/ws/.env"), &[PathBuf::from("/w")]),
            vec![PathBuf::from("/w/ws")]
        );
        assert!(renamable_ancestors(Path::new("/w/ws/.env"), &[]).is_empty());
    }

    #[test]
    fn resolves_commands_like_execvp() {
        let here = Path::new("/somewhere");
        assert_eq!(
            resolve_command(OsStr::new("sh"), "/nonexistent:/bin", here).unwrap(),
            PathBuf::from("/bin/sh")
        );
        assert_eq!(
            resolve_command(OsStr::new("./agent.py"), "/bin", here).unwrap(),
            PathBuf::from("/somewhere/./agent.py")
        );
        assert!(matches!(
            resolve_command(OsStr::new("no-such-program-xyz"), "/bin:/usr/bin", here),
            Err(PlanError::CommandNotFound { .. })
        ));
    }
}
