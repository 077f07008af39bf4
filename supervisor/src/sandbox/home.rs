//! A profile's persistent HOME (`[environment] home = "persistent"`), for
//! agent CLIs that keep settings and state there (Gemini CLI's
//! `~/.gemini`, Codex's `~/.codex`): `STATE/homes/NAME`, where STATE is
//! `CORDON_STATE_DIR`, else /var/lib/cordon for root, else
//! `$XDG_STATE_HOME/cordon` (`~/.local/state/cordon`).
//!
//! One directory per profile name and user, never another profile's:
//! a sub-agent (whose name its writer chooses) cannot ask for one. Mode
//! 0700 and owned by this user, or cordon refuses it rather than hand the
//! agent a directory someone else can read or swap. One session at a time
//! (an exclusive lock held for the session's life): two agents writing the
//! same state would corrupt it.

use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Why a persistent home cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("no state directory for the persistent home: set CORDON_STATE_DIR, XDG_STATE_HOME or HOME (an absolute path)")]
    NoStateDir,
    #[error("cannot create the persistent home {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("the persistent home {path} is not a directory owned by uid {uid} (it is {found}); move it away, cordon will make a new one")]
    NotOurs {
        path: PathBuf,
        uid: u32,
        found: String,
    },
    #[error("the persistent home {path} has mode {mode:04o}: others could read the agent's state or swap it; `chmod 700 {path}`")]
    Open { path: PathBuf, mode: u32 },
    #[error("the persistent home {path} is in use by another session of profile `{profile}`; wait for it to end, or use a fresh home for this one")]
    InUse { path: PathBuf, profile: String },
    #[error("cannot lock the persistent home {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
}

/// The persistent home of profile `name` and the lock that keeps it this
/// session's.
#[derive(Debug)]
pub struct PersistentHome {
    pub path: PathBuf,
    _lock: fs::File,
}

/// Where the homes are kept.
pub fn homes_dir() -> Option<PathBuf> {
    let abs = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    let state = abs(std::env::var_os("CORDON_STATE_DIR"))
        .or_else(|| (crate::sys::geteuid() == 0).then(|| PathBuf::from("/var/lib/cordon")))
        .or_else(|| abs(std::env::var_os("XDG_STATE_HOME")).map(|s| s.join("cordon")))
        .or_else(|| abs(std::env::var_os("HOME")).map(|h| h.join(".local/state/cordon")))?;
    Some(state.join("homes"))
}

/// Opens (making it the first time) profile `name`'s home and locks it.
/// `name` is a validated profile name (a safe path component).
pub fn open(name: &str) -> Result<PersistentHome, HomeError> {
    open_in(&homes_dir().ok_or(HomeError::NoStateDir)?, name)
}

fn open_in(homes: &Path, name: &str) -> Result<PersistentHome, HomeError> {
    let path = homes.join(name);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(homes)
        .map_err(|source| HomeError::Create {
            path: homes.to_path_buf(),
            source,
        })?;
    match fs::DirBuilder::new().mode(0o700).create(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(HomeError::Create { path, source }),
    }
    // Not followed: a symlink planted here would send the agent's writes
    // wherever it points.
    let meta = fs::symlink_metadata(&path).map_err(|source| HomeError::Create {
        path: path.clone(),
        source,
    })?;
    let uid = crate::sys::geteuid();
    if !meta.is_dir() || meta.uid() != uid {
        let kind = if meta.file_type().is_symlink() {
            "a symlink".to_string()
        } else if meta.is_dir() {
            format!("owned by uid {}", meta.uid())
        } else {
            "not a directory".to_string()
        };
        return Err(HomeError::NotOurs {
            path,
            uid,
            found: kind,
        });
    }
    if meta.mode() & 0o077 != 0 {
        return Err(HomeError::Open {
            path,
            mode: meta.mode() & 0o7777,
        });
    }
    let lock = fs::File::open(&path).map_err(|source| HomeError::Lock {
        path: path.clone(),
        source,
    })?;
    match crate::sys::lock::try_lock_forever(lock.as_fd()) {
        Ok(true) => Ok(PersistentHome { path, _lock: lock }),
        Ok(false) => Err(HomeError::InUse {
            path,
            profile: name.to_string(),
        }),
        Err(e) => Err(HomeError::Lock {
            path,
            source: io::Error::from(e),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_home_is_kept_private_and_one_session_at_a_time() {
        let t = tempfile::tempdir().unwrap();
        let homes = t.path().join("state/homes");
        let a = open_in(&homes, "gemini-cli").unwrap();
        std::fs::write(a.path.join("settings.json"), "{}").unwrap();
        let mode = std::fs::metadata(&a.path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let e = open_in(&homes, "gemini-cli").unwrap_err().to_string();
        assert!(
            e.contains("in use by another session of profile `gemini-cli`"),
            "{e}"
        );
        // Another profile's is another directory.
        let b = open_in(&homes, "codex").unwrap();
        assert!(!b.path.join("settings.json").exists());
        drop(a);
        let a = open_in(&homes, "gemini-cli").unwrap();
        assert!(
            a.path.join("settings.json").exists(),
            "kept across sessions"
        );
        drop(a);
        std::fs::set_permissions(
            homes.join("gemini-cli"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let e = open_in(&homes, "gemini-cli").unwrap_err().to_string();
        assert!(
            e.contains("has mode 0755") && e.contains("chmod 700"),
            "{e}"
        );
        std::os::unix::fs::symlink(t.path(), homes.join("planted")).unwrap();
        let e = open_in(&homes, "planted").unwrap_err().to_string();
        assert!(e.contains("(it is a symlink)"), "{e}");
    }
}
