//! Program directories too large for the loader's look (more than
//! [`super::loader::MAX_DIR_PROGRAMS`] programs, such as /usr/bin),
//! remembered by their stamps so a run does not list them again while
//! they are unchanged: listing /usr/bin was most of a plain start-up's
//! planning time.
//!
//! Only the verdict "too large" is kept. A stale or planted entry can
//! therefore only withhold the loader's grants for that directory's
//! programs (they fail to start), never add one; and the file is never
//! used where the sandbox could write it (`host_cache::usable`).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::host_cache::{write_atomic, DirStamp};

/// The directory below the host cache where the verdicts are kept.
pub const SUBDIR: &str = "loader";
const FILE: &str = "big-dirs.json";
/// A larger file is not one cordon wrote: it is ignored.
const MAX_BYTES: usize = 64 * 1024;
/// Directories remembered at most (the oldest verdict goes first).
const MAX_DIRS: usize = 128;

/// The kept verdicts, read at first use.
#[derive(Debug, Default)]
pub struct BigDirs {
    dir: Option<PathBuf>,
    known: Option<Vec<DirStamp>>,
}

impl BigDirs {
    /// Verdicts kept in `dir` (`None`: nothing kept, every run lists).
    pub fn kept_in(dir: Option<PathBuf>) -> BigDirs {
        BigDirs { dir, known: None }
    }

    fn known(&mut self) -> &mut Vec<DirStamp> {
        let dir = self.dir.as_deref();
        self.known
            .get_or_insert_with(|| dir.map(read).unwrap_or_default())
    }

    /// The directory, as stamped, was found too large before.
    pub fn is_big(&mut self, stamp: &DirStamp) -> bool {
        self.dir.is_some() && self.known().contains(stamp)
    }

    /// Keeps the verdict for `stamp` (replacing one for the same path).
    pub fn remember(&mut self, stamp: DirStamp) {
        let Some(dir) = self.dir.clone() else {
            return;
        };
        let known = self.known();
        known.retain(|k| k.path != stamp.path);
        known.push(stamp);
        if known.len() > MAX_DIRS {
            known.drain(..known.len() - MAX_DIRS);
        }
        let Ok(bytes) = serde_json::to_vec(known) else {
            return;
        };
        if let Err(e) = write_atomic(&dir, &dir.join(FILE), &bytes) {
            tracing::debug!(error = %e, dir = %dir.display(), "loader: cannot keep the large directories");
        }
    }
}

fn read(dir: &Path) -> Vec<DirStamp> {
    let Ok(f) = std::fs::File::open(dir.join(FILE)) else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    if f.take(MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .is_err()
        || bytes.len() > MAX_BYTES
    {
        return Vec::new();
    }
    serde_json::from_slice(&bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(path: &Path) -> DirStamp {
        DirStamp::of(path, &std::fs::metadata(path).unwrap())
    }

    #[test]
    fn a_verdict_holds_until_the_directory_changes() {
        let cache = tempfile::tempdir().unwrap();
        let big = tempfile::tempdir().unwrap();
        let mut memo = BigDirs::kept_in(Some(cache.path().to_path_buf()));
        assert!(!memo.is_big(&stamp(big.path())));
        memo.remember(stamp(big.path()));
        // Another run reads it back.
        let mut again = BigDirs::kept_in(Some(cache.path().to_path_buf()));
        assert!(again.is_big(&stamp(big.path())));
        // An entry added changes the stamp: the directory is listed again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(big.path().join("new"), "x").unwrap();
        assert!(!again.is_big(&stamp(big.path())));
    }

    #[test]
    fn nothing_is_kept_without_a_directory_and_a_foreign_file_is_ignored() {
        let big = tempfile::tempdir().unwrap();
        let mut none = BigDirs::kept_in(None);
        none.remember(stamp(big.path()));
        assert!(!none.is_big(&stamp(big.path())));

        let cache = tempfile::tempdir().unwrap();
        std::fs::write(cache.path().join(FILE), "not json").unwrap();
        assert!(!BigDirs::kept_in(Some(cache.path().into())).is_big(&stamp(big.path())));
        let huge = format!("[{}]", " ".repeat(MAX_BYTES));
        std::fs::write(cache.path().join(FILE), huge).unwrap();
        assert!(!BigDirs::kept_in(Some(cache.path().into())).is_big(&stamp(big.path())));
    }

    #[test]
    fn at_most_max_dirs_are_kept() {
        let cache = tempfile::tempdir().unwrap();
        let dirs: Vec<_> = (0..MAX_DIRS + 3)
            .map(|_| tempfile::tempdir().unwrap())
            .collect();
        let mut memo = BigDirs::kept_in(Some(cache.path().to_path_buf()));
        for d in &dirs {
            memo.remember(stamp(d.path()));
        }
        let mut again = BigDirs::kept_in(Some(cache.path().to_path_buf()));
        assert!(
            !again.is_big(&stamp(dirs[0].path())),
            "the oldest went first"
        );
        assert!(again.is_big(&stamp(dirs[MAX_DIRS + 2].path())));
        assert_eq!(again.known().len(), MAX_DIRS);
    }
}
