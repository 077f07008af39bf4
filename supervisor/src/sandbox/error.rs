//! Why a launch plan could not be made. Each error says what to change.

use std::path::PathBuf;

use super::seccomp::SeccompError;
use crate::profile::Location;
use crate::sys::Errno;

/// Why a plan could not be made. Each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("workspace {path}: {source}")]
    Workspace {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Home(#[from] super::home::HomeError),
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
    #[error("{0}")]
    Proxied(#[from] super::proxied::ProxiedError),
    #[error("command not found: `{name}` (searched PATH={path})")]
    CommandNotFound { name: String, path: String },
    #[error("`{0}` contains a NUL byte")]
    Nul(String),
    #[error("the profile needs cordon's broker (it declares tools, secrets or MCP servers) but cordon-shim was not found next to cordon; install both binaries together")]
    NoShim,
    #[error("{0}")]
    ToolReachable(Box<super::copies::Reachable>),
    #[error("the read and exec grants hold more than {files} files; cordon could not check them all for copies of the declared tools; narrow the grants")]
    ScanTruncated { files: usize },
    #[error("{origin}: {message} (here: {exec} lies in or contains {write})", exec = exec.display(), write = write.display())]
    ExecWritable {
        origin: Location,
        message: String,
        exec: PathBuf,
        write: PathBuf,
    },
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
