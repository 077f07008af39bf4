//! Tool-aware argv: the shipped coding-agent profile on the real broker
//! with every spelling an attacker would try. Where it matters, the same
//! argv is also run with the real tool outside cordon, to show it would
//! have done what the profile forbids. (tests/tests/grammars.rs checks the
//! shipped grammars against the real tools.)
#![allow(clippy::unwrap_used)] // test code

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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
