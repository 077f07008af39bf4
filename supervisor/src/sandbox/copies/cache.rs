//! Clean copies scans, kept: a scan of the same grants and tools is
//! answered from a file while none of the directories it walked changed
//! and it is younger than a day, so a run does not walk /usr every time.
//! Only clean results are kept (a finding is found again), never where the
//! sandbox could write.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{scan, Scan};
use crate::profile::{Filesystem, Placeholders, Profile};
use crate::sandbox::host_cache::{write_atomic, DirStamp};

/// How long a clean scan is trusted while no walked directory changes: a
/// file rewritten in place (its directory unchanged) is seen after this.
pub const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[derive(serde::Serialize, serde::Deserialize)]
struct CachedScan {
    created: u64,
    files: usize,
    dirs: Vec<DirStamp>,
}

/// What a scan depends on besides the directories' contents: the roots,
/// the skipped trees and the tools, as a file name.
fn cache_key(
    profile: &Profile,
    fs: &Filesystem,
    values: &Placeholders,
    shadows: &[PathBuf],
) -> String {
    let mut h = Sha256::new();
    let mut add = |s: &str| {
        h.update(s.as_bytes());
        h.update([0]);
    };
    // Rules as written: {home} and {tmp} are new, empty directories each
    // session (and writable, so never walked); the workspace is named.
    add(&values.workspace.display().to_string());
    for (list, rules) in [
        ("r", &fs.read),
        ("x", &fs.exec),
        ("w", &fs.write),
        ("d", &fs.deny),
    ] {
        let mut paths: Vec<String> = rules.iter().map(|r| r.path.to_string()).collect();
        paths.sort();
        add(list);
        paths.iter().for_each(|p| add(p));
    }
    add("s");
    shadows.iter().for_each(|p| add(&p.display().to_string()));
    for (name, t) in &profile.tools {
        let m = std::fs::metadata(&t.path).ok();
        add(&format!(
            "t {name} {} {:?}",
            t.path.display(),
            m.map(|m| (
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime()
            ))
        ));
    }
    crate::audit::hex(&h.finalize())
}

/// [`scan`], answered from `cache_dir` when a clean scan of the same grants
/// is there, younger than [`CACHE_TTL`], and none of its directories has
/// changed since (only clean results are kept: a finding is found again).
pub fn scan_cached(
    profile: &Profile,
    fs: &Filesystem,
    values: &Placeholders,
    shadows: &[PathBuf],
    cache_dir: Option<&Path>,
) -> Scan {
    if profile.tools.is_empty() {
        return Scan::default();
    }
    let Some(dir) = cache_dir else {
        return scan(profile, fs, values, shadows);
    };
    let file = dir.join(format!("{}.json", cache_key(profile, fs, values, shadows)));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Some(c) = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice::<CachedScan>(&b).ok())
    {
        let fresh = now.saturating_sub(c.created) < CACHE_TTL.as_secs();
        if fresh && c.dirs.iter().all(DirStamp::unchanged) {
            return Scan {
                files: c.files,
                dirs: c.dirs,
                cached: true,
                ..Scan::default()
            };
        }
    }
    let s = scan(profile, fs, values, shadows);
    if s.found.is_empty() && !s.truncated {
        let c = CachedScan {
            created: now,
            files: s.files,
            dirs: s.dirs.clone(),
        };
        if let Ok(bytes) = serde_json::to_vec(&c) {
            let _ = write_atomic(dir, &file, &bytes);
        }
    }
    s
}
