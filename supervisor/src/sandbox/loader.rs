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

use super::big_dirs::BigDirs;
use super::host_cache::DirStamp;
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

/// Memoizes [`elf::needs`], directory listings and the host's loaders
/// across the programs of one launch (a session's agent and its tools
/// share most libraries, and every tool call plans with it again).
#[derive(Debug, Default)]
pub struct LoaderCache {
    resolver: Option<elf::Resolver>,
    needs: BTreeMap<PathBuf, Option<elf::Needs>>,
    /// Directories listed, with the stamp they had (`None`: too large).
    listings: BTreeMap<PathBuf, (DirStamp, Option<Vec<PathBuf>>)>,
    big_dirs: BigDirs,
    known_interpreters: Option<BTreeSet<PathBuf>>,
}

impl LoaderCache {
    /// A cache that also keeps, between runs, which directories were too
    /// large to look into (see [`BigDirs`]); `None`: nothing kept.
    pub fn keeping_in(dir: Option<PathBuf>) -> LoaderCache {
        LoaderCache {
            big_dirs: BigDirs::kept_in(dir),
            ..LoaderCache::default()
        }
    }

    /// The files in directory `dir` whose loader's needs count, as in
    /// [`list_programs`], answered from this launch's listings or the kept
    /// verdicts while the directory is unchanged.
    fn programs_in(&mut self, dir: &Path, meta: &std::fs::Metadata) -> Vec<PathBuf> {
        let stamp = DirStamp::of(dir, meta);
        if let Some((seen, listing)) = self.listings.get(dir) {
            if *seen == stamp {
                return listing.clone().unwrap_or_default();
            }
        }
        let listing = if self.big_dirs.is_big(&stamp) {
            None
        } else {
            let l = list_programs(dir);
            if l.is_none() {
                self.big_dirs.remember(stamp.clone());
            }
            l
        };
        self.listings
            .insert(dir.to_path_buf(), (stamp, listing.clone()));
        listing.unwrap_or_default()
    }

    /// Canonical paths of the [`KNOWN_INTERPRETERS`] this host has.
    fn known_interpreters(&mut self) -> BTreeSet<PathBuf> {
        self.known_interpreters
            .get_or_insert_with(|| {
                KNOWN_INTERPRETERS
                    .iter()
                    .filter_map(|p| std::fs::canonicalize(p).ok())
                    .collect()
            })
            .clone()
    }

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

/// The regular files directly in `dir`; `None` when there are more than
/// [`MAX_DIR_PROGRAMS`] (an unreadable directory has none).
fn list_programs(dir: &Path) -> Option<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Some(Vec::new());
    };
    let mut files = Vec::new();
    for e in entries.flatten() {
        if files.len() >= MAX_DIR_PROGRAMS {
            return None;
        }
        if e.file_type().is_ok_and(|t| t.is_file()) {
            files.push(e.path());
        }
    }
    Some(files)
}

/// The loader's grants for `programs` (paths as the sandbox names them;
/// a directory stands for the files directly in it, when there are at
/// most [`MAX_DIR_PROGRAMS`]; missing paths are skipped).
pub fn loader_grants<'a>(
    programs: impl IntoIterator<Item = &'a Path>,
    cache: &mut LoaderCache,
) -> LoaderGrants {
    let mut interpreters = cache.known_interpreters();
    let mut exec = BTreeMap::new();
    let mut read = BTreeMap::new();
    let mut files = Vec::new();
    for program in programs {
        let Ok(meta) = std::fs::metadata(program) else {
            continue;
        };
        if meta.is_dir() {
            files.extend(cache.programs_in(program, &meta));
        } else if meta.is_file() {
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
    fn a_large_directory_is_remembered_and_the_verdict_holds_until_it_changes() {
        let kept = tempfile::tempdir().unwrap();
        let big = tempfile::tempdir().unwrap();
        for i in 0..=MAX_DIR_PROGRAMS {
            std::fs::copy("/usr/bin/true", big.path().join(format!("p{i}"))).unwrap();
        }
        let mut first = LoaderCache::keeping_in(Some(kept.path().to_path_buf()));
        let g = loader_grants([big.path()], &mut first);
        assert!(g.exec.is_empty() && g.read.is_empty(), "{g:?}");
        let big_stamp = DirStamp::of(big.path(), &std::fs::metadata(big.path()).unwrap());
        assert!(BigDirs::kept_in(Some(kept.path().to_path_buf())).is_big(&big_stamp));

        // The kept verdict is what a later run goes by, even for a small
        // directory (a planted verdict), while its stamp holds.
        let small = tempfile::tempdir().unwrap();
        std::fs::copy("/usr/bin/ls", small.path().join("ls")).unwrap();
        let stamp = DirStamp::of(small.path(), &std::fs::metadata(small.path()).unwrap());
        let mut planted = BigDirs::kept_in(Some(kept.path().to_path_buf()));
        planted.remember(stamp);
        let mut later = LoaderCache::keeping_in(Some(kept.path().to_path_buf()));
        let withheld = loader_grants([small.path(), big.path()], &mut later);
        assert!(
            withheld.exec.is_empty(),
            "a kept verdict only withholds: {withheld:?}"
        );
        // Changed, the small directory is listed again and its program's
        // needs granted.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(small.path().join("notes"), "x").unwrap();
        let g = loader_grants([small.path()], &mut later);
        assert_eq!(g.exec.len(), 1, "{g:?}");
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
