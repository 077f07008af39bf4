//! The `[tools.NAME]` sections (brokered tools, their argv rules with
//! examples, and their sandbox) and `[audit]`.

use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::layer::Layer;
use super::parse::{host_rules, ports};
use super::secrets::tool_secrets;
use super::sections::{env_name_ok, path_rule};
use super::walk::{article, string_array, Value, Walker};
use super::{ArgvRule, PathRule, PathTemplate, Risk, Tool, ToolSandbox};
use crate::policy::{compile_pattern, render_tokens, CompiledGrammar};

const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
const MAX_MAX_CALLS: u64 = 1_000_000;
const RULE_LISTS: [&str; 3] = ["allow", "approve", "deny"];

/// `[tools]`: one `[tools.NAME]` table per tool.
pub(super) fn tools(w: &mut Walker<'_>, value: &Value<'_>, layer: &mut Layer) {
    let Some(t) = w.table(value, "`tools`") else {
        return;
    };
    for (key, v) in t.iter() {
        let name = key.get_ref().to_string();
        if !valid_tool_name(&name) {
            let msg = format!("tool name `{}` must be 1-64 characters of A-Z, a-z, 0-9, `.`, `_`, `+` and `-`, not starting with `.` or `-` (it becomes a file name on the agent's PATH)", name.escape_debug());
            w.error(&key.span(), msg);
            continue;
        }
        let section = format!("[tools.{name}]");
        let Some(table) = w.table(v, &section) else {
            continue;
        };
        if let Some(tool) = tool(w, &name, table, v) {
            layer.tools.insert(name, tool);
        }
    }
}

fn valid_tool_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-');
    (1..=64).contains(&name.len()) && name.chars().all(ok) && !name.starts_with(['.', '-'])
}

fn tool(w: &mut Walker<'_>, name: &str, t: &DeTable<'_>, at: &Value<'_>) -> Option<Tool> {
    const KEYS: [&str; 12] = [
        "path",
        "allow",
        "approve",
        "deny",
        "timeout",
        "max_calls",
        "env",
        "secrets",
        "sandbox",
        "grammar",
        "unknown",
        "options",
    ];
    let section = format!("[tools.{name}]");
    w.unknown_keys(t, &KEYS, &section);
    let path = match t.get("path") {
        Some(v) => tool_path(w, v),
        None => {
            let msg =
                format!("{section} needs `path`, the real binary, e.g. path = \"/usr/bin/{name}\"");
            w.error(&at.span(), msg);
            None
        }
    };
    let grammar = super::grammar::tool_grammar(w, name, t);
    // Problems of the option rules were reported where they were written.
    let compiled = grammar
        .as_ref()
        .and_then(|g| CompiledGrammar::compile(g).ok());
    let mut lists: [Vec<ArgvRule>; 3] = Default::default();
    let mut written = [0usize; 3];
    for (i, list) in RULE_LISTS.iter().enumerate() {
        let Some(v) = t.get(*list) else { continue };
        let expects =
            "an array of rules (arrays of strings, or { argv = [...], examples = {...} })";
        let items = w.array(list, v, expects);
        written[i] = items.len();
        for (index, item) in items.iter().enumerate() {
            if let Some(rule) = argv_rule(w, list, index, item, compiled.as_ref()) {
                lists[i].push(rule);
            }
        }
    }
    if written[0] + written[1] == 0 {
        let msg = format!("{section} has no `allow` or `approve` rule, so it could never run; add one or remove the tool");
        w.error(&at.span(), msg);
    }
    let timeout = t.get("timeout").and_then(|v| timeout(w, v));
    let max_calls = t.get("max_calls").and_then(|v| {
        w.integer("max_calls", v, 1, MAX_MAX_CALLS, "an integer 1-1000000")
            .and_then(|n| u32::try_from(n).ok())
    });
    let mut env = Vec::new();
    if let Some(v) = t.get("env") {
        for item in w.array("env", v, "an array of variable names") {
            if let Some(n) = w.string("env", item, "variable names") {
                if env_name_ok(w, &n, &item.span(), "env") {
                    env.push(n);
                }
            }
        }
    }
    let secrets = t
        .get("secrets")
        .map(|v| tool_secrets(w, &section, v, &env))
        .unwrap_or_default();
    let sandbox = match t.get("sandbox") {
        Some(v) => {
            let section = format!("[tools.{name}.sandbox]");
            w.table(v, &section)
                .map(|st| tool_sandbox(w, &section, st, v))
                .unwrap_or_default()
        }
        None => ToolSandbox {
            inherit_defaults: true,
            cwd: default_cwd(w, at),
            ..ToolSandbox::default()
        },
    };
    let [allow, approve, deny] = lists;
    Some(Tool {
        name: name.to_string(),
        path: path?,
        allow,
        approve,
        deny,
        timeout,
        max_calls,
        env,
        secrets,
        sandbox,
        grammar,
        origin: w.loc(&at.span()),
    })
}

/// The real binary: absolute, and (following symlinks) an executable
/// regular file now.
fn tool_path(w: &mut Walker<'_>, v: &Value<'_>) -> Option<PathBuf> {
    let text = w.string("path", v, "an absolute path to the tool's binary")?;
    let shown = text.escape_debug().to_string();
    if !text.starts_with('/') || text.contains('\0') {
        let msg =
            format!("tool `path` must be an absolute path without placeholders, got \"{shown}\"");
        w.error(&v.span(), msg);
        return None;
    }
    let problem = match std::fs::metadata(&text) {
        Err(e) => Some(format!("`{shown}` cannot be used as a tool ({e})")),
        Ok(m) if !m.is_file() => Some(format!("`{shown}` is not a regular file")),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => {
            Some(format!("`{shown}` is not executable"))
        }
        Ok(_) => None,
    };
    if let Some(msg) = problem {
        w.error(
            &v.span(),
            format!("{msg}; `path` must name the tool's real binary"),
        );
        return None;
    }
    Some(PathBuf::from(text))
}

fn timeout(w: &mut Walker<'_>, v: &Value<'_>) -> Option<Duration> {
    w.duration("timeout", v, MAX_TIMEOUT, "24h", ("\"60s\"", "\"2m 30s\""))
}

/// An array of strings with each one's span; `None` after reporting.
fn strings(w: &mut Walker<'_>, key: &str, v: &Value<'_>) -> Option<Vec<(String, Range<usize>)>> {
    string_array(w, key, v, "an array of strings")
}

/// One rule: `["push", "**"]` or `{ argv = [...], examples = {...} }`.
/// Its pattern is compiled and its examples checked here: with a grammar,
/// against their canonical form, and each option token of the rule must be
/// spelled canonically (else the rule could never match).
fn argv_rule(
    w: &mut Walker<'_>,
    list: &str,
    index: usize,
    item: &Value<'_>,
    grammar: Option<&CompiledGrammar>,
) -> Option<ArgvRule> {
    let mut risk = None;
    let mut pre_approved = false;
    let (argv, examples) = match item.get_ref() {
        DeValue::Array(_) => (item, None),
        DeValue::Table(t) => {
            let keys = ["argv", "examples", "risk", "pre_approved"];
            w.unknown_keys(t, &keys, &format!("a `{list}` rule"));
            (risk, pre_approved) = risk_tag(w, list, t);
            let Some(argv) = t.get("argv") else {
                let msg = format!("a `{list}` rule written as a table needs `argv`, as in {{ argv = [\"status\"], examples = {{ match = [[\"status\"]] }}, risk = \"delete\" }}");
                w.error(&item.span(), msg);
                return None;
            };
            (argv, t.get("examples"))
        }
        other => {
            let msg = format!("`{list}` rules must be arrays of strings or {{ argv = [...], examples = {{...}} }}, got {}", article(other));
            w.error(&item.span(), msg);
            return None;
        }
    };
    let tokens = strings(w, "argv", argv)?;
    let (tokens, spans): (Vec<String>, Vec<Range<usize>>) = tokens.into_iter().unzip();
    let name = format!("{list}[{index}] {}", render_tokens(&tokens));
    let mut pattern = match compile_pattern(&tokens) {
        Ok(p) => Some(p),
        Err(e) => {
            let span = spans.get(e.index()).cloned().unwrap_or(argv.span());
            w.error(&span, format!("rule {list}[{index}]: {e}"));
            None
        }
    };
    if let Some((i, why)) = grammar.and_then(|g| g.grammar().rule_problem(&tokens)) {
        let span = spans.get(i).cloned().unwrap_or(argv.span());
        w.error(&span, format!("rule {list}[{index}]: {why}"));
        pattern = None;
    }
    let mut rule = ArgvRule {
        tokens,
        examples_match: Vec::new(),
        examples_no_match: Vec::new(),
        risk,
        pre_approved,
        origin: w.loc(&item.span()),
    };
    let Some(examples) = examples else {
        return Some(rule);
    };
    let Some(ex) = w.table(examples, "`examples`") else {
        return Some(rule);
    };
    w.unknown_keys(ex, &["match", "no_match"], "`examples`");
    for (key, want) in [("match", true), ("no_match", false)] {
        let Some(v) = ex.get(key) else { continue };
        for example in w.array(key, v, "an array of argvs (arrays of strings)") {
            let Some(args) = strings(w, key, example) else {
                continue;
            };
            let args: Vec<String> = args.into_iter().map(|(s, _)| s).collect();
            if let Some(p) = &pattern {
                let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
                let seen = match grammar.map(|g| g.rule_view(&bytes)) {
                    None => Ok(None),
                    Some(Ok(view)) => Ok(Some(view)),
                    Some(Err(why)) => Err(why),
                };
                let matched = match &seen {
                    Ok(None) => p.matches(&bytes),
                    Ok(Some(view)) => {
                        let view: Vec<&[u8]> = view.iter().map(Vec::as_slice).collect();
                        p.matches(&view)
                    }
                    // Refused before any rule: it matches none.
                    Err(_) => false,
                };
                if let (true, Err(why)) = (want, &seen) {
                    let msg = format!(
                        "example {} never reaches rule {name}: {why}",
                        render_tokens(&args)
                    );
                    w.error(&example.span(), msg);
                } else if matched != want {
                    let shown = match &seen {
                        Ok(Some(view)) => {
                            let text: Vec<String> = view
                                .iter()
                                .map(|t| String::from_utf8_lossy(t).into_owned())
                                .collect();
                            format!(" (canonical form {})", render_tokens(&text))
                        }
                        _ => String::new(),
                    };
                    let msg = if want {
                        format!("example {}{shown} is not matched by rule {name}; fix the rule or move the example to `no_match`", render_tokens(&args))
                    } else {
                        format!("example {}{shown} is matched by rule {name}; fix the rule or move the example to `match`", render_tokens(&args))
                    };
                    w.error(&example.span(), msg);
                }
            }
            if want {
                rule.examples_match.push(args);
            } else {
                rule.examples_no_match.push(args);
            }
        }
    }
    Some(rule)
}

/// `risk = "delete"` and `pre_approved = true` of a rule written as a
/// table. A risk on an `allow` rule makes its calls need approval unless
/// `pre_approved`; `pre_approved` means nothing without a risk, and an
/// `approve` rule always asks.
pub(super) fn risk_tag(w: &mut Walker<'_>, list: &str, t: &DeTable<'_>) -> (Option<Risk>, bool) {
    let risk = t.get("risk").and_then(|v| w.word("risk", v, &Risk::ALL));
    let Some(v) = t.get("pre_approved") else {
        return (risk, false);
    };
    let pre = w.boolean("pre_approved", v).unwrap_or(false);
    if pre && list == "approve" {
        let msg = "`pre_approved` cannot apply to an `approve` rule, which always asks; move the rule to `allow` with its `risk`";
        w.error(&v.span(), msg);
        return (risk, false);
    }
    if pre && list == "deny" {
        w.error(&v.span(), "`pre_approved` means nothing on a `deny` rule");
        return (risk, false);
    }
    if pre && t.get("risk").is_none() {
        let msg = "`pre_approved` only applies to a rule with a `risk` tag; a rule without one needs no approval";
        w.error(&v.span(), msg);
        return (risk, false);
    }
    (risk, pre)
}

/// `cwd` when not written: the workspace, located at `at`.
pub(super) fn default_cwd(w: &Walker<'_>, at: &Value<'_>) -> Vec<PathRule> {
    PathTemplate::parse("{workspace}")
        .map(|path| PathRule {
            path,
            optional: false,
            origin: w.loc(&at.span()),
        })
        .into_iter()
        .collect()
}

/// A sandbox table (`section` names it in messages, e.g.
/// `[tools.git.sandbox]`).
pub(super) fn tool_sandbox(
    w: &mut Walker<'_>,
    section: &str,
    t: &DeTable<'_>,
    at: &Value<'_>,
) -> ToolSandbox {
    const KEYS: [&str; 11] = [
        "inherit_defaults",
        "read",
        "write",
        "exec",
        "cwd",
        "unmask",
        "connect_tcp",
        "bind_tcp",
        "allow_hosts",
        "deny_hosts",
        "unix",
    ];
    w.unknown_keys(t, &KEYS, section);
    let mut sb = ToolSandbox {
        inherit_defaults: true,
        ..ToolSandbox::default()
    };
    for (key, value) in t.iter() {
        let k = key.get_ref().as_ref();
        let list = match k {
            "inherit_defaults" => {
                sb.inherit_defaults = w.boolean(k, value).unwrap_or(true);
                continue;
            }
            "connect_tcp" => {
                sb.connect_tcp = ports(w, k, value).into_iter().map(|p| p.value).collect();
                continue;
            }
            "bind_tcp" => {
                sb.bind_tcp = ports(w, k, value).into_iter().map(|p| p.value).collect();
                continue;
            }
            "allow_hosts" => {
                sb.allow_hosts = host_rules(w, k, value);
                continue;
            }
            "deny_hosts" => {
                sb.deny_hosts = host_rules(w, k, value);
                continue;
            }
            "unix" => &mut sb.unix,
            "read" => &mut sb.read,
            "write" => &mut sb.write,
            "exec" => &mut sb.exec,
            "cwd" => &mut sb.cwd,
            "unmask" => &mut sb.unmask,
            _ => continue,
        };
        let expects = "an array of paths (strings, or { path = \"...\", optional = true })";
        for item in w.array(k, value, expects) {
            list.extend(path_rule(w, k, item));
        }
    }
    if t.get("cwd").is_none() {
        sb.cwd = default_cwd(w, at);
    }
    sb
}

/// `[audit]`: where the hash-chained decision log goes.
pub(super) fn audit(w: &mut Walker<'_>, t: &DeTable<'_>, layer: &mut Layer) {
    w.unknown_keys(t, &["path"], "[audit]");
    let Some(v) = t.get("path") else { return };
    let Some(text) = w.string("path", v, "a path such as \"/var/log/cordon/audit.jsonl\"") else {
        return;
    };
    match PathTemplate::parse(&text) {
        Ok(p) => layer.audit_path = Some(p),
        Err(e) => w.error(&v.span(), e.to_string()),
    }
}

#[cfg(test)]
#[path = "tools_tests.rs"]
mod tests;
