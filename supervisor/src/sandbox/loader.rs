//! What the dynamic loader needs, granted by cordon itself: for every
//! program a sandbox may execute (its exec grants that are files, the
//! shim, a tool's binary), the program's ELF interpreter may be executed
//! *as an interpreter* and its libraries read. A library is mapped, never
//! executed, so it needs no exec grant; and the interpreter, executable
//! only because the kernel runs it for a program, is refused when a
//! sandboxed process executes it directly (`ld.so /any/readable/file`
//! would run whatever the process can read): see [`LoaderGrants::interpreters`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::host::elf;
use crate::profile::{Location, PathRule, PathTemplate};

/// The dynamic loaders of the ABIs Linux runs cordon on, by the names
/// binaries ask for them (PT_INTERP), also when no granted program names
/// one: a direct exec of any of them is refused.
const KNOWN_INTERPRETERS: [&str; 5] = [
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/ld-linux-aarch64.so.1",
    "/lib/ld-linux.so.2",
    "/lib/ld-musl-x86_64.so.1",
    "/lib/ld-musl-aarch64.so.1",
];

/// The loader's grants for a set of programs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoaderGrants {
    /// The interpreters the programs name: execute (and read).
    pub exec: Vec<PathRule>,
    /// Their libraries, and the loader's cache: read.
    pub read: Vec<PathRule>,
    /// Canonical paths of every dynamic loader on this host: executing one
    /// directly is divergence (cordon grants them only as interpreters).
    pub interpreters: Vec<PathBuf>,
}

/// Memoizes [`elf::needs`] across the programs of one launch (a session's
/// agent and its tools share most libraries).
#[derive(Debug, Default)]
pub struct LoaderCache {
    resolver: Option<elf::Resolver>,
    needs: BTreeMap<PathBuf, Option<elf::Needs>>,
}

impl LoaderCache {
    fn needs(&mut self, program: &Path) -> Option<elf::Needs> {
        if let Some(n) = self.needs.get(program) {
            return n.clone();
        }
        let resolver = self
            .resolver
            .get_or_insert_with(|| elf::Resolver::new(elf::ld_so_conf_dirs(Path::new("/"))));
        let found = match resolver.needs(program) {
            Ok(n) => n,
            Err(e) => {
                // Not a program the loader can start either; the exec of it
                // fails in the sandbox as it would outside.
                tracing::info!(error = %e, "loader: cannot read a granted program's headers");
                None
            }
        };
        self.needs.insert(program.to_path_buf(), found.clone());
        found
    }
}

fn rule(path: &Path, why: &Path) -> Option<PathRule> {
    Some(PathRule {
        path: PathTemplate::parse(&path.to_string_lossy()).ok()?,
        optional: true,
        origin: Location::whole_file(&PathBuf::from(format!(
            "<cordon: the loader's needs for {}>",
            why.display()
        ))),
    })
}

/// Files in a directory exec grant that are looked at for their loader's
/// needs, at most: a small tool directory (`/usr/lib/git-core`) gets them,
/// a library tree does not (grant what its programs need explicitly).
pub const MAX_DIR_PROGRAMS: usize = 256;

/// The regular files directly in `dir`, when there are few enough.
fn programs_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for e in entries.flatten() {
        if files.len() >= MAX_DIR_PROGRAMS {
            return Vec::new();
        }
        if e.file_type().is_ok_and(|t| t.is_file()) {
            files.push(e.path());
        }
    }
    files
}

/// The loader's grants for `programs` (paths as the sandbox names them;
/// a directory stands for the files directly in it, when there are at
/// most [`MAX_DIR_PROGRAMS`]; missing paths are skipped).
pub fn loader_grants<'a>(
    programs: impl IntoIterator<Item = &'a Path>,
    cache: &mut LoaderCache,
) -> LoaderGrants {
    let mut interpreters: BTreeSet<PathBuf> = KNOWN_INTERPRETERS
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let mut exec = BTreeMap::new();
    let mut read = BTreeMap::new();
    let mut files = Vec::new();
    for program in programs {
        if program.is_dir() {
            files.extend(programs_in(program));
        } else if program.is_file() {
            files.push(program.to_path_buf());
        }
    }
    for program in &files {
        let Some(needs) = cache.needs(program) else {
            continue;
        };
        if let Some(interp) = needs.interpreter {
            interpreters.insert(interp.clone());
            exec.entry(interp).or_insert_with(|| program.clone());
        }
        for lib in needs.libraries {
            read.entry(lib).or_insert_with(|| program.clone());
        }
    }
    if !read.is_empty() {
        read.insert(
            PathBuf::from("/etc/ld.so.cache"),
            PathBuf::from("the loader"),
        );
    }
    LoaderGrants {
        exec: exec.iter().filter_map(|(p, why)| rule(p, why)).collect(),
        read: read.iter().filter_map(|(p, why)| rule(p, why)).collect(),
        interpreters: interpreters.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_gets_its_interpreter_and_libraries_never_a_directory() {
        let mut cache = LoaderCache::default();
        let g = loader_grants(
            [
                Path::new("/usr/bin/ls"),
                Path::new("/usr/lib"),
                Path::new("/nonexistent"),
            ],
            &mut cache,
        );
        assert_eq!(g.exec.len(), 1, "{g:?}");
        let interp = PathBuf::from(g.exec[0].path.as_str());
        assert!(g.interpreters.contains(&interp));
        assert!(g
            .read
            .iter()
            .any(|r| r.path.as_str().ends_with("/libc.so.6")));
        assert!(g.read.iter().any(|r| r.path.as_str() == "/etc/ld.so.cache"));
        assert!(g.exec[0].origin.to_string().contains("/usr/bin/ls"));
    }

    #[test]
    fn a_small_program_directory_brings_its_programs_needs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy("/usr/bin/ls", dir.path().join("ls")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a program").unwrap();
        let g = loader_grants([dir.path()], &mut LoaderCache::default());
        assert_eq!(g.exec.len(), 1, "{g:?}");
        assert!(g
            .read
            .iter()
            .any(|r| r.path.as_str().ends_with("/libc.so.6")));
    }

    #[test]
    fn the_host_loader_is_an_interpreter_even_when_nothing_names_it() {
        let g = loader_grants(std::iter::empty::<&Path>(), &mut LoaderCache::default());
        let ld = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2")
            .or_else(|_| std::fs::canonicalize("/lib/ld-linux-aarch64.so.1"))
            .unwrap();
        assert!(g.interpreters.contains(&ld), "{g:?}");
        assert!(g.exec.is_empty() && g.read.is_empty());
    }
}
