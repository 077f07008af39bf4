//! Cross-field rules of a profile, one function per rule.
//!
//! `check_layer` runs on each file alone (rules about what one file says);
//! `check_profile` runs on the merged result of the `extends` chain.

use std::path::Path;

use super::layer::{Layer, Located};
use super::{Diagnostic, DivergenceAction, Location, PathRule, PathTemplate};

pub(super) fn check_layer(layer: &Layer, diags: &mut Vec<Diagnostic>) {
    let fs = &layer.filesystem;
    for (list, rules) in [
        ("read", &fs.read),
        ("write", &fs.write),
        ("exec", &fs.exec),
        ("deny", &fs.deny),
    ] {
        let entries = rules.iter().map(|r| (normal(&r.path), &r.origin));
        no_duplicates(list, entries, diags);
    }
    let ports = |l: &[Located<u16>]| -> Vec<(String, Location)> {
        l.iter()
            .map(|p| (p.value.to_string(), p.origin.clone()))
            .collect()
    };
    for (list, entries) in [
        ("connect_tcp", ports(&layer.connect_tcp)),
        ("bind_tcp", ports(&layer.bind_tcp)),
    ] {
        no_duplicates(list, entries.iter().map(|(v, o)| (v.clone(), o)), diags);
    }
    let sys = layer
        .syscall_deny
        .iter()
        .map(|r| (r.name.clone(), &r.origin));
    no_duplicates("[syscalls] deny", sys, diags);
    let pass = layer.env_pass.iter().map(|l| (l.value.clone(), &l.origin));
    no_duplicates("pass", pass, diags);
}

pub(super) fn check_profile(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    name_present(merged, diags);
    granted_not_denied(merged, diags);
    root_not_denied(merged, diags);
    max_denials_has_effect(merged, diags);
    pass_or_set(merged, diags);
    tools_not_agent_executable(merged, diags);
}

/// A template compared by meaning: `{workspace}/` is `{workspace}`.
fn normal(path: &PathTemplate) -> String {
    let parts: Vec<&str> = path.as_str().split('/').filter(|p| !p.is_empty()).collect();
    let joined = parts.join("/");
    if path.as_str().starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// The same entry twice in one list of one file is a typo or a merge
/// accident; pointing at both copies lets the author pick.
fn no_duplicates<'a>(
    list: &str,
    entries: impl Iterator<Item = (String, &'a Location)>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut seen: Vec<(String, &Location)> = Vec::new();
    for (value, origin) in entries {
        match seen.iter().find(|(v, _)| *v == value) {
            Some((_, first)) => diags.push(Diagnostic {
                location: origin.clone(),
                message: format!(
                    "`{value}` is listed twice in `{list}` (first at line {}); remove one",
                    first.line
                ),
            }),
            None => seen.push((value, origin)),
        }
    }
}

/// Names are never inherited, so every profile file that is run needs one.
fn name_present(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    if merged.name_written {
        return;
    }
    let inherited = if merged.extends.is_some() {
        " (names are not inherited through `extends`)"
    } else {
        ""
    };
    diags.push(Diagnostic {
        location: merged.profile_location(),
        message: format!(
            "missing `name` in [profile]{inherited}; write e.g. name = \"coding-agent\""
        ),
    });
}

/// Granting and denying the same path is contradictory: a deny only makes
/// sense strictly inside a granted tree.
fn granted_not_denied(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    let fs = &merged.filesystem;
    let granted: Vec<(&str, &PathRule)> =
        [("read", &fs.read), ("write", &fs.write), ("exec", &fs.exec)]
            .into_iter()
            .flat_map(|(list, rules)| rules.iter().map(move |r| (list, r)))
            .collect();
    for deny in &fs.deny {
        let path = normal(&deny.path);
        if let Some((list, grant)) = granted.iter().find(|(_, g)| normal(&g.path) == path) {
            diags.push(Diagnostic {
                location: deny.origin.clone(),
                message: format!(
                    "`{}` is both granted (in `{list}` at {}) and denied; deny only paths strictly inside a granted tree",
                    deny.path, grant.origin
                ),
            });
        }
    }
}

/// Denying `/` would mask the whole filesystem, including what the agent
/// needs to start; it is always a mistake.
fn root_not_denied(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    for deny in &merged.filesystem.deny {
        if normal(&deny.path) == "/" {
            diags.push(Diagnostic {
                location: deny.origin.clone(),
                message: "`deny` of `/` would hide everything; deny only paths strictly inside a granted tree".to_string(),
            });
        }
    }
}

/// With `denied_action = "kill"` the first refusal kills, so a
/// `max_denials` would silently do nothing.
fn max_denials_has_effect(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    let (Some(max), Some(action)) = (&merged.max_denials, &merged.denied_action) else {
        return;
    };
    if action.value == DivergenceAction::Kill {
        diags.push(Diagnostic {
            location: max.origin.clone(),
            message: format!(
                "`max_denials` has no effect with denied_action = \"kill\" (at {}); remove it or set denied_action = \"deny\"",
                action.origin
            ),
        });
    }
}

/// A variable both passed through and set has two sources; say which wins
/// by keeping only one.
fn pass_or_set(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    for pass in &merged.env_pass {
        if let Some(set) = merged.env_set.get(&pass.value) {
            diags.push(Diagnostic {
                location: pass.origin.clone(),
                message: format!(
                    "`{}` is both in `pass` and in `set` (at {}); keep one",
                    pass.value, set.origin
                ),
            });
        }
    }
}

/// A tool's real binary inside an agent `exec` grant could be run directly,
/// bypassing the broker. Placeholder grants are per session and the tool
/// paths are absolute host paths, so only literal grants are compared;
/// both sides are compared as written and with symlinks resolved.
fn tools_not_agent_executable(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    for tool in merged.tools.values() {
        let real = std::fs::canonicalize(&tool.path).ok();
        for grant in &merged.filesystem.exec {
            if grant.path.has_placeholder() {
                continue;
            }
            let written = Path::new(grant.path.as_str());
            let resolved = std::fs::canonicalize(written).ok();
            let inside = tool.path.starts_with(written)
                || real.as_ref().is_some_and(|r| {
                    r.starts_with(written) || resolved.as_ref().is_some_and(|g| r.starts_with(g))
                });
            if inside {
                diags.push(Diagnostic {
                    location: tool.origin.clone(),
                    message: format!(
                        "tool `{}`: the agent could run {} directly, bypassing the broker (`{}` in [filesystem] exec at {}); remove its directory from [filesystem] exec or list narrower paths",
                        tool.name,
                        tool.path.display(),
                        grant.path,
                        grant.origin
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
