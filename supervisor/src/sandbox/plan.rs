//! A launch plan: everything the child needs, computed in the parent from
//! a profile, a session and the host, so the child only issues syscalls.
//! The agent's plan is built here; each brokered tool call builds one from
//! the same parts (`confine` and [`Command`]).

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::confine::{confine, Confined, Confinement};
use super::cstr::{cstring, path_cstring};
use super::env;
use super::error::PlanError;
use super::loader::{loader_grants, LoaderCache};
use super::netpolicy::NetPolicy;
use super::seccomp::ExecWatch;
use super::session_dir::SessionDir;
use crate::host::Host;
use crate::profile::{Filesystem, Location, PathRule, PathTemplate, Placeholders, Profile};

/// What the user asked to run.
#[derive(Debug, Clone)]
pub struct Request {
    pub workspace: PathBuf,
    pub command: Vec<OsString>,
    /// The directory `cordon run` was started in (for relative commands).
    pub invocation_dir: PathBuf,
    /// Where session directories are made.
    pub session_base: PathBuf,
    /// The `cordon-shim` binary, needed when the profile declares tools.
    pub shim: Option<PathBuf>,
    /// Where what cordon learned about the host is kept between runs
    /// (`host_cache::default_dir`): clean scans for copies of the declared
    /// tools, the loader's large directories. `None`: look every time.
    pub cache: Option<PathBuf>,
}

/// The program to execute and how.
#[derive(Debug)]
pub struct Command {
    /// The working directory (used when no directory descriptor is given).
    pub cwd: CString,
    pub exe: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

impl Command {
    /// Builds the C strings; `env` pairs become `NAME=value`.
    pub fn new(
        cwd: &Path,
        exe: &Path,
        argv: &[&[u8]],
        env: &[(String, String)],
    ) -> Result<Command, PlanError> {
        Ok(Command {
            cwd: path_cstring(cwd)?,
            exe: path_cstring(exe)?,
            argv: argv.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?,
            envp: env
                .iter()
                .map(|(k, v)| cstring(format!("{k}={v}").as_bytes()))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Everything needed to launch the agent.
#[derive(Debug)]
pub struct Plan {
    pub session: SessionDir,
    pub confined: Confined,
    pub command: Command,
    /// The session's values of `{workspace}`, `{home}`, `{tmp}`.
    pub placeholders: Placeholders,
    /// The agent's environment (also what its brokered calls start from).
    pub env: Vec<(String, String)>,
    /// Canonical paths the agent may execute (the exec grants and the
    /// shim): an exec elsewhere is divergence.
    pub exec_allowed: Vec<PathBuf>,
    /// Canonical paths of the dynamic loaders: executable only as the
    /// interpreter of a program; executing one directly is divergence.
    pub interpreters: Vec<PathBuf>,
    /// `[divergence] tolerated_execs`, canonical (those that exist), each
    /// with its rule's name.
    pub tolerated_execs: Vec<(PathBuf, String)>,
    /// What the loader was found to need, kept for the tools' plans.
    pub loader: LoaderCache,
    /// Where the agent's connects and addressed sends may go (the
    /// supervisor makes each one: `process::mediate`).
    pub net: NetPolicy,
    /// The session CA and its bundle, when the profile has proxy-delivered
    /// secrets (shared by the agent's proxy and every tool call's).
    pub tls: Option<super::proxied::SessionTls>,
    /// The placeholders in the agent's environment (`[environment]
    /// secrets`), for its proxy to swap.
    pub agent_secrets: Vec<(String, crate::secrets::Placeholder)>,
}

/// Whether the session needs the broker (tools to run, MCP servers to
/// relay to, or secrets the agent may ask for).
pub fn brokered(profile: &Profile) -> bool {
    !profile.tools.is_empty() || !profile.secrets.is_empty() || !profile.mcp.is_empty()
}

/// The canonical form of every exec grant that exists.
fn exec_allowed(fs: &Filesystem, values: &Placeholders) -> Vec<PathBuf> {
    fs.exec
        .iter()
        .filter_map(|r| std::fs::canonicalize(r.path.expand(values)).ok())
        .collect()
}

/// The canonical form of each tolerated exec that exists, with its name in
/// records (`divergence.tolerated_execs[N]`).
fn tolerated_execs(profile: &Profile, values: &Placeholders) -> Vec<(PathBuf, String)> {
    profile
        .divergence
        .tolerated_execs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let path = std::fs::canonicalize(r.path.expand(values)).ok()?;
            Some((path, format!("divergence.tolerated_execs[{i}]")))
        })
        .collect()
}

/// The agent's net policy: its grants, the host's name servers, and its
/// session's broker.
fn agent_net(
    profile: &Profile,
    fs: &Filesystem,
    values: &Placeholders,
    session: &SessionDir,
    brokered: bool,
) -> Result<NetPolicy, PlanError> {
    let broker = brokered.then(|| {
        let root = std::fs::canonicalize(&session.root).unwrap_or_else(|_| session.root.clone());
        root.join("broker.sock")
    });
    let dns = crate::host::resolv::read(Path::new("/etc/resolv.conf"));
    Ok(NetPolicy::for_sandbox(
        &profile.network,
        fs,
        values,
        broker,
        dns,
    ))
}

/// `cordon check` compares exec and write grants as written; this
/// compares them as the session expands them, canonically (a symlink or
/// a placeholder can make two spellings one tree).
fn exec_not_writable(fs: &Filesystem, values: &Placeholders) -> Result<(), PlanError> {
    let canonical = |r: &PathRule| std::fs::canonicalize(r.path.expand(values)).ok();
    let writable: Vec<(PathBuf, &PathRule)> = fs
        .write
        .iter()
        .filter_map(|w| canonical(w).map(|c| (c, w)))
        .collect();
    for e in &fs.exec {
        let Some(exec) = canonical(e) else { continue };
        if let Some((write, w)) = writable
            .iter()
            .find(|(w, _)| exec.starts_with(w) || w.starts_with(&exec))
        {
            return Err(PlanError::ExecWritable {
                origin: e.origin.clone(),
                message: crate::profile::exec_on_writable_message(&e.path, &w.path, &w.origin),
                exec,
                write: write.clone(),
            });
        }
    }
    Ok(())
}

/// The canonical workspace (which must be a directory) and a new
/// session's private directories, as placeholder values.
/// With `home` (a profile name), the session's HOME is that profile's
/// persistent one.
fn workspace_and_session(
    request: &Request,
    home: Option<&str>,
) -> Result<(SessionDir, Placeholders), PlanError> {
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
    let mut session =
        SessionDir::create(&request.session_base).map_err(|source| PlanError::Session {
            base: request.session_base.clone(),
            source,
        })?;
    if let Some(name) = home {
        session.use_home(super::home::open(name)?);
    }
    let values = Placeholders {
        workspace,
        home: session.home.clone(),
        tmp: session.tmp.clone(),
    };
    Ok((session, values))
}

/// Builds the agent's plan. `caller_env` looks up cordon's own
/// environment. With tools declared, the agent's PATH starts with the
/// session's shim directory and `CORDON_SOCKET` names the broker socket,
/// and the shim binary (only) becomes executable for the agent.
pub fn build(
    profile: &Profile,
    request: &Request,
    host: &Host,
    caller_env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Plan, PlanError> {
    let persistent = (profile.environment.home == crate::profile::HomeMode::Persistent)
        .then_some(profile.name.as_str());
    let (session, values) = workspace_and_session(request, persistent)?;
    let workspace = values.workspace.clone();
    let mut filesystem = profile.filesystem.clone();
    let brokered = brokered(profile);
    // Made before the agent exists, so its bundle can be granted.
    let tls = super::proxied::prepare(profile, &session.id, &session.root, caller_env)?;
    let agent_secrets = match &tls {
        Some(t) if !profile.environment.secrets.is_empty() => {
            filesystem
                .read
                .push(super::proxied::bundle_rule(&t.bundle)?);
            super::proxied::placeholders(&profile.environment.secrets).map_err(|e| {
                PlanError::Session {
                    base: session.root.clone(),
                    source: e.into(),
                }
            })?
        }
        _ => Vec::new(),
    };
    if brokered {
        let shim = request.shim.as_ref().ok_or(PlanError::NoShim)?;
        filesystem.exec.push(PathRule {
            path: PathTemplate::parse(&shim.to_string_lossy()).map_err(|_| PlanError::NoShim)?,
            optional: false,
            origin: Location::whole_file(Path::new("<cordon-shim>")),
        });
    }
    let mut env = env::build(&profile.environment, &values, &session.id, caller_env);
    if brokered {
        let path = env
            .get("PATH")
            .cloned()
            .unwrap_or_else(|| env::DEFAULT_PATH.to_string());
        env.insert(
            "PATH".into(),
            format!("{}:{path}", session.shim_dir().display()),
        );
        env.insert(
            env::SOCKET_VAR.into(),
            session.socket_path().display().to_string(),
        );
    }
    exec_not_writable(&profile.filesystem, &values)?;
    let t0 = std::time::Instant::now();
    let mut exec_allowed = exec_allowed(&filesystem, &values);
    // The declared tools' paths are the shim in the agent's mount
    // namespace: executing one is a brokered call.
    let shadows = super::shadow::shadows(profile, None, request.shim.as_deref());
    exec_allowed.extend(shadows.iter().cloned());
    // The loader's needs of every program the agent may run: its
    // interpreter (as an interpreter only) and libraries (read).
    let t_shadows = t0.elapsed();
    let programs: Vec<PathBuf> = filesystem
        .exec
        .iter()
        .map(|r| r.path.expand(&values))
        .collect();
    // Never a cache the sandbox could write (the loader adds no write grant).
    let host_cache = super::host_cache::usable(request.cache.clone(), &filesystem, &values);
    let mut cache =
        LoaderCache::keeping_in(host_cache.as_ref().map(|d| d.join(super::big_dirs::SUBDIR)));
    let loader = loader_grants(programs.iter().map(PathBuf::as_path), &mut cache);
    filesystem.exec.extend(loader.exec);
    filesystem.read.extend(loader.read);
    // No other way to a declared tool: none of its hard links or copies
    // may be readable.
    let t_loader = t0.elapsed();
    let scan_cache = host_cache.map(|d| d.join(super::copies::CACHE_SUBDIR));
    let copies = super::copies::scan_cached(
        profile,
        &filesystem,
        &values,
        &shadows,
        scan_cache.as_deref(),
    );
    if let Some(found) = copies.found.into_iter().next() {
        return Err(PlanError::ToolReachable(Box::new(found)));
    }
    if copies.truncated {
        return Err(PlanError::ScanTruncated {
            files: super::copies::MAX_FILES,
        });
    }
    let agent_path = env
        .get("PATH")
        .cloned()
        .unwrap_or_else(|| env::DEFAULT_PATH.to_string());
    let exe = resolve_command(&request.command[0], &agent_path, &request.invocation_dir)?;
    let mut env: Vec<(String, String)> = env.into_iter().collect();
    if profile.network.has_host_rules() {
        crate::egress::route_through_proxy(&mut env);
    }
    if let (false, Some(t)) = (agent_secrets.is_empty(), &tls) {
        super::proxied::set_ca_variables(&mut env, &t.bundle);
        super::proxied::set_placeholders(&mut env, &agent_secrets);
    }
    let argv: Vec<&[u8]> = request.command.iter().map(|a| a.as_bytes()).collect();
    let command = Command::new(&workspace, &exe, &argv, &env)?;
    let confinement = Confinement {
        filesystem: &filesystem,
        network: &profile.network,
        syscall_deny: &profile.syscalls.deny,
        limits: &profile.limits,
        best_effort: profile.best_effort,
        // The launch exec (this very path pointer) is let through without a
        // round trip to the supervisor; every later exec is reported.
        exec_watch: ExecWatch::Notify {
            launch_path: Some(command.exe.as_ptr() as u64),
        },
        shadows: &shadows,
        shim: request.shim.as_deref(),
        mediate: true,
    };
    let t_copies = t0.elapsed();
    let confined = confine(&confinement, &values, host, &session.mask, &|| {
        session.create_mask_dir()
    })?;
    let net = agent_net(profile, &filesystem, &values, &session, brokered)?;
    let tolerated_execs = tolerated_execs(profile, &values);

    tracing::debug!(
        shadows_us = t_shadows.as_micros(),
        loader_us = (t_loader - t_shadows).as_micros(),
        copies_us = (t_copies - t_loader).as_micros(),
        confine_us = (t0.elapsed() - t_copies).as_micros(),
        "plan: timings"
    );
    Ok(Plan {
        session,
        confined,
        command,
        placeholders: values,
        env,
        exec_allowed,
        interpreters: loader.interpreters,
        tolerated_execs,
        loader: cache,
        net,
        tls,
        agent_secrets,
    })
}

/// The plan of an observed run (`cordon learn`): the same session, clean
/// environment, pid namespace and dropped privileges as `cordon run`, but
/// no Landlock, no masks and no deny-list: the learn filter reports every
/// open, exec, connect and bind, and each continues.
pub fn build_observed(
    environment: &crate::profile::Environment,
    hosts: bool,
    request: &Request,
    host: &Host,
    caller_env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Plan, PlanError> {
    if !host.seccomp_user_notif {
        return Err(PlanError::NoUserNotif);
    }
    // `cordon learn` observes with a fresh home: what it learns must not
    // depend on state a persistent one happens to hold.
    let (session, values) = workspace_and_session(request, None)?;
    let workspace = values.workspace.clone();
    let mut env: Vec<(String, String)> = env::build(environment, &values, &session.id, caller_env)
        .into_iter()
        .collect();
    if hosts {
        // Behind the egress proxy, which records (and allows) every host.
        crate::egress::route_through_proxy(&mut env);
    }
    let exe = resolve_command(
        &request.command[0],
        env::DEFAULT_PATH,
        &request.invocation_dir,
    )?;
    let argv: Vec<&[u8]> = request.command.iter().map(|a| a.as_bytes()).collect();
    let command = Command::new(&workspace, &exe, &argv, &env)?;
    let namespaces = crate::sys::process::Namespaces {
        user: !host.privileged,
        pid: true,
        mount: false,
        net: hosts,
    };
    let (uid_map, gid_map) = super::confine::id_maps(namespaces.user, host)?;
    let confined = Confined {
        namespaces,
        uid_map,
        gid_map,
        mask_mountpoint: path_cstring(&session.mask)?,
        mask_file: path_cstring(&session.mask)?,
        mask_dir: path_cstring(&session.mask)?,
        masks: Vec::new(),
        mask_origins: Vec::new(),
        shim: None,
        shadows: Vec::new(),
        mount_proc: false,
        landlock: None,
        seccomp: super::seccomp::build_learn_program(),
        rlimits: Vec::new(),
        egress_port: hosts.then_some(crate::egress::PROXY_PORT),
        weakened: Vec::new(),
    };
    Ok(Plan {
        session,
        confined,
        command,
        placeholders: values,
        env,
        exec_allowed: Vec::new(),
        interpreters: Vec::new(),
        tolerated_execs: Vec::new(),
        loader: LoaderCache::default(),
        net: NetPolicy::default(),
        tls: None,
        agent_secrets: Vec::new(),
    })
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
#[path = "plan_tests.rs"]
mod tests;
