//! Checking a rule against a grammar: a token that no canonical argv can
//! have is a rule that would silently never match.

use super::grammar::{Command, Grammar, OptSpec, Takes};
use super::pattern::compile_pattern;

impl Grammar {
    /// Why some token of a rule can never match a canonical argv of this
    /// grammar, if one cannot: an option not written by its canonical
    /// spelling (`-f` where the canonical form has `--force`). Returns the
    /// token's index and the reason. Tokens that do not start with `-`
    /// are operands and are not checked, nor is anything after a `--`.
    /// Tokens before the first one naming a subcommand are checked against
    /// the main command, those after it against that subcommand; without
    /// one, against every command.
    pub fn rule_problem(&self, tokens: &[String]) -> Option<(usize, String)> {
        let sub = tokens
            .iter()
            .position(|t| self.subcommand(t.as_bytes()).is_some());
        // Without a subcommand named, the options a rule starts with are
        // still the main command's (the first operand is the subcommand).
        let leading = match (sub, self.subcommands.is_empty()) {
            (None, false) => tokens.iter().take_while(|t| t.starts_with('-')).count(),
            _ => 0,
        };
        for (i, t) in tokens.iter().enumerate() {
            if t == "--" {
                break;
            }
            let scope: Vec<(&str, &Command)> = match sub {
                None if i < leading => vec![("", &self.main)],
                Some(k) if i < k => vec![("", &self.main)],
                Some(k) if i > k => self
                    .subcommand(tokens[k].as_bytes())
                    .map(|(_, c)| (tokens[k].as_str(), c))
                    .into_iter()
                    .collect(),
                Some(_) => continue,
                None => self.commands().collect(),
            };
            if let Some(why) = self.token_problem(&scope, t) {
                return Some((i, why));
            }
        }
        None
    }

    fn token_problem(&self, scope: &[(&str, &Command)], token: &str) -> Option<String> {
        if !token.starts_with('-') || matches!(token, "-" | "--" | "--end-of-options") {
            return None;
        }
        let wild = |t: &str| t.contains(['*', '?', '[', '\\']);
        let valued = |o: &OptSpec, s: &str| {
            s == o.canonical && !matches!(o.takes, Takes::Nothing | Takes::Command)
        };
        // A spelling that may stand alone: a flag, a negation, an option
        // whose value is optional (a required value is always attached).
        let bare =
            |o: &OptSpec, s: &str| s != o.canonical || !matches!(o.takes, Takes::Value { .. });
        let mut spellings = scope.iter().flat_map(|(_, c)| c.spellings());
        let ok = match token.split_once('=') {
            Some((name, _)) if !wild(name) => spellings.any(|(s, o)| s == name && valued(o, s)),
            _ if !wild(token) => spellings.any(|(s, o)| s == token && bare(o, s)),
            _ => match compile_pattern(&[token.to_string()]) {
                // A broken glob is reported where patterns are compiled.
                Err(_) => true,
                Ok(p) => spellings.any(|(s, o)| {
                    (bare(o, s) && p.matches(&[s.as_bytes()]))
                        || (valued(o, s) && p.matches(&[format!("{s}=").as_bytes()]))
                }),
            },
        };
        if ok {
            return None;
        }
        let name = token.split('=').next().unwrap_or(token);
        let mut hints: Vec<String> = Vec::new();
        for (scope, c) in scope {
            let named = c.options.iter().find(|o| {
                o.longs.iter().any(|l| l == name)
                    || o.shorts
                        .iter()
                        .any(|&b| name.len() == 2 && name.as_bytes()[1] == b)
            });
            if let Some(o) = named {
                let spelled = match o.takes {
                    Takes::Value { .. } => format!("`{}=...`", o.canonical),
                    _ => format!("`{}`", o.canonical),
                };
                let hint = match *scope {
                    "" => spelled,
                    _ => format!("{spelled} in {scope}"),
                };
                if !hints.contains(&hint) {
                    hints.push(hint);
                }
            }
        }
        hints.truncate(4);
        let whose = match scope {
            [("", _)] => format!("grammar {}'s main command", self.name),
            [(s, _)] => format!("{} {s}", self.name),
            _ => format!("grammar {}", self.name),
        };
        Some(if hints.is_empty() {
            format!(
                "`{token}` can never match: no option of {whose} is spelled so in the canonical form (options are written by their canonical names, values attached with `=`)"
            )
        } else {
            format!(
                "`{token}` can never match: grammar {} writes that option {} in the canonical form",
                self.name,
                hints.join(", ")
            )
        })
    }
}
