//! The `[secrets.NAME]` sections (where a secret comes from, how long it
//! lives) and the `secrets` list of a `[tools.NAME]` section.

use std::ops::Range;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::layer::{Layer, LayerSecret};
use super::walk::{article, did_you_mean, string_array, Value, Walker};
use super::{Delivery, PathTemplate, SecretSource, SecretSpec, ToolSecret};

/// The longest secret name (it becomes an environment variable name).
const MAX_NAME: usize = 128;
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
const MAX_FETCH_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a provider may take when the profile does not say.
pub(super) const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_MAX_USES: u64 = 1_000_000;
const PROVIDERS: [&str; 5] = ["env", "file", "credential", "command", "identity"];
/// Variables cordon sets in every tool call itself.
const RESERVED: [&str; 3] = ["PATH", "HOME", "TMPDIR"];
/// Prefixes no secret may use: cordon's own variables, and the dynamic
/// loader's (a secret must not change how the tool is loaded).
const RESERVED_PREFIXES: [&str; 2] = ["CORDON_", "LD_"];

/// `[secrets]`: one `[secrets.NAME]` table per secret.
pub(super) fn secrets(w: &mut Walker<'_>, value: &Value<'_>, layer: &mut Layer) {
    let Some(t) = w.table(value, "`secrets`") else {
        return;
    };
    for (key, v) in t.iter() {
        let name = key.get_ref().to_string();
        if let Some(problem) = name_problem(&name) {
            w.error(&key.span(), format!("secret name {problem}"));
        }
        let section = format!("[secrets.{name}]");
        let Some(table) = w.table(v, &section) else {
            continue;
        };
        let entry = secret(w, &name, table, v);
        layer.secrets.insert(name, entry);
    }
}

/// Whether `name` may name a `[secrets.NAME]` (`cordon learn` leaves out
/// variables that may not, such as cordon's own `CORDON_*`).
pub fn is_secret_name(name: &str) -> bool {
    name_problem(name).is_none()
}

/// Why `name` cannot name a secret, if it cannot.
fn name_problem(name: &str) -> Option<String> {
    let shown = name.escape_debug();
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || name.len() > MAX_NAME {
        return Some(format!("`{shown}` must be 1-{MAX_NAME} characters of letters, digits and `_`, not starting with a digit (it becomes an environment variable name)"));
    }
    if RESERVED.contains(&name) {
        return Some(format!(
            "`{name}` is a variable cordon sets in every tool call; choose another name"
        ));
    }
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(**p)) {
        return Some(format!(
            "`{name}` starts with `{prefix}`, which is reserved (cordon's own and the dynamic loader's variables); choose another name"
        ));
    }
    None
}

/// One `[secrets.NAME]` table. Its spec is `None` when any of its values
/// was wrong (each one reported).
fn secret(w: &mut Walker<'_>, name: &str, t: &DeTable<'_>, at: &Value<'_>) -> LayerSecret {
    const KEYS: [&str; 12] = [
        "from",
        "revoke",
        "ttl",
        "max_uses",
        "expose",
        "cache",
        "fetch_timeout",
        "deliver",
        "hosts",
        "header",
        "format",
        "basic",
    ];
    debug_assert!(super::deliver::KEYS.iter().all(|k| KEYS.contains(k)));
    let section = format!("[secrets.{name}]");
    let errors_before = w.diags.len();
    w.unknown_keys(t, &KEYS, &section);
    let origin = w.loc(&at.span());
    let from_at = t.get("from").map(|v| w.loc(&v.span()));
    let source = match t.get("from") {
        Some(v) => source(w, v),
        None => {
            let msg = format!("{section} needs `from`, where the value comes from: \"env:VAR\", \"file:/path\", \"credential:NAME\", \"command:ARGV\" or \"identity:jwt?aud=AUD\"");
            w.error(&at.span(), msg);
            None
        }
    };
    let revoke_at = t.get("revoke").map(|v| w.loc(&v.span()));
    let revoke = t.get("revoke").and_then(|v| revoke(w, v));
    let ttl = t
        .get("ttl")
        .and_then(|v| w.duration("ttl", v, MAX_TTL, "24h", ("\"5m\"", "\"1m 30s\"")));
    let max_uses = t.get("max_uses").and_then(|v| {
        w.integer("max_uses", v, 1, MAX_MAX_USES, "an integer 1-1000000")
            .and_then(|n| u32::try_from(n).ok())
    });
    let expose = t
        .get("expose")
        .and_then(|v| w.boolean("expose", v))
        .unwrap_or(false);
    let cache = t
        .get("cache")
        .and_then(|v| w.boolean("cache", v))
        .unwrap_or(false);
    if cache && t.get("ttl").is_none() {
        if let Some(v) = t.get("cache") {
            let msg = "`cache = true` needs a `ttl`: how long a fetched value may be reused";
            w.error(&v.span(), msg);
        }
    }
    let fetch_timeout = t
        .get("fetch_timeout")
        .and_then(|v| {
            w.duration(
                "fetch_timeout",
                v,
                MAX_FETCH_TIMEOUT,
                "5m",
                ("\"10s\"", "\"1m 30s\""),
            )
        })
        .unwrap_or(DEFAULT_FETCH_TIMEOUT);
    let proxy = super::deliver::delivery(w, name, t);
    if let Some(SecretSource::Identity(id)) = &source {
        identity_checks(w, &section, t, at, id, ttl, cache);
    }
    let valid = w.diags.len() == errors_before;
    let spec = match (valid, source) {
        (true, Some(source)) => Some(SecretSpec {
            name: name.to_string(),
            source,
            revoke,
            ttl,
            max_uses,
            expose,
            cache,
            fetch_timeout,
            proxy,
            origin: origin.clone(),
        }),
        _ => None,
    };
    LayerSecret {
        spec,
        origin,
        from_at,
        revoke_at,
    }
}

/// An identity token lives exactly its `ttl` (so it must be written, and
/// short), and a call-bound token names one call, so it cannot be cached.
fn identity_checks(
    w: &mut Walker<'_>,
    section: &str,
    t: &DeTable<'_>,
    at: &Value<'_>,
    id: &super::IdentitySource,
    ttl: Option<Duration>,
    cache: bool,
) {
    let max = crate::identity::MAX_TTL;
    match (t.get("ttl"), ttl) {
        (None, _) => {
            let msg = format!("{section} mints an identity token and needs a `ttl`: how long the token is valid (at most 1h), e.g. ttl = \"5m\"");
            w.error(&at.span(), msg);
        }
        (Some(v), Some(ttl)) if ttl > max => {
            let msg = "an identity token may live at most 1h; use a shorter `ttl`";
            w.error(&v.span(), msg);
        }
        _ => {}
    }
    if cache && id.bind == super::IdentityBind::Call {
        if let Some(v) = t.get("cache") {
            let msg = "a call-bound identity token names one call and cannot be cached; add `&bind=session` to `from` to mint a session token that may be reused";
            w.error(&v.span(), msg);
        }
    }
}

/// `from = "PROVIDER:..."` or `from = { command = [...] }`.
fn source(w: &mut Walker<'_>, v: &Value<'_>) -> Option<SecretSource> {
    let text = match v.get_ref() {
        DeValue::String(s) => s.to_string(),
        DeValue::Table(t) => {
            w.unknown_keys(t, &["command"], "`from`");
            let Some(cmd) = t.get("command") else {
                let msg = "a `from` table needs `command`, as in from = { command = [\"op\", \"read\", \"op://vault/item/token\"] }";
                w.error(&v.span(), msg);
                return None;
            };
            let argv = strings(w, "command", cmd)?;
            return check_argv(w, "from", argv, &cmd.span()).map(SecretSource::Command);
        }
        other => {
            let msg = format!(
                "`from` expects a string such as \"env:VAR\", or {{ command = [...] }}, got {}",
                article(other)
            );
            w.error(&v.span(), msg);
            return None;
        }
    };
    let span = v.span();
    let Some((provider, rest)) = text.split_once(':').filter(|(p, _)| PROVIDERS.contains(p)) else {
        // Never echo the value: a person may have pasted the secret itself.
        let hint = text
            .split_once(':')
            .map(|(p, _)| p)
            .filter(|p| p.len() <= 16 && p.chars().all(|c| c.is_ascii_alphabetic()))
            .and_then(|p| did_you_mean(p, PROVIDERS))
            .map(|p| format!("; did you mean `{p}:`?"))
            .unwrap_or_default();
        let msg = format!("`from` must start with `env:`, `file:`, `credential:`, `command:` or `identity:` (the value is not shown, in case it is the secret itself){hint}");
        w.error(&span, msg);
        return None;
    };
    if rest.is_empty() {
        let what = match provider {
            "env" => "a variable name, as in \"env:GITHUB_TOKEN\"",
            "file" => "an absolute path, as in \"file:/etc/cordon/token\"",
            "credential" => "a systemd credential name, as in \"credential:github-token\"",
            "identity" => {
                "a token kind and audience, as in \"identity:jwt?aud=https://api.example.com\""
            }
            _ => "a command, as in \"command:gh auth token\"",
        };
        w.error(&span, format!("`from = \"{provider}:\"` needs {what}"));
        return None;
    }
    if rest.contains('\0') {
        w.error(&span, "`from` contains a NUL byte");
        return None;
    }
    match provider {
        "env" => env_source(w, rest, &span),
        "file" => file_source(w, rest, &span),
        "credential" => credential_source(w, rest, &span),
        "identity" => super::identity::identity_source(w, rest, &span),
        _ => command_source(w, rest, &span),
    }
}

fn env_source(w: &mut Walker<'_>, var: &str, span: &Range<usize>) -> Option<SecretSource> {
    let mut chars = var.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some(SecretSource::Env(var.to_string()));
    }
    let msg = format!(
        "`env:{}`: not a valid variable name; use letters, digits and `_`, not starting with a digit",
        var.escape_debug()
    );
    w.error(span, msg);
    None
}

/// An absolute host path; placeholders are refused, because the
/// directories they name belong to the agent's session.
fn file_source(w: &mut Walker<'_>, path: &str, span: &Range<usize>) -> Option<SecretSource> {
    let shown = path.escape_debug();
    if path.starts_with('{') {
        let msg = format!("`file:{shown}`: a secret source may not use a placeholder ({{workspace}}, {{home}} and {{tmp}} belong to the agent's session, which the agent controls); use an absolute path outside them");
        w.error(span, msg);
        return None;
    }
    if !path.starts_with('/') {
        let msg =
            format!("`file:{shown}`: needs an absolute path, as in \"file:/etc/cordon/token\"");
        w.error(span, msg);
        return None;
    }
    match PathTemplate::parse(path) {
        Ok(t) => Some(SecretSource::File(t.as_str().into())),
        Err(e) => {
            w.error(span, format!("`file:` source: {e}"));
            None
        }
    }
}

/// One file name inside `$CREDENTIALS_DIRECTORY`.
fn credential_source(w: &mut Walker<'_>, name: &str, span: &Range<usize>) -> Option<SecretSource> {
    if name.contains('/') || name == "." || name == ".." {
        let msg = format!(
            "`credential:{}`: a credential name is one file name inside $CREDENTIALS_DIRECTORY (no `/`, not `.` or `..`)",
            name.escape_debug()
        );
        w.error(span, msg);
        return None;
    }
    Some(SecretSource::Credential(name.to_string()))
}

/// `command:ARGV`, split on ASCII whitespace, without any quoting.
fn command_source(w: &mut Walker<'_>, line: &str, span: &Range<usize>) -> Option<SecretSource> {
    if line.contains(['"', '\'', '\\']) {
        let msg = "`command:` is split on whitespace, without quoting or escapes; for arguments with spaces or quotes write from = { command = [\"prog\", \"an argument\"] }";
        w.error(span, msg);
        return None;
    }
    let argv: Vec<(String, Range<usize>)> = line
        .split_ascii_whitespace()
        .map(|s| (s.to_string(), span.clone()))
        .collect();
    if argv.is_empty() {
        w.error(
            span,
            "`from = \"command:\"` needs a command, as in \"command:gh auth token\"",
        );
        return None;
    }
    check_argv(w, "from", argv, span).map(SecretSource::Command)
}

/// `revoke = ["prog", "arg", ...]`.
fn revoke(w: &mut Walker<'_>, v: &Value<'_>) -> Option<Vec<String>> {
    let argv = strings(w, "revoke", v)?;
    check_argv(w, "revoke", argv, &v.span())
}

/// A command line: not empty, no NUL bytes, and argv[0] an absolute path
/// (no placeholder, no `.`/`..`) or a bare name found on cordon's PATH.
pub(super) fn check_argv(
    w: &mut Walker<'_>,
    key: &str,
    argv: Vec<(String, Range<usize>)>,
    span: &Range<usize>,
) -> Option<Vec<String>> {
    let Some((program, at)) = argv.first() else {
        let msg = format!("`{key}` needs a command: a non-empty array of strings, program first");
        w.error(span, msg);
        return None;
    };
    let mut ok = true;
    if let Some((_, at)) = argv.iter().find(|(a, _)| a.contains('\0')) {
        w.error(at, format!("`{key}`: an argument contains a NUL byte"));
        ok = false;
    }
    let shown = program.escape_debug();
    if program.is_empty() {
        w.error(at, format!("`{key}`: the program name is empty"));
        ok = false;
    } else if program.starts_with('/') {
        if let Err(e) = PathTemplate::parse(program) {
            w.error(at, format!("`{key}`: program {e}"));
            ok = false;
        }
    } else if program.contains('/') {
        let msg = format!("`{key}`: the program must be an absolute path or a bare name found on cordon's PATH, got `{shown}`");
        w.error(at, msg);
        ok = false;
    }
    ok.then(|| argv.into_iter().map(|(a, _)| a).collect())
}

/// An array of strings with each one's span; `None` after reporting.
fn strings(w: &mut Walker<'_>, key: &str, v: &Value<'_>) -> Option<Vec<(String, Range<usize>)>> {
    string_array(w, key, v, "an array of strings (a command, program first)")
}

/// A tool's `secrets = ["A", { name = "B", as = "file" }]` (`section`
/// names the tool's table, e.g. `[tools.git]`). `env` is the tool's own
/// `env` list: a name in both would have two sources.
pub(super) fn tool_secrets(
    w: &mut Walker<'_>,
    section: &str,
    v: &Value<'_>,
    env: &[String],
) -> Vec<ToolSecret> {
    let expects = "an array of secret names, or { name = \"...\", as = \"env\" | \"file\" }";
    let mut out: Vec<ToolSecret> = Vec::new();
    for item in w.array("secrets", v, expects) {
        let Some(secret) = tool_secret(w, item) else {
            continue;
        };
        let name = &secret.name;
        if let Some(first) = out.iter().find(|s| s.name == *name) {
            let msg = format!(
                "secret `{name}` is listed twice in the `secrets` of {section} (first at line {}); remove one",
                first.origin.line
            );
            w.error(&item.span(), msg);
        } else if env.contains(name) {
            let msg = format!("secret `{name}` is also in the `env` of {section}: the variable would come both from the agent's call and from the secret; remove it from one");
            w.error(&item.span(), msg);
        } else {
            out.push(secret);
        }
    }
    out
}

fn tool_secret(w: &mut Walker<'_>, item: &Value<'_>) -> Option<ToolSecret> {
    let origin = w.loc(&item.span());
    match item.get_ref() {
        DeValue::String(s) => Some(ToolSecret {
            name: s.to_string(),
            delivery: Delivery::Env,
            origin,
        }),
        DeValue::Table(t) => {
            w.unknown_keys(t, &["name", "as"], "a `secrets` entry");
            let delivery = match t.get("as") {
                Some(v) => {
                    let words = [("env", Delivery::Env), ("file", Delivery::File)];
                    w.word("as", v, &words)?
                }
                None => Delivery::Env,
            };
            let Some(n) = t.get("name") else {
                let msg = "a `secrets` entry written as a table needs `name`, as in { name = \"KUBECONFIG\", as = \"file\" }";
                w.error(&item.span(), msg);
                return None;
            };
            let name = w.string("name", n, "a secret name")?;
            Some(ToolSecret {
                name,
                delivery,
                origin,
            })
        }
        other => {
            let msg = format!("`secrets` entries must be secret names or {{ name = \"...\", as = \"env\" | \"file\" }}, got {}", article(other));
            w.error(&item.span(), msg);
            None
        }
    }
}

#[cfg(test)]
#[path = "secrets_tests.rs"]
mod tests;
