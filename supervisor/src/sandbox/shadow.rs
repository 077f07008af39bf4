//! Where a sandbox must find the shim instead of a declared tool: the
//! tool's real path, and every program of the same name in the usual
//! PATH directories. In the sandbox's mount namespace each of them is the
//! shim (bind-mounted over it), so a tool is reached only through the
//! broker however it is named: by absolute path (`/usr/bin/git`), through
//! a login shell that resets PATH (`/etc/profile` drops cordon's shim
//! directory), a second copy elsewhere on PATH (`/usr/local/bin/git`
//! beside `/usr/bin/git`), or the dynamic loader (`ld.so /usr/bin/git`
//! loads the shim). Reading the path reads the shim too, so the agent
//! cannot copy the tool's bytes from there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::profile::Profile;

/// The directories a PATH usually names (`/etc/profile`, `/etc/login.defs`,
/// systemd's default, and cordon's own default PATH).
pub const USUAL_PATH: [&str; 8] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/usr/games",
    "/usr/local/games",
];

/// The paths to cover with the shim in a sandbox of `profile`: for every
/// declared tool but `except` (a tool's own sandbox runs the real one),
/// its path and the programs named like the tool in [`USUAL_PATH`]. Canonical,
/// existing regular files only, never the shim itself.
pub fn shadows(profile: &Profile, except: Option<&str>, shim: Option<&Path>) -> Vec<PathBuf> {
    let shim = shim.and_then(|s| std::fs::canonicalize(s).ok());
    let own = except
        .and_then(|name| profile.tools.get(name))
        .and_then(|t| std::fs::canonicalize(&t.path).ok());
    let mut out = BTreeSet::new();
    for (name, tool) in &profile.tools {
        if Some(name.as_str()) == except {
            continue;
        }
        // The name the agent calls the tool by: another program of that
        // name is the tool to anyone who types it. (A tool named unlike
        // its binary, `[tools.fetch] path = ".../curl"`, leaves the
        // system's curl alone.)
        let mut candidates = vec![tool.path.clone()];
        for dir in USUAL_PATH {
            candidates.push(Path::new(dir).join(name));
        }
        for c in candidates {
            // A path the kernel resolves through a symlink is covered at
            // the file it reaches (a bind mount lands on the target).
            let Ok(real) = std::fs::canonicalize(&c) else {
                continue;
            };
            if !real.is_file() || Some(&real) == shim.as_ref() || Some(&real) == own.as_ref() {
                continue;
            }
            out.insert(real);
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn profile(tools: &str) -> Profile {
        crate::profile::load_text(
            Path::new("s.toml"),
            &format!("[profile]\nname = \"s\"\n{tools}"),
        )
        .unwrap()
    }

    #[test]
    fn a_tool_is_covered_at_its_path_and_its_namesakes_on_path() {
        let p = profile("[tools.cat]\npath = \"/usr/bin/cat\"\nallow = [[\"**\"]]\n[tools.ls]\npath = \"/usr/bin/ls\"\nallow = [[\"**\"]]\n");
        let all = shadows(&p, None, None);
        let cat = std::fs::canonicalize("/usr/bin/cat").unwrap();
        let ls = std::fs::canonicalize("/usr/bin/ls").unwrap();
        assert!(all.contains(&cat) && all.contains(&ls), "{all:?}");
        // In cat's own sandbox, cat is real and ls is the shim.
        let in_cat = shadows(&p, Some("cat"), None);
        assert!(!in_cat.contains(&cat) && in_cat.contains(&ls), "{in_cat:?}");
        // The shim itself is never covered.
        let in_cat = shadows(&p, None, Some(&ls));
        assert!(!in_cat.contains(&ls));
    }
}
