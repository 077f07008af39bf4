//! The `[filesystem]`, `[environment]` and `[limits]` sections.

use std::io::ErrorKind;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::layer::{Layer, Located};
use super::walk::{article, Value, Walker};
use super::{PathRule, PathTemplate};

/// Variables cordon itself sets for every session ({home} and {tmp}).
const RESERVED_ENV: [&str; 2] = ["HOME", "TMPDIR"];

pub(super) fn filesystem(w: &mut Walker<'_>, t: &DeTable<'_>, layer: &mut Layer) {
    const KEYS: [&str; 4] = ["read", "write", "exec", "deny"];
    w.unknown_keys(t, &KEYS, "[filesystem]");
    for (key, value) in t.iter() {
        let name = key.get_ref().as_ref();
        let id = match name {
            "read" => "[filesystem] read",
            "write" => "[filesystem] write",
            "exec" => "[filesystem] exec",
            "deny" => "[filesystem] deny",
            _ => continue,
        };
        let (add, remove) = super::remove::split(w, name, value);
        let added = add.map(|v| path_rules(w, name, v)).unwrap_or_default();
        let list = match name {
            "read" => &mut layer.filesystem.read,
            "write" => &mut layer.filesystem.write,
            "exec" => &mut layer.filesystem.exec,
            _ => &mut layer.filesystem.deny,
        };
        list.extend(added);
        if let Some(r) = remove {
            let rules = path_rules(w, name, r);
            layer.removals.extend(path_removals(id, rules));
        }
    }
}

/// An array of path entries of `key`.
pub(super) fn path_rules(w: &mut Walker<'_>, key: &str, value: &Value<'_>) -> Vec<PathRule> {
    let expects = "an array of paths (strings, or { path = \"...\", optional = true })";
    w.array(key, value, expects)
        .iter()
        .filter_map(|item| path_rule(w, key, item))
        .collect()
}

/// Path entries as removals from `list`, keyed by the path as written.
pub(super) fn path_removals(
    list: &'static str,
    rules: Vec<PathRule>,
) -> Vec<super::remove::Removal> {
    super::remove::removals(list, rules, |r| {
        (r.path.as_str().to_string(), r.origin.clone())
    })
}

/// One entry: `"/usr"` or `{ path = "/opt/x", optional = true }`.
pub(super) fn path_rule(w: &mut Walker<'_>, key: &str, item: &Value<'_>) -> Option<PathRule> {
    let (text, text_span, optional) = match item.get_ref() {
        DeValue::String(s) => (s.to_string(), item.span(), false),
        DeValue::Table(t) => {
            w.unknown_keys(t, &["path", "optional"], &format!("a `{key}` entry"));
            let optional = match t.get("optional") {
                Some(v) => w.boolean("optional", v).unwrap_or(false),
                None => false,
            };
            let Some(p) = t.get("path") else {
                let msg = format!(
                    "a `{key}` entry needs `path`, as in {{ path = \"/opt/x\", optional = true }}"
                );
                w.error(&item.span(), msg);
                return None;
            };
            (w.string("path", p, "a string")?, p.span(), optional)
        }
        other => {
            let msg = format!(
                "`{key}` entries must be path strings or {{ path = \"...\", optional = true }}, got {}",
                article(other)
            );
            w.error(&item.span(), msg);
            return None;
        }
    };
    let path = match PathTemplate::parse(&text) {
        Ok(p) => p,
        Err(e) => {
            w.error(&text_span, e.to_string());
            return None;
        }
    };
    // Placeholder paths only exist once a session does; they are checked then.
    if !path.has_placeholder() && !optional {
        if let Err(e) = std::fs::metadata(&text) {
            let shown = text.escape_debug();
            let msg = if e.kind() == ErrorKind::NotFound {
                format!("`{shown}` does not exist; fix the path or write {{ path = \"{shown}\", optional = true }}")
            } else {
                format!("`{shown}` cannot be checked ({e}); fix the path or write {{ path = \"{shown}\", optional = true }}")
            };
            w.error(&text_span, msg);
            return None;
        }
    }
    Some(PathRule {
        path,
        optional,
        origin: w.loc(&item.span()),
    })
}

/// `pass`'s variable names.
fn env_names(w: &mut Walker<'_>, v: &Value<'_>) -> Vec<Located<String>> {
    let mut out = Vec::new();
    for item in w.array("pass", v, "an array of variable names") {
        let Some(name) = w.string("pass", item, "variable names") else {
            continue;
        };
        if env_name_ok(w, &name, &item.span(), "pass") {
            let origin = w.loc(&item.span());
            out.push(Located {
                value: name,
                origin,
            });
        }
    }
    out
}

pub(super) fn environment(w: &mut Walker<'_>, t: &DeTable<'_>, layer: &mut Layer) {
    w.unknown_keys(t, &["pass", "set", "secrets", "home"], "[environment]");
    if let Some(v) = t.get("home") {
        let words = [
            ("fresh", super::HomeMode::Fresh),
            ("persistent", super::HomeMode::Persistent),
        ];
        if let Some(mode) = w.word("home", v, &words) {
            layer.env_home = Some(Located {
                value: mode,
                origin: w.loc(&v.span()),
            });
        }
    }
    if let Some(v) = t.get("secrets") {
        let expects = "an array of names of deliver = \"proxy\" secrets";
        for item in w.array("secrets", v, expects) {
            let Some(name) = w.string("secrets", item, "secret names") else {
                continue;
            };
            let origin = w.loc(&item.span());
            if layer.env_secrets.iter().any(|s| s.value == name) {
                let msg = format!(
                    "secret `{}` is listed twice in [environment] secrets",
                    name.escape_debug()
                );
                w.error(&item.span(), msg);
                continue;
            }
            layer.env_secrets.push(Located {
                value: name,
                origin,
            });
        }
    }
    if let Some(v) = t.get("pass") {
        let (add, remove) = super::remove::split(w, "pass", v);
        if let Some(v) = add {
            let names = env_names(w, v);
            layer.env_pass.extend(names);
        }
        if let Some(r) = remove {
            let names = env_names(w, r);
            layer
                .removals
                .extend(super::remove::removals("[environment] pass", names, |l| {
                    (l.value.clone(), l.origin.clone())
                }));
        }
    }
    if let Some(v) = t.get("set") {
        let Some(set) = w.table(v, "`set`") else {
            return;
        };
        for (key, value) in set.iter() {
            let name = key.get_ref().to_string();
            let key_ok = env_name_ok(w, &name, &key.span(), "set");
            let Some(text) = w.string(&name, value, "a string value") else {
                continue;
            };
            if text.contains('\0') {
                let msg = format!("the value of `{name}` contains a NUL byte");
                w.error(&value.span(), msg);
                continue;
            }
            if key_ok {
                let origin = w.loc(&key.span());
                layer.env_set.insert(
                    name,
                    Located {
                        value: text,
                        origin,
                    },
                );
            }
        }
    }
}

/// Checks a variable name for `pass` or `set`, reporting at `span`.
pub(super) fn env_name_ok(w: &mut Walker<'_>, name: &str, span: &Range<usize>, list: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        let msg = format!(
            "`{}` is not a valid variable name; use letters, digits and `_`, not starting with a digit",
            name.escape_debug()
        );
        w.error(span, msg);
        return false;
    }
    if RESERVED_ENV.contains(&name) {
        let msg = format!(
            "cordon sets `{name}` itself (to {{home}} or {{tmp}}); remove it from `{list}`"
        );
        w.error(span, msg);
        return false;
    }
    true
}

pub(super) fn limits(w: &mut Walker<'_>, t: &DeTable<'_>, layer: &mut Layer) {
    const KEYS: [&str; 6] = ["nofile", "nproc", "fsize", "as", "cpu", "core"];
    w.unknown_keys(t, &KEYS, "[limits]");
    for (key, value) in t.iter() {
        let name = key.get_ref().as_ref();
        let slot = match name {
            "nofile" => &mut layer.limits.nofile,
            "nproc" => &mut layer.limits.nproc,
            "fsize" => &mut layer.limits.fsize,
            "as" => &mut layer.limits.address_space,
            "cpu" => &mut layer.limits.cpu,
            "core" => &mut layer.limits.core,
            _ => continue,
        };
        *slot = w.integer(name, value, 0, u64::MAX, "a non-negative integer");
    }
}
