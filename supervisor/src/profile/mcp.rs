//! The `[mcp.NAME]` sections: a stdio MCP server cordon runs and relays
//! to, its sandbox and secrets, and the argument rules of each tool
//! (`[mcp.NAME.tools.TOOL]`), whose examples are checked here.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::layer::Layer;
use super::secrets::tool_secrets;
use super::sections::env_name_ok;
use super::tools::{default_cwd, risk_tag, tool_sandbox};
use super::walk::{article, string_array, Value, Walker};
use super::{ArgMatch, ArgRule, McpServer, McpTool, ToolSandbox};
use crate::mcp::path::JsonPath;
use crate::mcp::rules::{check_glob, render, CompiledRule, Quantifier};

/// How long a `tools/call` may wait when the profile does not say.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(3600);
/// The default and the largest `max_message`.
pub const DEFAULT_MAX_MESSAGE: usize = 1 << 20;
const MAX_MAX_MESSAGE: u64 = 16 << 20;
const MIN_MAX_MESSAGE: u64 = 4096;
const RULE_LISTS: [&str; 3] = ["allow", "approve", "deny"];
/// What examples are checked with in place of the session's workspace.
pub const EXAMPLE_WORKSPACE: &str = "/workspace";

/// `[mcp]`: one `[mcp.NAME]` table per server.
pub(super) fn mcp(w: &mut Walker<'_>, value: &Value<'_>, layer: &mut Layer) {
    let Some(t) = w.table(value, "`mcp`") else {
        return;
    };
    for (key, v) in t.iter() {
        let name = key.get_ref().to_string();
        if !valid_server_name(&name) {
            let msg = format!("MCP server name `{}` must be 1-64 characters of a-z, 0-9, `_` and `-`, starting with a letter or digit (the agent runs `cordon-shim mcp {}`)", name.escape_debug(), name.escape_debug());
            w.error(&key.span(), msg);
            continue;
        }
        let section = format!("[mcp.{name}]");
        let Some(table) = w.table(v, &section) else {
            continue;
        };
        if let Some(server) = server(w, &name, table, v) {
            layer.mcp.insert(name, server);
        }
    }
}

fn valid_server_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    (1..=64).contains(&name.len())
        && name.chars().all(ok)
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// MCP tool names, as the specification recommends them.
fn valid_tool_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    (1..=128).contains(&name.len()) && name.chars().all(ok)
}

fn server(w: &mut Walker<'_>, name: &str, t: &DeTable<'_>, at: &Value<'_>) -> Option<McpServer> {
    const KEYS: [&str; 8] = [
        "command",
        "secrets",
        "env",
        "sandbox",
        "timeout",
        "max_calls",
        "max_message",
        "tools",
    ];
    let section = format!("[mcp.{name}]");
    w.unknown_keys(t, &KEYS, &section);
    let command = match t.get("command") {
        Some(v) => command(w, v),
        None => {
            let msg = format!("{section} needs `command`, the server's argv, e.g. command = [\"/usr/bin/node\", \"/opt/mcp/server/index.js\", \"{{workspace}}\"]");
            w.error(&at.span(), msg);
            None
        }
    };
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
            let s = format!("[mcp.{name}.sandbox]");
            w.table(v, &s)
                .map(|st| tool_sandbox(w, &s, st, v))
                .unwrap_or_default()
        }
        None => ToolSandbox {
            inherit_defaults: true,
            cwd: default_cwd(w, at),
            ..ToolSandbox::default()
        },
    };
    let call_timeout = t
        .get("timeout")
        .and_then(|v| w.duration("timeout", v, MAX_CALL_TIMEOUT, "1h", ("\"30s\"", "\"2m\"")))
        .unwrap_or(DEFAULT_CALL_TIMEOUT);
    let max_calls = t.get("max_calls").and_then(|v| {
        w.integer("max_calls", v, 1, 1_000_000, "an integer 1-1000000")
            .and_then(|n| u32::try_from(n).ok())
    });
    let max_message = t
        .get("max_message")
        .and_then(|v| {
            let expects = "a size in bytes, 4096-16777216";
            w.integer("max_message", v, MIN_MAX_MESSAGE, MAX_MAX_MESSAGE, expects)
        })
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(DEFAULT_MAX_MESSAGE);
    let mut tools = std::collections::BTreeMap::new();
    match t.get("tools") {
        Some(v) => {
            if let Some(tt) = w.table(v, &format!("[mcp.{name}.tools]")) {
                for (key, tv) in tt.iter() {
                    let tool = key.get_ref().to_string();
                    if !valid_tool_name(&tool) {
                        let msg = format!("MCP tool name `{}` must be 1-128 characters of A-Z, a-z, 0-9, `_`, `-` and `.`", tool.escape_debug());
                        w.error(&key.span(), msg);
                        continue;
                    }
                    let s = format!("[mcp.{name}.tools.{tool}]");
                    let Some(table) = w.table(tv, &s) else {
                        continue;
                    };
                    tools.insert(tool.clone(), mcp_tool(w, name, &tool, table, tv));
                }
            }
        }
        None => {
            let msg = format!("{section} declares no tool, so the agent could call none; add e.g. [mcp.{name}.tools.read_file] with an `allow` rule");
            w.error(&at.span(), msg);
        }
    }
    Some(McpServer {
        name: name.to_string(),
        command: command?,
        secrets,
        env,
        sandbox,
        call_timeout,
        max_calls,
        max_message,
        tools,
        origin: w.loc(&at.span()),
    })
}

/// `command = ["/abs/program", "arg", "{workspace}", ...]`.
fn command(w: &mut Walker<'_>, v: &Value<'_>) -> Option<Vec<String>> {
    let argv = string_array(w, "command", v, "an array of strings, the program first")?;
    let Some((program, at)) = argv.first() else {
        w.error(&v.span(), "`command` needs at least the program");
        return None;
    };
    let shown = program.escape_debug().to_string();
    if !program.starts_with('/') || program.contains('{') {
        let msg = format!(
            "the server's program must be an absolute path without placeholders, got \"{shown}\""
        );
        w.error(at, msg);
        return None;
    }
    let problem = match std::fs::metadata(program) {
        Err(e) => Some(format!("`{shown}` cannot be run ({e})")),
        Ok(m) if !m.is_file() => Some(format!("`{shown}` is not a regular file")),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => {
            Some(format!("`{shown}` is not executable"))
        }
        Ok(_) => None,
    };
    if let Some(msg) = problem {
        w.error(
            at,
            format!("{msg}; `command` must start with the server's real program"),
        );
        return None;
    }
    let mut ok = true;
    for (arg, span) in &argv[1..] {
        if arg.contains('\0') {
            w.error(span, "`command`: an argument contains a NUL byte");
            ok = false;
        } else if arg.contains("{home}") || arg.contains("{tmp}") {
            w.error(span, "`command`: only {workspace} can be used in the server's arguments ({home} and {tmp} are made per server start)");
            ok = false;
        }
    }
    ok.then(|| argv.into_iter().map(|(a, _)| a).collect())
}

fn mcp_tool(
    w: &mut Walker<'_>,
    server: &str,
    name: &str,
    t: &DeTable<'_>,
    at: &Value<'_>,
) -> McpTool {
    let section = format!("[mcp.{server}.tools.{name}]");
    w.unknown_keys(t, &RULE_LISTS, &section);
    let mut lists: [Vec<ArgRule>; 3] = Default::default();
    let mut written = [0usize; 3];
    for (i, list) in RULE_LISTS.iter().enumerate() {
        let Some(v) = t.get(*list) else { continue };
        let expects = "an array of rules ({ args = { PATH = \"GLOB\" } }, or {} for any arguments)";
        let items = w.array(list, v, expects);
        written[i] = items.len();
        for (index, item) in items.iter().enumerate() {
            if let Some(rule) = arg_rule(w, list, index, item) {
                lists[i].push(rule);
            }
        }
    }
    if written[0] + written[1] == 0 {
        let msg = format!("{section} has no `allow` or `approve` rule, so it could never be called; add one (allow = [{{}}] allows any arguments) or remove the tool");
        w.error(&at.span(), msg);
    }
    let [allow, approve, deny] = lists;
    McpTool {
        name: name.to_string(),
        allow,
        approve,
        deny,
        origin: w.loc(&at.span()),
    }
}

/// `{ args = { PATH = GLOB | [GLOB...] }, examples = {...}, risk, pre_approved }`.
fn arg_rule(w: &mut Walker<'_>, list: &str, index: usize, item: &Value<'_>) -> Option<ArgRule> {
    let DeValue::Table(t) = item.get_ref() else {
        let msg = format!("`{list}` rules are tables such as {{ args = {{ path = \"{{workspace}}/*\" }} }} (or {{}} for any arguments), got {}", article(item.get_ref()));
        w.error(&item.span(), msg);
        return None;
    };
    w.unknown_keys(
        t,
        &["args", "examples", "risk", "pre_approved"],
        &format!("a `{list}` rule"),
    );
    let (risk, pre_approved) = risk_tag(w, list, t);
    let errors_before = w.diags.len();
    let mut args = Vec::new();
    if let Some(v) = t.get("args") {
        if let Some(at) = w.table(v, "`args`") {
            for (key, gv) in at.iter() {
                let path = key.get_ref().to_string();
                let globs = match gv.get_ref() {
                    DeValue::String(s) => vec![s.to_string()],
                    DeValue::Array(_) => string_array(w, &path, gv, "a glob or an array of globs")
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(s, _)| s)
                        .collect(),
                    other => {
                        let msg = format!(
                            "argument `{path}` expects a glob or an array of globs, got {}",
                            article(other)
                        );
                        w.error(&gv.span(), msg);
                        continue;
                    }
                };
                if globs.is_empty() {
                    w.error(
                        &gv.span(),
                        format!("argument `{path}` needs at least one glob"),
                    );
                    continue;
                }
                if let Err(e) = JsonPath::parse(&path) {
                    w.error(&key.span(), format!("rule {list}[{index}]: {e}"));
                    continue;
                }
                if let Some(e) = globs.iter().find_map(|g| check_glob(g).err()) {
                    w.error(&gv.span(), format!("rule {list}[{index}]: {e}"));
                    continue;
                }
                args.push(ArgMatch {
                    path,
                    globs,
                    origin: w.loc(&key.span()),
                });
            }
        }
    }
    let mut rule = ArgRule {
        args,
        examples_match: Vec::new(),
        examples_no_match: Vec::new(),
        risk,
        pre_approved,
        origin: w.loc(&item.span()),
    };
    let compiled = match CompiledRule::compile(&rule, EXAMPLE_WORKSPACE) {
        Ok(c) => Some(c),
        Err(e) => {
            // Point at the argument whose path or glob is wrong, if known.
            let span = t.get("args").map(|v| v.span()).unwrap_or(item.span());
            w.error(&span, format!("rule {list}[{index}]: {e}"));
            None
        }
    };
    if w.diags.len() != errors_before {
        return None;
    }
    let Some(examples) = t.get("examples") else {
        return Some(rule);
    };
    let Some(ex) = w.table(examples, "`examples`") else {
        return Some(rule);
    };
    w.unknown_keys(ex, &["match", "no_match"], "`examples`");
    let q = if list == "deny" {
        Quantifier::Some
    } else {
        Quantifier::Every
    };
    let name = format!("{list}[{index}] {}", render(&rule));
    for (key, want) in [("match", true), ("no_match", false)] {
        let Some(v) = ex.get(key) else { continue };
        for example in w.array(
            key,
            v,
            "an array of argument tables, e.g. [{ path = \"{workspace}/a.txt\" }]",
        ) {
            let DeValue::Table(_) = example.get_ref() else {
                let msg = format!("`{key}` examples are argument tables such as {{ path = \"{{workspace}}/a.txt\" }}, got {}", article(example.get_ref()));
                w.error(&example.span(), msg);
                continue;
            };
            let json = to_json(example.get_ref());
            if let Some(c) = &compiled {
                let checked = with_example_workspace(&json);
                if c.matches(&checked, q) != want {
                    let shown = serde_json::to_string(&json).unwrap_or_default();
                    let msg = if want {
                        format!("example {shown} is not matched by rule {name}; fix the rule or move the example to `no_match`")
                    } else {
                        format!("example {shown} is matched by rule {name}; fix the rule or move the example to `match`")
                    };
                    w.error(&example.span(), msg);
                }
            }
            if want {
                rule.examples_match.push(json);
            } else {
                rule.examples_no_match.push(json);
            }
        }
    }
    Some(rule)
}

/// An example's `{workspace}` becomes [`EXAMPLE_WORKSPACE`], as in the
/// rule it is checked against.
pub fn with_example_workspace(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(s.replace("{workspace}", EXAMPLE_WORKSPACE)),
        Value::Array(a) => Value::Array(a.iter().map(with_example_workspace).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), with_example_workspace(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A TOML value as JSON (datetimes become their text).
fn to_json(v: &DeValue<'_>) -> serde_json::Value {
    use serde_json::Value;
    match v {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map(Value::from)
            .unwrap_or(Value::Null),
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(a) => Value::Array(a.iter().map(|x| to_json(x.get_ref())).collect()),
        DeValue::Table(t) => Value::Object(
            t.iter()
                .map(|(k, x)| (k.get_ref().to_string(), to_json(x.get_ref())))
                .collect(),
        ),
    }
}

#[cfg(test)]
#[path = "mcp_tests.rs"]
mod tests;
