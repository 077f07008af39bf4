//! The decision for one `tools/call`: the tool's argument rules, with the
//! argv rules' order (deny beats approve beats allow, an allow with a
//! risk tag asks a person, nothing matched is denied).
//!
//! A rule lists JSON paths, each with globs in the argv token language
//! (`*`, `?`, `[a-z]`, `\`; `*` crosses `/`). A value matches when it
//! matches one of its path's globs. Quantifiers are chosen so that each
//! kind of rule fails closed:
//! - allow and approve rules need every value a path reaches to match
//!   (`paths[*]`: every element), and at least one value;
//! - deny rules match when some value of each path matches.
//!
//! A glob that starts with `/` (after `{workspace}` is put in) is a path
//! glob: the value must be an absolute path, and it is compared after its
//! `.`, `..` and `//` are resolved as text, so `{workspace}/../etc` is
//! not inside the workspace. (Symlinks are the server sandbox's business:
//! rules decide what the agent asked for, Landlock what the server can
//! touch.)

use std::collections::HashMap;

use serde_json::Value;

use super::path::{JsonPath, PathError};
use crate::policy::{compile_pattern, Decision, Pattern, PatternError, RuleRef, Verdict};
use crate::profile::{ArgRule, Location, McpServer, Risk};

/// Why a rule does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{0}")]
    Path(#[from] PathError),
    #[error("glob {glob:?}: {source}")]
    Glob { glob: String, source: PatternError },
    #[error("glob {0:?}: only {{workspace}} can be used in an MCP argument rule ({{home}} and {{tmp}} are the server's own, unknown when rules are compiled)")]
    Placeholder(String),
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    matches: Vec<(JsonPath, Vec<Glob>)>,
    pub rendered: String,
    pub risk: Option<Risk>,
    pub pre_approved: bool,
    pub origin: Location,
}

#[derive(Debug, Clone)]
struct Glob {
    pattern: Pattern,
    /// Compare the value as a normalised absolute path.
    path: bool,
}

/// How the values of one path must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    /// allow/approve: at least one value, and every value.
    Every,
    /// deny: some value.
    Some,
}

impl CompiledRule {
    /// Compiles `rule`, putting `workspace` in for `{workspace}`.
    pub fn compile(rule: &ArgRule, workspace: &str) -> Result<CompiledRule, RuleError> {
        let mut matches = Vec::with_capacity(rule.args.len());
        for m in &rule.args {
            let path = JsonPath::parse(&m.path)?;
            let globs = m
                .globs
                .iter()
                .map(|g| glob(g, workspace))
                .collect::<Result<Vec<_>, _>>()?;
            matches.push((path, globs));
        }
        Ok(CompiledRule {
            matches,
            rendered: render(rule),
            risk: rule.risk,
            pre_approved: rule.pre_approved,
            origin: rule.origin.clone(),
        })
    }

    /// True when `args` (the call's `arguments` object) matches.
    pub fn matches(&self, args: &Value, q: Quantifier) -> bool {
        self.matches.iter().all(|(path, globs)| {
            let values = path.lookup(args);
            let hit = |v: &&Value| value_matches(v, globs);
            match q {
                Quantifier::Every => !values.is_empty() && values.iter().all(hit),
                Quantifier::Some => values.iter().any(hit),
            }
        })
    }
}

/// `{ path = ["{workspace}/*"] }`, as written.
pub fn render(rule: &ArgRule) -> String {
    if rule.args.is_empty() {
        return "{}".into();
    }
    let parts: Vec<String> = rule
        .args
        .iter()
        .map(|m| format!("{} = {:?}", m.path, m.globs))
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

/// Checks one glob of a rule (for errors at the place it is written).
pub fn check_glob(text: &str) -> Result<(), RuleError> {
    glob(text, "/workspace").map(|_| ())
}

fn glob(text: &str, workspace: &str) -> Result<Glob, RuleError> {
    if text.contains("{home}") || text.contains("{tmp}") {
        return Err(RuleError::Placeholder(text.to_string()));
    }
    // The workspace is a literal: its own `*` or `[` match only themselves.
    let escaped: String = workspace
        .chars()
        .flat_map(|c| {
            let esc = matches!(c, '*' | '?' | '[' | ']' | '\\').then_some('\\');
            esc.into_iter().chain(std::iter::once(c))
        })
        .collect();
    let expanded = text.replace("{workspace}", &escaped);
    let pattern =
        compile_pattern(std::slice::from_ref(&expanded)).map_err(|source| RuleError::Glob {
            glob: text.to_string(),
            source,
        })?;
    Ok(Glob {
        pattern,
        path: expanded.starts_with('/'),
    })
}

fn value_matches(v: &Value, globs: &[Glob]) -> bool {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        // A glob is about one scalar; name a deeper path for the rest.
        Value::Array(_) | Value::Object(_) => return false,
    };
    globs.iter().any(|g| {
        if g.path {
            normalize(&text).is_some_and(|p| g.pattern.matches(&[p.as_bytes()]))
        } else {
            g.pattern.matches(&[text.as_bytes()])
        }
    })
}

/// `path` with `.`, `..` and empty components resolved as text; `None`
/// unless it is absolute and free of NUL.
pub fn normalize(path: &str) -> Option<String> {
    if !path.starts_with('/') || path.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// The compiled rules of every tool of one server.
#[derive(Debug, Clone)]
pub struct ServerPolicy {
    server: String,
    tools: HashMap<String, CompiledTool>,
}

#[derive(Debug, Clone)]
struct CompiledTool {
    /// In decision order: deny, approve, allow.
    lists: [(&'static str, Verdict, Vec<CompiledRule>); 3],
    risky: bool,
}

/// A rule that does not compile, and which one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[mcp.{server}.tools.{tool}] {list}[{index}]: {source}")]
pub struct CompileError {
    pub server: String,
    pub tool: String,
    pub list: &'static str,
    pub index: usize,
    pub source: Box<RuleError>,
}

impl ServerPolicy {
    /// Compiles every tool of `server` for a session in `workspace`.
    pub fn compile(server: &McpServer, workspace: &str) -> Result<ServerPolicy, CompileError> {
        let mut tools = HashMap::with_capacity(server.tools.len());
        for (name, tool) in &server.tools {
            let list = |list: &'static str, rules: &[ArgRule]| {
                rules
                    .iter()
                    .enumerate()
                    .map(|(index, r)| {
                        CompiledRule::compile(r, workspace).map_err(|source| CompileError {
                            server: server.name.clone(),
                            tool: name.clone(),
                            list,
                            index,
                            source: Box::new(source),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            };
            let compiled = CompiledTool {
                risky: tool
                    .allow
                    .iter()
                    .any(|r| r.risk.is_some() && !r.pre_approved),
                lists: [
                    ("deny", Verdict::Deny, list("deny", &tool.deny)?),
                    ("approve", Verdict::Approve, list("approve", &tool.approve)?),
                    ("allow", Verdict::Allow, list("allow", &tool.allow)?),
                ],
            };
            tools.insert(name.clone(), compiled);
        }
        Ok(ServerPolicy {
            server: server.name.clone(),
            tools,
        })
    }

    /// The profile declares `tool` (so it may be listed to the agent).
    pub fn declares(&self, tool: &str) -> bool {
        self.tools.contains_key(tool)
    }

    /// Decides a call of `tool` with `args` (its `arguments`; a missing
    /// one is `{}`). An undeclared tool is denied with no rule: the caller
    /// treats it as divergence.
    pub fn decide(&self, tool: &str, args: &Value) -> Decision {
        let server = &self.server;
        let Some(compiled) = self.tools.get(tool) else {
            return Decision {
                verdict: Verdict::Deny,
                rule: None,
                canonical: None,
                reason: format!(
                    "`{}` is not a declared tool of MCP server `{server}`",
                    tool.escape_debug()
                ),
            };
        };
        for (list, verdict, rules) in &compiled.lists {
            let q = if *verdict == Verdict::Deny {
                Quantifier::Some
            } else {
                Quantifier::Every
            };
            let asks = |r: &CompiledRule| r.risk.is_some() && !r.pre_approved;
            let mut hit = None;
            if *verdict == Verdict::Allow && compiled.risky {
                // A risk tag is never shadowed by a broader rule written first.
                hit = rules
                    .iter()
                    .enumerate()
                    .find(|(_, r)| asks(r) && r.matches(args, q));
            }
            let hit = hit.or_else(|| rules.iter().enumerate().find(|(_, r)| r.matches(args, q)));
            let Some((index, rule)) = hit else { continue };
            let verdict = match (verdict, rule.risk) {
                (Verdict::Allow, Some(_)) if !rule.pre_approved => Verdict::Approve,
                (v, _) => *v,
            };
            let at = format!(
                "rule mcp.{server}.tools.{tool}.{list}[{index}] {} ({})",
                rule.rendered, rule.origin
            );
            let reason = match (verdict, rule.risk) {
                (Verdict::Deny, _) => format!("denied by {at}"),
                (Verdict::Approve, Some(r)) => {
                    format!("approval required (risk {}, {at})", r.as_str())
                }
                (Verdict::Approve, None) => format!("approval required ({at})"),
                (Verdict::Allow, _) => format!("allowed by {at}"),
            };
            return Decision {
                verdict,
                canonical: None,
                rule: Some(RuleRef {
                    list,
                    index,
                    pattern: rule.rendered.clone(),
                    risk: rule.risk,
                    origin: rule.origin.clone(),
                }),
                reason,
            };
        }
        Decision {
            verdict: Verdict::Deny,
            rule: None,
            canonical: None,
            reason: format!("no rule of mcp.{server}.tools.{tool} allows these arguments"),
        }
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
