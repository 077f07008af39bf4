//! The shipped grammars against the real tools on this machine: for each
//! option, the tool agrees with its grammar about whether the option takes
//! the next argument as its value (a grammar wrong about that would let an
//! option hide behind a value, or a value pass for an operand), and every
//! option git lists for a parse-options subcommand is in the git grammar.
#![allow(clippy::unwrap_used)] // test code

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use cordon::policy::grammar::{Command as GrammarCommand, Takes};

const GITS: [&str; 2] = ["/usr/bin/git", "/usr/local/bin/git"];

fn git_in(git: &str, dir: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(git)
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PAGER", "cat")
        .env("GIT_EDITOR", "false")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A repository with one commit, for git to parse options in.
fn scratch_repo(c: &Case) {
    let ws = &c.workspace;
    let home = c.dir.path();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
    ] {
        let out = git_in("/usr/bin/git", ws, home, args);
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }
}

/// What git did with the argument after an option.
#[derive(Debug, PartialEq)]
enum Next {
    /// This git has no such option.
    Absent,
    Taken(bool),
    /// git stopped before showing it.
    Unobserved,
}

/// Runs `git SUB OPT s1 s2` in a scratch repository: did git take `s1`
/// as the option's value, or report it as an unknown option?
fn consumes_next(git: &str, dir: &Path, sub: &str, opt: &str) -> Next {
    const S1: &str = "--cordon-sentinel-one";
    const S2: &str = "--cordon-sentinel-two";
    let run = |value: &str, next: &str| {
        let args: Vec<&str> = match sub {
            "" => vec![opt, value, next, "status"],
            "log" => vec!["log", "-1", opt, value, next],
            "show" => vec!["show", "HEAD", opt, value, next],
            _ => vec![sub, opt, value, next],
        };
        git_in(git, dir, dir, &args)
    };
    let out = run(S1, S2);
    let err = String::from_utf8_lossy(&out.stderr);
    let unknown = |a: &str| {
        let bare = a.trim_start_matches('-');
        err.contains(&format!("unknown option `{bare}'"))
            || err.contains(&format!("unrecognized argument: {a}"))
            || err.contains(&format!("invalid option: {a}"))
            || err.contains(&format!("unknown option: {a}"))
            || err.contains(&format!("unknown switch `{bare}'"))
    };
    if unknown(opt) {
        return Next::Absent;
    }
    if unknown(S1) {
        return Next::Taken(false);
    }
    // Complaining about the sentinel as a value, or about the next one.
    if unknown(S2) || err.contains(&S1[2..]) {
        return Next::Taken(true);
    }
    // An option that checks its value first: give it one it accepts.
    for value in ["1", "myers", "new", "HEAD", "x/"] {
        let again = String::from_utf8_lossy(&run(value, S2).stderr).into_owned();
        if again.contains(&format!("unrecognized argument: {S2}"))
            || again.contains(&format!("unknown option `{}'", &S2[2..]))
            || again.contains(&format!("invalid option: {S2}"))
            || again.contains(&format!("unknown option: {S2}"))
        {
            return Next::Taken(true);
        }
    }
    // rev-parse echoes what it does not know instead of complaining
    // (unless told to print only revisions).
    let stdout = String::from_utf8_lossy(&out.stdout);
    if sub == "rev-parse" {
        if stdout.lines().any(|l| l == S1) {
            return Next::Taken(false);
        }
        if stdout.lines().any(|l| l == S2) {
            return Next::Taken(true);
        }
    }
    Next::Unobserved
}

/// What the grammar says `opt` of `cmd` does with the next argument, for
/// the spellings tested: `--long` (or `-s` when it has no long name).
fn takes_next(cmd: &GrammarCommand, spelling: &str) -> bool {
    let o = cmd
        .options
        .iter()
        .find(|o| o.canonical == spelling)
        .unwrap();
    matches!(o.takes, Takes::Value { separate: true, .. })
}

/// For every option of the shipped git grammar, both installed gits agree
/// with it about whether the option takes the next argument as its value:
/// a grammar that thought so wrongly would let an option hide behind it.
/// And every option git lists for a parse-options subcommand (hidden ones
/// included) is in the grammar: a missing one could make a prefix mean
/// another option to cordon than to git.
#[test]
fn the_git_grammar_agrees_with_both_installed_gits() {
    let g = cordon::profile::shipped_grammar("git").unwrap().unwrap();
    let gits: Vec<&str> = GITS.into_iter().filter(|g| Path::new(g).exists()).collect();
    assert!(
        !gits.is_empty() && (!in_ci() || gits.len() == 2),
        "gits here: {gits:?}"
    );
    let c = Case::new();
    scratch_repo(&c);
    let dir = &c.workspace;
    let mut checked = 0;
    let mut unverified: Vec<String> = Vec::new();
    for git in &gits {
        for (scope, cmd) in g.commands() {
            for o in &cmd.options {
                let spelling = o
                    .longs
                    .first()
                    .cloned()
                    .unwrap_or_else(|| o.canonical.clone());
                if o.takes == Takes::Command
                    || spelling == "--version"
                    || (scope.is_empty() && spelling.ends_with("-path"))
                {
                    continue;
                }
                let want = takes_next(cmd, &o.canonical);
                match consumes_next(git, dir, scope, &spelling) {
                    Next::Taken(got) => {
                        assert_eq!(got, want, "{git} {scope} {spelling}: git takes the next argument: {got}, the grammar: {want}");
                        checked += 1;
                    }
                    Next::Unobserved if want => unverified.push(format!("{scope} {spelling}")),
                    // Taking nothing is the safe side: the next argument is
                    // then seen by the rules, as an option or an operand.
                    // An option of the other git only is unknown to this one.
                    Next::Unobserved | Next::Absent => {}
                }
            }
        }
        // Completeness of the parse-options subcommands.
        for sub in [
            "status", "add", "commit", "branch", "switch", "checkout", "fetch", "pull", "push",
            "ls-files",
        ] {
            let cmd = &g.subcommands.iter().find(|(n, _)| n == sub).unwrap().1;
            let names: Vec<String> = cmd
                .options
                .iter()
                .flat_map(|o| o.longs.iter().chain(&o.negations).cloned())
                .collect();
            let out = git_in(git, dir, dir, &[sub, "--git-completion-helper-all"]);
            for word in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let word = word.trim_end_matches('=');
                if word.len() > 2 && !names.iter().any(|n| n == word) {
                    panic!("{git} {sub}: `{word}` is not in the grammar");
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} checked");
    // Options said to take the next argument whose parse cannot be observed
    // this way (git checks the value and stops before the next argument,
    // without naming it) are few, and each is named here.
    unverified.sort();
    unverified.dedup();
    // `--grep-reflog` needs `-g` first; `git diff --default REV` stops at
    // the value (log and show, with the same revision parser, show that
    // --default takes it).
    let known = [
        "diff --default",
        "diff --grep-reflog",
        "log --grep-reflog",
        "show --grep-reflog",
    ];
    let surprising: Vec<&String> = unverified
        .iter()
        .filter(|u| !known.contains(&u.as_str()))
        .collect();
    assert!(surprising.is_empty(), "unverified: {surprising:#?}");
}

/// `TOOL OPT s1 s2 ...` in a scratch directory: did the tool take `s1` as
/// the option's value, or report it (or the option itself) as unknown?
fn tool_takes_next(tool: &str, dir: &Path, opt: &str, before: &[&str], after: &[&str]) -> Next {
    const S1: &str = "--cordon-sentinel-one";
    const S2: &str = "--cordon-sentinel-two";
    let run = |value: &str| {
        let out = Command::new(tool)
            .args(before)
            .args([opt, value, S2])
            .args(after)
            .current_dir(dir)
            .env("HOME", dir)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(S1);
    // Named as an option (or a predicate), in the words of each tool.
    let named = |err: &str, a: &str| {
        let short = a.strip_prefix('-').filter(|r| r.len() == 1);
        err.lines().any(|l| {
            l.contains(&format!("option '{a}'"))
                || l.contains(&format!("option {a}: is unknown"))
                || l.contains(&format!("predicate `{a}'"))
                || short.is_some_and(|c| l.contains(&format!("invalid option -- '{c}'")))
        })
    };
    let as_option = |a: &str| named(&err, a);
    if as_option(opt) {
        return Next::Absent;
    }
    if as_option(S1) {
        return Next::Taken(false);
    }
    // Any other mention of the sentinel is about it as a value.
    if err.contains(S1) || as_option(S2) {
        return Next::Taken(true);
    }
    // curl: "option --max-time: expected a proper numerical parameter".
    let bad_value = ["expected", "unsupported", "not a valid", "is not"];
    if err
        .lines()
        .any(|l| l.contains(&format!("option {opt}: ")) && bad_value.iter().any(|b| l.contains(b)))
    {
        return Next::Taken(true);
    }
    // A value the tool accepts, then the sentinel: is that one next?
    for value in [
        "1",
        "x",
        "1.2",
        "1.2.3.4",
        "0123456789abcdef0123456789abcdef",
    ] {
        if named(&run(value), S2) {
            return Next::Taken(true);
        }
    }
    Next::Unobserved
}

/// make, grep, find and curl agree with their shipped grammars about which
/// options take the next argument as their value.
#[test]
fn the_make_grep_find_and_curl_grammars_agree_with_the_tools() {
    let c = Case::new();
    let dir = &c.workspace;
    std::fs::write(dir.join("Makefile"), "all:\n\t@:\n").unwrap();
    std::fs::write(dir.join("target"), "").unwrap();
    let target = dir.join("target");
    let target = target.to_str().unwrap();
    type ToolCase<'a> = (&'a str, &'a str, &'a [&'a str], &'a [&'a str]);
    let cases: [ToolCase; 4] = [
        ("make", "/usr/bin/make", &[], &[]),
        ("grep", "/usr/bin/grep", &[], &["x", "/dev/null"]),
        ("curl", "/usr/bin/curl", &[], &[]),
        ("find", "/usr/bin/find", &[target, "-maxdepth", "0"], &[]),
    ];
    for (name, bin, before, after) in cases {
        let g = cordon::profile::shipped_grammar(name).unwrap().unwrap();
        let mut checked = 0;
        let mut unobserved = Vec::new();
        for o in &g.main.options {
            let spelling = o
                .longs
                .first()
                .cloned()
                .unwrap_or_else(|| o.canonical.clone());
            let skip = o.leading
                || o.arity > 1
                || o.takes == Takes::Command
                || matches!(
                    spelling.as_str(),
                    "--help"
                        | "--version"
                        | "-help"
                        | "-version"
                        | "--manual"
                        | "("
                        | ")"
                        | ","
                        | "-not"
                        | "-and"
                        | "-or"
                )
                || (name == "find" && spelling == "-delete")
                // find refuses birth-time comparisons where it cannot read
                // birth times ("This system does not provide a way...").
                || (spelling.starts_with("-newer") && spelling[6..].contains('B'));
            if skip {
                continue;
            }
            let want = matches!(o.takes, Takes::Value { separate: true, .. });
            match tool_takes_next(bin, dir, &spelling, before, after) {
                Next::Taken(got) => {
                    assert_eq!(got, want, "{name} {spelling}: the tool takes the next argument: {got}, the grammar: {want}");
                    checked += 1;
                }
                Next::Absent => panic!("{name}: `{spelling}` is not an option of {bin}"),
                Next::Unobserved => unobserved.push(spelling),
            }
            // A negatable option's negation exists too.
            if let Some(neg) = &o.negation {
                assert_ne!(
                    tool_takes_next(bin, dir, neg, before, after),
                    Next::Absent,
                    "{name}: `{neg}` is not an option of {bin}"
                );
            }
        }
        assert!(checked >= 30, "{name}: {checked} checked");
        // Options that check their value before anything else, so that
        // what they do with the next argument cannot be seen.
        let known: &[&str] = match name {
            "find" => &["-context", "-size", "-type", "-xtype"],
            "grep" => &["--max-count", "--binary-files", "--devices"],
            // Options this build of curl does not support, or that it
            // refuses as "badly used here" whatever the value.
            "curl" => &[
                "--dns-interface",
                "--dns-ipv4-addr",
                "--dns-ipv6-addr",
                "--dns-servers",
                "--form",
                "--form-string",
                "--http3",
                "--http3-only",
                "--local-port",
                "--metalink",
                "--proxy-tlsauthtype",
                "--tlsauthtype",
            ],
            _ => &[],
        };
        unobserved.retain(|u| !known.contains(&u.as_str()));
        assert!(unobserved.is_empty(), "{name}: unobserved {unobserved:?}");
    }
}
