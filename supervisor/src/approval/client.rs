//! The operator side of the control socket, for `cordon approvals`,
//! `cordon approve` and `cordon deny`.
//!
//! Each `cordon run` that may need approvals listens on its own socket,
//! `<dir>/<session id>.sock`, in the control directory (see
//! [`default_dir`]); an operator command asks every socket there, or the
//! one `--socket` names.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::wire::{ControlReply, ControlRequest, MAX_LINE};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Why an operator command could not talk to cordon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the reply is not valid: {source}")]
    Reply {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("no control socket in {0} (is a `cordon run` that needs approvals running? pass --socket PATH)")]
    NoSockets(PathBuf),
}

/// The control directory of `cordon run` sessions: `/run/cordon/approvals`
/// for root, else `$XDG_RUNTIME_DIR/cordon/approvals`, else
/// `/tmp/cordon-<uid>/approvals`. (Not `/run/cordon` itself, where the
/// daemon's own control socket speaks another protocol.)
pub fn default_dir() -> PathBuf {
    let uid = crate::sys::geteuid();
    if uid == 0 {
        return PathBuf::from("/run/cordon/approvals");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("cordon/approvals"),
        _ => PathBuf::from(format!("/tmp/cordon-{uid}/approvals")),
    }
}

/// Where `cordon serve` puts its sessions' control sockets, one
/// directory per agent (owned by the agent's user): `agents` beside the
/// daemon's control socket.
pub const DAEMON_AGENTS_DIR: &str = "/run/cordon/agents";

/// Makes (or checks) the control directory: ours, and 0700, so nobody
/// else can plant or replace a socket there.
pub fn ensure_dir(dir: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot make {} 0700: {e}", dir.display()))
        }
        Err(e) => Err(format!("cannot check {}: {e}", dir.display())),
        Ok(m) if !m.is_dir() => Err(format!("{} is not a directory", dir.display())),
        Ok(m) if m.uid() != crate::sys::geteuid() => Err(format!(
            "{} belongs to uid {}, not to this user; refusing to put the control socket there",
            dir.display(),
            m.uid()
        )),
        Ok(m) if m.mode() & 0o077 != 0 => Err(format!(
            "{} is accessible to other users (mode {:o}); make it 0700",
            dir.display(),
            m.mode() & 0o7777
        )),
        Ok(_) => Ok(()),
    }
}

/// The sockets to ask: `given` itself when it is a socket, the `.sock`
/// files of `given` and of its subdirectories otherwise. Without `given`:
/// the default directory, and for root also the daemon's sessions'.
pub fn sockets(given: Option<&Path>) -> Result<Vec<PathBuf>, ClientError> {
    if given.is_none() && crate::sys::geteuid() == 0 {
        let mut all: Vec<PathBuf> = [default_dir(), PathBuf::from(DAEMON_AGENTS_DIR)]
            .iter()
            .filter_map(|d| sockets_in(d).ok())
            .flatten()
            .collect();
        all.sort();
        return if all.is_empty() {
            Err(ClientError::NoSockets(default_dir()))
        } else {
            Ok(all)
        };
    }
    sockets_in(&given.map_or_else(default_dir, Path::to_path_buf))
}

fn sockets_in(dir: &Path) -> Result<Vec<PathBuf>, ClientError> {
    let dir = dir.to_path_buf();
    let meta = std::fs::metadata(&dir).map_err(|source| ClientError::Io {
        path: dir.clone(),
        source,
    })?;
    if meta.file_type().is_socket() {
        return Ok(vec![dir]);
    }
    let entries = std::fs::read_dir(&dir).map_err(|source| ClientError::Io {
        path: dir.clone(),
        source,
    })?;
    let is_sock = |p: &PathBuf| p.extension().is_some_and(|x| x == "sock");
    let mut found: Vec<PathBuf> = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if let Ok(inner) = std::fs::read_dir(&p) {
                found.extend(inner.flatten().map(|e| e.path()).filter(is_sock));
            }
        } else if is_sock(&p) {
            found.push(p);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(ClientError::NoSockets(dir));
    }
    Ok(found)
}

/// Sends one request to the socket at `path` and reads the reply.
pub fn call(path: &Path, request: &ControlRequest) -> Result<ControlReply, ClientError> {
    call_within(path, request, TIMEOUT)
}

/// [`call`], giving up on a session that does not answer within
/// `timeout` (each read and write).
pub fn call_within(
    path: &Path,
    request: &ControlRequest,
    timeout: Duration,
) -> Result<ControlReply, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut line = serde_json::to_vec(request).map_err(|source| ClientError::Reply {
        path: path.to_path_buf(),
        source,
    })?;
    line.push(b'\n');
    stream.write_all(&line).map_err(io)?;
    let mut reply = String::new();
    BufReader::new(stream.take(MAX_LINE))
        .read_line(&mut reply)
        .map_err(io)?;
    serde_json::from_str(&reply).map_err(|source| ClientError::Reply {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    #[test]
    fn the_control_directory_is_made_private_and_an_open_one_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("run/cordon");
        ensure_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        ensure_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_dir(&dir).unwrap_err();
        assert!(
            err.contains("accessible to other users (mode 755)"),
            "{err}"
        );
        let file = base.path().join("f");
        std::fs::write(&file, "").unwrap();
        assert!(ensure_dir(&file).unwrap_err().contains("not a directory"));
    }

    #[test]
    fn sockets_are_found_in_a_directory_or_named_directly() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            sockets(Some(dir.path())),
            Err(ClientError::NoSockets(_))
        ));
        let a = dir.path().join("a.sock");
        let _l = std::os::unix::net::UnixListener::bind(&a).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        assert_eq!(sockets(Some(dir.path())).unwrap(), vec![a.clone()]);
        assert_eq!(sockets(Some(&a)).unwrap(), vec![a]);
    }
}
