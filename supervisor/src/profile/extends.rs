//! Following `extends` from a profile to its ancestors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::layer::Layer;
use super::parse::parse_layer;
use super::{Diagnostic, Location};

/// How many ancestors a profile may have. Deeper chains are almost
/// certainly a mistake, and the bound keeps loading cheap.
pub(super) const MAX_DEPTH: usize = 8;

/// Reads `path` and every ancestor it extends. Returns the layers child
/// first; stops (with a diagnostic) at the first file that cannot be read
/// or parsed, at a cycle, or when the chain is too deep.
pub(super) fn load_chain(path: &Path, diags: &mut Vec<Diagnostic>) -> Vec<Layer> {
    let mut chain: Vec<Layer> = Vec::new();
    // Canonical paths detect cycles; the names as written go in messages.
    let mut seen: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut next = path.to_path_buf();
    let mut reached_from: Option<Location> = None;
    loop {
        let src = match read_limited(&next) {
            Ok(src) => src,
            Err(e) => {
                let (location, message) = match reached_from {
                    None => (
                        Location::whole_file(&next),
                        format!("cannot read profile: {e}"),
                    ),
                    Some(at) => (
                        at,
                        format!("cannot read parent profile `{}`: {e}", next.display()),
                    ),
                };
                diags.push(Diagnostic { location, message });
                break;
            }
        };
        let canonical = std::fs::canonicalize(&next).unwrap_or_else(|_| next.clone());
        seen.push((canonical, next.clone()));
        let Some(layer) = parse_layer(Arc::from(next.as_path()), &src, diags) else {
            break;
        };
        let extends = layer.extends.clone();
        chain.push(layer);
        let Some(extends) = extends else {
            break;
        };
        let parent = resolve(&next, &extends.value);
        let names = |last: &Path| {
            let mut names: Vec<String> =
                seen.iter().map(|(_, n)| n.display().to_string()).collect();
            names.push(last.display().to_string());
            names.join(" -> ")
        };
        if let Ok(canon) = std::fs::canonicalize(&parent) {
            if seen.iter().any(|(c, _)| *c == canon) {
                diags.push(Diagnostic {
                    location: extends.origin,
                    message: format!("`extends` makes a cycle: {}", names(&parent)),
                });
                break;
            }
        }
        if chain.len() > MAX_DEPTH {
            diags.push(Diagnostic {
                location: extends.origin,
                message: format!(
                    "`extends` chain is deeper than {MAX_DEPTH} parents: {}",
                    names(&parent)
                ),
            });
            break;
        }
        reached_from = Some(extends.origin);
        next = parent;
    }
    chain
}

/// Profiles are small; the cap keeps `cordon check /dev/zero` from eating
/// all memory.
const MAX_PROFILE_BYTES: u64 = 1 << 20;

fn read_limited(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut src = String::new();
    std::fs::File::open(path)?
        .take(MAX_PROFILE_BYTES + 1)
        .read_to_string(&mut src)?;
    if src.len() as u64 > MAX_PROFILE_BYTES {
        return Err(std::io::Error::other("file is larger than 1 MiB"));
    }
    Ok(src)
}

/// A relative `extends` is relative to the directory of the file naming it.
fn resolve(child: &Path, parent: &str) -> PathBuf {
    let parent = Path::new(parent);
    if parent.is_absolute() {
        return parent.to_path_buf();
    }
    match child.parent() {
        Some(dir) => dir.join(parent),
        None => parent.to_path_buf(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    #[test]
    fn relative_parents_resolve_next_to_the_child() {
        assert_eq!(
            resolve(Path::new("a/b/c.toml"), "base.toml"),
            PathBuf::from("a/b/base.toml")
        );
        assert_eq!(
            resolve(Path::new("c.toml"), "base.toml"),
            PathBuf::from("base.toml")
        );
        assert_eq!(
            resolve(Path::new("a/c.toml"), "/etc/p.toml"),
            PathBuf::from("/etc/p.toml")
        );
        assert_eq!(
            resolve(Path::new("a/c.toml"), "../p.toml"),
            PathBuf::from("a/../p.toml")
        );
    }

    #[test]
    fn endless_files_are_refused() {
        let mut diags = Vec::new();
        assert!(load_chain(Path::new("/dev/zero"), &mut diags).is_empty());
        assert_eq!(diags.len(), 1);
        assert!(
            diags[0].message.contains("larger than 1 MiB"),
            "{}",
            diags[0]
        );
    }

    #[test]
    fn cycles_and_depth_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let write = |n: &str, body: &str| std::fs::write(dir.path().join(n), body).unwrap();
        write("a.toml", "[profile]\nname = \"a\"\nextends = \"b.toml\"\n");
        write("b.toml", "[profile]\nname = \"b\"\nextends = \"a.toml\"\n");
        let mut diags = Vec::new();
        let chain = load_chain(&dir.path().join("a.toml"), &mut diags);
        assert_eq!(chain.len(), 2);
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.contains("cycle"), "{}", diags[0]);
        assert!(diags[0].location.file.ends_with("b.toml"));

        for i in 0..12 {
            write(
                &format!("d{i}.toml"),
                &format!(
                    "[profile]\nname = \"d{i}\"\nextends = \"d{}.toml\"\n",
                    i + 1
                ),
            );
        }
        write("d12.toml", "[profile]\nname = \"end\"\n");
        let mut diags = Vec::new();
        let chain = load_chain(&dir.path().join("d0.toml"), &mut diags);
        assert_eq!(chain.len(), MAX_DEPTH + 1);
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.contains("deeper than 8"), "{}", diags[0]);
    }
}
