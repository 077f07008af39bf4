//! The `[policy]` section: Cedar policies on the decision path
//! (`cedar = "FILE"`, relative to the profile's directory) and what a
//! request no policy speaks to gets (`unmatched`). The file is read,
//! parsed and validated against cordon's schema here, so each mistake in
//! it is reported at its own file:line:column.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::de::DeTable;

use super::layer::Layer;
use super::walk::Walker;
use super::{CedarFile, Diagnostic, Location, PolicyConfig};
use crate::policy::cedar::{Engine, Unmatched};

/// The largest policy file read.
const MAX_POLICY_FILE: u64 = 1 << 20;

pub(super) fn policy(w: &mut Walker<'_>, t: &DeTable<'_>, layer: &mut Layer) {
    w.unknown_keys(t, &["cedar", "unmatched"], "[policy]");
    let mut config = PolicyConfig::default();
    if let Some(v) = t.get("unmatched") {
        let words = [("toml", Unmatched::Toml), ("deny", Unmatched::Deny)];
        config.unmatched = w.word("unmatched", v, &words).unwrap_or_default();
    }
    if let Some(v) = t.get("cedar") {
        let Some(name) = w.string(
            "cedar",
            v,
            "a path to a Cedar policy file, e.g. \"policies.cedar\"",
        ) else {
            return;
        };
        let origin = w.loc(&v.span());
        if w.from_agent {
            w.error(&v.span(), "a sub-agent's profile cannot name a policy file; it runs under its parent's Cedar policies");
            return;
        }
        if name.is_empty() || name.contains('\0') || name.starts_with('{') {
            w.error(&v.span(), "`cedar` must name a policy file, absolute or relative to this profile (no placeholders)");
            return;
        }
        let path = match Path::new(&name) {
            p if p.is_absolute() => p.to_path_buf(),
            p => w.file.parent().unwrap_or(Path::new(".")).join(p),
        };
        match read(&path) {
            Err(e) => w.error(
                &v.span(),
                format!("cannot read the Cedar policy file {}: {e}", path.display()),
            ),
            Ok(text) => {
                check(&path, &text, &origin, &mut w.diags);
                config.cedar = Some(CedarFile { path, text, origin });
            }
        }
    }
    layer.policy = Some(config);
}

fn read(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_POLICY_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_POLICY_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_POLICY_FILE} bytes"
        )));
    }
    Ok(text)
}

/// Every problem of the policy file, at its place in that file.
fn check(path: &Path, text: &str, at: &Location, diags: &mut Vec<Diagnostic>) {
    let file: Arc<Path> = Arc::from(path);
    let name = file_name(path);
    if let Err(problems) = Engine::compile(&name, text) {
        for p in problems {
            let location = match p.offset {
                Some(o) => Location::from_offset(file.clone(), text, o),
                None => at.clone(),
            };
            diags.push(Diagnostic {
                location,
                message: format!("Cedar: {}", p.message),
            });
        }
    }
}

/// The policy file's name as policy ids show it (`FILE:LINE`).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| PathBuf::from(path).display().to_string())
}
