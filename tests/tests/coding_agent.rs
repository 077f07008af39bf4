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

/// The hardening options the agent CLIs put before their git calls are
/// accepted (and hidden from the rules), on every shipped profile that
/// brokers git; values that would make git run a program stay refused,
/// also when they are written to look like an accepted one.
#[test]
fn the_agent_clis_git_hardening_options_are_accepted_and_dangerous_values_refused() {
    let claude_remote = "-c core.askPass= -c protocol.ext.allow=never \
        -c core.alternateRefsCommand='f() { git --git-dir=\"$1\" for-each-ref --format='\"'\"'%(objectname)'\"'\"'; }; f' \
        -c submodule.recurse=false -c log.showSignature=false -c format.pretty=medium -c gc.auto=0 \
        -c maintenance.auto=false -c diff.autoRefreshIndex=false -c hook.pre-push.enabled=false \
        -c hook.post-index-change.enabled=false -c core.hooksPath=/dev/null -c core.fsmonitor=";
    let script = format!(
        "git -c safe.bareRepository=explicit -c core.hooksPath=/dev/null -c core.fsmonitor=false rev-parse --git-dir; echo codex=$?; \
         git -c safe.bareRepository=explicit config --null --get core.fsmonitor; echo fsmonitor=$?; \
         git {claude_remote} remote get-url origin; echo claude=$?; \
         git -c core.pager=sh status; echo pager=$?; \
         git -c 'core.alternateRefsCommand=sh -c id' remote; echo alternate=$?; \
         git -c hook.x.command=sh.enabled=false remote; echo hook=$?; \
         git -c core.sshCommand=sh fetch; echo ssh=$?"
    );
    for profile in ["coding-agent", "claude-code", "codex", "gemini-cli"] {
        let c = Case::new();
        git_workspace(&c);
        let out = Command::new("/usr/bin/git")
            .args(["remote", "add", "origin", "https://example.invalid/r.git"])
            .current_dir(&c.workspace)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        // max_denials = 5 in each: the four refusals below leave the
        // session running.
        let out = cordon_cmd()
            .arg("run")
            .arg("--profile")
            .arg(repo().join(format!("profiles/{profile}.toml")))
            .arg("--workspace")
            .arg(&c.workspace)
            .args(["--", "/usr/bin/bash", "-c", &script])
            .env("CORDON_AUDIT", c.audit_path())
            .output()
            .unwrap();
        let r = Run::from(out);
        assert_eq!(r.code, Some(0), "{profile}: {r:#?}");
        for expected in [
            ".git\ncodex=0",
            "fsmonitor=1", // allowed: git ran and found no such key
            "https://example.invalid/r.git\nclaude=0",
            "pager=126",
            "alternate=126",
            "hook=126",
            "ssh=126",
        ] {
            assert!(
                r.stdout.contains(expected),
                "{profile}: missing {expected}: {r:#?}"
            );
        }
        assert!(
            r.stderr.contains("is not a value allowed by \"-c\""),
            "{profile}: {r:#?}"
        );
        let log = std::fs::read_to_string(c.audit_path()).unwrap();
        // The accepted options stay in the record's argv and canonical
        // form, so what ran is on record.
        assert!(
            log.contains(r#""canonical":["-c=safe.bareRepository=explicit","-c=core.hooksPath=/dev/null","-c=core.fsmonitor=false","rev-parse","--git-dir"]"#),
            "{profile}: {log}"
        );
    }
}
