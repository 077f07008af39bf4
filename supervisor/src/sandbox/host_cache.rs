//! What cordon remembers about the host between runs, so a run does not
//! redo work whose inputs have not changed: where it is kept, when it may
//! be used, how a directory is stamped and how a file is written.
//! Everything kept is a shortcut, never a grant: each user decides what it
//! may skip, and a kept file the sandbox could write is never used.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::profile::{Filesystem, Placeholders};

/// Where kept results live: `CORDON_CACHE_DIR`, else /var/cache/cordon for
/// root, else $XDG_CACHE_HOME/cordon or ~/.cache/cordon (each user of it
/// keeps its files in a directory of its own below).
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("CORDON_CACHE_DIR") {
        Some(PathBuf::from(d))
    } else if crate::sys::geteuid() == 0 {
        Some(PathBuf::from("/var/cache/cordon"))
    } else if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
        Some(PathBuf::from(x).join("cordon"))
    } else {
        Some(PathBuf::from(std::env::var_os("HOME")?).join(".cache/cordon"))
    }
}

/// The cache directory, unless the sandbox could write it (then it could
/// plant a result): no cache at all then.
pub fn usable(dir: Option<PathBuf>, fs: &Filesystem, values: &Placeholders) -> Option<PathBuf> {
    let dir = dir?;
    let real = std::fs::canonicalize(&dir)
        .or_else(|_| dir.parent().map_or(Ok(dir.clone()), std::fs::canonicalize))
        .unwrap_or_else(|_| dir.clone());
    let writable = fs.write.iter().any(|w| {
        let w = w.path.expand(values);
        let w = std::fs::canonicalize(&w).unwrap_or(w);
        real.starts_with(&w)
    });
    (!writable).then_some(dir)
}

/// A directory as it was seen: a changed one has another mtime or ctime
/// (an entry added, removed or renamed), or is another inode.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirStamp {
    pub path: PathBuf,
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl DirStamp {
    pub fn of(path: &Path, m: &Metadata) -> DirStamp {
        DirStamp {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// The directory at `path` now.
    pub fn now(path: &Path) -> Option<DirStamp> {
        std::fs::symlink_metadata(path)
            .ok()
            .filter(Metadata::is_dir)
            .map(|m| DirStamp::of(path, &m))
    }

    pub fn unchanged(&self) -> bool {
        DirStamp::now(&self.path).is_some_and(|s| s == *self)
    }
}

/// Writes `file` in `dir` atomically (a temporary name, then a rename),
/// creating `dir` 0700 when it is missing.
pub fn write_atomic(dir: &Path, file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)
}
