//! Tool-aware argv: the shipped grammars against the real tools on this
//! machine, and the shipped coding-agent profile on the real broker with
//! every spelling an attacker would try. Where it matters, the same argv is
//! also run with the real tool outside cordon, to show it would have done
//! what the profile forbids.
#![allow(clippy::unwrap_used)] // test code

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cordon::policy::grammar::{Command as GrammarCommand, Takes};

const GITS: [&str; 2] = ["/usr/bin/git", "/usr/local/bin/git"];

fn repo() -> PathBuf {
    match std::env::var_os("CORDON_TEST_REPO_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
    }
}

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

fn ok_git(dir: &Path, home: &Path, args: &[&str]) -> String {
    let out = git_in("/usr/bin/git", dir, home, args);
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A workspace with one commit, a bare remote `origin` with `main` and
/// `old`, and a second branch `old` locally.
fn git_workspace(c: &Case) -> PathBuf {
    let home = c.dir.path();
    let remote = c.dir.path().join("remote.git");
    ok_git(
        home,
        home,
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    let ws = &c.workspace;
    ok_git(ws, home, &["init", "-q", "-b", "main"]);
    std::fs::write(ws.join("README"), "hi\n").unwrap();
    ok_git(ws, home, &["add", "README"]);
    ok_git(
        ws,
        home,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "-m",
            "init",
        ],
    );
    ok_git(
        ws,
        home,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    ok_git(ws, home, &["push", "-q", "origin", "main", "main:old"]);
    remote
}

fn remote_refs(c: &Case, remote: &Path) -> String {
    ok_git(
        c.dir.path(),
        c.dir.path(),
        &[
            "--git-dir",
            remote.to_str().unwrap(),
            "for-each-ref",
            "--format=%(refname)",
        ],
    )
}

/// `cordon run` of the shipped coding-agent profile with `script` in bash.
fn run_coding_agent(c: &Case, script: &str) -> Run {
    let out = cordon_cmd()
        .arg("run")
        .arg("--profile")
        .arg(repo().join("profiles/coding-agent.toml"))
        .arg("--workspace")
        .arg(&c.workspace)
        .args(["--", "/usr/bin/bash", "-c", script])
        .env("CORDON_AUDIT", c.audit_path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run::from(out)
}

fn audit_calls(c: &Case) -> Vec<serde_json::Value> {
    std::fs::read_to_string(c.audit_path())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "call")
        .collect()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn push_spellings_that_delete_mirror_prune_or_run_a_program_are_refused_and_would_have_worked() {
    let c = Case::new();
    let remote = git_workspace(&c);
    let marker = c.dir.path().join("receive-pack-ran");
    let program = c.dir.path().join("rp.sh");
    std::fs::write(
        &program,
        format!("#!/bin/sh\ntouch {}\nexit 1\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let before = remote_refs(&c, &remote);
    assert!(before.contains("refs/heads/old"), "{before}");
    let script = format!(
        "git push --del origin old; echo del=$?; \
         git push --mirr origin; echo mirr=$?; \
         git push --pru origin; echo pru=$?; \
         git push --rece={} origin main; echo rece=$?",
        program.display()
    );
    let r = run_coding_agent(&c, &script);
    for expected in ["del=126", "mirr=126", "pru=126", "rece=126"] {
        assert!(r.stdout.contains(expected), "missing {expected}: {r:#?}");
    }
    assert_eq!(
        r.stderr
            .matches("cordon: denied: denied by rule deny[")
            .count(),
        4,
        "{r:#?}"
    );
    assert_eq!(
        remote_refs(&c, &remote),
        before,
        "nothing reached the remote"
    );
    assert!(
        !marker.exists(),
        "the receive-pack program must not have run"
    );
    // The exact argv stays on record, with the canonical form the rules saw.
    let calls = audit_calls(&c);
    let del = calls
        .iter()
        .find(|r| strings(&r["argv"]) == ["push", "--del", "origin", "old"])
        .unwrap();
    assert_eq!(
        strings(&del["canonical"]),
        ["push", "--delete", "origin", "old"]
    );
    assert_eq!(del["decision"], "deny");
    let rece = calls
        .iter()
        .find(|r| {
            strings(&r["argv"]).first().is_some_and(|a| a == "push")
                && strings(&r["argv"]).iter().any(|a| a.starts_with("--rece="))
        })
        .unwrap();
    assert_eq!(
        strings(&rece["canonical"])[1],
        format!("--receive-pack={}", program.display())
    );

    // What git itself makes of the same spellings, outside cordon: `--rece=`
    // runs the program, `--del` deletes the branch.
    let home = c.dir.path();
    let rece_arg = format!("--rece={}", program.display());
    let out = git_in(
        "/usr/bin/git",
        &c.workspace,
        home,
        &["push", &rece_arg, "origin", "main"],
    );
    assert!(!out.status.success());
    assert!(marker.exists(), "git ran --rece's program: {out:?}");
    ok_git(
        &c.workspace,
        home,
        &["push", "-q", "--del", "origin", "old"],
    );
    assert!(
        !remote_refs(&c, &remote).contains("refs/heads/old"),
        "git deleted it"
    );
}

#[test]
fn force_pushes_and_make_overrides_in_every_spelling_are_refused() {
    let c = Case::new();
    let remote = git_workspace(&c);
    std::fs::write(c.workspace.join("Makefile"), "all:\n\t@echo built\n").unwrap();
    std::fs::write(c.workspace.join("other.mk"), "all:\n\t@echo OTHER\n").unwrap();
    let before = remote_refs(&c, &remote);
    let script = "\
        git push -uf origin main; echo uf=$?; \
        git push --force-w origin main; echo fwl=$?; \
        make --eva='x:;@echo PWNED' x; echo eva=$?; \
        make -kf other.mk; echo kf=$?";
    let r = run_coding_agent(&c, script);
    for expected in ["uf=126", "fwl=126", "eva=126", "kf=126"] {
        assert!(r.stdout.contains(expected), "missing {expected}: {r:#?}");
    }
    assert!(
        !r.stdout.contains("PWNED") && !r.stdout.contains("OTHER"),
        "{r:#?}"
    );
    assert_eq!(remote_refs(&c, &remote), before);
    // make itself would have run the --eval'd recipe and the other makefile.
    let make = |args: &[&str]| {
        let out = Command::new("/usr/bin/make")
            .args(args)
            .current_dir(&c.workspace)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(make(&["--eva=x:;@echo PWNED", "x"]).contains("PWNED"));
    assert!(make(&["-kf", "other.mk"]).contains("OTHER"));
}

#[test]
fn make_directory_and_file_spellings_are_refused_and_plain_builds_run() {
    let c = Case::new();
    std::fs::write(
        c.workspace.join("Makefile"),
        "all:\n\t@echo built\nt:\n\t@echo tested\n",
    )
    .unwrap();
    let elsewhere = c.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("Makefile"), "all:\n\t@echo ELSEWHERE\n").unwrap();
    let script = format!(
        "make --fil other.mk; echo fil=$?; \
         make --dir {e}; echo dir=$?; \
         make -knC {e}; echo knc=$?; \
         make; echo plain=$?; make -j 2 t; echo j=$?",
        e = elsewhere.display()
    );
    let r = run_coding_agent(&c, &script);
    for expected in [
        "fil=126",
        "dir=126",
        "knc=126",
        "built\nplain=0",
        "tested\nj=0",
    ] {
        assert!(r.stdout.contains(expected), "missing {expected}: {r:#?}");
    }
    assert!(!r.stdout.contains("ELSEWHERE"), "{r:#?}");
    let calls = audit_calls(&c);
    let knc = calls
        .iter()
        .find(|r| strings(&r["argv"]).first().is_some_and(|a| a == "-knC"))
        .unwrap();
    assert_eq!(
        strings(&knc["canonical"]),
        [
            "--keep-going",
            "--just-print",
            &format!("--directory={}", elsewhere.display())
        ]
    );
}

#[test]
fn the_agents_own_read_only_git_probes_pass_and_other_config_overrides_do_not() {
    let c = Case::new();
    git_workspace(&c);
    let script = "\
        git -c core.hooksPath=/dev/null -c core.fsmonitor= --no-optional-locks ls-files; echo lsf=$?; \
        git --no-optional-locks status --porcelain; echo st=$?; \
        git config --get remote.origin.url; echo cfg=$?; \
        git -c safe.bareRepository=explicit -c core.hooksPath=/dev/null rev-parse --show-toplevel; echo rp=$?; \
        git branch --show-current; echo br=$?; \
        git -c core.pager=sh log; echo pager=$?";
    let r = run_coding_agent(&c, script);
    for expected in [
        "README\nlsf=0",
        "st=0",
        "remote.git\ncfg=0",
        "rp=0",
        "main\nbr=0",
        "pager=126",
    ] {
        assert!(r.stdout.contains(expected), "missing {expected}: {r:#?}");
    }
    assert!(
        r.stdout
            .contains(&format!("{}\nrp=0", c.workspace.display())),
        "{r:#?}"
    );
    assert!(
        r.stderr
            .contains("cordon: denied: `-c=core.pager=sh` is not a value allowed by \"-c\" allow"),
        "{r:#?}"
    );
    // Exactly one refusal counted: the probes used none of max_denials.
    assert_eq!(r.stderr.matches("cordon: denied:").count(), 1, "{r:#?}");
    let calls = audit_calls(&c);
    let lsf = &calls[0];
    assert_eq!(
        strings(&lsf["argv"]),
        [
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.fsmonitor=",
            "--no-optional-locks",
            "ls-files"
        ]
    );
    assert_eq!(
        strings(&lsf["canonical"]),
        [
            "-c=core.hooksPath=/dev/null",
            "-c=core.fsmonitor=",
            "--no-optional-locks",
            "ls-files"
        ]
    );
    assert_eq!(lsf["decision"], "allow");
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
    git_workspace(&c);
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
