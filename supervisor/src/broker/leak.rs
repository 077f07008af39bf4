//! The leak scan: after a call that held raw secrets (`deliver = "raw"`,
//! as an environment variable or a file), the files it changed in trees
//! the agent can read are searched for each value, in every form the
//! output redactor knows (raw, base64, URL and JSON escaping, hex).
//!
//! This is detection, not protection: code the agent influences runs in
//! such a tool (git reading a repository's config, make a Makefile) and
//! may write the value where the agent reads it, during the call. What
//! the scan adds is that it does not go unnoticed: the call's `call_end`
//! record says `leaked`, and cordon says so on its stderr. Only
//! `deliver = "proxy"` keeps the value out of the tool altogether.
//!
//! Bounded, so a call that writes a large tree cannot make the broker
//! spend long on it: at most [`MAX_ENTRIES`] directory entries looked at,
//! [`MAX_FILES`] files read, the first [`MAX_FILE_BYTES`] of each and
//! [`MAX_TOTAL_BYTES`] in all, [`MAX_DEPTH`] directories deep; past a
//! limit the record says the scan was incomplete. A file counts as
//! written by the call when its status changed (ctime, which no process
//! can set back) at or after the call's [`mark`]: a timestamp of the
//! filesystems' own clock, taken just before the tool starts. (Their
//! clock is coarse, a tick behind the system clock: compared with
//! `SystemTime::now()`, a file the tool writes at once could seem older
//! than the call, and any slack for that would charge the previous call's
//! files to this one.) Symbolic links
//! are never followed: every directory and file is opened relative to
//! its parent's descriptor with `O_NOFOLLOW`, so renaming a directory to
//! a link during the scan cannot send it elsewhere. What it cannot see:
//! a value shorter than the redactor's minimum, a transformed value, a
//! file the tool removed again, or one read by the agent before the call
//! ended (the scan runs after).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::secrets::{Redactor, SecretValue};

/// Directory entries looked at per scan.
pub const MAX_ENTRIES: usize = 20_000;
/// Files read per scan.
pub const MAX_FILES: usize = 512;
/// Bytes read from the start of each file.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Bytes read per scan.
pub const MAX_TOTAL_BYTES: u64 = 32 * 1024 * 1024;
/// Directory depth below each tree.
pub const MAX_DEPTH: usize = 32;
/// Paths named in a record.
pub const MAX_REPORTED: usize = 16;

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// (secret name, file) for each file holding some form of a value.
    pub leaks: Vec<(String, PathBuf)>,
    /// Why not every changed file was read, if one was not.
    pub incomplete: Option<String>,
}

impl Scan {
    /// The secrets found, each once, in order.
    pub fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (s, _) in &self.leaks {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        out
    }

    /// The files, each once, at most [`MAX_REPORTED`].
    pub fn paths(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, p) in &self.leaks {
            let p = p.display().to_string();
            if !out.contains(&p) && out.len() < MAX_REPORTED {
                out.push(p);
            }
        }
        out
    }
}

/// The trees to scan: where the tool could write (`tool_writes`) that
/// the agent can also read (`agent_sees`), canonical, none inside
/// another. The call's own HOME and TMPDIR are not among the agent's.
pub fn roots(tool_writes: &[PathBuf], agent_sees: &[PathBuf]) -> Vec<PathBuf> {
    let canonical = |p: &PathBuf| std::fs::canonicalize(p).ok();
    let writes: Vec<PathBuf> = tool_writes.iter().filter_map(canonical).collect();
    let sees: Vec<PathBuf> = agent_sees.iter().filter_map(canonical).collect();
    let mut out: Vec<PathBuf> = Vec::new();
    for w in &writes {
        for a in &sees {
            let both = if w.starts_with(a) {
                w
            } else if a.starts_with(w) {
                a
            } else {
                continue;
            };
            if !out.contains(both) {
                out.push(both.clone());
            }
        }
    }
    // Only directories and regular files hold what a tool writes
    // (/dev/null is granted to every tool).
    out.retain(|p| std::fs::metadata(p).is_ok_and(|m| m.is_dir() || m.is_file()));
    let all = out.clone();
    out.retain(|p| !all.iter().any(|q| q != p && p.starts_with(q)));
    out
}

/// The time files written from now on get at least: the change time of
/// a marker file (`dir/.leak-mark`) written now, by the filesystems' own
/// clock.
pub fn mark(dir: &Path) -> std::io::Result<SystemTime> {
    let path = dir.join(".leak-mark");
    std::fs::write(&path, b"")?;
    let meta = std::fs::symlink_metadata(&path)?;
    let secs = u64::try_from(meta.ctime()).unwrap_or(0);
    let nanos = u32::try_from(meta.ctime_nsec()).unwrap_or(0);
    Ok(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Searches the files under `roots` changed at or after `since` (a
/// [`mark`]) for each of `secrets` (name, value).
pub fn scan(roots: &[PathBuf], since: SystemTime, secrets: &[(String, &SecretValue)]) -> Scan {
    let finders: Vec<(String, Redactor)> = secrets
        .iter()
        .filter_map(|(n, v)| Redactor::new(&[*v]).ok().map(|r| (n.clone(), r)))
        .filter(|(_, r)| r.pattern_count() > 0)
        .collect();
    let mut walk = Walk {
        since: secs(since),
        finders,
        entries: 0,
        files: 0,
        bytes: 0,
        out: Scan::default(),
    };
    if walk.finders.is_empty() {
        return walk.out;
    }
    for root in roots {
        let Ok(meta) = std::fs::symlink_metadata(root) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(dir) = open_nofollow(root, true) {
                walk.dir(&dir, root, 0);
            }
        } else if meta.is_file() {
            if let Ok(f) = open_nofollow(root, false) {
                walk.file(f, root);
            }
        }
        if walk.out.incomplete.is_some() {
            break;
        }
    }
    walk.out
}

struct Walk {
    /// (seconds, nanoseconds) since the epoch.
    since: (i64, i64),
    finders: Vec<(String, Redactor)>,
    entries: usize,
    files: usize,
    bytes: u64,
    out: Scan,
}

impl Walk {
    fn stop(&mut self, why: String) {
        self.out.incomplete.get_or_insert(why);
    }

    fn dir(&mut self, dir: &File, path: &Path, depth: usize) {
        if depth > MAX_DEPTH {
            return self.stop(format!(
                "{} is more than {MAX_DEPTH} directories deep",
                path.display()
            ));
        }
        let here = fd_path(dir);
        let Ok(entries) = std::fs::read_dir(&here) else {
            return;
        };
        for e in entries.flatten() {
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                return self.stop(format!("more than {MAX_ENTRIES} directory entries"));
            }
            let Ok(kind) = e.file_type() else { continue };
            let name = e.file_name();
            let child = here.join(&name);
            let shown = path.join(&name);
            if kind.is_dir() {
                if let Ok(d) = open_nofollow(&child, true) {
                    self.dir(&d, &shown, depth + 1);
                }
            } else if kind.is_file() {
                if let Ok(f) = open_nofollow(&child, false) {
                    self.file(f, &shown);
                }
            }
            if self.out.incomplete.is_some() {
                return;
            }
        }
    }

    fn file(&mut self, f: File, path: &Path) {
        let Ok(meta) = f.metadata() else { return };
        // Opened without following a link, and still a regular file (not
        // a FIFO that would block, nor a device).
        if !meta.is_file() || (meta.ctime(), meta.ctime_nsec()) < self.since {
            return;
        }
        self.files += 1;
        if self.files > MAX_FILES {
            return self.stop(format!("more than {MAX_FILES} files changed"));
        }
        let left = MAX_TOTAL_BYTES.saturating_sub(self.bytes);
        if left == 0 {
            return self.stop(format!("more than {MAX_TOTAL_BYTES} bytes changed"));
        }
        let mut buf = zeroize::Zeroizing::new(Vec::new());
        if f.take(MAX_FILE_BYTES.min(left))
            .read_to_end(&mut buf)
            .is_err()
        {
            return;
        }
        self.bytes += buf.len() as u64;
        for (name, finder) in &self.finders {
            if finder.finds(&buf) {
                self.out.leaks.push((name.clone(), path.to_path_buf()));
            }
        }
    }
}

/// `/proc/self/fd/N`: the directory itself, whatever its name is now.
fn fd_path(f: &File) -> PathBuf {
    PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(f)
    ))
}

/// Opens `path` read-only without following a link in its last part,
/// without blocking on a FIFO.
fn open_nofollow(path: &Path, dir: bool) -> std::io::Result<File> {
    let mut flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    if dir {
        flags |= libc::O_DIRECTORY;
    }
    OpenOptions::new().read(true).custom_flags(flags).open(path)
}

fn secs(t: SystemTime) -> (i64, i64) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        i64::from(d.subsec_nanos()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "ghp_LeakScanCanary0123456789abcdef";

    fn value() -> SecretValue {
        SecretValue::new(VALUE.as_bytes().to_vec())
    }

    #[test]
    fn changed_files_holding_a_form_of_the_value_are_found_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ws = dir.path().join("ws");
        let outside = dir.path().join("outside");
        for d in [&ws, &outside, &ws.join("a/b")] {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
        }
        let w = |p: &Path, text: &str| std::fs::write(p, text).unwrap_or_else(|e| panic!("{e}"));
        // Changed before the call (here: a call that starts later): left
        // alone, even holding the value.
        w(&ws.join("old.txt"), VALUE);
        std::thread::sleep(Duration::from_millis(30));
        let before = mark(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let v = value();
        let secrets = [("TOKEN".to_string(), &v)];
        let none = scan(std::slice::from_ref(&ws), before, &secrets);
        assert!(none.leaks.is_empty(), "{none:?}");
        std::fs::remove_file(ws.join("old.txt")).unwrap_or_else(|e| panic!("{e}"));
        let since = mark(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        w(&ws.join("a/b/leak.txt"), &format!("token={VALUE}\n"));
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("x:{VALUE}"));
        w(&ws.join("basic.txt"), &b64);
        w(&ws.join("clean.txt"), "nothing here");
        w(&outside.join("elsewhere.txt"), VALUE);
        std::os::unix::fs::symlink(&outside, ws.join("link")).unwrap_or_else(|e| panic!("{e}"));
        let found = scan(std::slice::from_ref(&ws), since, &secrets);
        let mut paths: Vec<String> = found
            .leaks
            .iter()
            .map(|(_, p)| p.display().to_string())
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                ws.join("a/b/leak.txt").display().to_string(),
                ws.join("basic.txt").display().to_string()
            ]
        );
        assert_eq!(found.secrets(), ["TOKEN"]);
        assert!(found.incomplete.is_none());
    }

    #[test]
    fn the_trees_are_where_the_tool_writes_that_the_agent_sees() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ws = dir.path().join("ws");
        let call_tmp = dir.path().join("call/tmp");
        for d in [&ws.join("sub"), &call_tmp] {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
        }
        let got = roots(
            &[ws.clone(), call_tmp.clone(), PathBuf::from("/dev/null")],
            &[
                dir.path().to_path_buf(),
                ws.join("sub"),
                PathBuf::from("/dev/null"),
            ],
        );
        let ws = std::fs::canonicalize(ws).unwrap_or_else(|e| panic!("{e}"));
        let call_tmp = std::fs::canonicalize(call_tmp).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, [ws, call_tmp]);
    }

    #[test]
    fn a_large_tree_stops_the_scan_and_says_so() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let since = mark(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..=MAX_FILES {
            std::fs::write(dir.path().join(format!("f{i}")), "x").unwrap_or_else(|e| panic!("{e}"));
        }
        let v = value();
        let found = scan(&[dir.path().to_path_buf()], since, &[("T".into(), &v)]);
        assert!(
            found
                .incomplete
                .as_deref()
                .is_some_and(|w| w.contains("files changed")),
            "{found:?}"
        );
    }
}
