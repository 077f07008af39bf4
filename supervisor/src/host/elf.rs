//! What a dynamically linked program needs to start: its ELF interpreter
//! (the dynamic loader, which the kernel executes) and the shared
//! libraries the loader maps (which it only reads). cordon grants these
//! itself for every executable it lets a sandbox run, so a profile names
//! programs, not the loader: `exec = ["/usr/bin/dash"]` just works, and
//! the loader, granted only as an interpreter, is never a program the
//! agent may run directly (`ld.so /any/readable/file` would run anything).
//!
//! Reading only (ELF64 little-endian, what Linux x86-64 and aarch64 run);
//! libraries are searched like glibc's loader does: DT_RPATH (without
//! DT_RUNPATH), DT_RUNPATH, the directories of /etc/ld.so.conf, then the
//! system directories.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// How deep `include` lines in ld.so.conf are followed.
const MAX_CONF_DEPTH: usize = 8;
/// Libraries resolved per program, at most (a loop guard).
const MAX_LIBRARIES: usize = 512;

/// The directories glibc searches after the cache, and the multiarch ones
/// Debian's ld.so.conf names.
const SYSTEM_DIRS: [&str; 8] = [
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// The dynamic-linking facts of one ELF file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfInfo {
    /// PT_INTERP, as written (e.g. `/lib64/ld-linux-x86-64.so.2`).
    pub interpreter: Option<PathBuf>,
    /// DT_NEEDED names, in order.
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
}

/// What a program needs besides itself, resolved to canonical paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// The interpreter, which must be executable.
    pub interpreter: Option<PathBuf>,
    /// Every library, direct or not, which must be readable.
    pub libraries: BTreeSet<PathBuf>,
    /// Names no search found (the program will not start).
    pub missing: Vec<String>,
}

/// Why a file's ELF headers could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: malformed ELF: {what}")]
    Malformed { path: PathBuf, what: &'static str },
}

// Every offset comes from the file: all arithmetic on them is checked.
fn bytes_at<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    bytes_at(b, at).map(u16::from_le_bytes)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    bytes_at(b, at).map(u32::from_le_bytes)
}

fn u64_at(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(bytes_at(b, at).map(u64::from_le_bytes)?).ok()
}

/// `base + off`, or an error.
fn add(base: usize, off: usize) -> Result<usize, &'static str> {
    base.checked_add(off).ok_or("offset overflow")
}

/// The NUL-terminated string at `at`.
fn c_str(b: &[u8], at: usize) -> Option<String> {
    let rest = b.get(at..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// Parses the dynamic-linking facts of `bytes` (a whole ELF file); `None`
/// when it is not a 64-bit little-endian ELF file (a script, say).
pub fn parse(bytes: &[u8]) -> Result<Option<ElfInfo>, &'static str> {
    parse_with(&mut |at, len| bytes.get(at..at.checked_add(len)?).map(<[u8]>::to_vec))
}

/// The largest region read at once (program headers, the dynamic section,
/// its string table, the interpreter's name).
const MAX_REGION: usize = 4 * 1024 * 1024;

/// [`parse`] over a reader of `len` bytes at an offset (`None` past the
/// end), so a file is read only where its headers point.
fn parse_with(
    read: &mut dyn FnMut(usize, usize) -> Option<Vec<u8>>,
) -> Result<Option<ElfInfo>, &'static str> {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const PT_LOAD: u32 = 1;
    const DT_NEEDED: usize = 1;
    const DT_STRTAB: usize = 5;
    const DT_STRSZ: usize = 10;
    const DT_RPATH: usize = 15;
    const DT_RUNPATH: usize = 29;
    if read(0, 4).as_deref() != Some(b"\x7fELF") {
        return Ok(None);
    }
    let mut region = |at: usize, len: usize, what: &'static str| {
        if len > MAX_REGION {
            return Err(what);
        }
        read(at, len).ok_or(what)
    };
    let head = region(0, 64, "truncated ELF header")?;
    // ELFCLASS64, ELFDATA2LSB: what this loader search knows.
    if head[4] != 2 || head[5] != 1 {
        return Ok(None);
    }
    let phoff = u64_at(&head, 0x20).ok_or("no program header offset")?;
    let phentsize = usize::from(u16_at(&head, 0x36).ok_or("no program header size")?);
    let phnum = usize::from(u16_at(&head, 0x38).ok_or("no program header count")?);
    if phentsize < 56 {
        return Err("program headers too small");
    }
    let table = region(
        phoff,
        phentsize.checked_mul(phnum).ok_or("header overflow")?,
        "program headers outside the file",
    )?;
    let mut info = ElfInfo::default();
    let mut dynamic = None;
    // (vaddr, offset, filesz) of each PT_LOAD, to map DT_STRTAB's address.
    let mut loads = Vec::new();
    for i in 0..phnum {
        let ph = i * phentsize;
        let kind = u32_at(&table, ph).ok_or("truncated program header")?;
        let offset = u64_at(&table, add(ph, 8)?).ok_or("truncated program header")?;
        let vaddr = u64_at(&table, add(ph, 16)?).ok_or("truncated program header")?;
        let filesz = u64_at(&table, add(ph, 32)?).ok_or("truncated program header")?;
        match kind {
            PT_INTERP => {
                let name = region(offset, filesz, "PT_INTERP outside the file")?;
                let s = c_str(&name, 0).ok_or("PT_INTERP without its NUL")?;
                info.interpreter = Some(PathBuf::from(s));
            }
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            PT_LOAD => loads.push((vaddr, offset, filesz)),
            _ => {}
        }
    }
    let Some((dyn_off, dyn_size)) = dynamic else {
        return Ok(Some(info));
    };
    let section = region(dyn_off, dyn_size, "dynamic section outside the file")?;
    let mut entries = Vec::new();
    let (mut strtab_addr, mut strsz) = (None, None);
    for i in 0..dyn_size / 16 {
        let at = i * 16;
        let (Some(tag), Some(val)) = (u64_at(&section, at), u64_at(&section, add(at, 8)?)) else {
            return Err("truncated dynamic section");
        };
        match tag {
            0 => break,
            DT_STRTAB => strtab_addr = Some(val),
            DT_STRSZ => strsz = Some(val),
            DT_NEEDED | DT_RPATH | DT_RUNPATH => entries.push((tag, val)),
            _ => {}
        }
    }
    if entries.is_empty() {
        return Ok(Some(info));
    }
    let strtab_addr = strtab_addr.ok_or("dynamic section without a string table")?;
    let strtab = loads
        .iter()
        .find(|(vaddr, _, filesz)| {
            strtab_addr >= *vaddr
                && vaddr
                    .checked_add(*filesz)
                    .is_some_and(|end| strtab_addr < end)
        })
        .and_then(|(vaddr, offset, _)| (strtab_addr - vaddr).checked_add(*offset))
        .ok_or("string table outside every loaded segment")?;
    let strings = region(
        strtab,
        strsz.ok_or("dynamic section without a string table size")?,
        "string table outside the file",
    )?;
    for (tag, val) in entries {
        let s = c_str(&strings, val).ok_or("dynamic string outside its table")?;
        match tag {
            DT_NEEDED => info.needed.push(s),
            DT_RPATH => info.rpath.extend(s.split(':').map(String::from)),
            _ => info.runpath.extend(s.split(':').map(String::from)),
        }
    }
    Ok(Some(info))
}

/// Reads and parses `path`, only where its headers point.
pub fn read(path: &Path) -> Result<Option<ElfInfo>, ElfError> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).map_err(|source| ElfError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut at = |off: usize, len: usize| {
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, u64::try_from(off).ok()?).ok()?;
        Some(buf)
    };
    parse_with(&mut at).map_err(|what| ElfError::Malformed {
        path: path.to_path_buf(),
        what,
    })
}

/// The directories /etc/ld.so.conf (and what it includes) lists, under
/// `root` (normally `/`).
pub fn ld_so_conf_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    read_conf(root, &root.join("etc/ld.so.conf"), 0, &mut out);
    out
}

fn read_conf(root: &Path, file: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_CONF_DEPTH {
        return;
    }
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include") {
            for inc in expand_include(root, file, pattern.trim()) {
                read_conf(root, &inc, depth + 1, out);
            }
        } else if line.starts_with('/') {
            let dir = root.join(line.trim_start_matches('/'));
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
}

/// `include /etc/ld.so.conf.d/*.conf`: only `*` in the last component.
fn expand_include(root: &Path, from: &Path, pattern: &str) -> Vec<PathBuf> {
    let path = if pattern.starts_with('/') {
        root.join(pattern.trim_start_matches('/'))
    } else {
        from.parent().unwrap_or(root).join(pattern)
    };
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let Some((prefix, suffix)) = name.split_once('*') else {
        return vec![path.clone()];
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.len() >= prefix.len() + suffix.len() && n.starts_with(prefix) && n.ends_with(suffix)
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Resolves what `program` needs to start, recursively. The search
/// directories are `conf_dirs` (from [`ld_so_conf_dirs`]) then the system
/// directories. `Ok(None)`: not an ELF file.
pub fn needs(program: &Path, conf_dirs: &[PathBuf]) -> Result<Option<Needs>, ElfError> {
    Resolver::new(conf_dirs.to_vec()).needs(program)
}

/// [`needs`] for many programs, each library read and each name searched
/// once (programs of one sandbox share most of their libraries).
#[derive(Debug, Default)]
pub struct Resolver {
    conf: Vec<PathBuf>,
    infos: std::collections::HashMap<PathBuf, Option<ElfInfo>>,
    /// Names found by the system search (no RPATH/RUNPATH involved).
    system: std::collections::HashMap<String, Option<PathBuf>>,
}

impl Resolver {
    pub fn new(conf: Vec<PathBuf>) -> Resolver {
        Resolver {
            conf,
            ..Resolver::default()
        }
    }

    fn info(&mut self, lib: &Path) -> Option<ElfInfo> {
        if let Some(i) = self.infos.get(lib) {
            return i.clone();
        }
        let i = read(lib).ok().flatten();
        self.infos.insert(lib.to_path_buf(), i.clone());
        i
    }

    fn find(&mut self, object: &Path, info: &ElfInfo, name: &str) -> Option<PathBuf> {
        let system = info.rpath.is_empty() && info.runpath.is_empty() && !name.contains('/');
        if system {
            if let Some(found) = self.system.get(name) {
                return found.clone();
            }
        }
        let found = find_library(object, info, name, &self.conf)
            .map(|lib| std::fs::canonicalize(&lib).unwrap_or(lib));
        if system {
            self.system.insert(name.to_string(), found.clone());
        }
        found
    }

    /// What `program` needs, recursively.
    pub fn needs(&mut self, program: &Path) -> Result<Option<Needs>, ElfError> {
        let Some(info) = read(program)? else {
            return Ok(None);
        };
        let mut out = Needs {
            interpreter: info
                .interpreter
                .as_ref()
                .map(|i| std::fs::canonicalize(i).unwrap_or_else(|_| i.clone())),
            ..Needs::default()
        };
        let mut queue: Vec<(PathBuf, ElfInfo)> = vec![(program.to_path_buf(), info)];
        let mut seen = BTreeSet::new();
        while let Some((object, info)) = queue.pop() {
            for name in &info.needed {
                if !seen.insert(name.clone()) {
                    continue;
                }
                match self.find(&object, &info, name) {
                    Some(lib) => {
                        if out.libraries.len() >= MAX_LIBRARIES {
                            return Ok(Some(out));
                        }
                        if out.libraries.insert(lib.clone()) {
                            if let Some(li) = self.info(&lib) {
                                queue.push((lib, li));
                            }
                        }
                    }
                    None => out.missing.push(name.clone()),
                }
            }
        }
        Ok(Some(out))
    }
}

/// Where the loader would find `name` for `object`.
fn find_library(object: &Path, info: &ElfInfo, name: &str, conf: &[PathBuf]) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let origin = object.parent().unwrap_or(Path::new("/"));
    let expand = |d: &String| -> PathBuf {
        PathBuf::from(
            d.replace("$ORIGIN", &origin.to_string_lossy())
                .replace("${ORIGIN}", &origin.to_string_lossy()),
        )
    };
    let rpath: Vec<PathBuf> = if info.runpath.is_empty() {
        info.rpath.iter().map(expand).collect()
    } else {
        Vec::new()
    };
    let runpath: Vec<PathBuf> = info.runpath.iter().map(expand).collect();
    rpath
        .iter()
        .chain(&runpath)
        .chain(conf)
        .cloned()
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_system_binary_needs_its_loader_and_libc() {
        let conf = ld_so_conf_dirs(Path::new("/"));
        let n = needs(Path::new("/usr/bin/ls"), &conf).unwrap().unwrap();
        let interp = n.interpreter.clone().expect("ls is dynamically linked");
        assert!(
            interp.to_string_lossy().contains("ld-linux"),
            "{}",
            interp.display()
        );
        assert!(
            n.libraries
                .iter()
                .any(|l| l.file_name().is_some_and(|f| f == "libc.so.6")),
            "{n:?}"
        );
        assert!(n.missing.is_empty(), "{n:?}");
        // Every library is a canonical, existing file.
        for l in &n.libraries {
            assert_eq!(&std::fs::canonicalize(l).unwrap(), l);
        }
    }

    #[test]
    fn scripts_and_garbage_are_not_elf() {
        assert_eq!(parse(b"#!/bin/sh\necho hi\n").unwrap(), None);
        assert_eq!(parse(b"").unwrap(), None);
        assert!(parse(b"\x7fELF\x02\x01\x01").is_err());
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert!(needs(&script, &[]).unwrap().is_none());
    }

    #[test]
    fn truncated_and_hostile_headers_are_errors_not_panics() {
        let mut b = std::fs::read("/usr/bin/ls").unwrap();
        for cut in [16, 64, 200, 1000, 4096] {
            let _ = parse(&b[..cut.min(b.len())]);
        }
        // A program header table pointing far past the end.
        b[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse(&b).is_err());
    }

    #[test]
    fn ld_so_conf_includes_are_followed() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc/ld.so.conf.d");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            root.path().join("etc/ld.so.conf"),
            "include /etc/ld.so.conf.d/*.conf\n/opt/a # comment\n",
        )
        .unwrap();
        std::fs::write(etc.join("x.conf"), "/opt/x\ninclude /etc/ld.so.conf\n").unwrap();
        std::fs::write(etc.join("ignored.txt"), "/opt/no\n").unwrap();
        let dirs = ld_so_conf_dirs(root.path());
        assert_eq!(
            dirs,
            vec![root.path().join("opt/x"), root.path().join("opt/a")]
        );
    }
}
