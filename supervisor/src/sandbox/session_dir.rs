//! The per-session private directory: HOME, TMPDIR and the mask mountpoint.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A session's identity and its private directory, removed on drop.
#[derive(Debug)]
pub struct SessionDir {
    /// The directory opened and flock'ed for the life of the session: a
    /// later cordon that can take the lock knows this one is dead.
    _alive: std::fs::File,
    pub id: String,
    pub root: PathBuf,
    pub home: PathBuf,
    pub tmp: PathBuf,
    /// Where the child mounts the mask tmpfs (made by [`SessionDir::create_mask_dir`]).
    pub mask: PathBuf,
    /// The profile's persistent home, when `home` is it (then `home` is
    /// its path, and the lock is held as long as this).
    persistent: Option<super::home::PersistentHome>,
}

/// 128 random bits as 32 hex digits.
pub fn new_session_id() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    crate::sys::getrandom(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl SessionDir {
    /// Creates `<base>/cordon-<id>/{home,tmp}`, mode 0700. `mkdir`
    /// refuses an existing path, so a planted symlink cannot redirect it.
    pub fn create(base: &Path) -> io::Result<SessionDir> {
        let id = new_session_id()?;
        let root = base.join(format!("cordon-{id}"));
        // Made under a name the sweep ignores, locked, then renamed: a
        // concurrent sweep never sees an unlocked session directory.
        let making = base.join(format!("cordon-{id}.new"));
        let mut b = fs::DirBuilder::new();
        b.mode(0o700);
        b.create(&making)?;
        let alive = std::fs::File::open(&making)?;
        crate::sys::lock::try_lock_forever(std::os::fd::AsFd::as_fd(&alive))?;
        for d in ["home", "tmp"] {
            b.create(making.join(d))?;
        }
        fs::rename(&making, &root)?;
        Ok(SessionDir {
            _alive: alive,
            home: root.join("home"),
            tmp: root.join("tmp"),
            mask: root.join("mask"),
            id,
            root,
            persistent: None,
        })
    }

    /// Makes `home` the session's HOME instead of its fresh one (which
    /// stays, empty, and goes with the session directory).
    pub fn use_home(&mut self, home: super::home::PersistentHome) {
        self.home = home.path.clone();
        self.persistent = Some(home);
    }

    /// Creates the empty mountpoint for the deny masks (only sessions
    /// with `deny` entries need it).
    pub fn create_mask_dir(&self) -> io::Result<()> {
        fs::DirBuilder::new().mode(0o700).create(&self.mask)
    }

    /// Where the links named after each declared tool live (first on the
    /// agent's PATH).
    pub fn shim_dir(&self) -> PathBuf {
        self.root.join("bin")
    }

    /// The broker's listening socket.
    pub fn socket_path(&self) -> PathBuf {
        self.root.join("broker.sock")
    }

    /// A private directory for one brokered call's HOME and TMPDIR.
    pub fn call_dir(&self, call: u64) -> PathBuf {
        self.root.join("calls").join(call.to_string())
    }

    /// The SPIFFE-style workload identity of this session.
    pub fn identity(&self, profile: &str) -> String {
        format!(
            "spiffe://cordon.local/profile/{profile}/session/{}",
            self.id
        )
    }
}

/// Removes session directories under `base` left by cordon processes that
/// died without cleaning up (`kill -9`): those whose lock can be taken.
/// Only directories named like sessions and owned by this user are touched.
pub fn sweep_dead(base: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    let me = crate::sys::geteuid();
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Some(id) = name.strip_prefix("cordon-") else {
            continue;
        };
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let path = e.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let Ok(dir) = fs::File::open(&path) else {
            continue;
        };
        if crate::sys::lock::try_lock_forever(std::os::fd::AsFd::as_fd(&dir)) == Ok(true) {
            tracing::info!(path = %path.display(), "removing a dead session's directory");
            let _ = remove_tree(&path);
        }
    }
}

impl Drop for SessionDir {
    fn drop(&mut self) {
        if let Err(e) = remove_tree(&self.root) {
            tracing::warn!(path = %self.root.display(), error = %e, "could not remove the session directory");
        }
    }
}

/// Removes a tree the agent may have made unreadable (mode 000 dirs).
/// Only called once every agent process is dead, so nothing races it.
/// Symlinks are removed, never followed.
pub fn remove_tree(root: &Path) -> io::Result<()> {
    match fs::remove_dir_all(root) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    make_writable(root);
    fs::remove_dir_all(root)
}

fn make_writable(dir: &Path) {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            make_writable(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_sessions_are_swept_and_live_ones_kept() {
        let base = tempfile::tempdir().unwrap();
        let live = SessionDir::create(base.path()).unwrap();
        // A dead session: its directory exists, nobody holds its lock.
        let dead = base.path().join(format!("cordon-{}", "ab".repeat(16)));
        fs::create_dir_all(dead.join("home")).unwrap();
        let other = base.path().join("cordon-not-a-session");
        fs::create_dir(&other).unwrap();
        sweep_dead(base.path());
        assert!(!dead.exists());
        assert!(live.root.exists() && other.exists());
    }

    #[test]
    fn creates_private_dirs_and_removes_even_locked_trees() {
        let base = tempfile::tempdir().unwrap();
        let s = SessionDir::create(base.path()).unwrap();
        let root = s.root.clone();
        assert_eq!(
            fs::metadata(&root).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(s.home.is_dir() && s.tmp.is_dir() && !s.mask.exists());
        s.create_mask_dir().unwrap();
        assert!(s.mask.is_dir());
        assert_eq!(s.id.len(), 32);
        // What an agent might leave behind: a locked dir and a symlink out.
        let locked = s.tmp.join("locked");
        fs::create_dir(&locked).unwrap();
        fs::write(locked.join("f"), b"x").unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        let outside = base.path().join("outside");
        fs::write(&outside, b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, s.home.join("link")).unwrap();
        drop(s);
        assert!(!root.exists());
        assert_eq!(fs::read(&outside).unwrap(), b"keep");
    }
}
