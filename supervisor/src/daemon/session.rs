//! Starting one session: a child `cordon run` as the agent's user, in its
//! own cgroup when there is one, watched through a pidfd.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::cgroup::{Delegated, SessionCgroup};
use super::config::Agent;
use crate::sys::process::pidfd_open;
use crate::sys::spawn::{self, Credentials, PreExec};

/// Why a session is being ended by the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `cordon kill`: the restart policy applies to the end.
    Kill,
    /// `cordon stop`, shutdown, or the agent left the configuration.
    Stop,
}

/// Why a session could not be started (it counts as a failure).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("looking up {what} `{name}`: {source}")]
    Lookup {
        what: &'static str,
        name: String,
        source: crate::sys::Errno,
    },
    #[error("no such {what} `{name}`")]
    NoSuch { what: &'static str, name: String },
    #[error("only root can run agents as another user or group (user {uid}, group {gid})")]
    NotRoot { uid: u32, gid: u32 },
    #[error("the session id file {path}: {source}")]
    IdFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the session's cgroup: {0}")]
    Cgroup(std::io::Error),
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("pidfd_open of the session: {0}")]
    Pidfd(crate::sys::Errno),
}

/// What every session start needs from the daemon.
pub struct Launch<'a> {
    /// The `cordon` binary (the daemon's own).
    pub cordon: &'a Path,
    /// Where session id files go.
    pub state_dir: &'a Path,
    /// Where each agent's directory for its approval socket goes.
    pub agents_dir: &'a Path,
    pub cgroups: Option<&'a Delegated>,
    pub audit: Option<&'a Path>,
}

/// One running `cordon run`.
pub struct Session {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub started: Instant,
    pub id_file: PathBuf,
    id: Option<String>,
    pub uid: u32,
    pub cgroup: Option<SessionCgroup>,
    pub ending: Option<Ending>,
    pub kill_at: Option<Instant>,
    /// Where the session's approval control socket is (made only when its
    /// profile has calls that need approval).
    pub approvals: Option<PathBuf>,
}

impl Session {
    /// The session id `cordon run` wrote, once it has.
    pub fn id(&mut self) -> Option<&str> {
        if self.id.is_none() {
            let text = std::fs::read_to_string(&self.id_file).ok()?;
            let text = text.trim();
            if !text.is_empty() {
                self.id = Some(text.to_string());
            }
        }
        self.id.as_deref()
    }
}

/// Starts `spec`'s session number `serial`.
pub fn spawn(l: &Launch<'_>, spec: &Agent, serial: u64) -> Result<Session, StartError> {
    let credentials = credentials(spec)?;
    let id_file = l.state_dir.join(format!("{}.{serial}.session", spec.name));
    let _ = std::fs::remove_file(&id_file);
    // Created by the daemon, then given to the session's user, who
    // writes the session id into it.
    let id_error = |source| StartError::IdFile {
        path: id_file.clone(),
        source,
    };
    let f = std::fs::File::create(&id_file).map_err(id_error)?;
    if let Some(c) = credentials {
        std::os::unix::fs::fchown(&f, Some(c.uid), Some(c.gid)).map_err(id_error)?;
    }
    drop(f);
    let cgroup = match l.cgroups {
        Some(d) => Some(
            d.session(&format!("agent-{}-{serial}", spec.name))
                .map_err(StartError::Cgroup)?,
        ),
        None => None,
    };
    let mut cmd = Command::new(l.cordon);
    cmd.arg("run")
        .arg("--profile")
        .arg(&spec.profile)
        .arg("--session-file")
        .arg(&id_file)
        .arg("--profile-digest")
        .arg(&spec.profile_digest);
    // cordon run checks the workspace and makes it the agent's cwd.
    cmd.current_dir("/");
    if let Some(w) = &spec.workspace {
        cmd.arg("--workspace").arg(w);
    }
    if let Some(i) = &spec.intent {
        cmd.arg("--intent").arg(i);
    }
    if let Some(a) = l.audit {
        cmd.arg("--audit").arg(a);
    }
    // Its approval control socket, in a directory of the agent's user (so
    // `cordon approvals` as root finds every session's).
    let approvals = approvals_socket(l, spec, credentials, serial);
    if let Some(sock) = &approvals {
        cmd.arg("--control-socket").arg(sock);
    }
    cmd.arg("--").args(&spec.command);
    // The service manager's channel is the daemon's alone.
    cmd.stdin(Stdio::null())
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID");
    spawn::arrange(
        &mut cmd,
        PreExec {
            credentials,
            cgroup_procs: cgroup.as_ref().map(SessionCgroup::procs_fd),
            setsid: true,
            // If the daemon dies (kill -9, a crash), each session stops as
            // on `cordon stop`: its agent gets the grace period, secrets
            // are revoked, the audit log is completed. The daemon's event
            // loop is its main thread, which lives as long as it does.
            parent_death: Some((libc::SIGTERM, crate::sys::process::getpid())),
        },
    );
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            if let Some(cg) = &cgroup {
                cg.remove();
            }
            let _ = std::fs::remove_file(&id_file);
            return Err(StartError::Spawn {
                program: l.cordon.to_path_buf(),
                source: e,
            });
        }
    };
    let pid = i32::try_from(child.id())
        .map_err(|_| StartError::Pidfd(crate::sys::Errno(libc::EOVERFLOW)))?;
    // Not reaped yet (only we can, and we have not): the pid is still
    // this child's, so the pidfd is too.
    let pidfd = pidfd_open(pid).map_err(StartError::Pidfd)?;
    drop(child);
    Ok(Session {
        pid,
        pidfd,
        started: Instant::now(),
        id_file,
        id: None,
        uid: credentials.map_or_else(crate::sys::geteuid, |c| c.uid),
        cgroup,
        ending: None,
        kill_at: None,
        approvals,
    })
}

/// `<agents dir>/<agent>/<agent>.<serial>.sock`, its directory made 0700
/// and given to the agent's user; None (the session picks its own
/// default) when that directory cannot be made.
fn approvals_socket(
    l: &Launch<'_>,
    spec: &Agent,
    credentials: Option<crate::sys::spawn::Credentials>,
    serial: u64,
) -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    // The agents directory is traversable (0755, the daemon's); each
    // agent's is its user's alone.
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(l.agents_dir);
    let dir = l.agents_dir.join(&spec.name);
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).ok()?;
    if let Some(c) = credentials {
        std::os::unix::fs::chown(&dir, Some(c.uid), Some(c.gid)).ok()?;
    }
    Some(dir.join(format!("{}.{serial}.sock", spec.name)))
}

/// The ids to switch to: `user` (and its primary group unless `group`
/// says otherwise), or just `group`. None: run as the daemon.
fn credentials(spec: &Agent) -> Result<Option<Credentials>, StartError> {
    let me = crate::sys::geteuid();
    let (uid, mut gid) = match &spec.user {
        None => (me, crate::sys::getegid()),
        Some(u) => match u.parse::<u32>() {
            Ok(uid) => (uid, uid),
            Err(_) => spawn::lookup_user(u)
                .map_err(|source| StartError::Lookup {
                    what: "user",
                    name: u.clone(),
                    source,
                })?
                .ok_or_else(|| StartError::NoSuch {
                    what: "user",
                    name: u.clone(),
                })?,
        },
    };
    if let Some(g) = &spec.group {
        gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => spawn::lookup_group(g)
                .map_err(|source| StartError::Lookup {
                    what: "group",
                    name: g.clone(),
                    source,
                })?
                .ok_or_else(|| StartError::NoSuch {
                    what: "group",
                    name: g.clone(),
                })?,
        };
    }
    if spec.user.is_none() && spec.group.is_none() {
        return Ok(None);
    }
    if me != 0 && (uid != me || gid != crate::sys::getegid()) {
        return Err(StartError::NotRoot { uid, gid });
    }
    Ok(Some(Credentials { uid, gid }))
}
