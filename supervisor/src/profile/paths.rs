//! Path templates: absolute paths that may start with `{workspace}`,
//! `{home}` or `{tmp}`, expanded once per session.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The placeholder names a path may use.
pub const PLACEHOLDERS: [&str; 3] = ["workspace", "home", "tmp"];

/// The per-session values of the placeholders.
#[derive(Debug, Clone)]
pub struct Placeholders {
    pub workspace: PathBuf,
    pub home: PathBuf,
    pub tmp: PathBuf,
}

/// A validated path template: absolute, or starting with a placeholder,
/// with no `.` or `..` components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate(String);

/// Why a path string is not a valid template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("path is empty; write an absolute path such as \"/usr\" or one starting with {{workspace}}, {{home}} or {{tmp}}")]
    Empty,
    #[error("relative path `{0}`; write an absolute path or start it with {{workspace}}, {{home}} or {{tmp}}")]
    Relative(String),
    #[error("unknown placeholder `{{{name}}}` in `{path}`; the placeholders are {{workspace}}, {{home}} and {{tmp}}")]
    UnknownPlaceholder { name: String, path: String },
    #[error("placeholder in the middle of `{0}`; a placeholder may only start a path")]
    PlaceholderNotFirst(String),
    #[error("`{0}` contains a `.` or `..` component; write the path it means")]
    DotComponent(String),
    #[error("`{0}` contains a NUL byte")]
    Nul(String),
}

impl PathTemplate {
    /// Checks the syntax of a path as written in a profile.
    pub fn parse(text: &str) -> Result<PathTemplate, ExpandError> {
        if text.is_empty() {
            return Err(ExpandError::Empty);
        }
        if text.contains('\0') {
            return Err(ExpandError::Nul(text.to_string()));
        }
        let rest = if let Some(after) = text.strip_prefix('{') {
            let Some(end) = after.find('}') else {
                return Err(ExpandError::Relative(text.to_string()));
            };
            let name = &after[..end];
            if !PLACEHOLDERS.contains(&name) {
                return Err(ExpandError::UnknownPlaceholder {
                    name: name.to_string(),
                    path: text.to_string(),
                });
            }
            let rest = &after[end + 1..];
            if !rest.is_empty() && !rest.starts_with('/') {
                return Err(ExpandError::Relative(text.to_string()));
            }
            rest
        } else if text.starts_with('/') {
            text
        } else {
            return Err(ExpandError::Relative(text.to_string()));
        };
        if rest.contains('{') || rest.contains('}') {
            return Err(ExpandError::PlaceholderNotFirst(text.to_string()));
        }
        // `Path::components` silently drops interior `.`; look at the raw parts.
        if rest.split('/').any(|part| part == "." || part == "..") {
            return Err(ExpandError::DotComponent(text.to_string()));
        }
        Ok(PathTemplate(text.to_string()))
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the path needs a session to be known.
    pub fn has_placeholder(&self) -> bool {
        self.0.starts_with('{')
    }

    /// Substitutes the placeholder and normalises repeated slashes.
    pub fn expand(&self, values: &Placeholders) -> PathBuf {
        let (base, rest): (&Path, &str) = match self.0.split_once('}') {
            Some(("{workspace", rest)) => (&values.workspace, rest),
            Some(("{home", rest)) => (&values.home, rest),
            Some(("{tmp", rest)) => (&values.tmp, rest),
            _ => (Path::new("/"), self.0.as_str()),
        };
        let mut out = base.to_path_buf();
        for c in Path::new(rest).components() {
            if let Component::Normal(part) = c {
                out.push(part);
            }
        }
        out
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Placeholders {
        Placeholders {
            workspace: PathBuf::from("/w/s"),
            home: PathBuf::from("/h"),
            tmp: PathBuf::from("/t"),
        }
    }

    #[test]
    fn expands_placeholders() {
        let t = |s| PathTemplate::parse(s).unwrap().expand(&values());
        assert_eq!(t("{workspace}"), PathBuf::from("/w/s"));
        assert_eq!(t("{workspace}/.env"), PathBuf::from("/w/s/.env"));
        assert_eq!(t("{home}//x/"), PathBuf::from("/h/x"));
        assert_eq!(t("/usr/lib"), PathBuf::from("/usr/lib"));
        assert_eq!(t("/"), PathBuf::from("/"));
    }

    #[test]
    fn rejects_bad_paths() {
        let e = |s| PathTemplate::parse(s).unwrap_err();
        assert_eq!(e(""), ExpandError::Empty);
        assert!(matches!(e("usr/lib"), ExpandError::Relative(_)));
        assert!(matches!(e("{workspace}x"), ExpandError::Relative(_)));
        assert!(matches!(
            e("{wrkspace}/a"),
            ExpandError::UnknownPlaceholder { .. }
        ));
        assert!(matches!(
            e("/a/{home}"),
            ExpandError::PlaceholderNotFirst(_)
        ));
        assert!(matches!(e("/a/../etc"), ExpandError::DotComponent(_)));
        assert!(matches!(e("{workspace}/./x"), ExpandError::DotComponent(_)));
        assert!(matches!(e("/a\0b"), ExpandError::Nul(_)));
    }
}
