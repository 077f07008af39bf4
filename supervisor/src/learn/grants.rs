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
//! Programs run get exec grants on themselves and on what the kernel
//! runs them with: the ELF interpreter (PT_INTERP) and a script's `#!`
//! program.

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
    for tree in TREES {
        if let Ok(rest) = path.strip_prefix(tree) {
            let mut parts = rest.components();
            if let (Some(first), Some(_)) = (parts.next(), parts.next()) {
                return Path::new(tree).join(first).display().to_string();
            }
        }
    }
    path.display().to_string()
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
            g.read.insert(template(&real, values));
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

/// `program` and what the kernel runs it with, resolved.
pub fn with_interpreters(program: &Path) -> Vec<PathBuf> {
    let mut out = vec![program.to_path_buf()];
    let mut next = Some(program.to_path_buf());
    // A script's interpreter may itself be a script (bounded, as the kernel is).
    for _ in 0..4 {
        let Some(p) = next.take() else { break };
        let Some(interp) = interpreter(&p) else { break };
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

/// The `#!` program of a script, or the PT_INTERP of an ELF executable.
fn interpreter(program: &Path) -> Option<PathBuf> {
    let mut f = std::fs::File::open(program).ok()?;
    let mut head = vec![0u8; 4096];
    let n = f.read(&mut head).ok()?;
    head.truncate(n);
    if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|&b| b == b'\n').next()?;
        let line = std::str::from_utf8(line).ok()?.trim();
        let prog = line.split_whitespace().next()?;
        return Some(PathBuf::from(prog));
    }
    elf_interp(&head, &mut f)
}

/// PT_INTERP of a 64-bit little-endian ELF file (`head` is its start).
fn elf_interp(head: &[u8], f: &mut std::fs::File) -> Option<PathBuf> {
    use std::io::{Seek, SeekFrom};
    if head.len() < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |b: &[u8], o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |b: &[u8], o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    let phoff = u64_at(head, 0x20)?;
    let phentsize = usize::from(u16_at(head, 0x36)?);
    let phnum = usize::from(u16_at(head, 0x38)?);
    if phentsize < 56 || phnum > 512 {
        return None;
    }
    let mut table = vec![0u8; phentsize * phnum];
    f.seek(SeekFrom::Start(phoff)).ok()?;
    f.read_exact(&mut table).ok()?;
    for ph in table.chunks_exact(phentsize) {
        const PT_INTERP: u32 = 3;
        if u32_at(ph, 0)? == PT_INTERP {
            let offset = u64_at(ph, 8)?;
            let size = usize::try_from(u64_at(ph, 32)?).ok()?.min(4096);
            let mut name = vec![0u8; size];
            f.seek(SeekFrom::Start(offset)).ok()?;
            f.read_exact(&mut name).ok()?;
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            let text = std::str::from_utf8(&name[..end]).ok()?;
            return Some(PathBuf::from(text));
        }
    }
    None
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
    fn programs_bring_their_interpreters() {
        // A script brings its #! program, which brings its ELF interpreter.
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.sh");
        std::fs::write(&script, "#!/bin/sh -e\necho hi\n").unwrap();
        let all = with_interpreters(&script);
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        assert_eq!(all[0], script);
        assert_eq!(all[1], sh);
        // Debian's /bin/sh (dash) is dynamically linked.
        let sh_all = with_interpreters(&sh);
        assert!(
            sh_all.len() == 2 && sh_all[1].to_string_lossy().contains("ld-linux"),
            "{sh_all:?}"
        );
    }
}
