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
        let pattern = generalise(call);
        match out.iter_mut().find(|(p, _)| *p == pattern) {
            Some((_, ex)) => {
                if ex.len() < examples && !ex.contains(call) {
                    ex.push(call.clone());
                }
            }
            None => out.push((pattern, vec![call.clone()])),
        }
    }
    out
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
