//! `cordon serve`'s configuration file, walked by hand like profiles so
//! every mistake is reported with file:line:column, and every profile an
//! agent names is loaded and checked with it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use crate::profile::walk::{did_you_mean, string_array, Value, Walker};
use crate::profile::{Diagnostic, Location};

/// The default control socket (also `--socket`'s default).
pub const DEFAULT_SOCKET: &str = "/run/cordon/control.sock";
/// The default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/cordon/cordon.toml";

const SECTIONS: [&str; 4] = ["agent", "audit", "control", "service"];
const AGENT_KEYS: [&str; 10] = [
    "name",
    "profile",
    "command",
    "workspace",
    "intent",
    "user",
    "group",
    "restart",
    "autostart",
    "description",
];
const RESTART_KEYS: [&str; 5] = [
    "policy",
    "initial_delay",
    "max_delay",
    "max_failures",
    "window",
];
const MAX_AGENTS: usize = 4096;

/// A checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub source: PathBuf,
    pub agents: Vec<Agent>,
    /// `[audit] path`: every session's audit log (None: `cordon run`'s default).
    pub audit: Option<PathBuf>,
    pub control: Control,
    /// `[service] stop_timeout`: how long stopping sessions get before SIGKILL.
    pub stop_timeout: Duration,
}

/// `[control]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub socket: PathBuf,
    /// Besides root and the daemon's uid, the uids allowed to use the
    /// socket (written as ids or user names).
    pub allow_uids: Vec<u32>,
    /// Members of these groups (primary or supplementary; ids or names).
    pub allow_gids: Vec<u32>,
}

/// One `[[agent]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub name: String,
    pub profile: PathBuf,
    pub command: Vec<String>,
    pub workspace: Option<PathBuf>,
    pub intent: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub restart: Restart,
    pub autostart: bool,
    /// The loaded profile's name (checked at load time).
    pub profile_name: String,
    /// [`super::profile_digest`] of the profile as checked.
    pub profile_digest: String,
    pub origin: Location,
}

/// When a session that ended is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    No,
    OnFailure,
    Always,
}

/// `restart = "on-failure"` or `restart = { policy = ..., ... }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    pub policy: RestartPolicy,
    /// The first back-off; doubled after each failure, up to `max_delay`.
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// Give up after this many failures within `window`.
    pub max_failures: u32,
    pub window: Duration,
}

impl Default for Restart {
    fn default() -> Restart {
        Restart {
            policy: RestartPolicy::OnFailure,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_failures: 5,
            window: Duration::from_secs(300),
        }
    }
}

/// Everything wrong with a configuration (and the profiles it names).
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.diagnostics.iter().map(|d| d.to_string()).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// Reads, walks and checks `path`, loading every profile it names.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file: Arc<Path> = Arc::from(path);
    let src = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            return Err(ConfigError {
                diagnostics: vec![Diagnostic {
                    location: Location::whole_file(path),
                    message: format!("cannot read the configuration: {e}"),
                }],
            })
        }
    };
    let mut w = Walker::new(file.clone(), &src);
    let config = walk(&mut w, path);
    // The configuration's own problems first, in file order, then each
    // profile's.
    w.diags.sort_by(|a, b| {
        let key = |d: &Diagnostic| (d.location.file != file, d.location.line, d.location.column);
        key(a).cmp(&key(b))
    });
    match config {
        Some(c) if w.diags.is_empty() => Ok(c),
        _ => Err(ConfigError {
            diagnostics: w.diags,
        }),
    }
}

fn walk(w: &mut Walker<'_>, path: &Path) -> Option<Config> {
    let doc = match DeTable::parse(w.src) {
        Ok(doc) => doc,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().replace('\n', "; ");
            w.error(&span, format!("TOML syntax error: {msg}"));
            return None;
        }
    };
    // Relative paths are relative to the file, wherever the daemon runs.
    let absolute_path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base = absolute_path.parent().unwrap_or(Path::new("/"));
    let mut config = Config {
        source: absolute_path.clone(),
        agents: Vec::new(),
        audit: None,
        control: Control {
            socket: PathBuf::from(DEFAULT_SOCKET),
            allow_uids: Vec::new(),
            allow_gids: Vec::new(),
        },
        stop_timeout: Duration::from_secs(30),
    };
    for (key, value) in doc.get_ref().iter() {
        let name = key.get_ref().as_ref();
        match name {
            "agent" => {
                let DeValue::Array(items) = value.get_ref() else {
                    w.error(
                        &value.span(),
                        "`agent` must be an array of tables: write each agent as [[agent]]",
                    );
                    continue;
                };
                for item in items {
                    if let Some(t) = w.table(item, "each [[agent]]") {
                        if let Some(a) = agent(w, t, item, base) {
                            config.agents.push(a);
                        }
                    }
                }
            }
            "audit" => {
                let Some(t) = w.table(value, "`audit`") else {
                    continue;
                };
                w.unknown_keys(t, &["path"], "[audit]");
                if let Some(v) = t.get("path") {
                    config.audit = absolute(w, "path", v, base);
                }
            }
            "control" => {
                let Some(t) = w.table(value, "`control`") else {
                    continue;
                };
                control(w, t, base, &mut config.control);
            }
            "service" => {
                let Some(t) = w.table(value, "`service`") else {
                    continue;
                };
                w.unknown_keys(t, &["stop_timeout"], "[service]");
                if let Some(v) = t.get("stop_timeout") {
                    if let Some(d) = duration(w, "stop_timeout", v, Duration::from_secs(3600)) {
                        config.stop_timeout = d;
                    }
                }
            }
            _ => {
                let hint = did_you_mean(name, SECTIONS)
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                let msg = format!(
                    "unknown section `{name}`; {hint}valid sections: [[agent]], [audit], [control], [service]"
                );
                w.error(&key.span(), msg);
            }
        }
    }
    if config.agents.len() > MAX_AGENTS {
        w.error(&(0..0), format!("at most {MAX_AGENTS} agents per daemon"));
    }
    // Names are what operators type: they must be unique.
    for (i, a) in config.agents.iter().enumerate() {
        if let Some(first) = config.agents[..i].iter().find(|b| b.name == a.name) {
            w.diags.push(Diagnostic {
                location: a.origin.clone(),
                message: format!(
                    "agent name `{}` is already used by the agent at {}",
                    a.name, first.origin
                ),
            });
        }
    }
    Some(config)
}

fn agent(w: &mut Walker<'_>, t: &DeTable<'_>, at: &Value<'_>, base: &Path) -> Option<Agent> {
    w.unknown_keys(t, &AGENT_KEYS, "[[agent]]");
    let origin = w.loc(&at.span());
    let mut ok = true;
    let name = match t.get("name") {
        Some(v) => w.string("name", v, "a string").and_then(|n| {
            if valid_name(&n) {
                Some(n)
            } else {
                w.error(&v.span(), format!("`name` must be 1-64 characters of a-z, 0-9, `_` and `-`, starting with a letter or digit; got \"{}\"", n.escape_debug()));
                None
            }
        }),
        None => {
            w.error(&at.span(), "[[agent]] needs `name`");
            None
        }
    };
    let mut profile_name = String::new();
    let mut profile_digest = String::new();
    let profile = match t.get("profile") {
        Some(v) => profile_file(w, v, base).and_then(|p| match crate::profile::load(&p) {
            Ok(loaded) => {
                profile_digest = super::profile_digest(&loaded);
                profile_name = loaded.name;
                Some(p)
            }
            Err(e) => {
                let msg = format!(
                    "profile {} has {} error(s); nothing changes until it is fixed",
                    p.display(),
                    e.diagnostics.len()
                );
                w.error(&v.span(), msg);
                w.diags.extend(e.diagnostics);
                None
            }
        }),
        None => {
            w.error(
                &at.span(),
                "[[agent]] needs `profile`, the agent's profile file or the name of one",
            );
            None
        }
    };
    let command = match t.get("command") {
        Some(v) => {
            string_array(w, "command", v, "an array of strings, program first").and_then(|argv| {
                if argv.is_empty() {
                    w.error(
                        &v.span(),
                        "`command` must name a program: [\"/usr/bin/agent\", \"--flag\"]",
                    );
                    return None;
                }
                let bad = argv.iter().find(|(s, _)| s.contains('\0'));
                if let Some((_, span)) = bad {
                    w.error(span, "`command` arguments cannot contain NUL");
                    return None;
                }
                Some(argv.into_iter().map(|(s, _)| s).collect::<Vec<_>>())
            })
        }
        None => {
            w.error(&at.span(), "[[agent]] needs `command`, an argv array such as [\"/usr/bin/python3\", \"agent.py\"]");
            None
        }
    };
    let workspace = match t.get("workspace") {
        Some(v) => {
            let p = absolute(w, "workspace", v, base);
            ok &= p.is_some();
            p
        }
        None => None,
    };
    let intent = t
        .get("intent")
        .and_then(|v| w.string("intent", v, "a string"));
    let user = t.get("user").and_then(|v| principal(w, "user", v));
    let group = t.get("group").and_then(|v| principal(w, "group", v));
    let autostart = match t.get("autostart") {
        Some(v) => w.boolean("autostart", v).unwrap_or(true),
        None => true,
    };
    if let Some(v) = t.get("description") {
        w.string("description", v, "a string");
    }
    let restart = match t.get("restart") {
        Some(v) => restart(w, v),
        None => Some(Restart::default()),
    };
    Some(Agent {
        name: name?,
        profile: profile?,
        command: command?,
        workspace,
        intent,
        user,
        group,
        restart: restart?,
        autostart,
        profile_name,
        profile_digest,
        origin,
    })
    .filter(|_| ok)
}

fn principal(w: &mut Walker<'_>, key: &str, v: &Value<'_>) -> Option<String> {
    let s = w.string(key, v, "a name or a numeric id")?;
    let fine = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
    if !fine {
        w.error(
            &v.span(),
            format!(
                "`{key}` must be a {key} name or a numeric id, got \"{}\"",
                s.escape_debug()
            ),
        );
        return None;
    }
    Some(s)
}

fn restart(w: &mut Walker<'_>, v: &Value<'_>) -> Option<Restart> {
    const WORDS: [(&str, RestartPolicy); 3] = [
        ("no", RestartPolicy::No),
        ("on-failure", RestartPolicy::OnFailure),
        ("always", RestartPolicy::Always),
    ];
    let mut r = Restart::default();
    if let DeValue::String(_) = v.get_ref() {
        r.policy = w.word("restart", v, &WORDS)?;
        return Some(r);
    }
    let DeValue::Table(t) = v.get_ref() else {
        let msg = "`restart` expects \"no\", \"on-failure\", \"always\", or a table such as { policy = \"on-failure\", initial_delay = \"1s\", max_delay = \"1m\", max_failures = 5, window = \"5m\" }";
        w.error(&v.span(), msg);
        return None;
    };
    w.unknown_keys(t, &RESTART_KEYS, "`restart`");
    let before = w.diags.len();
    if let Some(p) = t.get("policy") {
        r.policy = w.word("policy", p, &WORDS).unwrap_or(r.policy);
    }
    let day = Duration::from_secs(86_400);
    if let Some(d) = t
        .get("initial_delay")
        .and_then(|d| duration(w, "initial_delay", d, day))
    {
        r.initial_delay = d;
    }
    if let Some(d) = t
        .get("max_delay")
        .and_then(|d| duration(w, "max_delay", d, day))
    {
        r.max_delay = d;
    }
    if let Some(n) = t.get("max_failures") {
        if let Some(n) = w.integer("max_failures", n, 1, 1_000_000, "a count from 1 to 1000000") {
            r.max_failures = u32::try_from(n).unwrap_or(u32::MAX);
        }
    }
    if let Some(d) = t
        .get("window")
        .and_then(|d| duration(w, "window", d, 7 * day))
    {
        r.window = d;
    }
    if r.max_delay < r.initial_delay {
        let at = t.get("max_delay").map_or(v.span(), |m| m.span());
        w.error(&at, "`max_delay` must be at least `initial_delay`");
    }
    (w.diags.len() == before).then_some(r)
}

fn control(w: &mut Walker<'_>, t: &DeTable<'_>, base: &Path, c: &mut Control) {
    w.unknown_keys(t, &["socket", "allow_uids", "allow_gids"], "[control]");
    if let Some(v) = t.get("socket") {
        if let Some(p) = absolute(w, "socket", v, base) {
            c.socket = p;
        }
    }
    for (key, out) in [
        ("allow_uids", &mut c.allow_uids),
        ("allow_gids", &mut c.allow_gids),
    ] {
        if let Some(v) = t.get(key) {
            for item in w.array(key, v, "an array of numeric ids or names") {
                if let Some(id) = principal_id(w, key, item) {
                    out.push(id);
                }
            }
        }
    }
}

/// A numeric id, or a user (`allow_uids`) or group (`allow_gids`) name
/// looked up now, at load or reload.
fn principal_id(w: &mut Walker<'_>, key: &str, item: &Value<'_>) -> Option<u32> {
    if let DeValue::String(name) = item.get_ref() {
        let (what, found) = if key == "allow_uids" {
            (
                "user",
                crate::sys::spawn::lookup_user(name).map(|u| u.map(|(uid, _)| uid)),
            )
        } else {
            ("group", crate::sys::spawn::lookup_group(name))
        };
        return match found {
            Ok(Some(id)) => Some(id),
            Ok(None) => {
                w.error(&item.span(), format!("`{key}`: no such {what} `{name}`"));
                None
            }
            Err(e) => {
                w.error(
                    &item.span(),
                    format!("`{key}`: looking up {what} `{name}`: {e}"),
                );
                None
            }
        };
    }
    let id = w.integer(
        key,
        item,
        0,
        u64::from(u32::MAX - 1),
        "numeric ids 0-4294967294 or names",
    )?;
    u32::try_from(id).ok()
}

/// The agent's profile: a value with a `/` is a path (relative to the
/// configuration's directory), a file of that name beside the
/// configuration is that file, and any other value is a profile name, found
/// as `cordon run --profile NAME` finds it (`profile::find`: the service
/// user's own profiles, /etc/cordon/profiles, the shipped ones).
fn profile_file(w: &mut Walker<'_>, v: &Value<'_>, base: &Path) -> Option<PathBuf> {
    let text = path_text(w, "profile", v, "a path or a profile name")?;
    let p = beside(base, &text);
    if text.contains('/') || p.is_file() {
        return Some(p);
    }
    match crate::profile::find::find_name(&text, &crate::profile::find::search_dirs()) {
        Ok(found) => Some(found),
        Err(e) => {
            w.error(&v.span(), e.to_string());
            None
        }
    }
}

/// A path, resolved against the configuration's directory when relative.
fn absolute(w: &mut Walker<'_>, key: &str, v: &Value<'_>, base: &Path) -> Option<PathBuf> {
    path_text(w, key, v, "a path").map(|s| beside(base, &s))
}

/// `key`'s string, refused when empty or holding a NUL (`expects` says
/// what it must be instead).
fn path_text(w: &mut Walker<'_>, key: &str, v: &Value<'_>, expects: &str) -> Option<String> {
    let s = w.string(key, v, expects)?;
    if s.is_empty() || s.contains('\0') {
        w.error(&v.span(), format!("`{key}` must be {expects}"));
        return None;
    }
    Some(s)
}

/// `text` as a path, relative ones against the configuration's directory.
fn beside(base: &Path, text: &str) -> PathBuf {
    let p = PathBuf::from(text);
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

fn duration(w: &mut Walker<'_>, key: &str, v: &Value<'_>, max: Duration) -> Option<Duration> {
    let text = w.string(key, v, "a duration such as \"5s\"")?;
    match humantime::parse_duration(&text) {
        Ok(d) if d.is_zero() => {
            w.error(&v.span(), format!("`{key}` must be longer than 0s"));
            None
        }
        Ok(d) if d > max => {
            let msg = format!(
                "`{key}` must be at most {}, got \"{text}\"",
                humantime::format_duration(max)
            );
            w.error(&v.span(), msg);
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            w.error(&v.span(), format!("`{key}`: \"{text}\" is not a duration ({e}); write e.g. \"500ms\", \"5s\", \"1m\""));
            None
        }
    }
}

fn valid_name(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    (1..=64).contains(&name.len())
        && name.chars().all(ok_char)
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
