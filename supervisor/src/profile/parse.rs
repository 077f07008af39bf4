//! Walks the TOML tree of a profile by hand, collecting every error.
//!
//! serde would stop at the first mistake; a person fixing a profile wants
//! them all, each with its line and column.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::de::DeTable;

use super::layer::{Layer, Located};
use super::walk::{did_you_mean, Value, Walker};
use super::{
    approval, extends, remove, secrets, sections, tools, validate, Diagnostic, DivergenceAction,
    HostRule, OnViolation, PathRule,
};
use super::{Profile, ProfileError, SyscallRule};

/// The longest grace period a profile may ask for.
const MAX_STOP_GRACE: Duration = Duration::from_secs(600);
const MAX_MAX_DENIALS: u64 = 1_000_000;

/// Sections a profile may have.
const SECTIONS: [&str; 13] = [
    "profile",
    "filesystem",
    "network",
    "syscalls",
    "divergence",
    "environment",
    "limits",
    "tools",
    "secrets",
    "audit",
    "approval",
    "mcp",
    "policy",
];

pub(super) fn load_file(path: &Path) -> Result<Profile, ProfileError> {
    let mut diags = Vec::new();
    let chain = extends::load_chain(path, &mut diags);
    let files: Vec<Arc<Path>> = chain.iter().map(|l| l.file.clone()).collect();
    for layer in &chain {
        validate::check_layer(layer, &mut diags);
    }
    // The chain is child first; fold from the root ancestor down.
    let merged = chain
        .into_iter()
        .rev()
        .reduce(|parent, child| parent.merge(child, &mut diags));
    if let Some(merged) = &merged {
        validate::check_profile(merged, &mut diags);
    }
    match merged {
        Some(merged) if diags.is_empty() => Ok(merged.into_profile(path.to_path_buf())),
        _ => {
            sort(&mut diags, &files);
            Err(ProfileError {
                file: path.to_path_buf(),
                diagnostics: diags,
            })
        }
    }
}

/// Loads a profile from text that did not come from a file cordon may
/// read: a sub-agent's, read by its parent inside the sandbox. `extends`
/// is refused (it would make cordon read files for the agent).
pub(super) fn load_text(name: &Path, src: &str) -> Result<Profile, ProfileError> {
    let mut diags = Vec::new();
    let layer = parse_layer_as(Arc::from(name), src, &mut diags, true);
    if let Some(layer) = &layer {
        if let Some(ext) = &layer.extends {
            diags.push(Diagnostic {
                location: ext.origin.clone(),
                message: "a sub-agent's profile cannot use `extends`; write it whole".into(),
            });
        }
        if let Some(home) = layer
            .env_home
            .as_ref()
            .filter(|h| h.value == super::HomeMode::Persistent)
        {
            // Its name is the agent's choice: it could name its parent's
            // profile and be given the parent's state.
            diags.push(Diagnostic {
                location: home.origin.clone(),
                message: "a sub-agent's profile cannot keep a persistent home (its name is its writer's choice, so the home could be another profile's); remove `home` (a sub-agent always starts with a fresh one)".into(),
            });
        }

        validate::check_layer(layer, &mut diags);
        validate::check_profile(layer, &mut diags);
    }
    match layer {
        Some(layer) if diags.is_empty() => Ok(layer.into_profile(name.to_path_buf())),
        _ => {
            diags.sort_by_key(|d| (d.location.line, d.location.column));
            Err(ProfileError {
                file: name.to_path_buf(),
                diagnostics: diags,
            })
        }
    }
}

/// Orders diagnostics by file (child first, as loaded), then line and column.
fn sort(diags: &mut [Diagnostic], files: &[Arc<Path>]) {
    diags.sort_by_key(|d| {
        let rank = files
            .iter()
            .position(|f| *f == d.location.file)
            .unwrap_or(usize::MAX);
        (rank, d.location.line, d.location.column)
    });
}

/// Parses one file's text into a layer. `None` when the TOML itself is
/// broken: then there is no tree to walk.
pub(super) fn parse_layer(
    file: Arc<Path>,
    src: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Layer> {
    parse_layer_as(file, src, diags, false)
}

/// [`parse_layer`]; `from_agent` for text read inside a sandbox, which
/// may name no file for cordon to read.
fn parse_layer_as(
    file: Arc<Path>,
    src: &str,
    diags: &mut Vec<Diagnostic>,
    from_agent: bool,
) -> Option<Layer> {
    let mut w = Walker::new(file.clone(), src);
    w.from_agent = from_agent;
    let doc = match DeTable::parse(src) {
        Ok(doc) => doc,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            // One diagnostic per line, so flatten multi-line messages.
            let msg = e.message().trim().replace('\n', "; ");
            w.error(&span, format!("TOML syntax error: {msg}"));
            diags.append(&mut w.diags);
            return None;
        }
    };
    let mut layer = Layer::new(file);
    for (key, value) in doc.get_ref().iter() {
        let name = key.get_ref().as_ref();
        let section = format!("[{name}]");
        match name {
            "secrets" => secrets::secrets(&mut w, value, &mut layer),
            "tools" => tools::tools(&mut w, value, &mut layer),
            "mcp" => super::mcp::mcp(&mut w, value, &mut layer),
            _ if SECTIONS.contains(&name) => {
                let Some(t) = w.table(value, &format!("`{name}`")) else {
                    continue;
                };
                match name {
                    "profile" => profile(&mut w, t, value, &mut layer),
                    "filesystem" => sections::filesystem(&mut w, t, &mut layer),
                    "network" => network(&mut w, t, &mut layer),
                    "syscalls" => syscalls(&mut w, t, &mut layer),
                    "divergence" => divergence(&mut w, t, &mut layer),
                    "environment" => sections::environment(&mut w, t, &mut layer),
                    "audit" => tools::audit(&mut w, t, &mut layer),
                    "approval" => approval::approval(&mut w, t, &mut layer),
                    "policy" => super::policy::policy(&mut w, t, &mut layer),
                    _ => sections::limits(&mut w, t, &mut layer),
                }
            }
            _ => {
                let valid: Vec<String> = SECTIONS.iter().map(|s| format!("[{s}]")).collect();
                let hint = did_you_mean(name, SECTIONS)
                    .map(|s| format!("did you mean [{s}]? "))
                    .unwrap_or_default();
                let what = if value.get_ref().is_table() {
                    format!("unknown section {section}")
                } else {
                    format!("unknown top-level key `{name}` (keys belong inside a section)")
                };
                let msg = format!("{what}; {hint}valid sections: {}", valid.join(", "));
                w.error(&key.span(), msg);
            }
        }
    }
    diags.append(&mut w.diags);
    Some(layer)
}

fn profile(w: &mut Walker<'_>, t: &DeTable<'_>, at: &Value<'_>, layer: &mut Layer) {
    const KEYS: [&str; 5] = [
        "name",
        "description",
        "extends",
        "best_effort",
        "stop_grace",
    ];
    w.unknown_keys(t, &KEYS, "[profile]");
    layer.profile_at = Some(w.loc(&at.span()));
    if let Some(v) = t.get("name") {
        layer.name_written = true;
        if let Some(name) = w.string("name", v, "a string") {
            if valid_name(&name) {
                layer.name = Some(name);
            } else {
                let msg = format!("`name` must be 1-64 characters of a-z, 0-9, `_` and `-`, starting with a letter or digit; got \"{}\"", name.escape_debug());
                w.error(&v.span(), msg);
            }
        }
    }
    if let Some(v) = t.get("description") {
        layer.description = w.string("description", v, "a string");
    }
    if let Some(v) = t.get("extends") {
        if let Some(parent) = w.string("extends", v, "a path to the parent profile") {
            if parent.is_empty() || parent.contains('\0') {
                w.error(
                    &v.span(),
                    "`extends` must name a profile file, such as \"base.toml\"",
                );
            } else {
                let origin = w.loc(&v.span());
                layer.extends = Some(Located {
                    value: parent,
                    origin,
                });
            }
        }
    }
    if let Some(v) = t.get("best_effort") {
        layer.best_effort = w.boolean("best_effort", v);
    }
    if let Some(v) = t.get("stop_grace") {
        layer.stop_grace = stop_grace(w, v);
    }
}

fn valid_name(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    (1..=64).contains(&name.len())
        && name.chars().all(ok_char)
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn stop_grace(w: &mut Walker<'_>, v: &Value<'_>) -> Option<Duration> {
    w.duration(
        "stop_grace",
        v,
        MAX_STOP_GRACE,
        "10m",
        ("\"5s\"", "\"1m 30s\""),
    )
}

fn network(w: &mut Walker<'_>, t: &DeTable<'_>, layer: &mut Layer) {
    const KEYS: [&str; 5] = [
        "connect_tcp",
        "bind_tcp",
        "allow_hosts",
        "deny_hosts",
        "unix",
    ];
    w.unknown_keys(t, &KEYS, "[network]");
    for (key, value) in t.iter() {
        let name = key.get_ref().as_ref();
        let id = match name {
            "connect_tcp" => "[network] connect_tcp",
            "bind_tcp" => "[network] bind_tcp",
            "allow_hosts" => "[network] allow_hosts",
            "deny_hosts" => "[network] deny_hosts",
            "unix" => "[network] unix",
            _ => continue,
        };
        let (add, remove) = remove::split(w, name, value);
        if let Some(value) = add {
            match name {
                "connect_tcp" => layer.connect_tcp = ports(w, name, value),
                "bind_tcp" => layer.bind_tcp = ports(w, name, value),
                "allow_hosts" => layer.allow_hosts = host_rules(w, name, value),
                "deny_hosts" => layer.deny_hosts = host_rules(w, name, value),
                _ => layer.unix = unix_rules(w, name, value),
            }
        }
        if let Some(r) = remove {
            let removals = match name {
                "connect_tcp" | "bind_tcp" => remove::ports(id, ports(w, name, r)),
                "allow_hosts" | "deny_hosts" => host_removals(id, host_rules(w, name, r)),
                _ => super::sections::path_removals(id, unix_rules(w, name, r)),
            };
            layer.removals.extend(removals);
        }
    }
}

/// `unix`: pathname Unix sockets (or trees of them) the sandbox may
/// connect and send to, as path entries.
pub(super) fn unix_rules(w: &mut Walker<'_>, key: &str, value: &Value<'_>) -> Vec<PathRule> {
    let expects = "an array of socket paths (strings, or { path = \"...\", optional = true })";
    w.array(key, value, expects)
        .iter()
        .filter_map(|item| super::sections::path_rule(w, key, item))
        .collect()
}

/// Host rules as removals from `list`, keyed by the rule's text.
fn host_removals(list: &'static str, rules: Vec<HostRule>) -> Vec<remove::Removal> {
    remove::removals(list, rules, |r| (r.text.clone(), r.origin.clone()))
}

/// `allow_hosts` / `deny_hosts`: `HOST:PORT [via ADDR,...]` strings.
pub(super) fn host_rules(w: &mut Walker<'_>, key: &str, value: &Value<'_>) -> Vec<HostRule> {
    let mut out: Vec<HostRule> = Vec::new();
    let expects = "an array of \"HOST:PORT\" strings, e.g. [\"api.github.com:443\"]";
    for item in w.array(key, value, expects) {
        let Some(text) = w.string(key, item, "\"HOST:PORT\" strings") else {
            continue;
        };
        let origin = w.loc(&item.span());
        match super::hosts::parse_rule(&text, origin) {
            Ok(rule) if out.iter().any(|r| r.text == rule.text) => {
                let msg = format!("`{}` is listed twice in `{key}`", rule.text);
                w.error(&item.span(), msg);
            }
            Ok(rule) => out.push(rule),
            Err(msg) => w.error(&item.span(), format!("`{key}`: {msg}")),
        }
    }
    out
}

pub(super) fn ports(w: &mut Walker<'_>, key: &str, value: &Value<'_>) -> Vec<Located<u16>> {
    let mut out = Vec::new();
    for item in w.array(key, value, "an array of port numbers 1-65535") {
        if let Some(port) = w.integer(key, item, 1, 65535, "port numbers 1-65535") {
            if let Ok(port) = u16::try_from(port) {
                out.push(Located {
                    value: port,
                    origin: w.loc(&item.span()),
                });
            }
        }
    }
    out
}

fn syscalls(w: &mut Walker<'_>, t: &DeTable<'_>, layer: &mut Layer) {
    const KEYS: [&str; 2] = ["deny", "on_violation"];
    w.unknown_keys(t, &KEYS, "[syscalls]");
    if let Some(v) = t.get("deny") {
        for item in w.array("deny", v, "an array of syscall names") {
            if let Some(name) = w.string("deny", item, "syscall names") {
                if let Some(rule) = syscall(w, &name, item) {
                    layer.syscall_deny.push(rule);
                }
            }
        }
    }
    if let Some(v) = t.get("on_violation") {
        let words = [("kill", OnViolation::Kill), ("deny", OnViolation::Deny)];
        layer.on_violation = w.word("on_violation", v, &words);
    }
}

fn syscall(w: &mut Walker<'_>, name: &str, item: &Value<'_>) -> Option<SyscallRule> {
    let origin = w.loc(&item.span());
    let number = name
        .parse::<syscalls::Sysno>()
        .ok()
        .and_then(|s| u32::try_from(s.id()).ok());
    if let Some(number) = number {
        return Some(SyscallRule {
            name: name.to_string(),
            number,
            origin,
        });
    }
    let hint = did_you_mean(name, syscalls::Sysno::iter().map(|s| s.name()))
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    let arch = std::env::consts::ARCH;
    let msg = format!("unknown syscall `{}` on {arch}{hint}", name.escape_debug());
    w.error(&item.span(), msg);
    None
}

fn divergence(w: &mut Walker<'_>, t: &DeTable<'_>, layer: &mut Layer) {
    const KEYS: [&str; 6] = [
        "undeclared_tool",
        "denied_action",
        "max_denials",
        "sub_agent",
        "tolerated_hosts",
        "tolerated_execs",
    ];
    w.unknown_keys(t, &KEYS, "[divergence]");
    if let Some(v) = t.get("tolerated_hosts") {
        let (add, remove) = remove::split(w, "tolerated_hosts", v);
        if let Some(r) = remove {
            let rules = host_rules(w, "tolerated_hosts", r);
            layer
                .removals
                .extend(host_removals("[divergence] tolerated_hosts", rules));
        }
        if let Some(v) = add {
            layer.tolerated_hosts = host_rules(w, "tolerated_hosts", v);
        }
        for rule in layer.tolerated_hosts.iter().filter(|r| !r.via.is_empty()) {
            w.diags.push(Diagnostic {
                location: rule.origin.clone(),
                message: format!(
                    "`tolerated_hosts` entry `{}`: `via` has no meaning here (a tolerated host is one that is refused); write `HOST:PORT`",
                    rule.text
                ),
            });
        }
    }
    if let Some(v) = t.get("tolerated_execs") {
        let (add, remove) = remove::split(w, "tolerated_execs", v);
        if let Some(v) = add {
            layer.tolerated_execs = super::sections::path_rules(w, "tolerated_execs", v);
        }
        if let Some(r) = remove {
            let rules = super::sections::path_rules(w, "tolerated_execs", r);
            layer.removals.extend(super::sections::path_removals(
                "[divergence] tolerated_execs",
                rules,
            ));
        }
    }
    let words = [
        ("kill", DivergenceAction::Kill),
        ("deny", DivergenceAction::Deny),
    ];
    if let Some(v) = t.get("undeclared_tool") {
        layer.undeclared_tool = w.word("undeclared_tool", v, &words);
    }
    if let Some(v) = t.get("sub_agent") {
        layer.sub_agent = w.word("sub_agent", v, &words);
    }
    if let Some(v) = t.get("denied_action") {
        if let Some(action) = w.word("denied_action", v, &words) {
            let origin = w.loc(&v.span());
            layer.denied_action = Some(Located {
                value: action,
                origin,
            });
        }
    }
    if let Some(v) = t.get("max_denials") {
        let expects = "an integer 0-1000000";
        if let Some(n) = w.integer("max_denials", v, 0, MAX_MAX_DENIALS, expects) {
            if let Ok(n) = u32::try_from(n) {
                let origin = w.loc(&v.span());
                layer.max_denials = Some(Located { value: n, origin });
            }
        }
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
