//! A tool's grammar with the profile's option rules, compiled: from an argv
//! to the canonical form, the verdict of the value rules, and the argv the
//! argv rules see.

use std::collections::HashMap;
use std::sync::Arc;

use super::canonical::{canonicalize, Canonical, Unclassified};
use super::grammar::{Grammar, Takes};
use super::pattern::{compile_pattern, Pattern};
use crate::profile::{Location, OptionRule, ToolGrammar, Unknown};

/// Why a tool's option rules cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionRuleError {
    #[error("`{key}`: grammar {grammar} has no subcommand `{scope}`")]
    NoScope {
        key: String,
        grammar: String,
        scope: String,
    },
    #[error("`{key}`: {command} has no option spelled `{option}` in the canonical form{hint}")]
    NoOption {
        key: String,
        command: String,
        option: String,
        hint: String,
    },
    #[error("`{key}`: `{option}` takes no value, so `allow`/`approve` globs cannot apply; write `neutral = true` to accept it")]
    FlagWithValues { key: String, option: String },
    #[error("`{key}`: `{option}` takes a value; list the values it may have in `allow` (\"*\" for any) instead of `neutral`")]
    NeutralWithValue { key: String, option: String },
    #[error("`{key}`: value glob {glob:?}: {source}")]
    Glob {
        key: String,
        glob: String,
        source: super::PatternError,
    },
}

/// One option rule, compiled.
#[derive(Debug, Clone)]
pub(super) struct ValueRule {
    pub allow: Vec<Pattern>,
    pub approve: Vec<Pattern>,
    pub neutral: bool,
    /// `"-c" allow ["core.hooksPath=/dev/null"]`, for reasons.
    pub rendered: String,
    pub origin: Location,
}

/// What the value rules say about a classified argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Values {
    /// Nothing to say (no value rule applied, or every value allowed).
    Pass,
    /// Rule `index` asks a person for this value.
    Approve { index: usize, shown: String },
    /// Rule `index` refuses this value.
    Deny { index: usize, shown: String },
}

/// An argv, prepared for the argv rules.
#[derive(Debug, Clone)]
pub(super) enum Prepared {
    Classified {
        canonical: Canonical,
        /// `true` for a token the rules do not see (an allowed value, a
        /// neutral flag).
        hidden: Vec<bool>,
        values: Values,
    },
    Unclassified(Unclassified),
}

/// A tool's grammar and option rules, compiled.
#[derive(Debug, Clone)]
pub struct CompiledGrammar {
    pub(super) grammar: Arc<Grammar>,
    pub(super) unknown: Unknown,
    pub(super) unknown_origin: Location,
    pub(super) rules: Vec<ValueRule>,
    /// (scope, option, negated) to a rule.
    by_option: HashMap<(u16, u16, bool), usize>,
}

impl CompiledGrammar {
    pub fn compile(tg: &ToolGrammar) -> Result<CompiledGrammar, OptionRuleError> {
        let mut rules = Vec::with_capacity(tg.options.len());
        let mut by_option = HashMap::new();
        for (i, r) in tg.options.iter().enumerate() {
            let (key, rule) = compile_rule(&tg.grammar, r)?;
            by_option.insert(key, i);
            rules.push(rule);
        }
        Ok(CompiledGrammar {
            grammar: tg.grammar.clone(),
            unknown: tg.unknown,
            unknown_origin: tg.unknown_origin.clone(),
            rules,
            by_option,
        })
    }

    pub fn grammar(&self) -> &Grammar {
        &self.grammar
    }

    /// Canonicalises `args` and applies the value rules.
    pub(super) fn prepare(&self, args: &[&[u8]]) -> Prepared {
        let canonical = match canonicalize(&self.grammar, args) {
            Ok(c) => c,
            Err(u) => return Prepared::Unclassified(u),
        };
        let mut hidden = vec![false; canonical.tokens.len()];
        let mut values = Values::Pass;
        if !self.rules.is_empty() {
            for hit in &canonical.options {
                let Some(&index) = self.by_option.get(&(hit.scope, hit.option, hit.negated)) else {
                    continue;
                };
                let rule = &self.rules[index];
                let shown = || render_bytes(&canonical.tokens[hit.token]);
                let verdict = match hit.value(&canonical.tokens) {
                    None if rule.neutral => Some(true),
                    // An optional value not given: nothing to check, but
                    // nothing allowed it either.
                    None => None,
                    Some(v) if rule.allow.iter().any(|p| p.matches(&[v])) => Some(true),
                    Some(v) if rule.approve.iter().any(|p| p.matches(&[v])) => Some(false),
                    Some(_) => {
                        values = Values::Deny {
                            index,
                            shown: shown(),
                        };
                        break;
                    }
                };
                match verdict {
                    Some(true) => hidden[hit.token] = true,
                    Some(false) => {
                        if values == Values::Pass {
                            values = Values::Approve {
                                index,
                                shown: shown(),
                            };
                        }
                        hidden[hit.token] = true;
                    }
                    None => {}
                }
            }
        }
        Prepared::Classified {
            canonical,
            hidden,
            values,
        }
    }
}

/// Checks one option rule against its grammar (what `Policy::compile`
/// would refuse), for the profile parser to report where it was written.
pub fn check_option_rule(g: &Grammar, r: &OptionRule) -> Result<(), OptionRuleError> {
    compile_rule(g, r).map(|_| ())
}

impl CompiledGrammar {
    /// The argv the argv rules see for `args` (canonical, neutral options
    /// left out), or why no argv rule would be consulted.
    pub fn rule_view(&self, args: &[&[u8]]) -> Result<Vec<Vec<u8>>, String> {
        match self.prepare(args) {
            Prepared::Unclassified(u) => Err(format!(
                "grammar {} cannot classify it ({u})",
                self.grammar.name
            )),
            Prepared::Classified {
                values: Values::Deny { index, shown },
                ..
            } => Err(format!(
                "`{shown}` is refused by the option rule {} first",
                self.rules[index].rendered
            )),
            Prepared::Classified {
                canonical, hidden, ..
            } => Ok(visible(&canonical.tokens, &hidden)
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect()),
        }
    }
}

/// The argv the rules see: the canonical tokens not hidden.
pub(super) fn visible<'t>(tokens: &'t [Vec<u8>], hidden: &[bool]) -> Vec<&'t [u8]> {
    tokens
        .iter()
        .zip(hidden)
        .filter(|(_, h)| !**h)
        .map(|(t, _)| t.as_slice())
        .collect()
}

fn compile_rule(
    g: &Grammar,
    r: &OptionRule,
) -> Result<((u16, u16, bool), ValueRule), OptionRuleError> {
    let key = r.key();
    let Some((scope, cmd)) = g.command(&r.scope) else {
        return Err(OptionRuleError::NoScope {
            key,
            grammar: g.name.clone(),
            scope: r.scope.clone(),
        });
    };
    let Some((option, spec)) = cmd.by_spelling(&r.option) else {
        let hint = cmd
            .options
            .iter()
            .find(|o| {
                o.longs.contains(&r.option)
                    || o.shorts
                        .iter()
                        .any(|c| format!("-{}", char::from(*c)) == r.option)
            })
            .map(|o| format!(" (`{}` is written `{}`)", r.option, o.canonical))
            .unwrap_or_default();
        let command = if cmd.name.is_empty() {
            g.name.clone()
        } else {
            cmd.name.clone()
        };
        return Err(OptionRuleError::NoOption {
            key,
            command,
            option: r.option.clone(),
            hint,
        });
    };
    let negated = spec.negation.as_deref() == Some(r.option.as_str()) && spec.canonical != r.option;
    let takes_value = !negated && !matches!(spec.takes, Takes::Nothing | Takes::Command);
    let has_values = !r.allow.is_empty() || !r.approve.is_empty();
    if !takes_value && has_values {
        return Err(OptionRuleError::FlagWithValues {
            key,
            option: r.option.clone(),
        });
    }
    if takes_value && r.neutral {
        return Err(OptionRuleError::NeutralWithValue {
            key,
            option: r.option.clone(),
        });
    }
    let globs = |list: &[String]| {
        list.iter()
            .map(|glob| {
                compile_pattern(std::slice::from_ref(glob)).map_err(|source| {
                    OptionRuleError::Glob {
                        key: key.clone(),
                        glob: glob.clone(),
                        source,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let allow = globs(&r.allow)?;
    let approve = globs(&r.approve)?;
    let rendered = if r.neutral {
        format!("{key:?} neutral")
    } else {
        let mut s = format!("{key:?}");
        if !r.allow.is_empty() {
            s.push_str(&format!(" allow {:?}", r.allow));
        }
        if !r.approve.is_empty() {
            s.push_str(&format!(" approve {:?}", r.approve));
        }
        s
    };
    Ok((
        (scope, option, negated),
        ValueRule {
            allow,
            approve,
            neutral: r.neutral,
            rendered,
            origin: r.origin.clone(),
        },
    ))
}

/// One argument for a reason: escaped, and cut to a length a message can
/// carry.
pub(super) fn render_bytes(b: &[u8]) -> String {
    super::canonical::shown(b)
}
