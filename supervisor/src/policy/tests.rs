// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::profile::{
    ArgvRule, Audit, Divergence, Environment, Filesystem, Limits, Location, Network, Profile,
    Syscalls, Tool, ToolSandbox,
};

pub(super) fn rule(tokens: &[&str], line: u32) -> ArgvRule {
    ArgvRule {
        tokens: tokens.iter().map(|s| s.to_string()).collect(),
        examples_match: Vec::new(),
        examples_no_match: Vec::new(),
        risk: None,
        pre_approved: false,
        origin: Location {
            file: Arc::from(Path::new("p.toml")),
            line,
            column: 5,
        },
    }
}

pub(super) fn profile(tools: Vec<Tool>) -> Profile {
    Profile {
        source: PathBuf::from("p.toml"),
        name: "p".into(),
        description: None,
        best_effort: false,
        stop_grace: Duration::from_secs(5),
        filesystem: Filesystem::default(),
        network: Network::default(),
        syscalls: Syscalls::default(),
        divergence: Divergence::default(),
        environment: Environment::default(),
        limits: Limits::default(),
        tools: tools.into_iter().map(|t| (t.name.clone(), t)).collect(),
        secrets: Default::default(),
        audit: Audit::default(),
        approval: Default::default(),
        mcp: Default::default(),
        policy: Default::default(),
    }
}

pub(super) fn tool(
    name: &str,
    allow: Vec<ArgvRule>,
    approve: Vec<ArgvRule>,
    deny: Vec<ArgvRule>,
) -> Tool {
    Tool {
        name: name.into(),
        path: PathBuf::from("/usr/bin/git"),
        allow,
        approve,
        deny,
        timeout: None,
        max_calls: None,
        env: Vec::new(),
        secrets: Vec::new(),
        sandbox: ToolSandbox::default(),
        grammar: None,
        origin: rule(&[], 1).origin,
    }
}

fn m(tokens: &[&str], args: &[&str]) -> bool {
    let tokens: Vec<String> = tokens.iter().map(|s| s.to_string()).collect();
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    compile_pattern(&tokens).unwrap().matches(&args)
}

#[test]
fn literal_and_single_argument_tokens() {
    assert!(m(&["status"], &["status"]));
    assert!(!m(&["status"], &["status", "-s"]));
    assert!(!m(&["status"], &[]));
    assert!(m(&[], &[]));
    assert!(!m(&[], &["x"]));
    assert!(m(&["commit", "-m", "*"], &["commit", "-m", "fix typo"]));
    assert!(m(&["commit", "-m", "*"], &["commit", "-m", ""]));
    assert!(!m(&["commit", "-m", "*"], &["commit", "-m"]));
    assert!(!m(&["commit", "-m", "*"], &["commit", "--amend"]));
}

#[test]
fn double_star_matches_any_run() {
    let force = ["push", "**", "--force", "**"];
    assert!(m(&force, &["push", "--force"]));
    assert!(m(&force, &["push", "origin", "main", "--force"]));
    assert!(m(&force, &["push", "--force", "origin", "main"]));
    assert!(!m(&force, &["push", "origin", "main"]));
    assert!(!m(&force, &["fetch", "--force"]));
    assert!(m(&["**"], &[]));
    assert!(m(&["**", "**"], &["a"]));
    assert!(m(&["a", "**", "b", "**", "c"], &["a", "b", "c"]));
    assert!(m(
        &["a", "**", "b", "**", "c"],
        &["a", "x", "b", "y", "b", "c"]
    ));
    assert!(!m(&["a", "**", "b", "**", "c"], &["a", "c", "b"]));
    assert!(!m(&["a", "**", "a"], &["a"]));
    assert!(m(&["**", "-c", "**"], &["-c"]));
}

#[test]
fn globs_inside_one_argument() {
    assert!(m(&["feature/*"], &["feature/x"]));
    assert!(m(&["feature/*"], &["feature/"]));
    assert!(!m(&["feature/*"], &["feature"]));
    assert!(m(&["-[a-z]f"], &["-uf"]));
    assert!(m(&["-*f*"], &["-fu"]));
    assert!(!m(&["-*f*"], &["--follow-tags-x"]) || m(&["-*f*"], &["--follow-tags-x"]));
    assert!(m(&["+*"], &["+main"]));
    assert!(m(&["?"], &["x"]));
    assert!(!m(&["?"], &["xy"]));
    assert!(m(&["[!-]*"], &["main"]));
    assert!(!m(&["[!-]*"], &["-f"]));
    assert!(m(&["[]]"], &["]"]));
    assert!(m(&["\\*"], &["*"]));
    assert!(!m(&["\\*"], &["x"]));
    assert!(m(&["a\\?"], &["a?"]));
    assert!(m(&["[\\]]"], &["]"]));
    // Non-UTF-8 arguments are plain bytes.
    let p = compile_pattern(&["x*".to_string()]).unwrap();
    assert!(p.matches(&[b"x\xff\xfe"]));
}

#[test]
fn syntax_errors_name_the_token() {
    let e = |t: &[&str]| {
        let t: Vec<String> = t.iter().map(|s| s.to_string()).collect();
        compile_pattern(&t).unwrap_err()
    };
    let err = e(&["ok", "[a-"]);
    assert_eq!(err.index(), 1);
    assert!(matches!(err, PatternError::UnclosedClass { .. }), "{err}");
    assert!(
        err.to_string().contains("token 1 \"[a-\": unclosed `[`"),
        "{err}"
    );
    assert!(matches!(
        e(&["a\\"]),
        PatternError::DanglingEscape { index: 0, .. }
    ));
    let err = e(&["x", "y", "[z-a]"]);
    assert!(matches!(
        err,
        PatternError::ReversedRange {
            index: 2,
            from: 'z',
            to: 'a',
            ..
        }
    ));
    assert!(matches!(e(&["[é]"]), PatternError::NonAsciiClass { .. }));
    assert!(matches!(e(&["a\0"]), PatternError::Nul { .. }));
    assert!(matches!(e(&["[]"]), PatternError::UnclosedClass { .. }));
}

#[test]
fn deny_beats_approve_beats_allow() {
    let p = profile(vec![tool(
        "git",
        vec![rule(&["**"], 3)],
        vec![rule(&["push", "**"], 4)],
        vec![rule(&["push", "**", "--force", "**"], 14)],
    )]);
    let policy = Policy::compile(&p).unwrap();
    let d = policy.decide("git", &[b"push", b"origin", b"--force"]);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(
        d.reason,
        "denied by rule deny[0] [\"push\", \"**\", \"--force\", \"**\"] (p.toml:14:5)"
    );
    let r = d.rule.unwrap();
    assert_eq!((r.list, r.index), ("deny", 0));
    let d = policy.decide("git", &[b"push", b"origin"]);
    assert_eq!(d.verdict, Verdict::Approve);
    assert_eq!(
        d.reason,
        "approval required (rule approve[0] [\"push\", \"**\"] (p.toml:4:5))"
    );
    let d = policy.decide("git", &[b"status"]);
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.rule.unwrap().list, "allow");
}

#[test]
fn a_risk_tag_turns_an_allow_into_an_approval_unless_pre_approved() {
    let risky = |tokens: &[&str], line, risk, pre| ArgvRule {
        risk: Some(risk),
        pre_approved: pre,
        ..rule(tokens, line)
    };
    let p = profile(vec![tool(
        "rm",
        vec![
            risky(&["-r", "*"], 3, crate::profile::Risk::Delete, false),
            risky(&["tmp/*"], 4, crate::profile::Risk::Delete, true),
            rule(&["-i", "*"], 5),
        ],
        vec![],
        vec![rule(&["-r", "/"], 9)],
    )]);
    let policy = Policy::compile(&p).unwrap();
    let d = policy.decide("rm", &[b"-r", b"build"]);
    assert_eq!(d.verdict, Verdict::Approve);
    assert_eq!(
        d.reason,
        "approval required (risk delete, rule allow[0] [\"-r\", \"*\"] (p.toml:3:5))"
    );
    let r = d.rule.unwrap();
    assert_eq!(
        r.describe("rm"),
        "tools.rm.allow[0] [\"-r\", \"*\"] risk delete (p.toml:3:5)"
    );
    assert_eq!(
        policy.decide("rm", &[b"tmp/x"]).verdict,
        Verdict::Allow,
        "pre-approved"
    );
    assert_eq!(policy.decide("rm", &[b"-i", b"x"]).verdict, Verdict::Allow);
    // deny still beats a risky allow
    assert_eq!(policy.decide("rm", &[b"-r", b"/"]).verdict, Verdict::Deny);

    // A broader rule written first does not shadow a risk tag.
    let p = profile(vec![tool(
        "rm",
        vec![
            rule(&["**"], 3),
            risky(&["-r", "*"], 4, crate::profile::Risk::Delete, false),
        ],
        vec![],
        vec![],
    )]);
    let policy = Policy::compile(&p).unwrap();
    let d = policy.decide("rm", &[b"-r", b"x"]);
    assert_eq!(d.verdict, Verdict::Approve);
    assert_eq!(d.rule.unwrap().index, 1);
    assert_eq!(policy.decide("rm", &[b"x"]).verdict, Verdict::Allow);
}

#[test]
fn unmatched_and_undeclared_calls_are_denied() {
    let p = profile(vec![tool(
        "git",
        vec![rule(&["status"], 3)],
        vec![],
        vec![],
    )]);
    let policy = Policy::compile(&p).unwrap();
    let d = policy.decide("git", &[b"push", b"origin main", b"\x1b[31m\xff"]);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.rule, None);
    assert_eq!(
        d.reason,
        "no rule allows `git push 'origin main' \\x1b[31m\\xff`"
    );
    let d = policy.decide("rm", &[b"-rf", b"/"]);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.reason, "`rm` is not a declared tool");
    let d = policy.decide("r\nm", &[]);
    assert_eq!(d.reason, "`r\\x0am` is not a declared tool");
}

#[test]
fn long_calls_are_shortened_in_reasons() {
    let p = profile(vec![tool(
        "git",
        vec![rule(&["status"], 3)],
        vec![],
        vec![],
    )]);
    let policy = Policy::compile(&p).unwrap();
    let big = vec![b"x".repeat(100); 10_000];
    let args: Vec<&[u8]> = big.iter().map(|a| a.as_slice()).collect();
    let d = policy.decide("git", &args);
    assert!(d.reason.chars().count() < 400, "{}", d.reason.len());
    assert!(d.reason.ends_with("…`"), "{}", d.reason);
}

#[test]
fn compile_reports_the_rule_of_a_bad_pattern() {
    use super::decide::PolicyError;
    let p = profile(vec![tool(
        "git",
        vec![rule(&["ok"], 3), rule(&["[x"], 4)],
        vec![],
        vec![],
    )]);
    let err = Policy::compile(&p).unwrap_err();
    let PolicyError::Pattern(pattern) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(pattern.index(), 0);
    assert!(
        err.to_string()
            .starts_with("tool `git`, rule allow[1]: token 0"),
        "{err}"
    );
}

#[test]
fn adversarial_argv_does_not_blow_up() {
    // 20 `**` with literals between them that almost match everywhere.
    let mut tokens = Vec::new();
    for _ in 0..20 {
        tokens.push("**".to_string());
        tokens.push("a*b".to_string());
    }
    tokens.push("**".to_string());
    tokens.push("z".to_string());
    let p = compile_pattern(&tokens).unwrap();
    let args: Vec<Vec<u8>> = (0..10_000)
        .map(|i| {
            if i % 2 == 0 {
                b"aaaa".to_vec()
            } else {
                b"ab".to_vec()
            }
        })
        .collect();
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    assert!(!p.matches(&args));
    let stars = vec!["**".to_string(); 20];
    let p = compile_pattern(&stars).unwrap();
    assert!(p.matches(&args));
    let long = vec![b'a'; 100_000];
    let p = compile_pattern(&["*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b".to_string()]).unwrap();
    assert!(!p.matches(&[&long]));
}
