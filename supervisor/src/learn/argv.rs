//! Argv patterns generalised from the calls a tool was seen to make (pure).
//!
//! Flags are kept (`--flag=value` becomes `--flag=*`), the first bare word
//! that is not a flag's value is kept as the subcommand, and every other
//! argument becomes `*` (exactly one argument): `git commit -m "fix"`
//! gives `["commit", "-m", "*"]`. Kept words are escaped so they match
//! only themselves.

/// The pattern for one observed call.
pub fn generalise(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut have_subcommand = false;
    let mut after_flag = false;
    for a in args {
        if a.starts_with('-') && a.len() > 1 {
            match a.split_once('=') {
                Some((flag, _)) if a.starts_with("--") => out.push(format!("{}=*", escape(flag))),
                _ => out.push(escape(a)),
            }
            after_flag = true;
            continue;
        }
        if !have_subcommand && !after_flag && looks_like_subcommand(a) {
            out.push(escape(a));
            have_subcommand = true;
        } else {
            out.push("*".to_string());
        }
        after_flag = false;
    }
    out
}

/// A word such as `commit`, `install` or `status`.
fn looks_like_subcommand(a: &str) -> bool {
    (1..=32).contains(&a.len())
        && a.starts_with(|c: char| c.is_ascii_lowercase())
        && a.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Escapes the glob characters of a literal token.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Distinct patterns for `calls`, in first-seen order, each with the calls
/// (at most `examples` of them) it came from.
pub fn rules(calls: &[Vec<String>], examples: usize) -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    let mut out: Vec<(Vec<String>, Vec<Vec<String>>)> = Vec::new();
    for call in calls {
        add_rule(&mut out, generalise(call), call, examples);
    }
    out
}

/// Adds `call` under `pattern`: a new rule, or one more of its examples
/// (at most `examples`, each once).
fn add_rule(
    rules: &mut Vec<(Vec<String>, Vec<Vec<String>>)>,
    pattern: Vec<String>,
    call: &[String],
    examples: usize,
) {
    match rules.iter_mut().find(|(p, _)| *p == pattern) {
        Some((_, ex)) => {
            if ex.len() < examples && !ex.iter().any(|e| e == call) {
                ex.push(call.to_vec());
            }
        }
        None => rules.push((pattern, vec![call.to_vec()])),
    }
}

/// A tool's calls learned through its shipped grammar (`grammar = "git"`):
/// rules over the canonical argv the policy matches, with the main
/// command's options that carry a value (git's `-c name=value`, `-C dir`)
/// taken out of it and allowed by option rules listing exactly the values
/// seen. Those values are never generalised: `-c core.sshCommand=...` or
/// `-c core.fsmonitor=...` would make git run a program of the caller's
/// choosing, so a learned `-c *` would hand the agent a way around every
/// other rule.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GrammarRules {
    /// Each argv rule (over the canonical argv without those options) and
    /// the calls, as they were made, it came from.
    pub rules: Vec<(Vec<String>, Vec<Vec<String>>)>,
    /// Option (as the canonical form spells it, e.g. `-c`) -> the exact
    /// values seen, escaped as patterns, in first-seen order.
    pub options: Vec<(String, Vec<String>)>,
}

/// `calls` through grammar `g`, or None when the grammar cannot classify
/// one of them (the tool is then learned without its grammar).
pub fn grammar_rules(
    g: &crate::policy::grammar::Grammar,
    calls: &[Vec<String>],
    examples: usize,
) -> Option<GrammarRules> {
    let mut out = GrammarRules::default();
    for call in calls {
        let bytes: Vec<&[u8]> = call.iter().map(|a| a.as_bytes()).collect();
        let canonical = crate::policy::canonicalize(g, &bytes).ok()?;
        let mut hidden = vec![false; canonical.tokens.len()];
        for hit in canonical.options.iter().filter(|h| h.scope == 0) {
            let (Some(at), Some(token)) = (hit.value_at, canonical.tokens.get(hit.token)) else {
                continue;
            };
            let name = String::from_utf8(token.get(..at.checked_sub(1)?)?.to_vec()).ok()?;
            let value = escape(std::str::from_utf8(token.get(at..)?).ok()?);
            hidden[hit.token] = true;
            match out.options.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) if !values.contains(&value) => values.push(value),
                Some(_) => {}
                None => out.options.push((name, vec![value])),
            }
        }
        let visible: Vec<String> = canonical
            .tokens
            .iter()
            .zip(&hidden)
            .filter(|(_, h)| !**h)
            .map(|(t, _)| String::from_utf8(t.clone()).ok())
            .collect::<Option<_>>()?;
        add_rule(&mut out.rules, generalise(&visible), call, examples);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::compile_pattern;

    fn g(args: &[&str]) -> Vec<String> {
        generalise(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn subcommands_and_flags_stay_values_go() {
        assert_eq!(g(&["commit", "-m", "fix the bug"]), ["commit", "-m", "*"]);
        assert_eq!(g(&["status"]), ["status"]);
        assert_eq!(g(&["add", "notes.txt"]), ["add", "*"]);
        assert_eq!(
            g(&["-c", "user.name=a", "commit", "-q", "-m", "x"]),
            ["-c", "*", "commit", "-q", "-m", "*"]
        );
        assert_eq!(
            g(&["-sS", "--max-time=5", "http://x/"]),
            ["-sS", "--max-time=*", "*"]
        );
        assert_eq!(g(&["-C", "dir", "status"]), ["-C", "*", "status"]);
        assert_eq!(g(&["-[x]*"]), ["-\\[x\\]\\*"]);
    }

    fn calls(list: &[&[&str]]) -> Vec<Vec<String>> {
        list.iter()
            .map(|c| c.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn through_the_git_grammar_config_values_are_kept_exactly() {
        let g = crate::profile::shipped_grammar("git").unwrap().unwrap();
        let seen = calls(&[
            &[
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "core.fsmonitor=",
                "status",
                "--short",
            ],
            &[
                "-c",
                "core.hooksPath=/dev/null",
                "log",
                "--oneline",
                "-n",
                "5",
            ],
            &["-c", "format.pretty=[x]", "log", "--oneline", "-n", "1"],
        ]);
        let learned = grammar_rules(&g, &seen, 3).unwrap();
        assert_eq!(
            learned.options,
            [(
                "-c".to_string(),
                vec![
                    "core.hooksPath=/dev/null".to_string(),
                    "core.fsmonitor=".to_string(),
                    "format.pretty=\\[x\\]".to_string(),
                ]
            )]
        );
        // The two logs are one rule; no `-c` in any rule.
        assert_eq!(learned.rules.len(), 2, "{:?}", learned.rules);
        assert!(learned
            .rules
            .iter()
            .all(|(p, _)| !p.iter().any(|t| t.starts_with("-c"))));
        assert_eq!(learned.rules[1].1.len(), 2);
        // An option the grammar does not know: not learned through it.
        assert!(grammar_rules(&g, &calls(&[&["--no-such-option", "status"]]), 3).is_none());
    }

    #[test]
    fn every_pattern_matches_the_calls_it_came_from() {
        let calls: Vec<Vec<String>> = [
            vec!["commit", "-m", "a*b"],
            vec!["commit", "-m", "other"],
            vec!["-[x]*", "?"],
            vec!["push", "origin", "main"],
        ]
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
        let rules = rules(&calls, 3);
        assert_eq!(rules.len(), 3);
        for (pattern, examples) in &rules {
            let p = compile_pattern(pattern).unwrap();
            for ex in examples {
                let bytes: Vec<&[u8]> = ex.iter().map(|s| s.as_bytes()).collect();
                assert!(p.matches(&bytes), "{pattern:?} vs {ex:?}");
            }
        }
        // A different subcommand is not covered.
        let p = compile_pattern(&rules[0].0).unwrap();
        assert!(!p.matches(&[b"reset".as_slice(), b"-m", b"x"]));
    }
}
