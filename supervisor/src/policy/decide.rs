//! The decision for one tool call: deny beats approve beats allow, and a
//! call that no rule matches is denied.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::pattern::{compile_pattern, Pattern, PatternError};
use super::values::{visible, CompiledGrammar, OptionRuleError, Prepared, Values};
use crate::profile::{ArgvRule, Location, Profile, Risk, Unknown};

/// Why a profile's rules cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("tool `{tool}`, [tools.{tool}.options] {source}")]
    Options {
        tool: String,
        source: Box<OptionRuleError>,
    },
}

/// The compiled rules of every tool of a profile.
#[derive(Debug, Clone)]
pub struct Policy {
    tools: HashMap<String, CompiledTool>,
}

#[derive(Debug, Clone)]
struct CompiledTool {
    /// In decision order: deny, approve, allow.
    lists: [(&'static str, Verdict, Vec<CompiledRule>); 3],
    /// Some allow rule has a risk tag that asks for approval.
    risky: bool,
    /// The tool's grammar: rules see the canonical argv.
    grammar: Option<CompiledGrammar>,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    pattern: Pattern,
    rendered: String,
    risk: Option<Risk>,
    pre_approved: bool,
    origin: Location,
}

/// What happens to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Needs a human yes for this one call.
    Approve,
    Deny,
}

/// The rule that decided a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// `"allow"`, `"approve"` or `"deny"`.
    pub list: &'static str,
    /// Position in that list of the tool.
    pub index: usize,
    /// The tokens, rendered like `["push", "**"]`.
    pub pattern: String,
    /// The rule's `risk` tag, if any.
    pub risk: Option<Risk>,
    pub origin: Location,
}

impl RuleRef {
    /// `tools.git.approve[0] ["push", "**"] (p.toml:3:5)`, plus the risk.
    pub fn describe(&self, tool: &str) -> String {
        self.describe_at(&format!("tools.{tool}"))
    }

    /// The same for a rule of the table at `at` (`tools.git`,
    /// `mcp.fs.tools.write_file`).
    pub fn describe_at(&self, at: &str) -> String {
        let risk = self
            .risk
            .map(|r| format!(" risk {}", r.as_str()))
            .unwrap_or_default();
        format!(
            "{at}.{}[{}] {}{risk} ({})",
            self.list, self.index, self.pattern, self.origin
        )
    }
}

/// A verdict, the rule behind it (none when no rule matched or the tool is
/// unknown) and a one-line reason for people and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub rule: Option<RuleRef>,
    pub reason: String,
    /// The canonical argv the rules were matched against (options the
    /// profile made neutral included), when the tool has a grammar that
    /// could classify the call.
    pub canonical: Option<Vec<Vec<u8>>>,
}

impl Policy {
    /// Compiles the argv rules of every tool of `profile`.
    pub fn compile(profile: &Profile) -> Result<Policy, PolicyError> {
        let mut tools = HashMap::with_capacity(profile.tools.len());
        for (name, tool) in &profile.tools {
            let list = |list: &'static str, rules: &[ArgvRule]| {
                rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let pattern =
                            compile_pattern(&r.tokens).map_err(|e| PatternError::InRule {
                                tool: name.clone(),
                                list,
                                rule: i,
                                source: Box::new(e),
                            })?;
                        Ok(CompiledRule {
                            pattern,
                            rendered: render_tokens(&r.tokens),
                            risk: r.risk,
                            pre_approved: r.pre_approved,
                            origin: r.origin.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, PatternError>>()
            };
            let grammar = match &tool.grammar {
                None => None,
                Some(tg) => {
                    Some(
                        CompiledGrammar::compile(tg).map_err(|e| PolicyError::Options {
                            tool: name.clone(),
                            source: Box::new(e),
                        })?,
                    )
                }
            };
            let compiled = CompiledTool {
                grammar,
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
        Ok(Policy { tools })
    }

    /// Decides a call of `tool` with `args` (the argv after the tool name).
    pub fn decide(&self, tool: &str, args: &[&[u8]]) -> Decision {
        let Some(compiled) = self.tools.get(tool) else {
            return Decision {
                verdict: Verdict::Deny,
                rule: None,
                reason: format!(
                    "`{}` is not a declared tool",
                    render_arg(tool.as_bytes(), false)
                ),
                canonical: None,
            };
        };
        let Some(g) = &compiled.grammar else {
            return compiled.match_rules(tool, args);
        };
        match g.prepare(args) {
            Prepared::Unclassified(u) => compiled.unclassified(g, tool, args, &u),
            Prepared::Classified {
                canonical,
                hidden,
                values,
            } => {
                let seen = visible(&canonical.tokens, &hidden);
                let mut d = match &values {
                    Values::Deny { index, shown } => {
                        let rule = value_rule_ref(g, *index);
                        Decision {
                            verdict: Verdict::Deny,
                            reason: format!(
                                "`{shown}` is not a value allowed by {} ({})",
                                shorten(&rule.pattern),
                                rule.origin
                            ),
                            rule: Some(rule),
                            canonical: None,
                        }
                    }
                    _ => compiled.match_rules(tool, &seen),
                };
                if let (Values::Approve { index, shown }, Verdict::Allow) = (&values, d.verdict) {
                    let rule = value_rule_ref(g, *index);
                    d.reason = format!(
                        "approval required (`{shown}` needs approval by {} ({}))",
                        shorten(&rule.pattern),
                        rule.origin
                    );
                    d.verdict = Verdict::Approve;
                    d.rule = Some(rule);
                }
                d.canonical = Some(canonical.tokens);
                d
            }
        }
    }
}

impl CompiledTool {
    /// The argv rules alone: deny beats approve beats allow.
    fn match_rules(&self, tool: &str, args: &[&[u8]]) -> Decision {
        for (list, verdict, rules) in &self.lists {
            // Among allow rules, one that asks for approval wins over one
            // that does not, whatever their order: a risk tag is never
            // shadowed by a broader rule written first.
            let asks = |r: &CompiledRule| r.risk.is_some() && !r.pre_approved;
            let hit = match verdict {
                Verdict::Allow if self.risky => rules
                    .iter()
                    .enumerate()
                    .find(|(_, r)| asks(r) && r.pattern.matches(args))
                    .or_else(|| {
                        rules
                            .iter()
                            .enumerate()
                            .find(|(_, r)| r.pattern.matches(args))
                    }),
                _ => rules
                    .iter()
                    .enumerate()
                    .find(|(_, r)| r.pattern.matches(args)),
            };
            if let Some((index, rule)) = hit {
                let at = format!("rule {list}[{index}] {} ({})", rule.rendered, rule.origin);
                // A risk tag turns an allow into a question for a person,
                // unless the profile answered it in advance.
                let verdict = match (verdict, rule.risk) {
                    (Verdict::Allow, Some(_)) if !rule.pre_approved => Verdict::Approve,
                    (v, _) => *v,
                };
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
                    rule: Some(RuleRef {
                        list,
                        index,
                        pattern: rule.rendered.clone(),
                        risk: rule.risk,
                        origin: rule.origin.clone(),
                    }),
                    reason,
                    canonical: None,
                };
            }
        }
        Decision {
            verdict: Verdict::Deny,
            rule: None,
            reason: format!("no rule allows `{}`", render_call(tool, args)),
            canonical: None,
        }
    }

    /// A call the grammar cannot classify: a deny rule that matches it as
    /// written, or as far as it was canonicalised, still denies it; else
    /// the profile's `unknown` decides. Never an allow.
    fn unclassified(
        &self,
        g: &CompiledGrammar,
        tool: &str,
        args: &[&[u8]],
        u: &super::Unclassified,
    ) -> Decision {
        let partial: Vec<&[u8]> = u.partial.iter().map(Vec::as_slice).collect();
        let (_, _, deny) = &self.lists[0];
        let hit = deny
            .iter()
            .enumerate()
            .find(|(_, r)| r.pattern.matches(args) || r.pattern.matches(&partial));
        if let Some((index, rule)) = hit {
            return Decision {
                verdict: Verdict::Deny,
                reason: format!(
                    "denied by rule deny[{index}] {} ({}); {u}",
                    rule.rendered, rule.origin
                ),
                rule: Some(RuleRef {
                    list: "deny",
                    index,
                    pattern: rule.rendered.clone(),
                    risk: rule.risk,
                    origin: rule.origin.clone(),
                }),
                canonical: None,
            };
        }
        let grammar = &g.grammar().name;
        match g.unknown {
            Unknown::Deny => Decision {
                verdict: Verdict::Deny,
                rule: None,
                reason: format!(
                    "{u}; grammar {grammar} cannot classify `{}`, so it is refused",
                    render_call(tool, args)
                ),
                canonical: None,
            },
            Unknown::Approve => Decision {
                verdict: Verdict::Approve,
                reason: format!(
                    "approval required ({u}; unknown = \"approve\" ({}))",
                    g.unknown_origin
                ),
                rule: Some(RuleRef {
                    list: "unknown",
                    index: 0,
                    pattern: "unknown = \"approve\"".to_string(),
                    risk: None,
                    origin: g.unknown_origin.clone(),
                }),
                canonical: None,
            },
        }
    }
}

/// The rule behind a value verdict: `tools.git.options[0] "-c" allow [...]`.
fn value_rule_ref(g: &CompiledGrammar, index: usize) -> RuleRef {
    let rule = &g.rules[index];
    RuleRef {
        list: "options",
        index,
        pattern: rule.rendered.clone(),
        risk: None,
        origin: rule.origin.clone(),
    }
}

/// `["push", "**"]`: tokens as written, quoted and escaped.
pub(crate) fn render_tokens(tokens: &[String]) -> String {
    format!("{tokens:?}")
}

/// The most of a call shown in a reason; the rest becomes `…`.
const MAX_SHOWN: usize = 200;

/// `git push origin main`, one line, every byte that is not printable ASCII
/// escaped, arguments with spaces or quotes in single quotes, shortened.
pub fn render_call(tool: &str, args: &[&[u8]]) -> String {
    let mut out = render_arg(tool.as_bytes(), false);
    for arg in args {
        if out.len() > MAX_SHOWN {
            break;
        }
        out.push(' ');
        out.push_str(&render_arg(arg, true));
    }
    if out.len() > MAX_SHOWN {
        let mut cut = MAX_SHOWN;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// A rule as shown in a reason: an option rule may list dozens of values
/// (the agent CLIs' hardening options), and the reason goes back to the
/// agent and onto stderr; the rule's place names the whole of it.
fn shorten(pattern: &str) -> String {
    if pattern.len() <= MAX_SHOWN {
        return pattern.to_string();
    }
    let mut cut = MAX_SHOWN;
    while !pattern.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{} …]", &pattern[..cut])
}

fn render_arg(arg: &[u8], quote: bool) -> String {
    let needs_quotes = quote
        && (arg.is_empty()
            || arg
                .iter()
                .any(|b| matches!(b, b' ' | b'\'' | b'"' | b'`' | b'\\')));
    let mut out = String::with_capacity(arg.len() + 2);
    if needs_quotes {
        out.push('\'');
    }
    for &b in arg {
        match b {
            b'\'' if needs_quotes => out.push_str("\\'"),
            b'\\' => out.push_str("\\\\"),
            b'`' => out.push_str("\\`"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    if needs_quotes {
        out.push('\'');
    }
    out
}
