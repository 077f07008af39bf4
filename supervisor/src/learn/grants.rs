//! Observed paths turned into profile grants.
//!
//! Each path is resolved (symlinks too: Landlock decides on the real
//! file), then generalised: anything in the workspace, HOME or TMPDIR is
//! that placeholder; library and data trees collapse to the tree of one
//! package (`/usr/lib/python3.11`, `/usr/share/zoneinfo`); /proc becomes
//! `/proc`; other files stay exact. Paths that no longer exist were not
//! there for the agent either (a probe that failed) and are dropped,
//! except that a write to a removed file grants its directory.
//!
//! Programs run get exec grants on themselves and on a script's `#!`
//! program (the ELF interpreter and libraries are cordon's to grant,
//! `sandbox::loader`). A program that lies in a tree the run wrote gets
//! none: an exec grant there would let the agent run whatever it writes
//! (`cordon check` refuses it); it is reported instead.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::profile::Placeholders;

/// Trees whose packages are granted whole: a path below one is granted as
/// the tree's next component.
const TREES: &[&str] = &[
    "/usr/lib",
    "/usr/lib64",
    "/usr/lib32",
    "/usr/libexec",
    "/usr/share",
    "/usr/local/lib",
    "/usr/local/share",
    "/usr/include",
    "/lib",
    "/lib64",
    "/opt",
    "/nix/store",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/alternatives",
];

/// The grant template for a resolved path.
pub fn template(path: &Path, values: &Placeholders) -> String {
    for (dir, name) in [
        (&values.workspace, "{workspace}"),
        (&values.home, "{home}"),
        (&values.tmp, "{tmp}"),
    ] {
        if path.starts_with(dir) {
            return name.to_string();
        }
    }
    if path.starts_with("/proc") {
        return "/proc".to_string();
    }
    match package_tree(path) {
        Some(tree) => tree.display().to_string(),
        None => path.display().to_string(),
    }
}

/// The package tree `path` lies in (`/usr/lib/python3.11` for a file below
/// it), if it lies below one of the [`TREES`].
pub fn package_tree(path: &Path) -> Option<PathBuf> {
    TREES.iter().find_map(|tree| {
        let mut parts = path.strip_prefix(tree).ok()?.components();
        match (parts.next(), parts.next()) {
            (Some(first), Some(_)) => Some(Path::new(tree).join(first)),
            _ => None,
        }
    })
}

/// An exec grant keeps the exact file, with a placeholder prefix when it
/// lies in the workspace, HOME or TMPDIR.
pub fn exec_template(path: &Path, values: &Placeholders) -> String {
    for (dir, name) in [
        (&values.workspace, "{workspace}"),
        (&values.home, "{home}"),
        (&values.tmp, "{tmp}"),
    ] {
        if let Ok(rest) = path.strip_prefix(dir) {
            return if rest.as_os_str().is_empty() {
                name.to_string()
            } else {
                format!("{name}/{}", rest.display())
            };
        }
    }
    path.display().to_string()
}

/// Whether `t` is `entry` or lies below it (both templates).
pub fn covered_by(t: &str, entry: &str) -> bool {
    t == entry || (t.starts_with(entry) && t[entry.len()..].starts_with('/')) || entry == "/"
}

/// The read, write and exec grants for what was observed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Grants {
    pub read: BTreeSet<String>,
    pub write: BTreeSet<String>,
    pub exec: BTreeSet<String>,
    /// Programs that ran from a writable tree: not granted, reported.
    pub exec_in_writable: BTreeSet<String>,
    /// Reads never granted by learn ([`left_out`]), each with why: reported.
    pub left_out: BTreeSet<String>,
}

/// Why a read the run made is not granted, if it is not: what would make
/// the learned profile break cordon's tools or fit only this machine.
pub fn left_out(real: &Path) -> Option<&'static str> {
    if real == Path::new("/etc/profile") || real.starts_with("/etc/profile.d") {
        // `bash -l` (Codex runs every command so) would reset PATH and
        // drop cordon's tool directory: git would be /usr/bin/git itself.
        return Some("a login shell's start-up file resets PATH, dropping cordon's tools");
    }
    if real.is_dir() && real.components().count() <= 2 && !real.starts_with("/proc") {
        // Landlock grants a directory with all below it: a listing of `/`
        // or /etc (Gemini CLI opens `/`) would grant the whole tree.
        return Some("a top-level directory, which would grant everything below it");
    }
    if real.starts_with("/sys/fs/cgroup") {
        // Node and Go read their memory and CPU limits there; the path
        // names this host's cgroup, and they run without it.
        return Some("this host's cgroup (a path no other machine has); runtimes read their limits there and go on without");
    }
    None
}

impl Grants {
    /// Drops entries covered by another of the same list, and reads
    /// covered by a write.
    fn tidy(&mut self) {
        for list in [&mut self.read, &mut self.write, &mut self.exec] {
            let all: Vec<String> = list.iter().cloned().collect();
            list.retain(|t| !all.iter().any(|o| o != t && covered_by(t, o)));
        }
        let write = self.write.clone();
        self.read
            .retain(|t| !write.iter().any(|w| covered_by(t, w)));
        self.exec_outside(&write);
    }

    /// Moves the exec grants that overlap a write grant in `write` to
    /// [`Grants::exec_in_writable`].
    pub fn exec_outside(&mut self, write: &BTreeSet<String>) {
        let (bad, ok): (BTreeSet<String>, BTreeSet<String>) = std::mem::take(&mut self.exec)
            .into_iter()
            .partition(|t| write.iter().any(|w| covered_by(t, w) || covered_by(w, t)));
        self.exec = ok;
        self.exec_in_writable.extend(bad);
    }
}

/// Resolves and generalises observed accesses.
pub fn grants(
    read: &BTreeSet<PathBuf>,
    write: &BTreeSet<PathBuf>,
    exec: &BTreeSet<PathBuf>,
    values: &Placeholders,
) -> Grants {
    let mut g = Grants::default();
    for p in read {
        if let Ok(real) = std::fs::canonicalize(p) {
            let placeheld = [&values.workspace, &values.home, &values.tmp]
                .into_iter()
                .any(|d| real.starts_with(d));
            match left_out(&real).filter(|_| !placeheld) {
                Some(why) => {
                    let shown = match real.strip_prefix("/sys/fs/cgroup") {
                        Ok(_) => "/sys/fs/cgroup/...".to_string(),
                        Err(_) => real.display().to_string(),
                    };
                    g.left_out.insert(format!("{shown} ({why})"));
                }
                None => {
                    g.read.insert(template(&real, values));
                }
            }
        }
    }
    for p in write {
        let real = std::fs::canonicalize(p).ok().or_else(|| {
            // Removed since (a temporary file): its directory.
            p.parent().and_then(|d| std::fs::canonicalize(d).ok())
        });
        if let Some(real) = real {
            g.write.insert(template(&real, values));
        }
    }
    for p in exec {
        let Ok(real) = std::fs::canonicalize(p) else {
            continue;
        };
        for program in with_interpreters(&real) {
            g.exec.insert(exec_template(&program, values));
        }
    }
    g.tidy();
    g
}

/// `program` and the `#!` programs the kernel runs it with, resolved.
/// An ELF program's interpreter is not among them: cordon grants the
/// loader itself, and only as an interpreter.
pub fn with_interpreters(program: &Path) -> Vec<PathBuf> {
    let mut out = vec![program.to_path_buf()];
    let mut next = Some(program.to_path_buf());
    // A script's interpreter may itself be a script (bounded, as the kernel is).
    for _ in 0..4 {
        let Some(p) = next.take() else { break };
        let Some(interp) = shebang(&p) else { break };
        let Ok(real) = std::fs::canonicalize(&interp) else {
            break;
        };
        if out.contains(&real) {
            break;
        }
        out.push(real.clone());
        next = Some(real);
    }
    out
}

/// The `#!` program of a script.
fn shebang(program: &Path) -> Option<PathBuf> {
    let mut f = std::fs::File::open(program).ok()?;
    let mut head = vec![0u8; 4096];
    let n = f.read(&mut head).ok()?;
    head.truncate(n);
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    let prog = line.split_whitespace().next()?;
    Some(PathBuf::from(prog))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Placeholders {
        Placeholders {
            workspace: "/work/ws".into(),
            home: "/dev/shm/s/home".into(),
            tmp: "/dev/shm/s/tmp".into(),
        }
    }

    #[test]
    fn what_would_break_tools_or_fit_one_host_is_left_out_and_said() {
        let t = tempfile::tempdir().unwrap();
        let ws = t.path().canonicalize().unwrap();
        let v = Placeholders {
            workspace: ws.clone(),
            home: ws.join("home"),
            tmp: ws.join("tmp"),
        };
        let read: BTreeSet<PathBuf> = [
            "/",
            "/etc",
            "/etc/profile",
            "/etc/hosts",
            "/sys/fs/cgroup/cpu.max",
            "/proc/self/status",
        ]
        .iter()
        .map(PathBuf::from)
        .chain([ws.clone()])
        .filter(|p| p.exists())
        .collect();
        let g = grants(&read, &BTreeSet::new(), &BTreeSet::new(), &v);
        for gone in ["/", "/etc", "/etc/profile"] {
            assert!(!g.read.contains(gone), "{gone}: {:?}", g.read);
            assert!(
                g.left_out
                    .iter()
                    .any(|l| l.starts_with(&format!("{gone} ("))),
                "{gone}: {:?}",
                g.left_out
            );
        }
        assert!(!g.read.iter().any(|r| r.starts_with("/sys/fs/cgroup")));
        // Kept: an ordinary file, /proc, and the workspace wherever it is.
        assert!(
            g.read.contains("/etc/hosts") && g.read.contains("/proc"),
            "{:?}",
            g.read
        );
        assert!(g.read.contains("{workspace}"), "{:?}", g.read);
        assert!(left_out(Path::new("/etc/profile.d/01-locale-fix.sh")).is_some());
        assert!(left_out(Path::new("/usr/share/zoneinfo")).is_none());
    }

    #[test]
    fn paths_generalise_to_placeholders_and_package_trees() {
        let v = values();
        let t = |p: &str| template(Path::new(p), &v);
        assert_eq!(t("/work/ws/data/notes.txt"), "{workspace}");
        assert_eq!(t("/dev/shm/s/home/.cache/x"), "{home}");
        assert_eq!(
            t("/usr/lib/python3.11/json/__init__.py"),
            "/usr/lib/python3.11"
        );
        assert_eq!(
            t("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            "/usr/lib/x86_64-linux-gnu"
        );
        assert_eq!(t("/usr/share/zoneinfo/UTC"), "/usr/share/zoneinfo");
        assert_eq!(
            t("/lib64/ld-linux-x86-64.so.2"),
            "/lib64/ld-linux-x86-64.so.2"
        );
        assert_eq!(t("/etc/hosts"), "/etc/hosts");
        assert_eq!(t("/etc/ssl/certs/ca.pem"), "/etc/ssl/certs");
        assert_eq!(t("/proc/self/status"), "/proc");
        assert_eq!(t("/work/wsx/a"), "/work/wsx/a");
        assert_eq!(
            exec_template(Path::new("/work/ws/bin/helper"), &v),
            "{workspace}/bin/helper"
        );
        assert_eq!(exec_template(Path::new("/usr/bin/git"), &v), "/usr/bin/git");
    }

    #[test]
    fn covered_entries_are_dropped() {
        let mut g = Grants::default();
        for r in [
            "/usr/lib/python3.11",
            "{workspace}",
            "/etc/hosts",
            "/usr/lib/python3.11/x",
        ] {
            g.read.insert(r.into());
        }
        g.write.insert("{workspace}".into());
        g.tidy();
        assert_eq!(
            g.read.into_iter().collect::<Vec<_>>(),
            ["/etc/hosts", "/usr/lib/python3.11"]
        );
        assert!(covered_by("{workspace}", "{workspace}"));
        assert!(!covered_by("{workspacex}", "{workspace}"));
        assert!(covered_by("/usr/lib/a", "/usr/lib"));
        assert!(!covered_by("/usr/libx", "/usr/lib"));
    }

    #[test]
    fn scripts_bring_their_programs_and_elf_files_nothing() {
        // A script brings its #! program; an ELF program brings nothing
        // (its loader is cordon's to grant, as an interpreter only).
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.sh");
        std::fs::write(&script, "#!/bin/sh -e\necho hi\n").unwrap();
        let all = with_interpreters(&script);
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        assert_eq!(all, vec![script, sh.clone()]);
        assert_eq!(with_interpreters(&sh), vec![sh]);
    }

    #[test]
    fn programs_in_written_trees_are_reported_not_granted() {
        let mut g = Grants::default();
        g.write.insert("{workspace}".into());
        g.exec.insert("{workspace}/helper.sh".into());
        g.exec.insert("/usr/bin/dash".into());
        g.tidy();
        assert_eq!(g.exec.into_iter().collect::<Vec<_>>(), ["/usr/bin/dash"]);
        assert_eq!(
            g.exec_in_writable.into_iter().collect::<Vec<_>>(),
            ["{workspace}/helper.sh"]
        );
    }
}
