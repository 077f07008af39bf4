//! A tool's `grammar`, `unknown` and `[tools.NAME.options]`, and the
//! grammars shipped in the binary.
//!
//! A grammar is a TOML table (a shipped file, or written in the profile):
//!
//! ```toml
//! name = "git"
//! abbrev = false             # the main command's syntax...
//! options = ["-C <path> !separate", "-c <name=value> !separate"]
//! defaults = { abbrev = true, bundle = true }   # ...and the subcommands' default
//! [subcommands.push]
//! options = ["-f, --[no-]force", "--[no-]receive-pack <program>"]
//! ```

use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use toml::de::{DeTable, DeValue};

use super::walk::{string_array, Value, Walker};
use super::{OptionRule, ToolGrammar, Unknown};
use crate::policy::grammar::{parse_spec, Command, Grammar, Style, Syntax};
use crate::policy::{check_option_rule, compile_pattern};

/// The grammars shipped in the binary: `grammar = "NAME"`.
pub const SHIPPED_GRAMMARS: [(&str, &str); 5] = [
    ("git", include_str!("../policy/grammars/git.toml")),
    ("make", include_str!("../policy/grammars/make.toml")),
    ("find", include_str!("../policy/grammars/find.toml")),
    ("grep", include_str!("../policy/grammars/grep.toml")),
    ("curl", include_str!("../policy/grammars/curl.toml")),
];

type Shipped = Vec<(&'static str, Result<Arc<Grammar>, String>)>;

/// A shipped grammar, parsed on first use. `None`: no grammar of that
/// name; `Some(Err)`: the shipped file is broken (a unit test keeps that
/// from being released).
pub fn shipped_grammar(name: &str) -> Option<Result<Arc<Grammar>, String>> {
    static PARSED: OnceLock<Shipped> = OnceLock::new();
    let all = PARSED.get_or_init(|| {
        SHIPPED_GRAMMARS
            .iter()
            .map(|(name, src)| (*name, parse_shipped(name, src)))
            .collect()
    });
    all.iter().find(|(n, _)| *n == name).map(|(_, g)| g.clone())
}

fn parse_shipped(name: &str, src: &str) -> Result<Arc<Grammar>, String> {
    let file: Arc<Path> = Arc::from(Path::new(&format!("<shipped grammar {name}>.toml")));
    let mut w = Walker::new(file, src);
    let doc = DeTable::parse(src).map_err(|e| format!("shipped grammar {name}: {e}"))?;
    let g = grammar_table(&mut w, doc.get_ref(), 0..0, name);
    match g {
        Some(g) if w.diags.is_empty() => Ok(Arc::new(g)),
        _ => Err(w
            .diags
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// `grammar`, `unknown` and `options` of `[tools.NAME]`.
pub(super) fn tool_grammar(w: &mut Walker<'_>, tool: &str, t: &DeTable<'_>) -> Option<ToolGrammar> {
    let Some(gv) = t.get("grammar") else {
        for key in ["unknown", "options"] {
            if let Some(v) = t.get(key) {
                let msg = format!("`{key}` only applies to a tool with a `grammar` (e.g. grammar = \"git\"); without one, rules match the argv as written");
                w.error(&v.span(), msg);
            }
        }
        return None;
    };
    let (grammar, shipped) = match gv.get_ref() {
        DeValue::String(name) => match shipped_grammar(name) {
            Some(Ok(g)) => (g, Some(name.to_string())),
            Some(Err(e)) => {
                w.error(
                    &gv.span(),
                    format!("the shipped grammar `{name}` is broken: {e}"),
                );
                return None;
            }
            None => {
                let names: Vec<&str> = SHIPPED_GRAMMARS.iter().map(|(n, _)| *n).collect();
                let msg = format!(
                    "no shipped grammar `{}`; shipped: {}; or write one as a table, [tools.{tool}.grammar]",
                    name.escape_debug(),
                    names.join(", ")
                );
                w.error(&gv.span(), msg);
                return None;
            }
        },
        DeValue::Table(gt) => (Arc::new(grammar_table(w, gt, gv.span(), tool)?), None),
        _ => {
            let msg = format!(
                "`grammar` expects the name of a shipped grammar (\"git\") or a table, got {}",
                super::walk::article(gv.get_ref())
            );
            w.error(&gv.span(), msg);
            return None;
        }
    };
    let origin = w.loc(&gv.span());
    let (unknown, unknown_origin) = match t.get("unknown") {
        Some(v) => (
            w.word("unknown", v, &Unknown::ALL).unwrap_or(Unknown::Deny),
            w.loc(&v.span()),
        ),
        None => (Unknown::Deny, origin.clone()),
    };
    let mut options = Vec::new();
    if let Some(v) = t.get("options") {
        if let Some(ot) = w.table(v, &format!("[tools.{tool}.options]")) {
            for (key, rv) in ot.iter() {
                if let Some(r) = option_rule(w, &grammar, key.get_ref(), &key.span(), rv) {
                    options.push(r);
                }
            }
        }
    }
    Some(ToolGrammar {
        grammar,
        shipped,
        unknown,
        unknown_origin,
        options,
        origin,
    })
}

/// `"-c" = { allow = [...] }`, `"push --push-option" = { approve = [...] }`,
/// `"--no-optional-locks" = { neutral = true }`.
fn option_rule(
    w: &mut Walker<'_>,
    g: &Grammar,
    key: &str,
    key_span: &Range<usize>,
    v: &Value<'_>,
) -> Option<OptionRule> {
    let what = format!("option rule `{}`", key.escape_debug());
    let t = w.table(v, &what)?;
    w.unknown_keys(t, &["allow", "approve", "neutral"], &what);
    let (scope, option) = match key.rsplit_once(' ') {
        Some((s, o)) => (s.trim().to_string(), o.to_string()),
        None => (String::new(), key.to_string()),
    };
    let mut rule = OptionRule {
        scope,
        option,
        allow: Vec::new(),
        approve: Vec::new(),
        neutral: false,
        origin: w.loc(key_span),
    };
    let mut ok = true;
    for (list, out) in [("allow", &mut rule.allow), ("approve", &mut rule.approve)] {
        let Some(lv) = t.get(list) else { continue };
        let Some(globs) = string_array(w, list, lv, "an array of value globs") else {
            ok = false;
            continue;
        };
        for (glob, span) in globs {
            if let Err(e) = compile_pattern(std::slice::from_ref(&glob)) {
                w.error(&span, format!("value glob {glob:?}: {e}"));
                ok = false;
            }
            out.push(glob);
        }
    }
    if let Some(nv) = t.get("neutral") {
        rule.neutral = w.boolean("neutral", nv).unwrap_or(false);
    }
    if rule.allow.is_empty() && rule.approve.is_empty() && !rule.neutral {
        let msg = format!("{what} says nothing: give `allow`/`approve` value globs, or `neutral = true` for a flag");
        w.error(&v.span(), msg);
        return None;
    }
    if !ok {
        return None;
    }
    if let Err(e) = check_option_rule(g, &rule) {
        w.error(key_span, e.to_string());
        return None;
    }
    Some(rule)
}

/// Keys of a command's syntax.
const SYNTAX_KEYS: [&str; 5] = ["abbrev", "bundle", "permute", "equals", "end_of_options"];

fn syntax(w: &mut Walker<'_>, t: &DeTable<'_>, mut s: Syntax) -> Syntax {
    for key in SYNTAX_KEYS {
        let Some(v) = t.get(key) else { continue };
        let Some(b) = w.boolean(key, v) else { continue };
        match key {
            "abbrev" => s.abbrev = b,
            "bundle" => s.bundle = b,
            "permute" => s.permute = b,
            "equals" => s.equals = b,
            _ => s.end_of_options = b,
        }
    }
    s
}

/// A grammar table; `default_name` names it when `name` is absent.
pub(super) fn grammar_table(
    w: &mut Walker<'_>,
    t: &DeTable<'_>,
    at: Range<usize>,
    default_name: &str,
) -> Option<Grammar> {
    let mut keys = vec![
        "name",
        "description",
        "style",
        "options",
        "digits",
        "defaults",
        "subcommands",
    ];
    keys.extend(SYNTAX_KEYS);
    w.unknown_keys(t, &keys, "a grammar");
    let name = match t.get("name") {
        Some(v) => w.string("name", v, "a name")?,
        None => default_name.to_string(),
    };
    let description = t
        .get("description")
        .and_then(|v| w.string("description", v, "a string"));
    let style = match t.get("style") {
        Some(v) => w.word("style", v, &[("gnu", Style::Gnu), ("find", Style::Find)])?,
        None => Style::Gnu,
    };
    let base = Syntax {
        style,
        ..Syntax::default()
    };
    let main_syntax = syntax(w, t, base);
    // Without its main command the grammar is unusable, but the mistakes
    // of its subcommands are still worth reporting.
    let main = command(w, t, None, at, name.clone(), main_syntax);
    let defaults = match t.get("defaults") {
        Some(v) => {
            let dt = w.table(v, "`defaults`")?;
            w.unknown_keys(dt, &SYNTAX_KEYS, "`defaults`");
            syntax(w, dt, Syntax::default())
        }
        None => Syntax::default(),
    };
    let mut subcommands = Vec::new();
    if let Some(v) = t.get("subcommands") {
        if style == Style::Find {
            w.error(&v.span(), "a find-style grammar has no subcommands");
        }
        let st = w.table(v, "`subcommands`")?;
        for (key, sv) in st.iter() {
            let sub = key.get_ref().to_string();
            let what = format!("subcommand `{}`", sub.escape_debug());
            let Some(sub_t) = w.table(sv, &what) else {
                continue;
            };
            let mut sub_keys = vec!["options", "digits", "description", "like"];
            sub_keys.extend(SYNTAX_KEYS);
            w.unknown_keys(sub_t, &sub_keys, &what);
            // `like = "log"`: the options of that subcommand, then these.
            let like = match sub_t.get("like") {
                None => None,
                Some(lv) => {
                    let other = w.string("like", lv, "the name of another subcommand")?;
                    let found = st.get(other.as_str()).and_then(|o| match o.get_ref() {
                        DeValue::Table(ot) if ot.get("like").is_none() => ot.get("options"),
                        _ => None,
                    });
                    if found.is_none() {
                        let msg = format!("`like = {other:?}`: no subcommand `{other}` with `options` (and no `like` of its own) in this grammar");
                        w.error(&lv.span(), msg);
                        continue;
                    }
                    found
                }
            };
            let s = syntax(w, sub_t, defaults);
            let full = format!("{name} {sub}");
            if let Some(c) = command(w, sub_t, like, sv.span(), full, s) {
                subcommands.push((sub, c));
            }
        }
    }
    subcommands.sort_by(|a, b| a.0.cmp(&b.0));
    Some(Grammar {
        name,
        description,
        main: main?,
        subcommands,
    })
}

/// `options` and `digits` of one command; `like`: options to start with.
fn command(
    w: &mut Walker<'_>,
    t: &DeTable<'_>,
    like: Option<&Value<'_>>,
    at: Range<usize>,
    name: String,
    s: Syntax,
) -> Option<Command> {
    let mut options = Vec::new();
    let mut ok = true;
    for v in like.into_iter().chain(t.get("options")) {
        for (spec, span) in string_array(w, "options", v, "an array of option specs")? {
            match parse_spec(&spec, s.style) {
                Ok(o) => options.push(o),
                Err(e) => {
                    w.error(&span, e.to_string());
                    ok = false;
                }
            }
        }
    }
    let digits = t
        .get("digits")
        .and_then(|v| w.string("digits", v, "the option `-NUM` stands for"));
    match Command::new(name, s, options, digits) {
        Ok(c) if ok => Some(c),
        Ok(_) => None,
        Err(e) => {
            let span = t.get("options").map_or(at, |v| v.span());
            w.error(&span, e.to_string());
            None
        }
    }
}

#[cfg(test)]
#[path = "grammar_tests.rs"]
mod tests;
