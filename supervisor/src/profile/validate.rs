//! Cross-field rules of a profile, one function per rule.
//!
//! `check_layer` runs on each file alone (rules about what one file says);
//! `check_profile` runs on the merged result of the `extends` chain.

use std::path::{Path, PathBuf};

use super::layer::{Layer, Located};
use super::walk::did_you_mean;
use super::{
    Diagnostic, DivergenceAction, Filesystem, Location, PathRule, PathTemplate, Placeholders,
    Profile, SecretSource, SecretSpec,
};

pub(super) fn check_layer(layer: &Layer, diags: &mut Vec<Diagnostic>) {
    removals_are_meaningful(layer, diags);
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
    proxy_port_free(merged, diags);
    pass_or_set(merged, diags);
    tools_not_agent_executable(merged, diags);
    exec_not_writable(merged, diags);
    unmask_names_a_deny(merged, diags);
    tolerated_execs_are_refused(merged, diags);
    tool_secrets_declared(merged, diags);
    secrets_used(merged, diags);
    env_source_not_passed(merged, diags);
    secret_sources_not_agent_reachable(merged, diags);
    key::check_with(merged, key::key_path().as_deref(), diags);
    secret_commands_not_agent_writable(merged, diags);
    super::validate_proxy::check(merged, diags);
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

/// With host rules the egress proxy listens on its fixed port in the
/// sandbox's loopback; the agent cannot bind it.
fn proxy_port_free(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    if merged.allow_hosts.is_empty() && merged.deny_hosts.is_empty() {
        return;
    }
    let port = super::hosts::PROXY_PORT;
    for bind in merged.bind_tcp.iter().filter(|b| b.value == port) {
        diags.push(Diagnostic {
            location: bind.origin.clone(),
            message: format!(
                "port {port} is cordon's egress proxy inside a sandbox with host rules; bind another port"
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
/// A tool's `unmask` entry must be one of the profile's `deny` entries: an
/// unmask of anything else is a typo that would silently unmask nothing.
fn unmask_names_a_deny(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    for (name, tool) in &merged.tools {
        for u in &tool.sandbox.unmask {
            if !merged
                .filesystem
                .deny
                .iter()
                .any(|d| normal(&d.path) == normal(&u.path))
            {
                diags.push(Diagnostic {
                    location: u.origin.clone(),
                    message: format!(
                        "`{}` in [tools.{name}.sandbox] unmask is not in [filesystem] deny; unmask lists deny entries, written the same way",
                        u.path
                    ),
                });
            }
        }
    }
}

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

/// An exec grant on a tree the agent can write (or inside one) lets it
/// run whatever it writes there: a copy of a declared tool, a script whose
/// `#!` names the dynamic loader, any downloaded program. Compared as
/// written (templates and literal paths alike); `cordon run` compares the
/// expanded, canonical paths again.
fn exec_not_writable(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    let fs = &merged.filesystem;
    for exec in &fs.exec {
        let e = normal(&exec.path);
        for write in &fs.write {
            let w = normal(&write.path);
            if e == w || under(&e, &w) || under(&w, &e) {
                diags.push(Diagnostic {
                    location: exec.origin.clone(),
                    message: exec_on_writable_message(&exec.path, &write.path, &write.origin),
                });
            }
        }
    }
}

/// The message for an exec grant that overlaps a write grant.
pub fn exec_on_writable_message(
    exec: &PathTemplate,
    write: &PathTemplate,
    write_origin: &Location,
) -> String {
    format!(
        "exec grant `{exec}` overlaps the write grant `{write}` at {write_origin}: the agent could write a program there and run it (a copy of a declared tool, a `#!` script naming the dynamic loader); grant exec on files the agent cannot change, or brokered tools"
    )
}

/// Whether normalised path `a` lies strictly below `b`.
fn under(a: &str, b: &str) -> bool {
    a.strip_prefix(b)
        .is_some_and(|rest| rest.starts_with('/') || b.ends_with('/'))
}

/// A removal needs a parent, and a file may not add what it removes.
fn removals_are_meaningful(layer: &Layer, diags: &mut Vec<Diagnostic>) {
    super::remove::check_root(&layer.removals, layer.extends.is_some(), diags);
    let fs = &layer.filesystem;
    let paths = |l: &[super::PathRule]| -> Vec<String> {
        l.iter().map(|r| r.path.as_str().to_string()).collect()
    };
    let hosts =
        |l: &[super::HostRule]| -> Vec<String> { l.iter().map(|r| r.text.clone()).collect() };
    let ports =
        |l: &[Located<u16>]| -> Vec<String> { l.iter().map(|p| p.value.to_string()).collect() };
    let lists: [(&'static str, Vec<String>); 12] = [
        ("[filesystem] read", paths(&fs.read)),
        ("[filesystem] write", paths(&fs.write)),
        ("[filesystem] exec", paths(&fs.exec)),
        ("[filesystem] deny", paths(&fs.deny)),
        ("[network] connect_tcp", ports(&layer.connect_tcp)),
        ("[network] bind_tcp", ports(&layer.bind_tcp)),
        ("[network] allow_hosts", hosts(&layer.allow_hosts)),
        ("[network] deny_hosts", hosts(&layer.deny_hosts)),
        ("[network] unix", paths(&layer.unix)),
        (
            "[environment] pass",
            layer.env_pass.iter().map(|l| l.value.clone()).collect(),
        ),
        (
            "[divergence] tolerated_hosts",
            hosts(&layer.tolerated_hosts),
        ),
        (
            "[divergence] tolerated_execs",
            paths(&layer.tolerated_execs),
        ),
    ];
    for (list, added) in &lists {
        super::remove::check_added(list, &layer.removals, added, String::clone, diags);
    }
}

/// A tolerated exec is one the profile refuses: inside an exec grant it
/// would simply run, and the entry would say the opposite of what happens.
fn tolerated_execs_are_refused(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    for t in &merged.tolerated_execs {
        let tp = normal(&t.path);
        if let Some(grant) = merged.filesystem.exec.iter().find(|g| {
            let g = normal(&g.path);
            tp == g || under(&tp, &g)
        }) {
            diags.push(Diagnostic {
                location: t.origin.clone(),
                message: format!(
                    "`tolerated_execs` entry `{}` lies in the exec grant `{}` at {}: the agent may run it, so there is no refusal to tolerate; remove one of them",
                    t.path, grant.path, grant.origin
                ),
            });
        }
    }
}

/// A tool's `secrets` must name a `[secrets.NAME]` of the merged profile.
fn tool_secrets_declared(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    let tools = merged
        .tools
        .values()
        .map(|t| (format!("tool `{}`", t.name), &t.secrets));
    let servers = merged
        .mcp
        .values()
        .map(|s| (format!("MCP server `{}`", s.name), &s.secrets));
    for (owner, secrets) in tools.chain(servers) {
        for secret in secrets {
            if merged.secrets.contains_key(&secret.name) {
                continue;
            }
            let hint = did_you_mean(&secret.name, merged.secrets.keys().map(String::as_str))
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            diags.push(Diagnostic {
                location: secret.origin.clone(),
                message: format!(
                    "{owner}: secret `{}` is not declared; {hint}declare it in a [secrets.{}] section",
                    secret.name.escape_debug(),
                    secret.name.escape_debug()
                ),
            });
        }
    }
}

/// A secret no tool receives and the agent may not ask for is a mistake
/// (a typo in a tool's list, or a leftover).
fn secrets_used(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    for (name, secret) in &merged.secrets {
        let Some(spec) = &secret.spec else { continue };
        let used = merged
            .tools
            .values()
            .map(|t| &t.secrets)
            .chain(merged.mcp.values().map(|s| &s.secrets))
            .any(|list| list.iter().any(|s| s.name == *name))
            || merged.env_secrets.iter().any(|s| s.value == *name);
        if !used && !spec.expose {
            diags.push(Diagnostic {
                location: secret.origin.clone(),
                message: format!("secret `{name}` is never used (no tool or MCP server lists it, it is not in [environment] secrets, and expose = false); list it in a tool's `secrets` or remove it"),
            });
        }
    }
}

/// An `env:` source copied into the agent's environment by
/// `[environment] pass` would hand the agent the value itself.
fn env_source_not_passed(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    for (name, secret) in &merged.secrets {
        let Some(SecretSource::Env(var)) = secret.spec.as_ref().map(|s| &s.source) else {
            continue;
        };
        if let Some(pass) = merged.env_pass.iter().find(|p| p.value == *var) {
            diags.push(Diagnostic {
                location: secret.from_at.clone().unwrap_or_else(|| secret.origin.clone()),
                message: format!(
                    "secret `{name}`: the agent would receive the secret source: `{var}` is in [environment] pass (at {}); remove it from `pass`",
                    pass.origin
                ),
            });
        }
    }
}

/// The agent must not read or change a secret's `file:` source, nor its
/// `credential:` file (checked when `$CREDENTIALS_DIRECTORY` is set here).
/// Grants with a placeholder are per-session directories and are checked
/// again, expanded, by [`secret_source_reachable`] when a session starts.
fn secret_sources_not_agent_reachable(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    sources_not_reachable_with(merged, credentials_directory().as_deref(), diags);
}

/// [`secret_sources_not_agent_reachable`] with the credentials directory
/// given.
fn sources_not_reachable_with(
    merged: &Layer,
    credentials: Option<&Path>,
    diags: &mut Vec<Diagnostic>,
) {
    for (name, secret) in &merged.secrets {
        let Some(spec) = &secret.spec else { continue };
        let Some(path) = source_path(spec, credentials) else {
            continue;
        };
        let shown = match std::fs::canonicalize(&path) {
            Ok(real) if real != path => {
                format!("{} (which resolves to {})", path.display(), real.display())
            }
            _ => path.display().to_string(),
        };
        for hit in reaching_grants(&merged.filesystem, &path, Guard::Source, &literal) {
            let what = if hit.list == "write" {
                "read and change"
            } else {
                "read"
            };
            diags.push(Diagnostic {
                location: secret.from_at.clone().unwrap_or_else(|| secret.origin.clone()),
                message: format!(
                    "secret `{name}`: the agent could {what} the secret source {shown} (granted by {} = \"{}\" at {}); narrow the grant",
                    hit.list,
                    hit.rule.path,
                    hit.rule.origin
                ),
            });
        }
    }
}

/// A provider or revoke program the agent may write could be replaced by
/// the agent's own code, which cordon would then run with the secret.
/// (Running it is fine: the agent running a provider is not the secret.)
fn secret_commands_not_agent_writable(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    for (name, secret) in &merged.secrets {
        let Some(spec) = &secret.spec else { continue };
        for (what, program, at) in programs(spec) {
            let location = match what {
                "revoke" => secret.revoke_at.clone(),
                _ => secret.from_at.clone(),
            }
            .unwrap_or_else(|| secret.origin.clone());
            for hit in reaching_grants(&merged.filesystem, program, Guard::Program, &literal) {
                diags.push(Diagnostic {
                    location: location.clone(),
                    message: format!(
                        "secret `{name}`: the agent could replace the {at} {} (granted by {} = \"{}\" at {}); narrow the grant",
                        program.display(),
                        hit.list,
                        hit.rule.path,
                        hit.rule.origin
                    ),
                });
            }
        }
    }
}

/// For the runtime: every secret source (and provider or revoke program)
/// that a grant of `profile`, with its placeholders expanded to this
/// session's `values`, lets the agent reach, and the identity key when a
/// tool's or MCP server's own grants reach it; with the grant's location.
/// The broker refuses to start a session when this is not empty.
///
/// `credential:` sources are resolved with `$CREDENTIALS_DIRECTORY` of
/// cordon's own environment, the one their values are read from.
pub fn secret_source_reachable(
    profile: &Profile,
    values: &Placeholders,
) -> Vec<(String, PathBuf, Location)> {
    let mut out = reachable_in(profile, values, credentials_directory().as_deref());
    let expand = |t: &PathTemplate| Some(t.expand(values));
    out.extend(key::reachable(profile, &expand, key::key_path().as_deref()));
    out
}

#[path = "validate_key.rs"]
mod key;

fn reachable_in(
    profile: &Profile,
    values: &Placeholders,
    credentials: Option<&Path>,
) -> Vec<(String, PathBuf, Location)> {
    let expand = |t: &PathTemplate| Some(t.expand(values));
    let mut out = Vec::new();
    for (name, spec) in &profile.secrets {
        let mut guarded: Vec<(PathBuf, Guard)> = Vec::new();
        guarded.extend(source_path(spec, credentials).map(|p| (p, Guard::Source)));
        guarded.extend(
            programs(spec)
                .into_iter()
                .map(|(_, p, _)| (p.to_path_buf(), Guard::Program)),
        );
        for (path, guard) in guarded {
            for hit in reaching_grants(&profile.filesystem, &path, guard, &expand) {
                out.push((name.clone(), path.clone(), hit.rule.origin.clone()));
            }
        }
    }
    out
}

/// `$CREDENTIALS_DIRECTORY` when set to an absolute path.
fn credentials_directory() -> Option<PathBuf> {
    std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The host file a secret is read from, when it is one.
fn source_path(spec: &SecretSpec, credentials: Option<&Path>) -> Option<PathBuf> {
    match &spec.source {
        SecretSource::File(p) => Some(p.clone()),
        SecretSource::Credential(n) => credentials.map(|d| d.join(n)),
        // Whoever reads the signing key can mint any session's identity.
        SecretSource::Identity(_) => crate::identity::key::KeyLocation::for_this_process()
            .ok()
            .map(|l| l.path().to_path_buf()),
        SecretSource::Env(_) | SecretSource::Command(_) => None,
    }
}

/// The absolute programs a secret runs: its provider command and its
/// revoke command. Bare names are found on cordon's PATH at run time.
fn programs(spec: &SecretSpec) -> Vec<(&'static str, &Path, &'static str)> {
    let mut out = Vec::new();
    if let SecretSource::Command(argv) = &spec.source {
        out.extend(
            argv.first()
                .map(|p| ("from", Path::new(p), "provider command")),
        );
    }
    if let Some(argv) = &spec.revoke {
        out.extend(
            argv.first()
                .map(|p| ("revoke", Path::new(p), "revoke command")),
        );
    }
    out.retain(|(_, p, _)| p.is_absolute());
    out
}

/// At check time only grants without a placeholder can be resolved:
/// `{home}` and `{tmp}` are fresh per-session directories that hold no host
/// file, and `{workspace}` is checked again when the session starts.
fn literal(t: &PathTemplate) -> Option<PathBuf> {
    (!t.has_placeholder()).then(|| PathBuf::from(t.as_str()))
}

/// What must stay out of the agent's reach.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// A secret source: neither read (read, write and exec grants) nor
    /// changed.
    Source,
    /// A program cordon runs with the secret: not changed (write grants).
    Program,
}

struct Hit<'a> {
    list: &'static str,
    rule: &'a PathRule,
}

/// The grants of `fs` that reach `path`. Landlock resolves symlinks, so for
/// reading the source is compared canonicalised when it exists (as written
/// otherwise); for changing, also as written, since a writable directory
/// on the written path lets the agent swap a symlink in it. Each grant is
/// compared as written and canonicalised. `[filesystem] deny` does not
/// excuse a grant: it masks one name, and the rule is about the grant.
fn reaching_grants<'a>(
    fs: &'a Filesystem,
    path: &Path,
    guard: Guard,
    expand: &dyn Fn(&PathTemplate) -> Option<PathBuf>,
) -> Vec<Hit<'a>> {
    let canonical = std::fs::canonicalize(path).ok();
    let read_form = canonical.clone().unwrap_or_else(|| path.to_path_buf());
    let mut write_forms = vec![path.to_path_buf()];
    write_forms.extend(canonical);
    let lists: &[(&'static str, &'a Vec<PathRule>)] = match guard {
        Guard::Source => &[("read", &fs.read), ("write", &fs.write), ("exec", &fs.exec)],
        Guard::Program => &[("write", &fs.write)],
    };
    let mut hits = Vec::new();
    for (list, rules) in lists {
        for rule in rules.iter() {
            let Some(grant) = expand(&rule.path) else {
                continue;
            };
            let mut grants = vec![grant.clone()];
            grants.extend(std::fs::canonicalize(&grant).ok());
            let forms: &[PathBuf] = if *list == "write" {
                &write_forms
            } else {
                std::slice::from_ref(&read_form)
            };
            if forms
                .iter()
                .any(|f| grants.iter().any(|g| f.starts_with(g)))
            {
                hits.push(Hit { list, rule });
            }
        }
    }
    hits
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
