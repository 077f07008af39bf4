//! Other ways to a declared tool's bytes: its hard links, and copies of
//! it (same size, same SHA-256), among the files a sandbox may read or
//! run. A copy the agent can run through its exec grants bypasses the
//! broker outright; one it can only read still runs through a loader it
//! brings itself, with the agent's own rights (exec grants do not confine
//! code the agent can read) but with none of the tool's: no secrets, no
//! tool sandbox, no record. A profile that leaves either is refused, with
//! the path, so the author can deny it or narrow the grant.
//!
//! What is walked: every read and exec grant, except trees the sandbox
//! may write (what is there is the agent's own content, which runs with
//! the agent's rights; an exec grant on one is refused anyway), denied
//! paths (masked), the tools' shadowed paths (the shim there), and
//! kernel filesystems. Symlinks are not followed: Landlock decides on the
//! file a link reaches, whose own tree is walked if it is granted.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::profile::{Filesystem, Location, Placeholders, Profile};

mod cache;
#[cfg(test)]
mod tests;

use crate::sandbox::host_cache::DirStamp;
pub use cache::{scan_cached, CACHE_TTL};

/// The directory below the host cache ([`crate::sandbox::host_cache`])
/// where clean scans are kept.
pub const CACHE_SUBDIR: &str = "copies";

/// Trees never walked: the kernel's own, with no programs to copy.
const PSEUDO: [&str; 3] = ["/proc", "/sys", "/dev"];
/// Files walked per launch at most; past it the walk stops and says so.
pub const MAX_FILES: usize = 500_000;

/// A declared tool reachable another way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachable {
    pub tool: String,
    pub path: PathBuf,
    pub how: How,
    /// The grant that reaches it.
    pub grant: Location,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    HardLink,
    Copy,
}

impl std::fmt::Display for Reachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.how {
            How::HardLink => "a hard link of",
            How::Copy => "a copy of",
        };
        write!(
            f,
            "{}: `{}` is {how} declared tool `{}`'s binary, and the sandbox can read it, so the agent could run the tool without the broker (its rules, secrets and record); add it to [filesystem] deny or narrow the grant",
            self.grant,
            self.path.display(),
            self.tool
        )
    }
}

/// What a scan found, and whether it stopped early.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub found: Vec<Reachable>,
    pub files: usize,
    /// The walk stopped at [`MAX_FILES`].
    pub truncated: bool,
    /// Every directory walked, as it was (for the cache).
    dirs: Vec<DirStamp>,
    /// The result came from the cache (no directory changed).
    pub cached: bool,
}

struct Target {
    name: String,
    dev: u64,
    ino: u64,
    size: u64,
    digest: Option<[u8; 32]>,
    path: PathBuf,
}

fn digest(path: &Path) -> Option<[u8; 32]> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Some(h.finalize().into())
}

/// Walks `fs`'s read and exec grants (expanded with `values`) for hard
/// links and copies of `profile`'s tools (but `except`, in whose own
/// sandbox its copies are its own). `shadows` are the paths that are the
/// shim in the sandbox.
pub fn scan(
    profile: &Profile,
    fs: &Filesystem,
    values: &Placeholders,
    shadows: &[PathBuf],
) -> Scan {
    scan_except(profile, fs, values, shadows, None)
}

/// [`scan`] for the sandbox of tool `except`.
pub fn scan_except(
    profile: &Profile,
    fs: &Filesystem,
    values: &Placeholders,
    shadows: &[PathBuf],
    except: Option<&str>,
) -> Scan {
    let mut targets: Vec<Target> = profile
        .tools
        .iter()
        .filter(|(name, _)| Some(name.as_str()) != except)
        .filter_map(|(name, t)| {
            let path = std::fs::canonicalize(&t.path).ok()?;
            let m = std::fs::metadata(&path).ok()?;
            Some(Target {
                name: name.clone(),
                dev: m.dev(),
                ino: m.ino(),
                size: m.size(),
                digest: None,
                path,
            })
        })
        .collect();
    let mut scan = Scan::default();
    if targets.is_empty() {
        return scan;
    }
    let canonical =
        |r: &crate::profile::PathRule| std::fs::canonicalize(r.path.expand(values)).ok();
    let writable: Vec<PathBuf> = fs.write.iter().filter_map(canonical).collect();
    let denied: Vec<PathBuf> = fs.deny.iter().filter_map(canonical).collect();
    let skip: BTreeSet<PathBuf> = shadows.iter().cloned().collect();
    let mut roots: Vec<(PathBuf, Location)> = fs
        .read
        .iter()
        .chain(&fs.exec)
        .filter_map(|r| canonical(r).map(|p| (p, r.origin.clone())))
        .collect();
    // Outermost first, so a tree inside another is walked once.
    roots.sort_by_key(|(p, _)| p.components().count());
    let mut walked: Vec<PathBuf> = Vec::new();
    for (root, origin) in roots {
        if walked.iter().any(|w| root.starts_with(w)) {
            continue;
        }
        walked.push(root.clone());
        let mut stack = vec![root];
        while let Some(path) = stack.pop() {
            if writable.iter().any(|w| path.starts_with(w))
                || denied.iter().any(|d| path.starts_with(d))
                || PSEUDO.iter().any(|p| path.starts_with(p))
            {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if let Ok(entries) = std::fs::read_dir(&path) {
                    scan.dirs.push(DirStamp::of(&path, &meta));
                    stack.extend(entries.flatten().map(|e| e.path()));
                }
                continue;
            }
            if !meta.is_file() || skip.contains(&path) {
                continue;
            }
            scan.files += 1;
            if scan.files > MAX_FILES {
                scan.truncated = true;
                return scan;
            }
            check_file(&path, &meta, &mut targets, &origin, &mut scan.found);
        }
    }
    scan
}

/// `cordon check`'s scan of a profile on this host, the agent's grants and
/// each tool's own: placeholders stand for directories that do not exist
/// yet (a session makes them), so only literal grants are walked.
pub fn check(profile: &Profile, shim: Option<&Path>) -> Vec<Reachable> {
    let unknown = PathBuf::from("/nonexistent/cordon-check");
    let values = Placeholders {
        workspace: unknown.join("workspace"),
        home: unknown.join("home"),
        tmp: unknown.join("tmp"),
    };
    let mut fs = profile.filesystem.clone();
    let programs: Vec<PathBuf> = fs.exec.iter().map(|r| r.path.expand(&values)).collect();
    let mut loader = super::loader::LoaderCache::default();
    let needs = super::loader::loader_grants(programs.iter().map(PathBuf::as_path), &mut loader);
    fs.exec.extend(needs.exec);
    fs.read.extend(needs.read);
    let shadows = super::shadow::shadows(profile, None, shim);
    let mut found = scan(profile, &fs, &values, &shadows).found;
    for (name, tool) in &profile.tools {
        let extras = Filesystem {
            read: tool.sandbox.read.clone(),
            write: fs.write.clone(),
            exec: tool.sandbox.exec.clone(),
            deny: fs.deny.clone(),
        };
        let shadows = super::shadow::shadows(profile, Some(name), shim);
        found.extend(scan_except(profile, &extras, &values, &shadows, Some(name)).found);
    }
    found
}

fn check_file(
    path: &Path,
    meta: &std::fs::Metadata,
    targets: &mut [Target],
    origin: &Location,
    found: &mut Vec<Reachable>,
) {
    let mut file_digest = None;
    for t in targets.iter_mut() {
        if *path == t.path {
            continue;
        }
        let how = if meta.dev() == t.dev && meta.ino() == t.ino {
            Some(How::HardLink)
        } else if meta.size() == t.size {
            let mine = *file_digest.get_or_insert_with(|| digest(path));
            let theirs = *t
                .digest
                .get_or_insert_with(|| digest(&t.path).unwrap_or([0; 32]));
            (mine == Some(theirs)).then_some(How::Copy)
        } else {
            None
        };
        if let Some(how) = how {
            found.push(Reachable {
                tool: t.name.clone(),
                path: path.to_path_buf(),
                how,
                grant: origin.clone(),
            });
        }
    }
}
