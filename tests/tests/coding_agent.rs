//! The shipped coding-agent profile with the real git: force pushes in
//! every spelling are refused, wrappers still end in a brokered, checked
//! call or are divergence.
#![allow(clippy::unwrap_used)] // test code

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    match std::env::var_os("CORDON_TEST_REPO_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
    }
}

fn git_workspace(c: &Case) {
    let git = |args: &[&str]| {
        let out = Command::new("/usr/bin/git")
            .args(args)
            .current_dir(&c.workspace)
            .env("HOME", c.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(c.workspace.join("README"), "hi\n").unwrap();
    git(&["add", "README"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e",
        "commit",
        "-q",
        "-m",
        "init",
    ]);
}

#[test]
fn force_pushes_are_refused_in_every_spelling_and_wrappers_stay_checked() {
    let c = Case::new();
    git_workspace(&c);
    let script = "\
        git status --short; echo status=$?; \
        git push --force origin main; echo force=$?; \
        git push -uf origin main; echo uf=$?; \
        git push origin +main; echo plus=$?; \
        env git push -f origin main; echo env=$?; \
        timeout 5 git status; echo survived";
    let out = cordon_cmd()
        .arg("run")
        .arg("--profile")
        .arg(repo().join("profiles/coding-agent.toml"))
        .arg("--workspace")
        .arg(&c.workspace)
        .args(["--", "/usr/bin/bash", "-c", script])
        .env("CORDON_AUDIT", c.audit_path())
        .output()
        .unwrap();
    let r = Run::from(out);
    for expected in ["status=0", "force=126", "uf=126", "plus=126", "env=126"] {
        assert!(r.stdout.contains(expected), "missing {expected}: {r:#?}");
    }
    assert_eq!(
        r.stderr
            .matches("cordon: denied: denied by rule deny[")
            .count(),
        4,
        "{r:#?}"
    );
    // `timeout` is not in the profile: running it is divergence.
    r.killed_for("executed `/usr/bin/timeout`");
    assert!(!r.stdout.contains("survived"));
    // The refusals are on record, each with the argv the agent sent.
    let log = std::fs::read_to_string(c.audit_path()).unwrap();
    assert!(
        log.contains(r#""argv":["push","-uf","origin","main"]"#),
        "{log}"
    );
    assert!(log.contains(r#""kind":"divergence""#), "{log}");
}
