//! Finding a profile by its bare name (`cordon run --profile claude-code`).
//!
//! A `--profile` value that contains `/`, or names a file that exists here, is
//! that file: nothing is searched, so a path always means what it says.
//! Any other value is a name, looked up as `NAME` and `NAME.toml` in, in
//! this order:
//!
//! 1. the user's own profiles, `$XDG_CONFIG_HOME/cordon/profiles` (else
//!    `~/.config/cordon/profiles`);
//! 2. the machine's, `/etc/cordon/profiles`;
//! 3. the shipped ones, `share/cordon/profiles` beside the `bin/` cordon
//!    runs from (`make install` puts `profiles/*.toml` there).
//!
//! The first hit wins, so a user's or an administrator's `codex.toml`
//! replaces the shipped one (and may `extends` it by path).

use std::path::{Path, PathBuf};

/// The machine-wide profile directory.
pub const SYSTEM_DIR: &str = "/etc/cordon/profiles";

/// Why a profile name found no file.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("profile `{name}` not found: no such file here, nor `{name}` or `{name}.toml` in {} (`cordon profiles` lists the profiles there; give a path to use another file)", shown(searched))]
    NotFound {
        name: String,
        searched: Vec<PathBuf>,
    },
    #[error("`{name}` is neither a file nor a profile name (letters, digits, `.`, `_` and `-`, not starting with `.`); give a path to the profile file")]
    BadName { name: String },
}

fn shown(dirs: &[PathBuf]) -> String {
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    names.join(", ")
}

/// The directories searched for a bare name, most specific first.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".config"))
        });
    if let Some(config) = config {
        dirs.push(config.join("cordon/profiles"));
    }
    dirs.push(PathBuf::from(SYSTEM_DIR));
    if let Some(share) = shipped_dir() {
        dirs.push(share);
    }
    dirs
}

/// `PREFIX/share/cordon/profiles` for the cordon at `PREFIX/bin/cordon`.
fn shipped_dir() -> Option<PathBuf> {
    let exe = std::fs::canonicalize(std::env::current_exe().ok()?).ok()?;
    Some(exe.parent()?.parent()?.join("share/cordon/profiles"))
}

/// The profile file `arg` means (see the module's header).
pub fn find(arg: &Path) -> Result<PathBuf, FindError> {
    find_in(arg, &search_dirs())
}

fn find_in(arg: &Path, dirs: &[PathBuf]) -> Result<PathBuf, FindError> {
    let text = arg.to_string_lossy();
    if text.contains('/') || arg.is_file() {
        return Ok(arg.to_path_buf());
    }
    find_name(&text, dirs)
}

/// The file the bare name `text` finds in `dirs` (the first hit), without
/// looking at the current directory: `cordon serve`'s configuration has
/// looked beside itself already.
pub fn find_name(text: &str, dirs: &[PathBuf]) -> Result<PathBuf, FindError> {
    if !is_name(text) {
        return Err(FindError::BadName {
            name: text.escape_debug().to_string(),
        });
    }
    let mut files = vec![text.to_string()];
    if !text.ends_with(".toml") {
        files.push(format!("{text}.toml"));
    }
    for dir in dirs {
        for f in &files {
            let candidate = dir.join(f);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(FindError::NotFound {
        name: text.to_string(),
        searched: dirs.to_vec(),
    })
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One profile a bare name finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The name to give `--profile`.
    pub name: String,
    pub path: PathBuf,
    /// The path of the same name in a later directory, which this one hides.
    pub hides: Vec<PathBuf>,
}

/// The `*.toml` files of the search directories, by name, each with the
/// files of the same name it hides; sorted by name.
pub fn list() -> Vec<Listed> {
    list_in(&search_dirs())
}

fn list_in(dirs: &[PathBuf]) -> Vec<Listed> {
    let mut out: Vec<Listed> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut here: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let path = e.path();
                let name = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".toml")?
                    .to_string();
                (is_name(&name) && path.is_file()).then_some((name, path))
            })
            .collect();
        here.sort();
        for (name, path) in here {
            match out.iter_mut().find(|l| l.name == name) {
                Some(first) => first.hides.push(path),
                None => out.push(Listed {
                    name,
                    path,
                    hides: Vec::new(),
                }),
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_paths_and_names_are_searched_in_order() {
        let t = tempfile::tempdir().unwrap();
        let (user, system) = (t.path().join("user"), t.path().join("system"));
        std::fs::create_dir_all(&user).unwrap();
        std::fs::create_dir_all(&system).unwrap();
        std::fs::write(system.join("codex.toml"), "").unwrap();
        std::fs::write(system.join("gemini-cli.toml"), "").unwrap();
        std::fs::write(user.join("codex.toml"), "").unwrap();
        std::fs::write(system.join("notes.txt"), "").unwrap();
        let dirs = vec![user.clone(), t.path().join("absent"), system.clone()];
        assert_eq!(
            find_in(Path::new("codex"), &dirs).unwrap(),
            user.join("codex.toml")
        );
        assert_eq!(
            find_in(Path::new("gemini-cli.toml"), &dirs).unwrap(),
            system.join("gemini-cli.toml")
        );
        // Containing a slash: the path as given, even when it is missing.
        assert_eq!(
            find_in(Path::new("./codex"), &dirs).unwrap(),
            PathBuf::from("./codex")
        );
        let e = find_in(Path::new("claude-code"), &dirs)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("profile `claude-code` not found: no such file here, nor `claude-code` or `claude-code.toml` in ")
                && e.contains(&system.display().to_string()),
            "{e}"
        );
        let e = find_in(Path::new("..x\u{1b}"), &dirs)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("`..x\\u{1b}` is neither a file nor a profile name"),
            "{e}"
        );
        let listed = list_in(&dirs);
        let names: Vec<&str> = listed.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["codex", "gemini-cli"]);
        assert_eq!(listed[0].path, user.join("codex.toml"));
        assert_eq!(listed[0].hides, [system.join("codex.toml")]);
    }
}
